/**
 * The desired kernel state of one node, computed from facts only: `plan()` is pure and does no
 * I/O. The reconciler diffs its output against what the kernel holds. docs/mark-layout.md is
 * the prose version of this file.
 *
 * Layout for local node L and each peer P (per address family f both have an address in):
 * - outbound state L_f -> P_f, SPI = what P advertises (wire-compatible with Kmesh), key
 *   derive(K[spi], L_f, P_f, boot_L, boot_P), no mark;
 * - out policy per P pod CIDR of family f: mark ENCRYPT_MARK, template L_f -> P_f with that SPI;
 * - inbound state P_f -> L_f for every SPI L still accepts, key derive(K[spi], P_f, L_f,
 *   boot_P, boot_L), mark inboundStateMark(id(P)) so peers never collide on (dst, SPI), output
 *   mark DECRYPTED_MARK;
 * - once per local pod CIDR: in and fwd policies, mark DECRYPTED_MARK, template with a wildcard
 *   source so one policy accepts every peer's SA;
 * - node tc map P_f -> inboundStateMark(id(P)); pod tc LPM map: P's pod CIDRs.
 */
import { DECRYPTED_MARK, ENCRYPT_MARK, MARK_MASK, OWNED_REQID, PEER_ID_MAX, PEER_ID_MIN, inboundStateMark } from './marks.js';
import { DerivedKeys, deriveKey } from './derive.js';
import { type IpFamily, parseCidr, parseIp } from './ip.js';
import type { KmeshNodeInfoSpec } from './nodeinfo.js';
import type { IpsecKey } from './secret.js';

export interface Mark {
  readonly value: number;
  readonly mask: number;
}

/** An ESP tunnel-mode SA as the plan wants it. */
export interface PlannedState {
  readonly direction: 'in' | 'out';
  /** Node name of the peer at the other end. */
  readonly peer: string;
  readonly family: IpFamily;
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly reqid: number;
  readonly aead: { readonly name: string; readonly key: Uint8Array; readonly icvBits: number };
  readonly mark?: Mark;
  readonly outputMark?: Mark;
}

export interface PlannedTemplate {
  readonly family: IpFamily;
  /** Tunnel source; the family's any-address for a wildcard. */
  readonly src: string;
  readonly dst: string;
  /** 0 accepts any SPI. */
  readonly spi: number;
  readonly reqid: number;
}

export interface PlannedPolicy {
  readonly dir: 'in' | 'out' | 'fwd';
  /**
   * `block` drops what the policy selects. Used for a peer pod CIDR whose traffic was encrypted
   * and can no longer be (or, with --strict, never could be): dropping beats sending in clear.
   * Default `allow`.
   */
  readonly action?: 'allow' | 'block';
  readonly family: IpFamily;
  readonly selector: { readonly src: string; readonly dst: string };
  readonly mark: Mark;
  readonly tmpl: PlannedTemplate;
  /** Peer for out policies; undefined for the shared in/fwd policies. */
  readonly peer?: string;
}

export interface LocalNode {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly bootID: string;
  readonly podCIDRS: readonly string[];
}

export interface PeerNode {
  readonly name: string;
  readonly spec: KmeshNodeInfoSpec;
}

export interface PlanInput {
  readonly local: LocalNode;
  /** Every peer whose KmeshNodeInfo passed validation (and stamp checks); the local node is ignored. */
  readonly peers: readonly PeerNode[];
  /** Key history by SPI. */
  readonly keys: ReadonlyMap<number, IpsecKey>;
  /** SPIs the local node accepts inbound: the one it advertises plus those still in their grace period. */
  readonly inboundSpis: readonly number[];
  /** Peer ids already in use (from the previous plan or adopted from the kernel), kept stable. */
  readonly peerIds: ReadonlyMap<string, number>;
}

export interface SkippedPeer {
  readonly peer: string;
  readonly reason: string;
}

