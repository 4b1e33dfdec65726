/**
 * NodeDatapath against the in-memory fakes (test/fakes): adoption after a restart, retention
 * and grace expiry, keepState, advertisedSpi, and a process killed at every point of a round
 * followed by a restart that converges. test/vm/three-nodes.vm.test.ts is the same on a real
 * kernel with real ESP.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { OWNED_REQID, inboundStateMark } from '../../core/marks.js';
import { NodeDatapath, type SyncInput, type SyncMemory, type SyncResult } from '../../nodeplugin/node-datapath.js';
import { isOwnedInboundState } from '../../nodeplugin/reconciler/ownership.js';
import { ERRNO, type FakePorts, SimulatedCrash, createFakePorts } from '../fakes/index.js';
import { type KernelView, assertHolds, key, node, ownedView, syncInput } from './datapath-fixture.js';

const T0 = 1_800_000_000_000;
const GRACE = 60_000;
const A = [node(2), node(3), node(4)];

interface Node {
  readonly ports: FakePorts;
  /** The current node-plugin process. */
  datapath: NodeDatapath;
  memory: SyncMemory | undefined;
}

function startNode(): Node {
  const ports = createFakePorts({ clock: () => T0 });
  return { ports, datapath: new NodeDatapath(ports.xfrm, ports.maps, { drainMs: 0 }), memory: undefined };
}

/** One sync by the current process, which keeps the returned memory like the daemon does. */
async function sync(n: Node, input: SyncInput): Promise<SyncResult> {
  const r = await n.datapath.sync(input, n.memory);
  n.memory = r.memory;
  return r;
}

/** The process dies: a new one starts on the same kernel and maps, with no memory. */
function restart(n: Node): void {
  n.ports.crash.restart();
  n.datapath = new NodeDatapath(n.ports.xfrm, n.ports.maps, { drainMs: 0 });
  n.memory = undefined;
}

const inboundSpis = (n: Node) => [...new Set(n.ports.xfrm.states.filter(isOwnedInboundState).map((s) => s.spi))].sort();

/** Sync again with the result's memory: nothing may be written. */
async function assertFixpoint(t: ExecutionContext, n: Node, input: SyncInput, message: string): Promise<void> {
  const [writes, entries] = [n.ports.xfrm.writes, n.ports.maps.entryWrites];
  const again = await sync(n, input);
  t.deepEqual(again.report.errors, [], message);
  t.deepEqual([n.ports.xfrm.writes - writes, n.ports.maps.entryWrites - entries], [0, 0], `${message}: a further sync writes nothing`);
}

test('first sync: installs the plan, advertises the local SPI, remembers peer ids; the next sync writes nothing', async (t) => {
  const n = startNode();
  const input = syncInput(A, [1], T0);
  const r = await n.datapath.sync(input); // no memory argument: a fresh process
  t.deepEqual(r.report.errors, []);
  t.is(r.advertisedSpi, 1);
  t.deepEqual(r.acceptedSpis, [1]);
  t.deepEqual([...r.memory.peerIds], [['node-2', 1], ['node-3', 2], ['node-4', 3]]);
  t.deepEqual(r.memory.peerIds, r.plan.peerIds);
  t.is(r.nextExpiry, undefined);
  t.false(r.plan.peerIds.has('node-1'), 'the local node is not its own peer');
  assertHolds(t, n.ports, r.plan);
  n.memory = r.memory;
  await assertFixpoint(t, n, input, 'same input');
});

