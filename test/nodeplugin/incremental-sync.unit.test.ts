/**
 * NodeDatapath between periodic resyncs (verify: false): it diffs against what it read at its
 * last verified sync and changed since, so a sync that changes nothing reads nothing and writes
 * nothing, and a change to one peer touches only that peer's objects. Checked against the fakes,
 * which count dumps and log every change and map write, and against a datapath that reads the
 * kernel back every time: both must leave the kernel and the maps in the same state.
 */
import test from 'ava';
import fc from 'fast-check';
import { NodeDatapath, type SyncInput, type SyncMemory, type SyncResult } from '../../nodeplugin/node-datapath.js';
import { toXfrmState } from '../../nodeplugin/reconciler/xfrm-diff.js';
import type { XfrmChange } from '../../nodeplugin/xfrm/types.js';
import { ERRNO, type FakePorts, createFakePorts } from '../fakes/index.js';
import { assertHolds, node, ownedView, syncInput } from './datapath-fixture.js';

const T0 = 1_800_000_000_000;
const PEERS = [node(2), node(3), node(4), node(5)];

interface Process {
  readonly ports: FakePorts;
  readonly datapath: NodeDatapath;
  memory: SyncMemory | undefined;
}

function start(ports = createFakePorts({ clock: () => T0 })): Process {
  return { ports, datapath: new NodeDatapath(ports.xfrm, ports.maps, { drainMs: 0 }), memory: undefined };
}

async function sync(p: Process, input: SyncInput, verify: boolean): Promise<SyncResult> {
  const r = await p.datapath.sync({ ...input, verify }, p.memory);
  p.memory = r.memory;
  return r;
}

/** What a sync read and wrote: dumps, xfrm changes, map calls that read back, map entries written. */
async function traced(p: Process, input: SyncInput, verify: boolean): Promise<{ result: SyncResult; dumps: number; changes: XfrmChange[]; verifiedMaps: number; mapWrites: number }> {
  const [dumps, log, mapLog, entries] = [p.ports.xfrm.dumps, p.ports.xfrm.log.length, p.ports.maps.log.length, p.ports.maps.entryWrites];
  const result = await sync(p, input, verify);
  return {
    result,
    dumps: p.ports.xfrm.dumps - dumps,
    changes: p.ports.xfrm.log.slice(log).map((l) => l.change),
    verifiedMaps: p.ports.maps.log.slice(mapLog).filter((l) => l.verify).length,
    mapWrites: p.ports.maps.entryWrites - entries,
  };
}

/** The addresses and pod CIDRs of node-N (datapath-fixture). */
const ownAddresses = (n: number): string[] => [`192.168.0.${n}`, `fd00::${n}`, `10.244.${n}.0/24`, `fd00:10:244:${n}::/64`];

/** Whether a change is about node-N: every address it names is N's or the local node's, and one is N's. */
function about(c: XfrmChange, n: number): boolean {
  const peer = new Set(ownAddresses(n)), local = new Set(ownAddresses(1));
  const named = addressesOf(c);
  return named.every((a) => peer.has(a) || local.has(a)) && named.some((a) => peer.has(a));
}

/** Addresses an xfrm change is about (SA ends, policy selector and template ends). */
function addressesOf(c: XfrmChange): string[] {
  switch (c.op) {
    case 'addState':
    case 'updateState':
      return [c.state.src, c.state.dst];
    case 'deleteState':
      return [c.id.src ?? '', c.id.dst];
    case 'addPolicy':
    case 'updatePolicy':
      return [c.policy.selector.dst, ...c.policy.tmpls.flatMap((t) => [t.src, t.dst])];
    case 'deletePolicy':
      return [c.id.selector.dst];
  }
}

