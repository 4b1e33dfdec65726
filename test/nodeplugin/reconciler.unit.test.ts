/**
 * Reconciler against the in-memory fakes (test/fakes): every branch of install / maps / drain /
 * remove, with real plans from core/plan.ts. The same behaviour on a real kernel is proven by
 * reconciler.host.test.ts (policies and maps) and test/vm/three-nodes.vm.test.ts (SAs).
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENCRYPT_MARK, MARK_MASK, OWNED_REQID } from '../../core/marks.js';
import { type PeerNode, type Plan, plan } from '../../core/plan.js';
import { DEFAULT_DRAIN_MS, type DatapathMapsPort, Reconciler } from '../../nodeplugin/reconciler/reconciler.js';
import { toXfrmPolicy, toXfrmState } from '../../nodeplugin/reconciler/xfrm-diff.js';
import type { XfrmChange, XfrmPolicy } from '../../nodeplugin/xfrm/types.js';
import { ERRNO, type FakePorts, createFakePorts } from '../fakes/index.js';
import { LOCAL, assertHolds, key, keys, node, ownedView, planView, stateText } from './datapath-fixture.js';

const planFor = (peers: PeerNode[], keySpis: number[], previous?: Plan, inbound = [Math.max(0, ...keySpis)]): Plan =>
  plan({ local: LOCAL, peers, keys: keys(...keySpis), inboundSpis: inbound, peerIds: previous?.peerIds ?? new Map() });

/** node-2, node-3 (dual-stack) and node-4 (IPv4), all on SPI 1: 10 SAs, 9 policies. */
const BASE = planFor([node(2), node(3), node(4)], [1]);
const ops = (changes: readonly { readonly change: XfrmChange }[]) => changes.map((c) => c.change.op);

/**
 * Maps that schedule a marker on the next macrotask right after the maps update. A drain
 * (a timer of at least 1 ms, scheduled later) lets that marker run before the removals; without
 * a drain the removals run in the same microtask chain, before the marker.
 */
function probedMaps(ports: FakePorts): DatapathMapsPort {
  return {
    setPeerMarks: (m) => ports.maps.setPeerMarks(m),
    setPeerCidrs: async (c) => {
      await ports.maps.setPeerCidrs(c);
      setTimeout(() => { ports.timeline.record('next macrotask'); }, 0);
    },
  };
}

/** Fake ports already holding `p` (installed by a reconcile), with log and timeline cleared. */
async function holding(p: Plan, clock?: () => number): Promise<FakePorts> {
  const ports = createFakePorts(clock ? { clock } : {});
  const r = await new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 }).reconcile(p);
  if (r.errors.length > 0) throw new Error(r.errors.join('\n'));
  ports.xfrm.clearLog();
  ports.maps.clearLog();
  ports.timeline.clear();
  return ports;
}

/** Timeline after the probe marker had its chance to run. */
async function settledTimeline(ports: FakePorts): Promise<string[]> {
  await sleep(5);
  return ports.timeline.events.filter((e) => !e.startsWith('xfrm:dump'));
}

const group = (events: readonly string[]) => events.map((e) => e.replace(/^xfrm:(add|update)\w+$/, 'install').replace(/^xfrm:delete\w+$/, 'remove'))
  .filter((e, i, all) => e !== all[i - 1]);

test('install only: an empty kernel gets every SA, then every policy, then the maps; nothing removed, no drain', async (t) => {
  const ports = createFakePorts();
  const report = await new Reconciler(ports.xfrm, probedMaps(ports), { drainMs: 1 }).reconcile(BASE);
  t.deepEqual(report, { installed: 19, removed: 0, unchanged: 0, removalsDeferred: false, errors: [], failures: [], mapsFailed: false, skipped: [] });
  assertHolds(t, ports, BASE);
  t.deepEqual(ops(ports.xfrm.log), [...Array<string>(10).fill('addState'), ...Array<string>(9).fill('addPolicy')]);
  t.deepEqual(group(await settledTimeline(ports)), ['install', 'maps:setPeerMarks', 'maps:setPeerCidrs', 'next macrotask']);
  t.deepEqual(ports.timeline.events.slice(0, 2), ['xfrm:dump states', 'xfrm:dump policies'], 'the kernel is read first');
});

