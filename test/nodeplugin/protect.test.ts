/**
 * protectEncryptedPairs: a pair that was encrypted never falls back to clear text. Pure, so the
 * kernel is a dump built from earlier plans; the VM suite proves the same on the wire.
 */
import test from 'ava';
import { ENCRYPT_MARK } from '../../core/marks.js';
import { type PeerNode, type Plan, plan } from '../../core/plan.js';
import type { IpsecKey } from '../../core/secret.js';
import { protectEncryptedPairs } from '../../nodeplugin/reconciler/protect.js';
import { diffXfrm, stateKey, toXfrmPolicy, toXfrmState } from '../../nodeplugin/reconciler/xfrm-diff.js';
import type { XfrmPolicyInfo, XfrmStateInfo } from '../../nodeplugin/xfrm/types.js';

const key = (spi: number): IpsecKey => ({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: Uint8Array.from({ length: 36 }, (_, i) => (i + spi * 3) & 0xff), icvBits: 128 });
const boot = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const peer = (n: number, spi: number): PeerNode => ({ name: `node-${n}`, spec: { spi, addresses: [`192.168.0.${n}`], bootID: boot(n), podCIDRS: [`10.244.${n}.0/24`] } });
const local = { name: 'node-1', addresses: ['192.168.0.1'], bootID: boot(1), podCIDRS: ['10.244.1.0/24'] };
const makePlan = (peers: PeerNode[], keys: IpsecKey[]) =>
  plan({ local, peers, keys: new Map(keys.map((k) => [k.spi, k])), inboundSpis: keys.map((k) => k.spi), peerIds: new Map() });

const asKernel = (p: Plan) => ({
  states: p.states.map((s): XfrmStateInfo => ({
    ...toXfrmState(s), selector: { src: '0.0.0.0/0', dst: '0.0.0.0/0' }, replayWindow: 0, current: { bytes: 0, packets: 0, addTime: 0, useTime: 0 },
    stats: { replayWindow: 0, replay: 0, integrityFailed: 0 }, flags: 0, otherAttributes: [],
  })),
  policies: p.policies.map((x, i): XfrmPolicyInfo => ({ ...toXfrmPolicy(x), priority: 0, type: 'main', index: i * 8, socket: false, flags: 0 })),
});
const outPolicies = (p: Plan) => p.policies.filter((x) => x.dir === 'out').map((x) => `${x.selector.dst} ${x.action ?? 'allow'} spi=${x.tmpl.spi}`);

// Encrypted with SPI 2 towards node-2 and node-3; then this node restarts knowing only key 3
// while both peers still advertise 2 (the Secret holds one key).
const before = makePlan([peer(2, 2), peer(3, 2)], [key(2)]);
const kernel = asKernel(before);
const afterRestart = makePlan([peer(2, 2), peer(3, 2)], [key(3)]);

test('without protection the plan would drop the out policies (the downgrade this module prevents)', (t) => {
  t.deepEqual(outPolicies(afterRestart), []);
  t.deepEqual(afterRestart.peerPodCidrs, []);
});

test('a peer advertising an SPI we have no key for keeps its out policy and SA from the kernel', (t) => {
  const r = protectEncryptedPairs({ plan: afterRestart, actual: kernel, usable: [peer(2, 2), peer(3, 2)], refused: [], strict: false });
  t.deepEqual(outPolicies(r.plan), ['10.244.2.0/24 allow spi=2', '10.244.3.0/24 allow spi=2']);
  t.deepEqual([...r.plan.peerPodCidrs].sort(), ['10.244.2.0/24', '10.244.3.0/24'], 'the pod program keeps marking');
  const outSas = kernel.states.filter((s) => s.mark === undefined);
  t.deepEqual([...r.keptStates].sort(), outSas.map(stateKey).sort());
  t.true(r.protectedCidrs.every((c) => c.action === 'kept'));
  // Applied through the diff, nothing outbound is removed or changed.
  const d = diffXfrm({ states: r.plan.states.map(toXfrmState), policies: r.plan.policies.map(toXfrmPolicy) }, kernel, { keepState: (s) => r.keptStates.has(stateKey(s)) });
  const touched = [...d.install, ...d.remove].filter((c) => (c.op === 'deletePolicy' ? c.id.dir === 'out' : c.op.endsWith('Policy') ? 'policy' in c && c.policy.dir === 'out' : c.op === 'deleteState' && c.id.mark === undefined));
  t.deepEqual(touched, []);
});

