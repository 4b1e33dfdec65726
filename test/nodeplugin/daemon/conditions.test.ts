/**
 * Ready and KeyInSync: every reason, the transition-time rule and the message bound.
 */
import test from 'ava';
import { type Condition, type ConditionInput, computeConditions, sameConditions } from '../../../nodeplugin/daemon/conditions.js';

const T0 = new Date('2026-12-01T10:00:00.123Z');
const T1 = new Date('2026-12-01T11:30:00.000Z');

const base: ConditionInput = {
  currentSpi: 2,
  advertisedSpi: 2,
  peers: [{ name: 'node-2', spi: 2 }, { name: 'node-3', spi: 2 }],
  withoutOutbound: [],
  refused: [],
  errors: [],
};

function get(conditions: readonly Condition[], type: Condition['type']): Condition {
  const c = conditions.find((x) => x.type === type);
  if (!c) throw new Error(`no ${type}`);
  return c;
}
const ready = (input: Partial<ConditionInput>) => get(computeConditions({ ...base, ...input }, [], T0), 'Ready');
const sync = (input: Partial<ConditionInput>) => get(computeConditions({ ...base, ...input }, [], T0), 'KeyInSync');
const peers = (n: number, spi: number) => Array.from({ length: n }, (_, i) => ({ name: `node-${i + 2}`, spi }));

test('both conditions, in order, with a second-precision RFC 3339 time and no observedGeneration unless given', (t) => {
  const cs = computeConditions(base, [], T0);
  t.deepEqual(cs.map((c) => c.type), ['Ready', 'KeyInSync']);
  for (const c of cs) {
    t.is(c.lastTransitionTime, '2026-12-01T10:00:00Z');
    t.false('observedGeneration' in c);
  }
  t.true(computeConditions({ ...base, generation: 7 }, [], T0).every((c) => c.observedGeneration === 7));
});

test('Ready: Starting before the first reconcile', (t) => {
  t.like(ready({ errors: undefined }), { status: 'Unknown', reason: 'Starting', message: 'the first reconcile has not finished' });
});

test('Ready: NodeFactsUnusable wins over everything else', (t) => {
  t.like(ready({ factsProblem: 'boot ID mismatch', errors: ['x'] }), { status: 'False', reason: 'NodeFactsUnusable', message: 'boot ID mismatch' });
  t.like(ready({ factsProblem: 'Node missing', errors: undefined }), { reason: 'NodeFactsUnusable' });
});

test('Ready: ReconcileFailed shows the first error, and "and N more" only when there are more', (t) => {
  t.like(ready({ errors: ['add state: EEXIST'] }), { status: 'False', reason: 'ReconcileFailed', message: 'add state: EEXIST' });
  t.like(ready({ errors: ['add state: EEXIST', 'b', 'c'] }), { message: 'add state: EEXIST (and 2 more)' });
});

test('Ready: Programmed, with the peer count or "no key yet"', (t) => {
  t.like(ready({}), { status: 'True', reason: 'Programmed', message: 'kernel programmed for 2 peer(s)' });
  t.like(ready({ currentSpi: 0, advertisedSpi: 0, peers: [] }), { status: 'True', reason: 'Programmed', message: 'kernel programmed; no key yet' });
});

test('KeyInSync: NoKey before a key was loaded', (t) => {
  t.like(sync({ currentSpi: 0, advertisedSpi: 0 }), { status: 'False', reason: 'NoKey' });
});

test('KeyInSync: NotAdvertised while the new SPI is not published', (t) => {
  t.like(sync({ currentSpi: 3, advertisedSpi: 2 }), { status: 'False', reason: 'NotAdvertised', message: 'this node has SPI 3 but advertises 2: its inbound states are not confirmed yet' });
});

test('KeyInSync: NodeBehind names the peers ahead, before PeersBehind', (t) => {
  const c = sync({ peers: [{ name: 'node-2', spi: 3 }, { name: 'node-3', spi: 1 }] });
  t.like(c, { status: 'False', reason: 'NodeBehind' });
  t.is(c.message, "node-2 (SPI 3) advertise a newer SPI than this node's 2; the Secret has not reached this node yet");
});