test('idempotent: a second round finds everything unchanged and writes nothing to the kernel or the maps', async (t) => {
  let now = 1_000_000;
  const ports = await holding(BASE, () => now);
  const before = ports.xfrm.states;
  now += 60_000;
  const report = await new Reconciler(ports.xfrm, ports.maps, { drainMs: 1 }).reconcile(BASE);
  t.deepEqual(report, { installed: 0, removed: 0, unchanged: 19, removalsDeferred: false, errors: [], failures: [], mapsFailed: false, skipped: [] });
  t.is(ports.xfrm.log.length, 0, 'no kernel write');
  t.is(ports.maps.entryWrites, 0, 'no map entry written');
  t.deepEqual(ports.xfrm.states.map((s) => s.current.addTime), before.map((s) => s.current.addTime), 'no SA re-added');
});

test('a given snapshot is used instead of dumping again', async (t) => {
  const ports = await holding(BASE);
  const r = new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 });
  const actual = await r.snapshot();
  const dumps = ports.xfrm.dumps;
  t.is((await r.reconcile(BASE, { actual })).unchanged, 19);
  t.is(ports.xfrm.dumps, dumps);
});

test('remove only (node-4 left): maps first, then its policy, then its SAs; no drain when nothing was installed', async (t) => {
  const ports = await holding(BASE);
  const left = planFor([node(2), node(3)], [1], BASE);
  const report = await new Reconciler(ports.xfrm, probedMaps(ports), { drainMs: 1 }).reconcile(left);
  t.deepEqual(report, { installed: 0, removed: 3, unchanged: 16, removalsDeferred: false, errors: [], failures: [], mapsFailed: false, skipped: [] });
  assertHolds(t, ports, left);
  t.deepEqual(ops(ports.xfrm.log), ['deletePolicy', 'deleteState', 'deleteState']);
  t.deepEqual(group(await settledTimeline(ports)), ['maps:setPeerMarks', 'maps:setPeerCidrs', 'remove', 'next macrotask']);
});

/** node-4 leaves, node-5 joins: node-5 takes node-4's freed peer id, so its IPv4 inbound SA replaces node-4's in place. */
const SWAP = planFor([node(2), node(3), node(5)], [1], BASE);

test('install + remove: removals wait for the drain, which starts after the maps update', async (t) => {
  const ports = await holding(BASE);
  const report = await new Reconciler(ports.xfrm, probedMaps(ports), { drainMs: 1 }).reconcile(SWAP);
  t.is(SWAP.peerIds.get('node-5'), BASE.peerIds.get('node-4'));
  t.deepEqual(report, { installed: 7, removed: 2, unchanged: 16, removalsDeferred: false, errors: [], failures: [], mapsFailed: false, skipped: [] });
  assertHolds(t, ports, SWAP);
  t.deepEqual(ops(ports.xfrm.log), ['deleteState', 'addState', 'addState', 'addState', 'addState', 'addPolicy', 'addPolicy', 'deletePolicy', 'deleteState']);
  t.deepEqual(group(await settledTimeline(ports)), ['remove', 'install', 'maps:setPeerMarks', 'maps:setPeerCidrs', 'next macrotask', 'remove'],
    'replace (delete+add) in the install step; removals only after the maps and the drain');
});

test('drainMs 0: no drain even when a round installs and removes', async (t) => {
  const ports = await holding(BASE);
  await new Reconciler(ports.xfrm, probedMaps(ports), { drainMs: 0 }).reconcile(SWAP);
  assertHolds(t, ports, SWAP);
  t.deepEqual(group(await settledTimeline(ports)).slice(-3), ['maps:setPeerCidrs', 'remove', 'next macrotask']);
});

test(`the default drain is ${DEFAULT_DRAIN_MS} ms`, async (t) => {
  const ports = await holding(BASE);
  const start = performance.now();
  await new Reconciler(ports.xfrm, probedMaps(ports)).reconcile(SWAP);
  t.deepEqual(group(await settledTimeline(ports)).slice(-3), ['maps:setPeerCidrs', 'next macrotask', 'remove']);
  // A lower bound only (timers never fire early by more than the clock's rounding).
  t.true(performance.now() - start >= DEFAULT_DRAIN_MS - 1);
});