test('no SA left to keep: the CIDR is blocked, not released', (t) => {
  const noSas = { states: [], policies: kernel.policies };
  const r = protectEncryptedPairs({ plan: afterRestart, actual: noSas, usable: [peer(2, 2), peer(3, 2)], refused: [], strict: false });
  t.deepEqual(outPolicies(r.plan), ['10.244.2.0/24 block spi=0', '10.244.3.0/24 block spi=0']);
  t.true(r.plan.policies.filter((p) => p.action === 'block').every((p) => p.mark.value === ENCRYPT_MARK));
  t.deepEqual([...r.plan.peerPodCidrs].sort(), ['10.244.2.0/24', '10.244.3.0/24']);
});

test('a refused peer that was encrypted is blocked; a peer that left is released', (t) => {
  const now = makePlan([peer(2, 2)], [key(2)]); // node-3 is no longer usable
  const refusedNode3 = protectEncryptedPairs({ plan: now, actual: kernel, usable: [peer(2, 2)], refused: [peer(3, 2)], strict: false });
  t.deepEqual(outPolicies(refusedNode3.plan), ['10.244.2.0/24 allow spi=2', '10.244.3.0/24 block spi=0']);
  t.deepEqual(refusedNode3.protectedCidrs.map((c) => [c.peer, c.action]), [['node-3', 'blocked']]);
  const gone = protectEncryptedPairs({ plan: now, actual: kernel, usable: [peer(2, 2)], refused: [], strict: false });
  t.deepEqual(outPolicies(gone.plan), ['10.244.2.0/24 allow spi=2']);
  t.deepEqual(gone.protectedCidrs, []);
});

test('a block policy stays blocked across rounds and turns back into encryption when the peer is usable again', (t) => {
  const blockedKernel = asKernel(protectEncryptedPairs({ plan: makePlan([], [key(2)]), actual: kernel, usable: [], refused: [peer(2, 2), peer(3, 2)], strict: false }).plan);
  const again = protectEncryptedPairs({ plan: makePlan([], [key(2)]), actual: blockedKernel, usable: [], refused: [peer(2, 2), peer(3, 2)], strict: false });
  t.deepEqual(outPolicies(again.plan), ['10.244.2.0/24 block spi=0', '10.244.3.0/24 block spi=0']);
  const back = protectEncryptedPairs({ plan: before, actual: blockedKernel, usable: [peer(2, 2), peer(3, 2)], refused: [], strict: false });
  t.deepEqual(outPolicies(back.plan), ['10.244.2.0/24 allow spi=2', '10.244.3.0/24 allow spi=2']);
  const d = diffXfrm({ states: back.plan.states.map(toXfrmState), policies: back.plan.policies.map(toXfrmPolicy) }, blockedKernel);
  t.deepEqual(d.install.filter((c) => c.op === 'updatePolicy').length, 2, 'block -> allow is an atomic policy update');
});

test('strict: every known peer CIDR that cannot be encrypted is blocked, even if it never was', (t) => {
  const fresh = makePlan([peer(2, 0), peer(3, 5)], [key(1)]); // node-2 has no key, node-3 an SPI we cannot serve
  const r = protectEncryptedPairs({ plan: fresh, actual: { states: [], policies: [] }, usable: [peer(2, 0), peer(3, 5)], refused: [peer(4, 1)], strict: true });
  t.deepEqual(outPolicies(r.plan).sort(), ['10.244.2.0/24 block spi=0', '10.244.3.0/24 allow spi=1', '10.244.4.0/24 block spi=0']);
  const lax = protectEncryptedPairs({ plan: fresh, actual: { states: [], policies: [] }, usable: [peer(2, 0), peer(3, 5)], refused: [peer(4, 1)], strict: false });
  t.deepEqual(outPolicies(lax.plan), ['10.244.3.0/24 allow spi=1'], 'without --strict, never-encrypted peers stay as Kmesh leaves them');
});

test('a refused peer cannot take over a CIDR a usable peer claims, and garbage CIDRs are ignored', (t) => {
  const forged: PeerNode = { name: 'evil', spec: { spi: 2, addresses: ['192.168.0.66'], bootID: boot(66), podCIDRS: ['10.244.2.0/24', 'not-a-cidr'] } };
  const r = protectEncryptedPairs({ plan: before, actual: kernel, usable: [peer(2, 2), peer(3, 2)], refused: [forged], strict: true });
  t.deepEqual(outPolicies(r.plan), ['10.244.2.0/24 allow spi=2', '10.244.3.0/24 allow spi=2']);
  t.deepEqual(r.protectedCidrs, []);
});