test('advertisedSpi is 0 without a key and while the inbound side of the SPI is not in place; other failures do not hold it back', async (t) => {
  const n = startNode();
  const none = await sync(n, syncInput(A, [], T0));
  t.deepEqual([none.advertisedSpi, none.acceptedSpis, none.report.errors], [0, [], []]);
  t.deepEqual(ownedView(n.ports), { states: [], policies: [] });

  n.ports.xfrm.failWhen((c) => c.op === 'addState' && c.state.dst === '192.168.0.1', ERRNO.ENOMEM, { times: 1 });
  const failedInstall = await sync(n, syncInput(A, [1], T0));
  t.is(failedInstall.advertisedSpi, 0, 'an inbound SA for the SPI is missing');

  n.ports.maps.failWhen('setPeerMarks', undefined, { times: 1 });
  const failedMaps = await sync(n, syncInput(A, [1], T0));
  t.is(failedMaps.advertisedSpi, 0, 'ESP from the peers would not get its inbound mark');
  t.like(failedMaps.report, { installed: 1, errors: ['bpf maps: setPeerMarks: simulated bpf(2) failure'] });

  const good = await sync(n, syncInput(A, [1], T0));
  t.deepEqual([good.advertisedSpi, good.report.errors], [1, []]);

  const fresh = startNode();
  fresh.ports.xfrm.failWhen((c) => c.op === 'addPolicy' && c.policy.dir === 'fwd', ERRNO.ENOMEM, { times: 1 });
  const failedFwd = await sync(fresh, syncInput(A, [1], T0));
  t.is(failedFwd.advertisedSpi, 0, 'decrypted packets would be refused by the missing fwd policy');

  n.ports.xfrm.failWhen((c) => c.op === 'deleteState', ERRNO.EPERM, { times: 1 });
  const failedRemoval = await sync(n, syncInput([node(2), node(3)], [1], T0));
  t.true(failedRemoval.report.errors.length > 0);
  t.is(failedRemoval.advertisedSpi, 1, 'a removal that failed does not stop peers from sending with the SPI');
  assertHolds(t, n.ports, (await sync(n, syncInput([node(2), node(3)], [1], T0))).plan);

  n.ports.xfrm.failWhen((c) => c.op === 'addState' && c.state.dst === '192.168.0.5', ERRNO.ENOMEM, { times: 1 });
  const failedOutbound = await sync(n, syncInput([node(2), node(3), node(5)], [1], T0));
  t.true(failedOutbound.report.errors.some((e) => e.includes('192.168.0.5')));
  t.is(failedOutbound.advertisedSpi, 1, "one peer's outbound SA failing never blocks the others");
});

test('rotation: the old SPI stays while a peer sends with it, then for the grace period, then goes', async (t) => {
  const n = startNode();
  await sync(n, syncInput(A, [1], T0));

  const newKey = await sync(n, syncInput(A, [1, 2], T0 + 1000));
  t.deepEqual([newKey.advertisedSpi, newKey.acceptedSpis, newKey.nextExpiry], [2, [1, 2], undefined], 'peers still on 1: no clock yet');
  t.deepEqual(inboundSpis(n), [1, 2]);
  assertHolds(t, n.ports, newKey.plan);

  const caughtUp = A.map((p) => node(Number(p.name.slice(5)), { spi: 2 }));
  const t2 = T0 + 5000;
  const moved = await sync(n, syncInput(caughtUp, [1, 2], t2));
  t.deepEqual([moved.acceptedSpis, moved.nextExpiry, [...moved.memory.unusedSince]], [[1, 2], t2 + GRACE, [[1, t2]]]);
  t.false(n.ports.xfrm.states.some((s) => !isOwnedInboundState(s) && s.spi === 1), 'outbound SAs moved to SPI 2');
  t.deepEqual(inboundSpis(n), [1, 2]);

  const before = await sync(n, syncInput(caughtUp, [1, 2], t2 + GRACE - 1));
  t.deepEqual([before.acceptedSpis, before.nextExpiry], [[1, 2], t2 + GRACE], 'the clock runs from when all peers moved');

  const expired = await sync(n, syncInput(caughtUp, [1, 2], t2 + GRACE));
  t.deepEqual([expired.acceptedSpis, expired.nextExpiry, expired.memory.unusedSince.size], [[2], undefined, 0]);
  t.deepEqual(inboundSpis(n), [2]);
  assertHolds(t, n.ports, expired.plan);
});