test('a failed install defers every removal; the next round retries and converges', async (t) => {
  const ports = await holding(BASE);
  ports.xfrm.failWhen((c) => c.op === 'addState' && c.state.dst === 'fd00::5', ERRNO.ENOMEM);
  const r = new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 });
  const failed = await r.reconcile(SWAP);
  t.is(failed.errors.length, 1);
  t.regex(failed.errors[0]!, /^addState: addState state esp spi 0x1 fd00::1 -> fd00::5 .*: ENOMEM$/);
  t.like(failed, { installed: 6, removed: 0, removalsDeferred: true, mapsFailed: false });
  t.deepEqual(failed.failures.map((f) => [f.change.op, f.change.op === 'addState' ? f.change.state.dst : '']), [['addState', 'fd00::5']], 'the refused change itself, for the caller to judge');
  t.false(ports.xfrm.log.some((l) => l.change.op.startsWith('delete') && l.change.op !== 'deleteState'), 'no policy removed');
  t.true(ownedView(ports).policies.some((p) => p.includes('10.244.4.0/24')), "node-4's policy is still there");
  t.true(ownedView(ports).states.some((s) => s.startsWith('192.168.0.1>192.168.0.4 ')), "node-4's outbound SA is still there");
  t.deepEqual(ports.maps.peerCidrs, [...SWAP.peerPodCidrs].sort(), 'the maps follow the plan even so');

  ports.xfrm.clearFaults();
  const retry = await r.reconcile(SWAP);
  t.like(retry, { installed: 1, removed: 2, removalsDeferred: false, errors: [] });
  assertHolds(t, ports, SWAP);
});

test('a failed map update defers removals; what was installed stays; the next round converges', async (t) => {
  const ports = await holding(BASE);
  ports.maps.failWhen('setPeerCidrs', new Error('bpf_map_update_elem: ENOMEM'), { times: 1 });
  const r = new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 });
  const failed = await r.reconcile(SWAP);
  t.deepEqual(failed.errors, ['bpf maps: bpf_map_update_elem: ENOMEM']);
  t.like(failed, { installed: 7, removed: 0, removalsDeferred: true, mapsFailed: true, failures: [] });
  t.deepEqual(ports.maps.peerCidrs, [...BASE.peerPodCidrs].sort(), 'the CIDR map kept its old content');
  t.deepEqual(ownedView(ports).states, [...new Set([...planView(SWAP).states, ...ownedView(ports).states])].sort(), 'every SA of the new plan is in');

  const retry = await r.reconcile(SWAP);
  t.like(retry, { installed: 0, removed: 2, errors: [] });
  assertHolds(t, ports, SWAP);
});

test('a map failure that is not an Error is reported as text', async (t) => {
  const ports = createFakePorts();
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what a careless binding might do
  const maps: DatapathMapsPort = { setPeerMarks: () => Promise.reject('EBUSY'), setPeerCidrs: (c) => ports.maps.setPeerCidrs(c) };
  const report = await new Reconciler(ports.xfrm, maps, { drainMs: 0 }).reconcile(BASE);
  t.deepEqual(report.errors, ['bpf maps: EBUSY']);
});

test('a failed map update with nothing to remove is reported, removals are not "deferred"', async (t) => {
  const ports = createFakePorts();
  ports.maps.failWhen('setPeerMarks');
  const report = await new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 }).reconcile(BASE);
  t.like(report, { installed: 19, removed: 0, removalsDeferred: false, errors: ['bpf maps: setPeerMarks: simulated bpf(2) failure'] });
  t.is(ports.maps.log.length, 1, 'the CIDR map is not written after the marks failed');
});

test('a failed removal is reported; the others go; the next round removes the rest', async (t) => {
  const ports = await holding(BASE);
  ports.xfrm.failWhen((c) => c.op === 'deletePolicy', ERRNO.EPERM, { times: 1 });
  const left = planFor([node(2)], [1], BASE);
  const r = new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 });
  const report = await r.reconcile(left);
  t.like(report, { installed: 0, removed: 8, removalsDeferred: false });
  t.is(report.errors.length, 1);
  t.regex(report.errors[0]!, /^deletePolicy: deletePolicy policy out .*EPERM$/);
  t.like(await r.reconcile(left), { removed: 1, errors: [] });
  assertHolds(t, ports, left);
});