export interface Plan {
  readonly states: readonly PlannedState[];
  readonly policies: readonly PlannedPolicy[];
  /** Pod CIDRs the pod tc program marks for encryption: only those an out policy covers. */
  readonly peerPodCidrs: readonly string[];
  /** Outer peer address -> mark the node tc program sets on ESP from it. */
  readonly peerMarks: ReadonlyMap<string, number>;
  readonly peerIds: ReadonlyMap<string, number>;
  /** Peers (or parts of them) left unencrypted, with the reason; surfaced in status and metrics. */
  readonly skipped: readonly SkippedPeer[];
}

const ANY: Record<IpFamily, { addr: string; cidr: string }> = {
  4: { addr: '0.0.0.0', cidr: '0.0.0.0/0' },
  6: { addr: '::', cidr: '::/0' },
};
const FULL = (value: number): Mark => ({ value, mask: MARK_MASK });

/** First address of each family, in the order the node lists them (both ends pick the same). */
export function primaryAddresses(addresses: readonly string[]): Map<IpFamily, string> {
  const out = new Map<IpFamily, string>();
  for (const a of addresses) {
    const ip = parseIp(a);
    if (ip && !out.has(ip.family)) out.set(ip.family, a);
  }
  return out;
}

/**
 * Keep existing ids, give new peers the lowest free ids in name order, free ids of peers that
 * left. Deterministic, so a restart that adopts the kernel's ids reproduces the same plan.
 */
export function assignPeerIds(peerNames: readonly string[], previous: ReadonlyMap<string, number>): { ids: Map<string, number>; overflow: string[] } {
  const ids = new Map<string, number>();
  const used = new Set<number>();
  for (const name of peerNames) {
    const id = previous.get(name);
    if (id !== undefined && id >= PEER_ID_MIN && id <= PEER_ID_MAX && !used.has(id)) {
      ids.set(name, id);
      used.add(id);
    }
  }
  const overflow: string[] = [];
  let next = PEER_ID_MIN;
  for (const name of peerNames.filter((n) => !ids.has(n)).sort()) {
    if (ids.has(name)) continue;
    while (used.has(next)) next++;
    if (next > PEER_ID_MAX) {
      overflow.push(name);
      continue;
    }
    ids.set(name, next);
    used.add(next);
  }
  return { ids, overflow };
}

/** SPI to send to a peer with: the one it advertises, else our newest older key (the peer still accepts it during its grace period). */
export function outboundSpi(peerSpi: number, keys: ReadonlyMap<number, IpsecKey>): number | undefined {
  if (peerSpi <= 0) return undefined;
  if (keys.has(peerSpi)) return peerSpi;
  const older = [...keys.keys()].filter((s) => s < peerSpi);
  return older.length > 0 ? Math.max(...older) : undefined;
}

/** What plan() makes for one peer; a Planner keeps these between plans. */
interface PeerPart {
  readonly states: readonly PlannedState[];
  readonly policies: readonly PlannedPolicy[];
  readonly podCidrs: readonly string[];
  readonly marks: readonly (readonly [string, number])[];
  readonly skipped: readonly SkippedPeer[];
}

/** Everything of a plan that does not depend on one peer. */
interface PlanContext {
  readonly local: LocalNode;
  readonly localPrimary: ReadonlyMap<IpFamily, string>;
  readonly keys: ReadonlyMap<number, IpsecKey>;
  readonly inboundKeys: readonly IpsecKey[];
  readonly derive: typeof deriveKey;
}

type PlanParts = (peer: PeerNode, id: number, context: PlanContext) => PeerPart;

/** The desired kernel state for `input`. Pure; a Planner gives the same answer faster when called again and again. */
export function plan(input: PlanInput): Plan {
  return planWith(input, deriveKey, planPeer);
}