test('KeyInSync: PeersBehind names the peers still on an older SPI', (t) => {
  const c = sync({ peers: [{ name: 'node-2', spi: 2 }, { name: 'node-3', spi: 1 }] });
  t.like(c, { status: 'False', reason: 'PeersBehind', message: "node-3 (SPI 1) still advertise an older SPI than this node's 2" });
});

test('KeyInSync: long peer lists show five names and "and N more"', (t) => {
  const c = sync({ peers: peers(8, 1) });
  t.is(c.message, "node-2 (SPI 1), node-3 (SPI 1), node-4 (SPI 1), node-5 (SPI 1), node-6 (SPI 1) and 3 more still advertise an older SPI than this node's 2");
  t.is(sync({ peers: peers(5, 1) }).message.includes('more'), false);
});

test('KeyInSync: PeersUnencrypted when a peer has no outbound SA', (t) => {
  t.like(sync({ withoutOutbound: ['node-3'] }), { status: 'False', reason: 'PeersUnencrypted', message: 'no outbound SA towards node-3' });
});

test('KeyInSync: NoPeers and InSync, with refused peers noted', (t) => {
  t.like(sync({ peers: [] }), { status: 'True', reason: 'NoPeers', message: 'SPI 2; no usable peer' });
  t.like(sync({ peers: [], refused: [{ name: 'evil', reason: 'bad-signature' }] }), { status: 'True', reason: 'NoPeers', message: 'SPI 2; no usable peer; refused: evil (bad-signature)' });
  t.like(sync({}), { status: 'True', reason: 'InSync', message: 'every usable peer (2) uses SPI 2' });
  t.like(sync({ refused: [{ name: 'node-9', reason: 'expired' }, { name: 'node-8', reason: 'missing' }] }), {
    reason: 'InSync', message: 'every usable peer (2) uses SPI 2; refused: node-9 (expired), node-8 (missing)',
  });
});

test('lastTransitionTime stays while the status stays (even if reason or message change) and moves when it changes', (t) => {
  const first = computeConditions(base, [], T0);
  // Same status, other reason (InSync -> NoPeers) and message: time kept.
  const second = computeConditions({ ...base, peers: [] }, first, T1);
  t.is(get(second, 'KeyInSync').reason, 'NoPeers');
  t.is(get(second, 'KeyInSync').lastTransitionTime, '2026-12-01T10:00:00Z');
  t.is(get(second, 'Ready').lastTransitionTime, '2026-12-01T10:00:00Z');
  // Status changes: time moves, for that condition only.
  const third = computeConditions({ ...base, peers: [], errors: ['boom'] }, second, T1);
  t.is(get(third, 'Ready').status, 'False');
  t.is(get(third, 'Ready').lastTransitionTime, '2026-12-01T11:30:00Z');
  t.is(get(third, 'KeyInSync').lastTransitionTime, '2026-12-01T10:00:00Z');
});

test('messages are bounded to 1024 characters', (t) => {
  const long = 'x'.repeat(5000);
  const r = ready({ errors: [long] });
  t.is(r.message.length, 1024);
  t.true(r.message.endsWith('…'));
  t.is(ready({ errors: ['y'.repeat(1024)] }).message, 'y'.repeat(1024));
  const s = sync({ peers: [], refused: Array.from({ length: 50 }, (_, i) => ({ name: `n${i}`, reason: long })) });
  t.is(s.message.length, 1024);
});

test('sameConditions ignores transition times and order, and sees every other field', (t) => {
  const a = computeConditions({ ...base, generation: 1 }, [], T0);
  const b = computeConditions({ ...base, generation: 1 }, [], T1);
  t.true(sameConditions(a, b));
  t.true(sameConditions(a, [...b].reverse()));
  t.false(sameConditions(a, computeConditions({ ...base, generation: 2 }, [], T0)));
  t.false(sameConditions(a, computeConditions({ ...base, generation: 1, errors: ['e'] }, [], T0)));
  t.false(sameConditions(a, computeConditions({ ...base, generation: 1, peers: [] }, [], T0)));
  t.false(sameConditions(a, a.slice(0, 1)));
  t.true(sameConditions([], []));
  const withoutGen = computeConditions(base, [], T0);
  t.false(sameConditions(a, withoutGen));
  t.true(sameConditions(withoutGen, computeConditions(base, [], T1)));
});