test('a failed dump rejects the round before any write', async (t) => {
  for (const what of ['states', 'policies'] as const) {
    const ports = await holding(BASE);
    ports.xfrm.failDump(what);
    await t.throwsAsync(new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 }).reconcile(SWAP), { message: new RegExp(`dump ${what}`) });
    t.deepEqual([ports.xfrm.log.length, ports.maps.log.length], [0, 0], what);
  }
});

test('a changed SA (node-3 rebooted: new keys) is replaced by delete+add in the install step; the others keep their add time', async (t) => {
  let now = 1_000_000;
  const ports = await holding(BASE, () => now);
  now += 120_000;
  const rebooted = planFor([node(2), node(3, { reboot: 1 }), node(4)], [1], BASE);
  const report = await new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 }).reconcile(rebooted);
  t.like(report, { installed: 8, removed: 0, unchanged: 15, errors: [] });
  t.deepEqual(ops(ports.xfrm.log), ['deleteState', 'addState', 'deleteState', 'addState', 'deleteState', 'addState', 'deleteState', 'addState']);
  assertHolds(t, ports, rebooted);
  const fresh = ports.xfrm.states.filter((s) => s.current.addTime === now / 1000).map((s) => `${s.src}>${s.dst}`).sort();
  t.deepEqual(fresh, ['192.168.0.1>192.168.0.3', '192.168.0.3>192.168.0.1', 'fd00::1>fd00::3', 'fd00::3>fd00::1']);
});

test('a peer moving to a new SPI: its out policies are updated in place, its old outbound SAs go after the drain', async (t) => {
  const ports = await holding(BASE);
  const rotated = planFor([node(2, { spi: 2 }), node(3), node(4)], [1, 2], BASE, [1, 2]);
  const report = await new Reconciler(ports.xfrm, probedMaps(ports), { drainMs: 1 }).reconcile(rotated);
  // New: SPI-2 inbound SAs from all 5 peer addresses, SPI-2 outbound to node-2 (2); updated: node-2's 2 out policies.
  t.like(report, { installed: 9, removed: 2, errors: [] });
  t.deepEqual(ops(ports.xfrm.log).filter((o) => o === 'updatePolicy').length, 2);
  t.deepEqual(ports.xfrm.log.filter((l) => l.change.op === 'deleteState').map((l) => l.change.op === 'deleteState' && `${l.change.id.dst}/${l.change.id.spi}`).sort(), ['192.168.0.2/1', 'fd00::2/1']);
  assertHolds(t, ports, rotated);
  t.deepEqual(group(await settledTimeline(ports)).slice(-3), ['maps:setPeerCidrs', 'next macrotask', 'remove']);
});

test('our objects that differ in any compared field are brought back to the plan', async (t) => {
  const ports = createFakePorts();
  const [inbound, outbound] = [BASE.states.find((s) => s.direction === 'in')!, BASE.states.find((s) => s.direction === 'out')!].map(toXfrmState);
  const [outPolicy, inPolicy] = [BASE.policies.find((p) => p.dir === 'out')!, BASE.policies.find((p) => p.dir === 'in')!].map(toXfrmPolicy);
  ports.xfrm.seedState({ ...inbound!, outputMark: undefined }); // output mark lost
  ports.xfrm.seedState({ ...outbound!, aead: undefined }); // no AEAD (e.g. made by hand with ALG_CRYPT)
  ports.xfrm.seedPolicy({ ...outPolicy!, priority: 7 });
  ports.xfrm.seedPolicy({ ...inPolicy!, tmpls: [...inPolicy!.tmpls, { ...inPolicy!.tmpls[0]!, spi: 9 }] });
  const fwd = toXfrmPolicy(BASE.policies.find((p) => p.dir === 'fwd')!);
  ports.xfrm.seedPolicy({ ...fwd, tmpls: [{ ...fwd.tmpls[0]!, optional: true }] });
  const report = await new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 }).reconcile(BASE);
  t.like(report, { installed: 19 + 2, removed: 0, unchanged: 0, errors: [] });
  t.deepEqual(ops(ports.xfrm.log).filter((o) => o !== 'addState' && o !== 'addPolicy'), ['deleteState', 'deleteState', 'updatePolicy', 'updatePolicy', 'updatePolicy']);
  assertHolds(t, ports, BASE);
  t.true(ports.xfrm.policies.every((p) => (p.priority === 0 && p.tmpls.length === 1 && p.tmpls[0]?.optional !== true)));
});