function planWith(input: PlanInput, derive: typeof deriveKey, parts: PlanParts): Plan {
  const { local, keys } = input;
  const peers = input.peers.filter((p) => p.name !== local.name).sort((a, b) => a.name.localeCompare(b.name));
  const { ids, overflow } = assignPeerIds(peers.map((p) => p.name), input.peerIds);
  const inboundKeys = [...new Set(input.inboundSpis)].sort((a, b) => a - b).flatMap((spi) => {
    const key = keys.get(spi);
    return key ? [key] : [];
  });
  const context: PlanContext = { local, localPrimary: primaryAddresses(local.addresses), keys, inboundKeys, derive };
  const states: PlannedState[] = [];
  const policies: PlannedPolicy[] = [];
  const peerPodCidrs: string[] = [];
  const peerMarks = new Map<string, number>();
  const skipped: SkippedPeer[] = overflow.map((peer) => ({ peer, reason: `more than ${PEER_ID_MAX} peers: no peer id left` }));

  for (const peer of peers) {
    const id = ids.get(peer.name);
    if (id === undefined) continue;
    const part = parts(peer, id, context);
    for (const s of part.states) states.push(s);
    for (const p of part.policies) policies.push(p);
    for (const c of part.podCidrs) peerPodCidrs.push(c);
    for (const [address, mark] of part.marks) peerMarks.set(address, mark);
    for (const k of part.skipped) skipped.push(k);
  }

  if (inboundKeys.length > 0) {
    for (const cidr of local.podCIDRS) {
      const family = parseCidr(cidr)?.family;
      const l = family === undefined ? undefined : context.localPrimary.get(family);
      if (family === undefined || l === undefined) continue;
      for (const dir of ['in', 'fwd'] as const) {
        policies.push({
          dir, family, selector: { src: ANY[family].cidr, dst: cidr }, mark: FULL(DECRYPTED_MARK),
          tmpl: { family, src: ANY[family].addr, dst: l, spi: 0, reqid: OWNED_REQID },
        });
      }
    }
  }
  return { states, policies, peerPodCidrs, peerMarks, peerIds: ids, skipped };
}

function planPeer(peer: PeerNode, id: number, context: PlanContext): PeerPart {
  const { local, localPrimary, keys, inboundKeys, derive } = context;
  const states: PlannedState[] = [];
  const policies: PlannedPolicy[] = [];
  const podCidrs: string[] = [];
  const marks: [string, number][] = [];
  const skipped: SkippedPeer[] = [];
  const part = { states, policies, podCidrs, marks, skipped };
  const mark = inboundStateMark(id);
  const peerPrimary = primaryAddresses(peer.spec.addresses);
  const families = [...localPrimary.keys()].filter((f) => peerPrimary.has(f)).sort();
  if (families.length === 0) {
    skipped.push({ peer: peer.name, reason: 'no address family in common with this node' });
    return part;
  }
  const spi = outboundSpi(peer.spec.spi, keys);
  if (spi === undefined) {
    skipped.push({ peer: peer.name, reason: peer.spec.spi <= 0 ? 'peer has no key yet (advertises SPI 0)' : `no key for SPI ${peer.spec.spi} or older on this node yet` });
  }
  for (const family of families) {
    const l = localPrimary.get(family);
    const p = peerPrimary.get(family);
    if (l === undefined || p === undefined) continue;
    for (const key of inboundKeys) {
      states.push({
        direction: 'in', peer: peer.name, family, src: p, dst: l, spi: key.spi, reqid: OWNED_REQID,
        aead: { name: key.aeadKeyName, key: derive(key.aeadKey, p, l, peer.spec.bootID, local.bootID), icvBits: key.icvBits },
        mark: FULL(mark), outputMark: FULL(DECRYPTED_MARK),
      });
    }
    if (inboundKeys.length > 0) marks.push([p, mark]);
    const outKey = spi === undefined ? undefined : keys.get(spi);
    if (outKey === undefined) continue;
    states.push({
      direction: 'out', peer: peer.name, family, src: l, dst: p, spi: outKey.spi, reqid: OWNED_REQID,
      aead: { name: outKey.aeadKeyName, key: derive(outKey.aeadKey, l, p, local.bootID, peer.spec.bootID), icvBits: outKey.icvBits },
    });
    for (const cidr of peer.spec.podCIDRS) {
      if (parseCidr(cidr)?.family !== family) continue;
      policies.push({
        dir: 'out', family, peer: peer.name, selector: { src: ANY[family].cidr, dst: cidr }, mark: FULL(ENCRYPT_MARK),
        tmpl: { family, src: l, dst: p, spi: outKey.spi, reqid: OWNED_REQID },
      });
      podCidrs.push(cidr);
    }
  }
  const uncovered = peer.spec.podCIDRS.filter((c) => !families.includes(parseCidr(c)?.family ?? 4));
  if (uncovered.length > 0) skipped.push({ peer: peer.name, reason: `pod CIDRs ${uncovered.join(', ')} have no address family in common with this node` });
  return part;
}