test('a sync that changes nothing, between resyncs: no dump, no kernel write, no map read or write', async (t) => {
  const p = start();
  const input = syncInput(PEERS, [1], T0);
  const first = await traced(p, input, false);
  t.is(first.dumps, 2, 'a datapath that knows nothing reads the kernel, whatever the caller says');
  assertHolds(t, p.ports, first.result.plan);
  for (let i = 0; i < 3; i++) {
    const again = await traced(p, input, false);
    t.deepEqual([again.dumps, again.changes.length, again.verifiedMaps, again.mapWrites], [0, 0, 0, 0], `sync ${i + 1}`);
    t.like(again.result, { advertisedSpi: 1, acceptedSpis: [1] });
    t.deepEqual(again.result.report.errors, []);
  }
  const resync = await traced(p, input, true);
  t.deepEqual([resync.dumps, resync.changes.length, resync.verifiedMaps, resync.mapWrites], [2, 0, 2, 0], 'the periodic resync reads everything back and writes nothing');
});

test('a change to one peer touches only its objects, without a dump', async (t) => {
  const p = start();
  await sync(p, syncInput(PEERS, [1], T0), true);
  const rebooted = PEERS.map((n) => (n.name === 'node-3' ? node(3, { reboot: 1 }) : n));
  const step = await traced(p, syncInput(rebooted, [1], T0), false);
  t.is(step.dumps, 0);
  t.true(step.changes.length > 0);
  for (const c of step.changes) t.true(about(c, 3), `${c.op} is about node-3 only`);
  t.deepEqual(step.changes.map((c) => c.op).sort(), ['addState', 'addState', 'addState', 'addState', 'deleteState', 'deleteState', 'deleteState', 'deleteState'], 'its four SAs are re-keyed, nothing else');
  t.is(step.mapWrites, 0, 'its address and CIDRs did not change, so the maps do not either');
  assertHolds(t, p.ports, step.result.plan);

  const left = await traced(p, syncInput(rebooted.filter((n) => n.name !== 'node-5'), [1], T0), false);
  t.is(left.dumps, 0);
  t.true(left.changes.length > 0 && left.changes.every((c) => about(c, 5) && c.op.startsWith('delete')), 'a peer that left: only its objects are deleted');
  t.is(left.mapWrites, 4, 'its two addresses and two CIDRs leave the maps');
  assertHolds(t, p.ports, left.result.plan);
});

test('between resyncs, a change made behind its back stays unseen; the periodic resync repairs it', async (t) => {
  const p = start();
  const input = syncInput(PEERS, [1], T0);
  const { plan } = await sync(p, input, true);
  const victim = plan.states.find((s) => s.peer === 'node-2' && s.direction === 'out' && s.family === 4);
  if (!victim) throw new Error('fixture: no outbound SA to node-2');
  const x = toXfrmState(victim);
  await p.ports.xfrm.apply([{ op: 'deleteState', id: { family: x.family, dst: x.dst, spi: x.spi, proto: x.proto } }]);
  const blind = await traced(p, input, false);
  t.deepEqual([blind.dumps, blind.changes.length], [0, 0], 'trusts what it installed');
  const resync = await traced(p, input, true);
  t.is(resync.dumps, 2);
  t.deepEqual(resync.changes.map((c) => c.op), ['addState'], 'the resync puts the missing SA back');
  assertHolds(t, p.ports, resync.result.plan);
});

test('after a change the kernel refused, the next sync reads the kernel back', async (t) => {
  const p = start();
  await sync(p, syncInput(PEERS, [1], T0), true);
  p.ports.xfrm.failWhen((c) => c.op === 'addState' && c.state.dst === '192.168.0.6', ERRNO.ENOMEM, { times: 1 });
  const failed = await traced(p, syncInput([...PEERS, node(6)], [1], T0), false);
  t.is(failed.dumps, 0);
  t.true(failed.result.report.errors.length > 0);
  const retry = await traced(p, syncInput([...PEERS, node(6)], [1], T0), false);
  t.is(retry.dumps, 2, 'what the failed batch did is read, not guessed');
  t.deepEqual(retry.result.report.errors, []);
  assertHolds(t, p.ports, retry.result.plan);
  t.is((await traced(p, syncInput([...PEERS, node(6)], [1], T0), false)).dumps, 0, 'and after a clean sync it trusts its tables again');
});