/** Another IPsec user's objects: Kmesh (reqid 1, unmarked inbound SAs), a hand-made block policy, a socket policy, ... */
function seedForeign(ports: FakePorts): { states: string[]; policies: number } {
  const ourIn = toXfrmState(BASE.states.find((s) => s.direction === 'in' && s.family === 4)!);
  const ourOut = toXfrmPolicy(BASE.policies.find((p) => p.dir === 'out' && p.family === 4)!);
  const kmeshTmpl = { ...ourOut.tmpls[0]!, reqid: 1 };
  // Kmesh's inbound SA: unmarked, so it shadows every marked SA on (192.168.0.1, SPI 1).
  ports.xfrm.seedState({ ...ourIn, src: '192.168.0.9', reqid: 1, mark: undefined, outputMark: undefined });
  // Kmesh's outbound SA to node-3: the same identity (dst, SPI, no mark) as ours.
  ports.xfrm.seedState({ ...toXfrmState(BASE.states.find((s) => s.direction === 'out' && s.family === 4 && s.peer === 'node-3')!), reqid: 1 });
  // Ours but AH: not ESP, so not ours.
  ports.xfrm.seedState({ ...ourIn, dst: '192.168.0.7', proto: 'ah', aead: undefined });
  const foreign: XfrmPolicy[] = [
    { ...ourOut, tmpls: [kmeshTmpl] }, // same identity as our out policy for node-2 (IPv4)
    { ...ourOut, selector: { src: '0.0.0.0/0', dst: '10.99.0.0/16' }, tmpls: [kmeshTmpl] },
    { ...ourOut, selector: { src: '0.0.0.0/0', dst: '10.98.0.0/16' }, action: 'block', tmpls: [] },
    { ...ourOut, selector: { src: '0.0.0.0/0', dst: '10.97.0.0/16' }, mark: { value: ENCRYPT_MARK, mask: 0xff } },
    { ...ourOut, selector: { src: '0.0.0.0/0', dst: '10.96.0.0/16' }, mark: { value: 0x1e0, mask: MARK_MASK } },
    { ...ourOut, selector: { src: '0.0.0.0/0', dst: '10.95.0.0/16' }, mark: undefined },
    { ...ourOut, selector: { src: '0.0.0.0/0', dst: '10.94.0.0/16' }, tmpls: [ourOut.tmpls[0]!, kmeshTmpl] },
  ];
  for (const p of foreign) ports.xfrm.seedPolicy(p);
  ports.xfrm.seedPolicy({ ...ourOut, selector: { src: '0.0.0.0/0', dst: '10.93.0.0/16' } }, { socket: true });
  return { states: ports.xfrm.states.map(stateText).sort(), policies: foreign.length + 1 };
}

test('foreign objects: collisions are reported as EEXIST and never deleted; the rest of the plan goes in', async (t) => {
  const ports = createFakePorts();
  const foreign = seedForeign(ports);
  const r = new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 });
  const report = await r.reconcile(BASE);
  // Kmesh's unmarked SA shadows our three IPv4 inbound SAs (node-2, -3, -4) on SPI 1: the kernel
  // trap; its outbound SA to node-3 and its out policy for node-2 are where ours would go.
  t.deepEqual(report.errors.map((e) => e.replace(/ (state|policy) .*: /, ' … ')), [...Array<string>(4).fill('addState: addState … EEXIST'), 'addPolicy: addPolicy … EEXIST']);
  t.true(report.errors.some((e) => e.includes('spi 0x1 192.168.0.1 -> 192.168.0.3 ')));
  t.like(report, { installed: 14, removed: 0, removalsDeferred: false });
  t.is(ports.xfrm.log.filter((l) => l.change.op.startsWith('delete')).length, 0, 'nothing deleted');

  // Without any key, everything of ours goes and everything foreign stays.
  const nothing = planFor([node(2), node(3), node(4)], [], BASE);
  t.like(await r.reconcile(nothing), { installed: 0, errors: [] });
  t.deepEqual(ports.xfrm.states.map(stateText).sort(), foreign.states);
  t.is(ports.xfrm.policies.length, foreign.policies);
  t.deepEqual(ownedView(ports), { states: [], policies: [] });
  t.deepEqual([ports.maps.peerMarks.size, ports.maps.peerCidrs.length], [0, 0]);
  t.true(ports.xfrm.states.every((s) => s.reqid !== OWNED_REQID || s.proto !== 'esp'));
});

