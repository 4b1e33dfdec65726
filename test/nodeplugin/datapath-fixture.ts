/**
 * A small cluster for the reconciler and NodeDatapath unit tests: node-1 is the local node,
 * node-2, node-3 and node-5 are dual-stack peers, node-4 is IPv4 only. Plus key-free text views
 * of kernel content and of plans, so a test can compare the fake kernel with a plan exactly.
 */
import type { ExecutionContext } from 'ava';
import { keyFingerprint } from '../../core/fingerprint.js';
import type { LocalNode, PeerNode, Plan } from '../../core/plan.js';
import type { IpsecKey } from '../../core/secret.js';
import type { SyncInput } from '../../nodeplugin/node-datapath.js';
import { isOwnedPolicy, isOwnedState } from '../../nodeplugin/reconciler/ownership.js';
import { toXfrmPolicy, toXfrmState } from '../../nodeplugin/reconciler/xfrm-diff.js';
import type { XfrmMark, XfrmPolicy, XfrmState } from '../../nodeplugin/xfrm/types.js';
import type { FakePorts } from '../fakes/index.js';

export const key = (spi: number): IpsecKey => ({
  spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: Uint8Array.from({ length: 36 }, (_, i) => (spi * 53 + i * 7) & 0xff), icvBits: 128,
});
export const keys = (...spis: number[]): Map<number, IpsecKey> => new Map(spis.map((s) => [s, key(s)]));

const boot = (n: number, generation = 0) => `00000000-0000-4000-8${generation}00-${String(n).padStart(12, '0')}`;

export interface NodeOptions {
  readonly spi?: number;
  /** Boot generation: a new one is a reboot (new boot ID, so new keys). */
  readonly reboot?: number;
}

/** node-N: 192.168.0.N and fd00::N (node-4: IPv4 only), pod CIDRs 10.244.N.0/24 and fd00:10:244:N::/64. */
export function node(n: number, options: NodeOptions = {}): PeerNode {
  const v6 = n !== 4;
  return {
    name: `node-${n}`,
    spec: {
      spi: options.spi ?? 1,
      addresses: v6 ? [`192.168.0.${n}`, `fd00::${n}`] : [`192.168.0.${n}`],
      bootID: boot(n, options.reboot),
      podCIDRS: v6 ? [`10.244.${n}.0/24`, `fd00:10:244:${n}::/64`] : [`10.244.${n}.0/24`],
    },
  };
}

export const LOCAL: LocalNode = (() => {
  const { name, spec } = node(1);
  return { name, addresses: spec.addresses, bootID: spec.bootID, podCIDRS: spec.podCIDRS };
})();

/** A NodeDatapath.sync input for node-1 (the local node is also in `peers`, as the informer lists it). */
export function syncInput(peers: readonly PeerNode[], keySpis: readonly number[], now: number, graceMs = 60_000): SyncInput {
  const localSpi = Math.max(0, ...keySpis);
  return { local: LOCAL, peers: [node(1, { spi: localSpi }), ...peers], keys: keys(...keySpis), now, graceMs };
}

const hex = (m: XfrmMark | undefined) => (m ? `0x${m.value.toString(16)}` : '-');

/** An SA as text, with a key fingerprint instead of the key. */
export const stateText = (s: XfrmState) =>
  `${s.src}>${s.dst} spi=${s.spi} mark=${hex(s.mark)} out=${hex(s.outputMark)} key=${s.aead ? keyFingerprint(s.aead.key) : '-'}`;

export const policyText = (p: XfrmPolicy) =>
  `${p.dir} ${p.selector.src}>${p.selector.dst} mark=${hex(p.mark)} ${p.tmpls.map((t) => `tmpl=${t.src}>${t.dst}/${t.spi}`).join(' ')}`;

export interface KernelView {
  readonly states: readonly string[];
  readonly policies: readonly string[];
}

/** Our objects in the fake kernel, sorted (duplicates stay visible). */
export function ownedView(ports: FakePorts): KernelView {
  return {
    states: ports.xfrm.states.filter(isOwnedState).map(stateText).sort(),
    policies: ports.xfrm.policies.filter(isOwnedPolicy).map(policyText).sort(),
  };
}

/** What a kernel holding exactly `plan` shows in ownedView. */
export function planView(plan: Plan): KernelView {
  return { states: plan.states.map(toXfrmState).map(stateText).sort(), policies: plan.policies.map(toXfrmPolicy).map(policyText).sort() };
}

/** The kernel and both maps hold exactly `plan`: nothing missing, nothing left over, nothing twice. */
export function assertHolds(t: ExecutionContext, ports: FakePorts, plan: Plan, message = ''): void {
  t.deepEqual(ownedView(ports), planView(plan), `kernel = plan ${message}`);
  t.deepEqual(ports.maps.peerMarks, new Map([...plan.peerMarks].sort(([a], [b]) => a.localeCompare(b))), `peer marks = plan ${message}`);
  t.deepEqual(ports.maps.peerCidrs, [...new Set(plan.peerPodCidrs)].sort(), `peer CIDRs = plan ${message}`);
}