/**
 * plan() for a caller that plans again and again (the node plugin, on every event): a peer
 * whose spec and id are unchanged, under unchanged local facts and keys, gets the very objects
 * it got last time, and pair keys are derived once (DerivedKeys). The answer is always what
 * plan() would give; only the work differs. Unchanged objects keep their identity, which lets
 * the reconciler skip comparing them.
 */
export class Planner {
  readonly #derived = new DerivedKeys();
  #context: PlanContext | undefined;
  #parts = new Map<string, { readonly spec: KmeshNodeInfoSpec; readonly id: number; readonly part: PeerPart }>();

  plan(input: PlanInput): Plan {
    this.#derived.nextRound();
    const previous = this.#parts;
    const next = new Map<string, { readonly spec: KmeshNodeInfoSpec; readonly id: number; readonly part: PeerPart }>();
    let reuse = true;
    const derive: typeof deriveKey = (...args) => this.#derived.derive(...args);
    const result = planWith(input, derive, (peer, id, context) => {
      if (this.#context === undefined || !sameContext(this.#context, context)) {
        this.#context = context;
        reuse = false;
      }
      const known = reuse ? previous.get(peer.name) : undefined;
      const part = known !== undefined && known.id === id && sameNodeSpec(known.spec, peer.spec) ? known.part : planPeer(peer, id, context);
      next.set(peer.name, { spec: peer.spec, id, part });
      return part;
    });
    this.#parts = next;
    return result;
  }
}

function sameContext(a: PlanContext, b: PlanContext): boolean {
  if (a.local.name !== b.local.name || a.local.bootID !== b.local.bootID || !sameStrings(a.local.addresses, b.local.addresses)) return false;
  if (!sameKeyRing(a.keys, b.keys) || a.inboundKeys.length !== b.inboundKeys.length) return false;
  return a.inboundKeys.every((k, i) => sameIpsecKey(k, b.inboundKeys[i]));
}

/** The same key versions under the same SPIs. */
export function sameKeyRing(a: ReadonlyMap<number, IpsecKey>, b: ReadonlyMap<number, IpsecKey>): boolean {
  if (a.size !== b.size) return false;
  for (const [spi, key] of a) if (!sameIpsecKey(key, b.get(spi))) return false;
  return true;
}

/** The same key version: the very object, or the same SPI, ICV and key bytes object (there is one algorithm). */
export function sameIpsecKey(a: IpsecKey, b: IpsecKey | undefined): boolean {
  return b !== undefined && (a === b || (a.spi === b.spi && a.icvBits === b.icvBits && a.aeadKey === b.aeadKey));
}

/** The same KmeshNodeInfo spec, field by field. */
export function sameNodeSpec(a: KmeshNodeInfoSpec, b: KmeshNodeInfoSpec): boolean {
  return a === b || (a.spi === b.spi && a.bootID === b.bootID && sameStrings(a.addresses, b.addresses) && sameStrings(a.podCIDRS, b.podCIDRS));
}

export function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}