test('skipped peers are passed through to the report', async (t) => {
  const ports = createFakePorts();
  const ipv6Only: PeerNode = { name: 'node-6', spec: { spi: 1, addresses: ['fd00::6'], bootID: node(6).spec.bootID, podCIDRS: ['fd00:10:244:6::/64'] } };
  const noKeyYet = node(7, { spi: 0 });
  const local4 = { ...LOCAL, addresses: ['192.168.0.1'], podCIDRS: ['10.244.1.0/24'] };
  const p = plan({ local: local4, peers: [ipv6Only, noKeyYet], keys: new Map([[1, key(1)]]), inboundSpis: [1], peerIds: new Map() });
  const report = await new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 }).reconcile(p);
  t.deepEqual(report.skipped, [
    { peer: 'node-6', reason: 'no address family in common with this node' },
    { peer: 'node-7', reason: 'peer has no key yet (advertises SPI 0)' },
    { peer: 'node-7', reason: 'pod CIDRs fd00:10:244:7::/64 have no address family in common with this node' },
  ]);
  assertHolds(t, ports, p);
});

test("deleting an SA never deletes another owner's SA that the kernel would find first (unmarked, added later)", async (t) => {
  const ports = await holding(BASE);
  // Kmesh's inbound SAs are unmarked. Added after ours on the same (dst, SPI), the kernel takes
  // it (marked ones do not block an unmarked add), and a delete by our marked id finds it first.
  const ours = toXfrmState(BASE.states.find((s) => s.direction === 'in' && s.family === 4 && s.peer === 'node-4')!);
  const kmesh = { ...ours, src: '192.168.0.9', reqid: 1, mark: undefined, outputMark: undefined };
  ports.xfrm.seedState(kmesh);
  const kmeshText = stateText(kmesh);
  const r = new Reconciler(ports.xfrm, ports.maps, { drainMs: 0 });

  const rebooted = planFor([node(2), node(3), node(4, { reboot: 1 })], [1], BASE);
  const replace = await r.reconcile(rebooted);
  t.true(ports.xfrm.states.map(stateText).includes(kmeshText), 'a replace left it alone');
  t.is(replace.errors.length, 1);
  t.regex(replace.errors[0]!, /^deleteState held back: state esp spi 0x1 192\.168\.0\.4 -> 192\.168\.0\.1 .* shares its \(dst, SPI\) with state esp spi 0x1 192\.168\.0\.9 -> 192\.168\.0\.1 .*reqid 1/);

  const left = planFor([node(2), node(3)], [1], BASE);
  const removal = await r.reconcile(left);
  t.true(ports.xfrm.states.map(stateText).includes(kmeshText), 'a removal left it alone');
  t.like(removal, { removed: 2, removalsDeferred: false });
  t.is(removal.errors.length, 1);
  t.regex(removal.errors[0]!, /^deleteState held back: state esp spi 0x1 192\.168\.0\.4 -> 192\.168\.0\.1 /);
  t.deepEqual(ownedView(ports).states.filter((s) => s.startsWith('192.168.0.4>')), [stateText(ours)], 'ours stays until the other SA goes');

  await ports.xfrm.apply([{ op: 'deleteState', id: kmesh }]); // Kmesh removes its SA
  t.like(await r.reconcile(left), { removed: 1, errors: [] });
  assertHolds(t, ports, left);
});