test('the same facts again between resyncs: answered from the last clean sync, until an old SPI\'s grace period runs out', async (t) => {
  const p = start();
  await sync(p, syncInput(PEERS, [1], T0), true);
  // Rotation: every peer moves to SPI 2, so SPI 1 stays for the grace period (60 s), then goes.
  const rotated = syncInput(PEERS.map((n) => node(Number(n.name.slice(5)), { spi: 2 })), [1, 2], T0);
  const moved = await traced(p, rotated, false);
  t.true(moved.changes.length > 0);
  t.is(moved.result.nextExpiry, T0 + 60_000);
  // A sync that changed the kernel decided from the tables before its changes: the next one
  // runs in full, finds nothing to do, and settles.
  const settled = await traced(p, { ...rotated, now: T0 + 10_000 }, false);
  t.not(settled.result.plan, moved.result.plan);
  t.deepEqual(settled.changes, []);
  const again = await traced(p, { ...rotated, now: T0 + 30_000, peers: rotated.peers.map((n) => ({ ...n, spec: { ...n.spec } })) }, false);
  t.is(again.result.plan, settled.result.plan, 'the same facts (as new objects): the settled answer');
  t.deepEqual([again.dumps, again.changes.length, again.mapWrites], [0, 0, 0]);
  t.like(again.result.report, { installed: 0, removed: 0, unchanged: settled.result.plan.states.length + settled.result.plan.policies.length, errors: [] });
  t.is(again.result.nextExpiry, T0 + 60_000);
  const expired = await traced(p, { ...rotated, now: T0 + 60_001 }, false);
  t.not(expired.result.plan, settled.result.plan);
  t.true(expired.changes.length > 0 && expired.changes.every((c) => c.op === 'deleteState' && c.id.spi === 1), 'SPI 1\'s inbound SAs go');
  t.deepEqual(expired.result.acceptedSpis, [2]);
  const peerChanged = await traced(p, { ...rotated, now: T0 + 60_002, peers: rotated.peers.map((n) => (n.name === 'node-3' ? node(3, { spi: 2, reboot: 1 }) : n)) }, false);
  t.true(peerChanged.changes.length > 0 && peerChanged.changes.every((c) => about(c, 3)), 'a changed spec is planned again');
});

// Inputs a node plugin sees over time: peers come, go, reboot and move SPIs; keys rotate;
// the grace period runs out; the same facts come again (as the daemon's events between
// resyncs bring them).
const stepArb = fc.record({
  present: fc.subarray([2, 3, 4, 5, 6], { minLength: 0 }),
  reboot: fc.subarray([2, 3, 4, 5, 6]),
  peerSpi: fc.constantFrom(1, 2),
  keys: fc.constantFrom([1], [1, 2], [2]),
  advance: fc.constantFrom(0, 30_000, 120_000),
  again: fc.boolean(),
});

test('over any sequence of events, syncing without reading back ends exactly where reading back every time does', async (t) => {
  await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 8 }), async (steps) => {
    const trusting = start();
    const reading = start();
    const generation = new Map<number, number>();
    let now = T0;
    let previous: SyncInput | undefined;
    for (const [i, s] of steps.entries()) {
      now += s.advance;
      let input: SyncInput;
      if (s.again && previous) input = { ...previous, now };
      else {
        for (const n of s.reboot) generation.set(n, (generation.get(n) ?? 0) + 1);
        const peers = s.present.map((n) => node(n, { spi: s.peerSpi, reboot: generation.get(n) ?? 0 }));
        input = syncInput(peers, s.keys, now);
      }
      previous = input;
      const a = await sync(trusting, input, i === 0);
      const b = await sync(reading, input, true);
      t.deepEqual(ownedView(trusting.ports), ownedView(reading.ports), `step ${i}: kernel`);
      t.deepEqual([trusting.ports.maps.peerMarks, trusting.ports.maps.peerCidrs], [reading.ports.maps.peerMarks, reading.ports.maps.peerCidrs], `step ${i}: maps`);
      t.deepEqual([a.advertisedSpi, a.acceptedSpis, a.report.errors], [b.advertisedSpi, b.acceptedSpis, b.report.errors], `step ${i}: result`);
    }
    t.is(trusting.ports.xfrm.dumps, 2, 'the trusting datapath read the kernel once, at its first sync');
  }), { numRuns: 100 });
});