test('restart: a fresh process adopts peer ids (holes included) and accepted SPIs from the kernel and writes nothing', async (t) => {
  const n = startNode();
  await sync(n, syncInput(A, [1], T0));
  const rotating = syncInput([node(2), node(4)], [1, 2], T0); // node-3 left (id 2 is a hole); peers still on SPI 1
  const before = await sync(n, rotating);
  t.deepEqual([...before.memory.peerIds], [['node-2', 1], ['node-4', 3]]);

  restart(n);
  const writes = n.ports.xfrm.writes;
  const adopted = await sync(n, rotating);
  t.deepEqual([...adopted.memory.peerIds].sort(), [['node-2', 1], ['node-4', 3]], 'without adoption node-4 would get id 2');
  t.deepEqual(adopted.acceptedSpis, [1, 2]);
  t.deepEqual(adopted.report.errors, []);
  t.is(n.ports.xfrm.writes - writes, 0, 'no kernel write');
  t.is(adopted.report.unchanged, adopted.plan.states.length + adopted.plan.policies.length);
  t.is(adopted.advertisedSpi, 2);
});

test('restart in the grace period: inbound SAs of an accepted SPI whose key is unknown are kept until it expires', async (t) => {
  const n = startNode();
  await sync(n, syncInput(A, [1], T0));
  const caughtUp = A.map((p) => node(Number(p.name.slice(5)), { spi: 2 }));
  await sync(n, syncInput(caughtUp, [1, 2], T0 + 1000));
  const oldInbound = n.ports.xfrm.states.filter((s) => isOwnedInboundState(s) && s.spi === 1).length;
  t.is(oldInbound, 5, 'node-2 and node-3 (IPv4, IPv6), node-4 (IPv4)');
  // Planted: one of our outbound SAs on SPI 1 (not inbound: never kept) and another owner's SA on SPI 1.
  n.ports.xfrm.seedState({ family: 4, src: '192.168.0.1', dst: '192.168.0.8', spi: 1, proto: 'esp', mode: 'tunnel', reqid: OWNED_REQID, aead: { name: 'rfc4106(gcm(aes))', key: key(1).aeadKey, icvBits: 128 } });
  n.ports.xfrm.seedState({ family: 4, src: '192.168.0.9', dst: '192.168.0.1', spi: 1, proto: 'esp', mode: 'tunnel', reqid: 1, mark: { value: inboundStateMark(9), mask: 0xffffffff } });

  restart(n); // the new process only has the current key
  const t1 = T0 + 10_000;
  const r = await sync(n, syncInput(caughtUp, [2], t1));
  t.deepEqual(r.report.errors, []);
  t.deepEqual([r.acceptedSpis, r.advertisedSpi, r.nextExpiry], [[1, 2], 2, t1 + GRACE], 'the grace clock restarts with the process');
  t.false(r.plan.states.some((s) => s.spi === 1), 'no key for SPI 1: the plan cannot list its SAs');
  t.is(n.ports.xfrm.states.filter((s) => isOwnedInboundState(s) && s.spi === 1).length, oldInbound, 'kept by keepState');
  t.false(n.ports.xfrm.states.some((s) => s.dst === '192.168.0.8'), 'our outbound SA on SPI 1 is not kept');
  t.true(n.ports.xfrm.states.some((s) => s.reqid === 1), "the other owner's SA is untouched");
  await assertFixpoint(t, n, syncInput(caughtUp, [2], t1 + 1), 'inside the grace period');

  const expired = await sync(n, syncInput(caughtUp, [2], t1 + GRACE));
  t.deepEqual([expired.acceptedSpis, expired.nextExpiry], [[2], undefined]);
  t.deepEqual(inboundSpis(n), [2]);
  assertHolds(t, n.ports, expired.plan);
});

test('a failed dump rejects the sync before any write', async (t) => {
  const n = startNode();
  n.ports.xfrm.failDump('policies');
  await t.throwsAsync(sync(n, syncInput(A, [1], T0)), { message: /dump policies/ });
  t.deepEqual([n.ports.xfrm.log.length, n.ports.maps.log.length], [0, 0]);
});

// ----- a process killed at every point of one round, then a restart -----

/**
 * The round: node-2 moved to SPI 2 (policy update, new outbound SAs), node-3 rebooted (SAs
 * replaced), node-4 left (removals, its peer id freed), node-5 joined on SPI 2 (installs, takes
 * node-4's id), and node-1 has the new key (new inbound SAs, SPI 1 still accepted).
 */
