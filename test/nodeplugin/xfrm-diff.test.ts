import test from 'ava';
import { inboundStateMark, OWNED_REQID } from '../../core/marks.js';
import { type PeerNode, plan } from '../../core/plan.js';
import type { IpsecKey } from '../../core/secret.js';
import { adoptAcceptedSpis, adoptPeerIds } from '../../nodeplugin/reconciler/adopt.js';
import { diffXfrm, toXfrmPolicy, toXfrmState } from '../../nodeplugin/reconciler/xfrm-diff.js';
import type { XfrmPolicyInfo, XfrmStateInfo } from '../../nodeplugin/xfrm/types.js';

const K1: IpsecKey = { spi: 1, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: Uint8Array.from({ length: 36 }, (_, i) => i + 1), icvBits: 128 };
const boot = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const peer = (n: number, bootID = boot(n)): PeerNode => ({ name: `node-${n}`, spec: { spi: 1, addresses: [`192.168.0.${n}`], bootID, podCIDRS: [`10.244.${n}.0/24`] } });
const makePlan = (peers: PeerNode[], peerIds: ReadonlyMap<string, number> = new Map()) =>
  plan({ local: { name: 'node-1', addresses: ['192.168.0.1'], bootID: boot(1), podCIDRS: ['10.244.1.0/24'] }, peers, keys: new Map([[1, K1]]), inboundSpis: [1], peerIds });

// What a dump of a kernel holding exactly `p` would return.
const asKernel = (p: ReturnType<typeof makePlan>) => ({
  states: p.states.map((s): XfrmStateInfo => ({
    ...toXfrmState(s), selector: { src: '0.0.0.0/0', dst: '0.0.0.0/0' }, replayWindow: 0, current: { bytes: 0, packets: 0, addTime: 0, useTime: 0 },
    stats: { replayWindow: 0, replay: 0, integrityFailed: 0 }, flags: 0, otherAttributes: [],
  })),
  policies: p.policies.map((x, i): XfrmPolicyInfo => ({ ...toXfrmPolicy(x), priority: 0, type: 'main', index: i * 8, socket: false, flags: 0 })),
});
const foreignState: XfrmStateInfo = { ...asKernel(makePlan([peer(2)])).states[0]!, reqid: 1, mark: undefined, spi: 77 };
const foreignPolicy: XfrmPolicyInfo = { ...asKernel(makePlan([peer(2)])).policies[0]!, mark: { value: 0xe0, mask: 0xffffffff }, selector: { src: '0.0.0.0/0', dst: '10.99.0.0/16' }, tmpls: [{ family: 4, src: '1.1.1.1', dst: '2.2.2.2', proto: 'esp', mode: 'tunnel', spi: 1, reqid: 1 }] };

test('empty kernel: everything is installed, states before policies, nothing removed', (t) => {
  const p = makePlan([peer(2), peer(3)]);
  const d = diffXfrm({ states: p.states.map(toXfrmState), policies: p.policies.map(toXfrmPolicy) }, { states: [], policies: [] });
  t.is(d.install.length, p.states.length + p.policies.length);
  const firstPolicy = d.install.findIndex((c) => c.op === 'addPolicy');
  t.true(d.install.slice(0, firstPolicy).every((c) => c.op === 'addState'));
  t.deepEqual(d.remove, []);
});

test('idempotent: a kernel that matches the plan yields no changes', (t) => {
  const p = makePlan([peer(2), peer(3)]);
  const d = diffXfrm({ states: p.states.map(toXfrmState), policies: p.policies.map(toXfrmPolicy) }, asKernel(p));
  t.deepEqual([d.install, d.remove], [[], []]);
  t.is(d.unchanged, p.states.length + p.policies.length);
});

test('a rebooted peer: only its two states are replaced (delete+add), others untouched', (t) => {
  const before = makePlan([peer(2), peer(3)]);
  const after = makePlan([peer(2), peer(3, boot(99))], before.peerIds);
  const d = diffXfrm({ states: after.states.map(toXfrmState), policies: after.policies.map(toXfrmPolicy) }, asKernel(before));
  t.deepEqual(d.install.map((c) => c.op), ['deleteState', 'addState', 'deleteState', 'addState']);
  for (const c of d.install) t.true(c.op === 'addState' ? c.state.src === '192.168.0.3' || c.state.dst === '192.168.0.3' : c.op === 'deleteState' && (c.id.dst === '192.168.0.3' || c.id.src === '192.168.0.3'));
  t.deepEqual(d.remove, []);
});

test('a peer that left: its out policy then its states are removed, in that order', (t) => {
  const before = makePlan([peer(2), peer(3)]);
  const after = makePlan([peer(2)], before.peerIds);
  const d = diffXfrm({ states: after.states.map(toXfrmState), policies: after.policies.map(toXfrmPolicy) }, asKernel(before));
  t.deepEqual(d.install, []);
  t.deepEqual(d.remove.map((c) => c.op), ['deletePolicy', 'deleteState', 'deleteState']);
});

test('foreign objects are never removed and a collision is surfaced as an add', (t) => {
  const p = makePlan([peer(2)]);
  const kernel = asKernel(p);
  const d = diffXfrm({ states: p.states.map(toXfrmState), policies: p.policies.map(toXfrmPolicy) }, { states: [...kernel.states, foreignState], policies: [...kernel.policies, foreignPolicy] });
  t.deepEqual([d.install, d.remove], [[], []]);
  const nothingWanted = diffXfrm({ states: [], policies: [] }, { states: [foreignState], policies: [foreignPolicy] });
  t.deepEqual(nothingWanted.remove, []);
});

test('changed template SPI becomes an atomic policy update', (t) => {
  const p = makePlan([peer(2)]);
  const kernel = asKernel(p);
  const stale = kernel.policies.map((x) => (x.dir === 'out' ? { ...x, tmpls: x.tmpls.map((tm) => ({ ...tm, spi: 9 })) } : x));
  const d = diffXfrm({ states: p.states.map(toXfrmState), policies: p.policies.map(toXfrmPolicy) }, { states: kernel.states, policies: stale });
  t.deepEqual(d.install.map((c) => c.op), ['updatePolicy']);
});

test('keepState holds back a state the plan no longer lists', (t) => {
  const p = makePlan([peer(2)]);
  const kernel = asKernel(p);
  const old = { ...kernel.states[0]!, spi: 0x99 };
  const d = diffXfrm({ states: p.states.map(toXfrmState), policies: p.policies.map(toXfrmPolicy) }, { states: [...kernel.states, old], policies: kernel.policies }, { keepState: (s) => s.spi === 0x99 });
  t.deepEqual(d.remove, []);
});

test('adoption reads peer ids and accepted SPIs back from our inbound states', (t) => {
  const p = makePlan([peer(2), peer(3)], new Map([['node-3', 40]]));
  const kernel = asKernel(p);
  const ids = adoptPeerIds([...kernel.states, foreignState], [peer(2), peer(3)]);
  t.deepEqual([...ids].sort(), [['node-2', 1], ['node-3', 40]]);
  t.deepEqual(adoptAcceptedSpis(kernel.states), [1]);
  t.is(kernel.states.find((s) => s.src === '192.168.0.3')?.mark?.value, inboundStateMark(40));
  t.true(kernel.states.every((s) => s.reqid === OWNED_REQID));
});
