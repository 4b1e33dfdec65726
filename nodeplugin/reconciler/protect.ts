/**
 * Never send a pair's traffic in clear once it has been encrypted.
 *
 * `plan()` only knows what this process can build now. After a restart during a rotation the
 * Secret holds one key, perhaps newer than what a peer advertises; a peer's stamp may expire;
 * a peer may lose its key. In each case the plan has no outbound SA for that peer, and applied
 * as is, the reconciler would delete the out policy, the pod program would stop marking, and
 * the peer's pod traffic would leave in clear. This module amends the plan from what the
 * kernel holds (the kernel is the memory, as it is for inbound SAs):
 *
 * - a usable peer the plan cannot encrypt to (no key for its SPI, no common family) keeps the
 *   out policy and the outbound SA the kernel already has for it, untouched: if the peer still
 *   accepts that SPI, traffic keeps flowing encrypted; if not, the peer drops it;
 * - when there is no such SA to keep, or the peer is refused (stamp missing, forged, expired),
 *   its pod CIDR gets a `block` policy: the packets are dropped, never sent in clear;
 * - with `strict`, every known peer pod CIDR that cannot be encrypted is blocked, whether it was
 *   encrypted before or not (Cilium's strict mode);
 * - a CIDR no KmeshNodeInfo claims any more (the node left) is released: its policies go.
 *
 * Pure: everything comes in as arguments.
 */
import { ENCRYPT_MARK, MARK_MASK, OWNED_REQID } from '../../core/marks.js';
import { type IpFamily, canonicalIp, parseCidr } from '../../core/ip.js';
import type { PeerNode, Plan, PlannedPolicy } from '../../core/plan.js';
import type { XfrmPolicyInfo, XfrmStateInfo } from '../xfrm/types.js';
import { isOwnedPolicy, isOwnedState } from './ownership.js';
import { stateKey } from './xfrm-diff.js';

export interface ProtectInput {
  readonly plan: Plan;
  readonly actual: { readonly states: readonly XfrmStateInfo[]; readonly policies: readonly XfrmPolicyInfo[] };
  /** Peers handed to plan() (their stamps verified). */
  readonly usable: readonly PeerNode[];
  /** Peers known from a KmeshNodeInfo but refused; their pod CIDRs are only ever blocked. */
  readonly refused: readonly PeerNode[];
  readonly strict: boolean;
}

/** Why a peer pod CIDR is not encrypted by the plan and what was done instead. */
export interface ProtectedCidr {
  readonly cidr: string;
  readonly peer: string;
  readonly action: 'kept' | 'blocked';
  readonly reason: string;
}

export interface ProtectResult {
  readonly plan: Plan;
  /** stateKey() of outbound SAs kept from the kernel although the plan does not list them. */
  readonly keptStates: ReadonlySet<string>;
  readonly protectedCidrs: readonly ProtectedCidr[];
}

const ANY: Record<IpFamily, { addr: string; cidr: string }> = {
  4: { addr: '0.0.0.0', cidr: '0.0.0.0/0' },
  6: { addr: '::', cidr: '::/0' },
};

function isOutPolicy(p: XfrmPolicyInfo): boolean {
  return p.dir === 'out' && !p.socket && p.mark?.value === ENCRYPT_MARK && isOwnedPolicy(p);
}

/** A CIDR in the one spelling the maps and the diff use, or undefined for garbage. */
function canonicalCidr(text: string): { cidr: string; family: IpFamily } | undefined {
  const p = parseCidr(text);
  return p ? { cidr: p.network, family: p.family } : undefined;
}

export function blockPolicy(cidr: string, family: IpFamily, peer: string): PlannedPolicy {
  return {
    dir: 'out', family, peer, action: 'block',
    selector: { src: ANY[family].cidr, dst: cidr },
    mark: { value: ENCRYPT_MARK, mask: MARK_MASK },
    // A block policy never uses its template; it is there so ownership reads the same as for
    // every other policy of ours (reqid 0x6b6d).
    tmpl: { family, src: ANY[family].addr, dst: ANY[family].addr, spi: 0, reqid: OWNED_REQID },
  };
}