const B = [node(2, { spi: 2 }), node(3, { reboot: 1 }), node(5, { spi: 2 })];
const inputA = syncInput(A, [1], T0);
const inputB = syncInput(B, [1, 2], T0 + 1000);

interface Reference { readonly view: KernelView; readonly marks: Map<string, number>; readonly cidrs: string[]; readonly installs: number; readonly removals: number }

/** The same round, uninterrupted. */
async function reference(): Promise<Reference> {
  const n = startNode();
  await sync(n, inputA);
  const r = await sync(n, inputB);
  if (r.report.errors.length > 0) throw new Error(r.report.errors.join('\n'));
  return { view: ownedView(n.ports), marks: n.ports.maps.peerMarks, cidrs: n.ports.maps.peerCidrs, installs: r.report.installed, removals: r.report.removed };
}

/** A node that synced A; `kill` arms the crash; the round then dies, and a restarted process syncs B. */
async function killedThenRestarted(t: ExecutionContext, ref: Reference, label: string, kill: (ports: FakePorts) => void): Promise<void> {
  const n = startNode();
  await sync(n, inputA);
  kill(n.ports);
  // A killed process never returns; here the call settles (rejects, or reports the failed map
  // write), but the crash switch stops it from touching anything after the kill point.
  await sync(n, inputB).catch((err: unknown) => {
    if (!(err instanceof SimulatedCrash)) throw err;
  });
  t.true(n.ports.crash.crashed, `${label}: the process was killed`);
  restart(n);
  const r = await sync(n, inputB);
  t.deepEqual(r.report.errors, [], label);
  assertHolds(t, n.ports, r.plan, label);
  t.deepEqual(ownedView(n.ports), ref.view, `${label}: same kernel as an uninterrupted round`);
  t.deepEqual([n.ports.maps.peerMarks, n.ports.maps.peerCidrs], [ref.marks, ref.cidrs], `${label}: same maps`);
  await assertFixpoint(t, n, inputB, label);
}

test('killed after k of the install changes (every k), then restarted: converges exactly', async (t) => {
  const ref = await reference();
  t.true(ref.installs > 20, `${ref.installs} install changes`);
  for (let k = 0; k <= ref.installs; k++) {
    await killedThenRestarted(t, ref, `install k=${k}`, (p) => { p.xfrm.crashAfter(k); });
  }
});

test('killed between install and maps, between the two maps, and after the maps, then restarted: converges exactly', async (t) => {
  const ref = await reference();
  await killedThenRestarted(t, ref, 'before the peer marks', (p) => { p.maps.crashOn('setPeerMarks'); });
  await killedThenRestarted(t, ref, 'between the two maps', (p) => { p.maps.crashOn('setPeerMarks', { afterWrite: true }); });
  await killedThenRestarted(t, ref, 'after the maps', (p) => { p.maps.crashOn('setPeerCidrs', { afterWrite: true }); });
  await killedThenRestarted(t, ref, 'before the first removal', (p) => { p.xfrm.crashAfter(0, { inApply: 2 }); });
});

test('killed after k of the removals (every k), then restarted: converges exactly', async (t) => {
  const ref = await reference();
  t.true(ref.removals >= 4, `${ref.removals} removals`);
  for (let k = 1; k <= ref.removals; k++) {
    await killedThenRestarted(t, ref, `removal k=${k}`, (p) => { p.xfrm.crashAfter(k, { inApply: 2 }); });
  }
});

test('peer leaving while the process is down: the restarted process removes its objects', async (t) => {
  const n = startNode();
  await sync(n, inputA);
  restart(n);
  const r = await sync(n, syncInput([node(2), node(3)], [1], T0 + 1000));
  t.deepEqual(r.report.errors, []);
  t.true(r.report.removed > 0);
  assertHolds(t, n.ports, r.plan);
  t.false(n.ports.xfrm.states.some((s) => s.src === '192.168.0.4' || s.dst === '192.168.0.4'));
});