export function protectEncryptedPairs(input: ProtectInput): ProtectResult {
  const { plan, actual } = input;
  const planned = new Set(plan.policies.filter((p) => p.dir === 'out').map((p) => canonicalCidr(p.selector.dst)?.cidr));

  // Who claims each pod CIDR (a usable peer's claim wins over a refused one's), and our
  // outbound SAs: made only when a CIDR needs them, which at thousands of peers with nothing
  // to protect is never.
  let claimsMade: Map<string, { peer: string; family: IpFamily; usable: boolean }> | undefined;
  const claims = (): Map<string, { peer: string; family: IpFamily; usable: boolean }> => {
    if (claimsMade) return claimsMade;
    claimsMade = new Map();
    for (const [peers, usable] of [[input.refused, false], [input.usable, true]] as const) {
      for (const peer of peers) {
        for (const text of peer.spec.podCIDRS) {
          const c = canonicalCidr(text);
          if (c) claimsMade.set(c.cidr, { peer: peer.name, family: c.family, usable });
        }
      }
    }
    return claimsMade;
  };
  let outStatesMade: Map<string, XfrmStateInfo> | undefined;
  const outStates = (): Map<string, XfrmStateInfo> => {
    if (outStatesMade) return outStatesMade;
    outStatesMade = new Map();
    for (const s of actual.states) {
      if (isOwnedState(s) && s.mark === undefined) outStatesMade.set(`${canonicalIp(s.src)}>${canonicalIp(s.dst)}/${s.spi}`, s);
    }
    return outStatesMade;
  };

  const extra: PlannedPolicy[] = [];
  const keptStates = new Set<string>();
  const protectedCidrs: ProtectedCidr[] = [];
  const done = new Set<string>();
  const block = (cidr: string, family: IpFamily, peer: string, reason: string): void => {
    extra.push(blockPolicy(cidr, family, peer));
    protectedCidrs.push({ cidr, peer, action: 'blocked', reason });
    done.add(cidr);
  };

  for (const have of actual.policies) {
    if (have.dir !== 'out' || !isOutPolicy(have)) continue;
    const c = canonicalCidr(have.selector.dst);
    if (!c || planned.has(c.cidr) || done.has(c.cidr)) continue;
    const claim = claims().get(c.cidr);
    if (!claim) continue; // nobody claims it any more: the node left, release it
    const tmpl = have.tmpls[0];
    const sa = have.action === 'allow' && tmpl ? outStates().get(`${canonicalIp(tmpl.src)}>${canonicalIp(tmpl.dst)}/${tmpl.spi}`) : undefined;
    if (claim.usable && sa && tmpl) {
      extra.push({
        dir: 'out', family: c.family, peer: claim.peer, action: 'allow',
        selector: { src: ANY[c.family].cidr, dst: c.cidr },
        mark: { value: ENCRYPT_MARK, mask: MARK_MASK },
        tmpl: { family: tmpl.family, src: tmpl.src, dst: tmpl.dst, spi: tmpl.spi, reqid: tmpl.reqid },
      });
      keptStates.add(stateKey(sa));
      protectedCidrs.push({ cidr: c.cidr, peer: claim.peer, action: 'kept', reason: `no key for the SPI ${claim.peer} advertises: keeping the SA with SPI ${tmpl.spi}` });
      done.add(c.cidr);
    } else {
      block(c.cidr, c.family, claim.peer, claim.usable ? 'encrypted before, no usable SA left' : 'encrypted before, peer refused');
    }
  }

  if (input.strict) {
    for (const [cidr, claim] of claims()) {
      if (!planned.has(cidr) && !done.has(cidr)) block(cidr, claim.family, claim.peer, claim.usable ? 'strict: cannot be encrypted yet' : 'strict: peer refused');
    }
  }

  if (extra.length === 0) return { plan, keptStates, protectedCidrs };
  const cidrs = new Set(plan.peerPodCidrs);
  for (const p of extra) cidrs.add(p.selector.dst);
  return {
    plan: { ...plan, policies: [...plan.policies, ...extra], peerPodCidrs: [...cidrs] },
    keptStates,
    protectedCidrs,
  };
}
