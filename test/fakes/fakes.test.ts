/**
 * The fakes against the kernel semantics they claim (fake-xfrm-kernel.ts, fake-maps.ts), so
 * they cannot drift silently. Each table row is a rule the header of the fake cites.
 */
import test from 'ava';
import { DECRYPTED_MARK, ENCRYPT_MARK, MARK_MASK, OWNED_REQID, inboundStateMark } from '../../core/marks.js';
import { XfrmError, XfrmTransportError, type XfrmChange, type XfrmPolicy, type XfrmState } from '../../nodeplugin/xfrm/index.js';
import { CrashSwitch, ERRNO, FakeDatapathMaps, FakeXfrmKernel, SimulatedCrash, Timeline } from './index.js';

const KEY = Uint8Array.from({ length: 36 }, (_, i) => 0xa0 + i);
const KEY_HEX = Buffer.from(KEY).toString('hex');
const full = (value: number) => ({ value, mask: MARK_MASK });

const sa = (src: string, dst: string, spi: number, mark?: number, extra: Partial<XfrmState> = {}): XfrmState => ({
  family: dst.includes(':') ? 6 : 4, src, dst, spi, proto: 'esp', mode: 'tunnel', reqid: OWNED_REQID,
  aead: { name: 'rfc4106(gcm(aes))', key: KEY, icvBits: 128 },
  ...(mark === undefined ? {} : { mark: full(mark) }), ...extra,
});
const pol = (dst: string, extra: Partial<XfrmPolicy> = {}): XfrmPolicy => ({
  dir: 'out', selector: { src: dst.includes(':') ? '::/0' : '0.0.0.0/0', dst }, mark: full(ENCRYPT_MARK), action: 'allow',
  tmpls: [{ family: 4, src: '192.168.0.1', dst: '192.168.0.2', proto: 'esp', mode: 'tunnel', spi: 1, reqid: OWNED_REQID }], ...extra,
});
const M1 = inboundStateMark(1), M2 = inboundStateMark(2), M3 = inboundStateMark(3);
const stateView = (k: FakeXfrmKernel) => k.states.map((s) => `${s.src}>${s.dst}/${s.spi}/${s.mark ? s.mark.value.toString(16) : '-'}`);

async function applyOne(k: FakeXfrmKernel, change: XfrmChange): Promise<string> {
  const [outcome] = await k.apply([change]);
  return outcome?.error ? (outcome.error as XfrmError).code : 'ok';
}

/** One rule: seed, one change, the expected result (`ok` or the errno's code) and the table after it. */
interface Rule<T> { rule: string; seed: T[]; change: XfrmChange; expect: string; after: string[] }

function ruleTests<T>(table: string, rules: readonly Rule<T>[], seed: (k: FakeXfrmKernel, object: T) => void, view: (k: FakeXfrmKernel) => string[]): void {
  for (const row of rules) {
    test(`${table}: ${row.rule}`, async (t) => {
      const k = new FakeXfrmKernel();
      for (const o of row.seed) seed(k, o);
      t.is(await applyOne(k, row.change), row.expect);
      t.deepEqual(view(k), row.after);
    });
  }
}

const stateRules: Rule<XfrmState>[] = [
  { rule: 'add to an empty SAD', seed: [], change: { op: 'addState', state: sa('10.0.0.2', '10.0.0.1', 1, M1) }, expect: 'ok', after: ['10.0.0.2>10.0.0.1/1/100d0'] },
  { rule: 'identity ignores src: same (dst, SPI, mark) from another src is EEXIST', seed: [sa('10.0.0.2', '10.0.0.1', 1, M1)],
    change: { op: 'addState', state: sa('10.0.0.5', '10.0.0.1', 1, M1) }, expect: 'EEXIST', after: ['10.0.0.2>10.0.0.1/1/100d0'] },
  { rule: 'distinct marks on one (dst, SPI) coexist', seed: [sa('10.0.0.2', '10.0.0.1', 1, M1)],
    change: { op: 'addState', state: sa('10.0.0.3', '10.0.0.1', 1, M2) }, expect: 'ok', after: ['10.0.0.3>10.0.0.1/1/200d0', '10.0.0.2>10.0.0.1/1/100d0'] },
  { rule: 'an unmarked SA shadows any mark on its (dst, SPI)', seed: [sa('10.0.0.2', '10.0.0.1', 1)],
    change: { op: 'addState', state: sa('10.0.0.3', '10.0.0.1', 1, M3) }, expect: 'EEXIST', after: ['10.0.0.2>10.0.0.1/1/-'] },
  { rule: 'two unmarked SAs on one (dst, SPI) collide', seed: [sa('10.0.1.2', '10.0.1.1', 2)],
    change: { op: 'addState', state: sa('10.0.1.3', '10.0.1.1', 2) }, expect: 'EEXIST', after: ['10.0.1.2>10.0.1.1/2/-'] },
  { rule: 'an unmarked SA may join a marked one (lookup is asymmetric)', seed: [sa('10.0.0.2', '10.0.0.1', 6, M1)],
    change: { op: 'addState', state: sa('10.0.0.3', '10.0.0.1', 6) }, expect: 'ok', after: ['10.0.0.3>10.0.0.1/6/-', '10.0.0.2>10.0.0.1/6/100d0'] },
  { rule: 'another dst is another SA', seed: [sa('10.0.0.2', '10.0.0.1', 1)],
    change: { op: 'addState', state: sa('10.0.0.1', '10.0.0.2', 1) }, expect: 'ok', after: ['10.0.0.1>10.0.0.2/1/-', '10.0.0.2>10.0.0.1/1/-'] },
  { rule: 'IPv6 dst is compared canonically', seed: [sa('fd00::2', 'fd00::1', 1, M1)],
    change: { op: 'addState', state: sa('fd00::9', 'FD00:0::1', 1, M1) }, expect: 'EEXIST', after: ['fd00::2>fd00::1/1/100d0'] },
  { rule: 'delete of a missing SA is ESRCH', seed: [], change: { op: 'deleteState', id: { family: 4, dst: '10.0.0.1', spi: 0x77, proto: 'esp' } }, expect: 'ESRCH', after: [] },
  { rule: 'delete by (dst, SPI, mark) removes exactly that SA', seed: [sa('10.0.0.2', '10.0.0.1', 1, M1), sa('10.0.0.3', '10.0.0.1', 1, M2)],
    change: { op: 'deleteState', id: { family: 4, dst: '10.0.0.1', spi: 1, proto: 'esp', mark: full(M2) } }, expect: 'ok', after: ['10.0.0.2>10.0.0.1/1/100d0'] },
  { rule: 'delete without a mark does not find a marked SA', seed: [sa('10.0.0.4', '10.0.0.9', 7, M2)],
    change: { op: 'deleteState', id: { family: 4, dst: '10.0.0.9', spi: 7, proto: 'esp' } }, expect: 'ESRCH', after: ['10.0.0.4>10.0.0.9/7/200d0'] },
  { rule: 'delete with another mark is ESRCH', seed: [sa('10.0.0.4', '10.0.0.9', 7, M2)],
    change: { op: 'deleteState', id: { family: 4, dst: '10.0.0.9', spi: 7, proto: 'esp', mark: full(M3) } }, expect: 'ESRCH', after: ['10.0.0.4>10.0.0.9/7/200d0'] },
  { rule: 'delete by a marked id finds a newer unmarked SA first', seed: [sa('10.0.0.2', '10.0.0.1', 6, M1), sa('10.0.0.3', '10.0.0.1', 6)],
    change: { op: 'deleteState', id: { family: 4, dst: '10.0.0.1', spi: 6, proto: 'esp', mark: full(M1) } }, expect: 'ok', after: ['10.0.0.2>10.0.0.1/6/100d0'] },
  { rule: 'update of a missing SA is ESRCH', seed: [], change: { op: 'updateState', state: sa('10.0.0.2', '10.0.0.1', 5) }, expect: 'ESRCH', after: [] },
];

ruleTests('SAD', stateRules, (k, s) => { k.seedState(s); }, stateView);

test('SAD: update of an existing SA keeps its key and takes the output mark', async (t) => {
  const k = new FakeXfrmKernel();
  k.seedState(sa('10.0.0.2', '10.0.0.1', 1, M1));
  const other = new Uint8Array(36).fill(7);
  t.is(await applyOne(k, { op: 'updateState', state: sa('10.0.0.2', '10.0.0.1', 1, M1, { aead: { name: 'rfc4106(gcm(aes))', key: other, icvBits: 128 }, outputMark: full(DECRYPTED_MARK) }) }), 'ok');
  const [s] = k.states;
  t.deepEqual(s?.aead?.key, KEY);
  t.deepEqual(s?.outputMark, full(DECRYPTED_MARK));
});

test('SAD: states read back like XfrmStateInfo, addTime from the clock, copies only', async (t) => {
  let now = 1_700_000_000_500;
  const k = new FakeXfrmKernel({ clock: () => now });
  await k.apply([{ op: 'addState', state: sa('fd00::2', 'fd00:0:0::1', 1, M1, { outputMark: full(DECRYPTED_MARK) }) }]);
  now += 5000;
  await k.apply([{ op: 'addState', state: sa('10.0.0.2', '10.0.0.1', 1) }]);
  const [v4, v6] = await k.dumpStates();
  t.like(v6, {
    family: 6, src: 'fd00::2', dst: 'fd00::1', spi: 1, proto: 'esp', mode: 'tunnel', reqid: OWNED_REQID, mark: full(M1), outputMark: full(DECRYPTED_MARK),
    selector: { src: '::/0', dst: '::/0' }, replayWindow: 0, current: { bytes: 0, packets: 0, addTime: 1_700_000_000, useTime: 0 }, flags: 0,
  });
  t.is(v4?.current.addTime, 1_700_000_005, 'newest first');
  t.is(v4?.mark, undefined, 'an unmarked SA has no mark, as decoded from a real dump');
  v6!.aead!.key.fill(0);
  t.deepEqual((await k.dumpStates())[1]?.aead?.key, KEY, 'a dump is a copy');
});

const policyRules: Rule<XfrmPolicy>[] = [
  { rule: 'add to an empty SPD', seed: [], change: { op: 'addPolicy', policy: pol('10.244.2.0/24') }, expect: 'ok', after: ['out 10.244.2.0/24 e0 spi1'] },
  { rule: 'add of an existing identity is EEXIST', seed: [pol('10.244.2.0/24')],
    change: { op: 'addPolicy', policy: pol('10.244.2.0/24', { priority: 9 }) }, expect: 'EEXIST', after: ['out 10.244.2.0/24 e0 spi1'] },
  { rule: 'another mark is another policy', seed: [pol('10.244.2.0/24')],
    change: { op: 'addPolicy', policy: pol('10.244.2.0/24', { mark: full(0x1e0) }) }, expect: 'ok', after: ['out 10.244.2.0/24 1e0 spi1', 'out 10.244.2.0/24 e0 spi1'] },
  { rule: 'another dir is another policy', seed: [pol('10.244.2.0/24')],
    change: { op: 'addPolicy', policy: pol('10.244.2.0/24', { dir: 'fwd' }) }, expect: 'ok', after: ['fwd 10.244.2.0/24 e0 spi1', 'out 10.244.2.0/24 e0 spi1'] },
  { rule: 'type sub is another policy', seed: [pol('10.244.2.0/24')],
    change: { op: 'addPolicy', policy: pol('10.244.2.0/24', { type: 'sub' }) }, expect: 'ok', after: ['out 10.244.2.0/24 e0 spi1', 'out 10.244.2.0/24 e0 spi1'] },
  { rule: 'a selector with host bits is not its network form', seed: [pol('10.244.1.5/24')],
    change: { op: 'addPolicy', policy: pol('10.244.1.0/24') }, expect: 'ok', after: ['out 10.244.1.0/24 e0 spi1', 'out 10.244.1.5/24 e0 spi1'] },
  { rule: 'update of a missing policy creates it', seed: [], change: { op: 'updatePolicy', policy: pol('fd00:10:244:2::/64') }, expect: 'ok', after: ['out fd00:10:244:2::/64 e0 spi1'] },
  { rule: 'update replaces the template in place', seed: [pol('10.244.2.0/24')],
    change: { op: 'updatePolicy', policy: pol('10.244.2.0/24', { tmpls: [{ ...pol('x').tmpls[0]!, spi: 2 }] }) }, expect: 'ok', after: ['out 10.244.2.0/24 e0 spi2'] },
  { rule: 'delete of a missing policy is ENOENT', seed: [], change: { op: 'deletePolicy', id: pol('10.99.0.0/16') }, expect: 'ENOENT', after: [] },
  { rule: 'delete with another mark is ENOENT', seed: [pol('10.244.2.0/24')],
    change: { op: 'deletePolicy', id: { dir: 'out', selector: pol('10.244.2.0/24').selector, mark: full(0xe1) } }, expect: 'ENOENT', after: ['out 10.244.2.0/24 e0 spi1'] },
  { rule: 'delete by identity', seed: [pol('10.244.2.0/24'), pol('10.244.3.0/24')],
    change: { op: 'deletePolicy', id: { dir: 'out', selector: { src: '0.0.0.0/0', dst: '10.244.2.0/24' }, mark: full(ENCRYPT_MARK) } }, expect: 'ok', after: ['out 10.244.3.0/24 e0 spi1'] },
];

const policyView = (k: FakeXfrmKernel) => k.policies.map((p) => `${p.dir} ${p.selector.dst} ${p.mark?.value.toString(16) ?? '-'} spi${p.tmpls[0]?.spi ?? '-'}`);

ruleTests('SPD', policyRules, (k, p) => { k.seedPolicy(p); }, policyView);

test('SPD: policies read back like XfrmPolicyInfo; an update keeps the index; by index the mark must match', async (t) => {
  const k = new FakeXfrmKernel();
  k.seedPolicy(pol('10.244.2.0/24'));
  const [before] = await k.dumpPolicies();
  t.like(before, { dir: 'out', priority: 0, type: 'main', socket: false, flags: 0, action: 'allow' });
  t.is((before!.index & 7), 1, 'index encodes dir out');
  await k.apply([{ op: 'updatePolicy', policy: pol('10.244.2.0/24', { priority: 5 }) }]);
  const [after] = await k.dumpPolicies();
  t.is(after?.index, before?.index);
  t.is(after?.priority, 5);
  const anySel = { src: '0.0.0.0/0', dst: '0.0.0.0/0' };
  t.is(await applyOne(k, { op: 'deletePolicy', id: { dir: 'out', selector: anySel, index: after!.index } }), 'ENOENT', 'no mark given');
  t.is(await applyOne(k, { op: 'deletePolicy', id: { dir: 'out', selector: anySel, mark: full(ENCRYPT_MARK), index: after!.index } }), 'ok');
  t.deepEqual(k.policies, []);
});

test('SPD: per-socket policies are dumped with socket: true and never match a netlink change', async (t) => {
  const k = new FakeXfrmKernel();
  k.seedPolicy(pol('10.244.2.0/24', { dir: 'in' }), { socket: true });
  t.is(await applyOne(k, { op: 'deletePolicy', id: pol('10.244.2.0/24', { dir: 'in' }) }), 'ENOENT');
  t.is(await applyOne(k, { op: 'addPolicy', policy: pol('10.244.2.0/24', { dir: 'in' }) }), 'ok');
  const dump = await k.dumpPolicies();
  t.deepEqual(dump.map((p) => [p.dir, p.socket]), [['in', false], ['in', true]]);
  t.is(dump[1]!.index & 7, 3, 'socket policies carry dir + XFRM_POLICY_MAX');
});

test('apply: in order, one outcome per change, a refusal does not stop the rest; XfrmErrors carry no key', async (t) => {
  const timeline = new Timeline();
  const k = new FakeXfrmKernel({ timeline });
  k.seedPolicy(pol('10.1.0.0/24'));
  k.seedPolicy(pol('10.1.4.0/24'));
  const outcomes = await k.apply([
    { op: 'addPolicy', policy: pol('10.1.0.0/24') },
    { op: 'deletePolicy', id: pol('10.250.0.0/16') },
    { op: 'updatePolicy', policy: pol('10.1.2.0/24') },
    { op: 'deletePolicy', id: pol('10.1.4.0/24') },
    { op: 'deletePolicy', id: pol('10.1.4.0/24') },
    { op: 'addState', state: sa('10.0.0.2', '10.0.0.1', 1) },
    { op: 'addState', state: sa('10.0.0.3', '10.0.0.1', 1) },
  ]);
  t.deepEqual(outcomes.map((o) => (o.error ? (o.error as XfrmError).code : 'ok')), ['EEXIST', 'ENOENT', 'ok', 'ok', 'ENOENT', 'ok', 'EEXIST']);
  t.deepEqual(outcomes.map((o) => o.change.op), ['addPolicy', 'deletePolicy', 'updatePolicy', 'deletePolicy', 'deletePolicy', 'addState', 'addState']);
  const refused = outcomes[6]!.error as XfrmError;
  t.true(refused instanceof XfrmError);
  t.like(refused, { errno: ERRNO.EEXIST, operation: 'addState' });
  t.regex(refused.message, /addState state esp spi 0x1 10\.0\.0\.3 -> 10\.0\.0\.1 .*288-bit key.*EEXIST/);
  t.false(outcomes.some((o) => o.error?.message.includes(KEY_HEX)), 'no key bytes in any error');
  t.deepEqual(k.log.map((l) => l.errno ?? 0), [ERRNO.EEXIST, ERRNO.ENOENT, 0, 0, ERRNO.ENOENT, 0, ERRNO.EEXIST]);
  t.is(k.writes, 3);
  t.deepEqual(timeline.events, ['xfrm:addPolicy EEXIST', 'xfrm:deletePolicy ENOENT', 'xfrm:updatePolicy', 'xfrm:deletePolicy', 'xfrm:deletePolicy ENOENT', 'xfrm:addState', 'xfrm:addState EEXIST']);
});

test('apply: a change the real codec refuses rejects the whole batch before anything is applied', async (t) => {
  const k = new FakeXfrmKernel();
  await t.throwsAsync(k.apply([{ op: 'addPolicy', policy: pol('10.1.0.0/24') }, { op: 'addState', state: sa('10.0.0.2', 'not-an-ip', 1) }]), { instanceOf: TypeError });
  t.deepEqual([k.policies, k.log], [[], []]);
});

test('faults: failWhen refuses matching changes with the errno, without effect, `times` times', async (t) => {
  const k = new FakeXfrmKernel();
  k.failWhen((c) => c.op === 'addState' && c.state.spi === 2, ERRNO.ENOMEM, { times: 1 });
  const first = await k.apply([{ op: 'addState', state: sa('10.0.0.2', '10.0.0.1', 1) }, { op: 'addState', state: sa('10.0.0.2', '10.0.0.1', 2) }]);
  t.deepEqual(first.map((o) => (o.error as XfrmError | undefined)?.code ?? 'ok'), ['ok', 'ENOMEM']);
  t.deepEqual(stateView(k), ['10.0.0.2>10.0.0.1/1/-']);
  t.is(await applyOne(k, { op: 'addState', state: sa('10.0.0.2', '10.0.0.1', 2) }), 'ok', 'spent after one use');
  k.failWhen(() => true, ERRNO.EPERM);
  t.is(await applyOne(k, { op: 'deleteState', id: sa('10.0.0.2', '10.0.0.1', 2) }), 'EPERM');
  t.is(await applyOne(k, { op: 'deleteState', id: sa('10.0.0.2', '10.0.0.1', 2) }), 'EPERM', 'no `times`: until cleared');
  k.clearFaults();
  t.is(await applyOne(k, { op: 'deleteState', id: sa('10.0.0.2', '10.0.0.1', 2) }), 'ok');
});

test('faults: failDump rejects that dump once (transport error by default), the other dump still works', async (t) => {
  const k = new FakeXfrmKernel();
  k.seedState(sa('10.0.0.2', '10.0.0.1', 1));
  k.failDump('states');
  await t.throwsAsync(k.dumpStates(), { instanceOf: XfrmTransportError });
  t.is((await k.dumpPolicies()).length, 0);
  t.is((await k.dumpStates()).length, 1);
  k.failDump('policies', new Error('boom'), { times: 2 });
  await t.throwsAsync(k.dumpPolicies(), { message: 'boom' });
  await t.throwsAsync(k.dumpPolicies(), { message: 'boom' });
  t.is((await k.dumpPolicies()).length, 0);
  t.is(k.dumps, 6);
});

test('faults: crashAfter(n) applies n changes, rejects, and the process stays dead until restart', async (t) => {
  const crash = new CrashSwitch();
  const k = new FakeXfrmKernel({ crash });
  const maps = new FakeDatapathMaps({ crash });
  const adds = [1, 2, 3].map((spi): XfrmChange => ({ op: 'addState', state: sa('10.0.0.2', '10.0.0.1', spi) }));
  k.crashAfter(2, { inApply: 2 });
  await k.apply([{ op: 'addPolicy', policy: pol('10.1.0.0/24') }]);
  await t.throwsAsync(k.apply(adds), { instanceOf: SimulatedCrash, message: /after 2 of 3/ });
  t.deepEqual(stateView(k), ['10.0.0.2>10.0.0.1/2/-', '10.0.0.2>10.0.0.1/1/-'], 'what was applied stays');
  t.true(crash.crashed);
  await t.throwsAsync(k.dumpStates(), { instanceOf: SimulatedCrash });
  await t.throwsAsync(maps.setPeerCidrs([]), { instanceOf: SimulatedCrash }, 'the other port of the process is dead too');
  crash.restart();
  t.is((await k.dumpStates()).length, 2);
  k.crashAfter(5);
  await t.throwsAsync(k.apply([adds[2]!]), { instanceOf: SimulatedCrash, message: /after all 1/ });
  t.is(k.states.length, 3, 'n beyond the batch: all applied, then killed');
});

test('maps: setters make each map equal to the argument, canonical, and count entry writes', async (t) => {
  const timeline = new Timeline();
  const m = new FakeDatapathMaps({ timeline });
  await m.setPeerMarks(new Map([['192.168.0.2', M1], ['FD00:0::2', M1]]));
  await m.setPeerCidrs(['10.244.2.0/24', 'fd00:10:244:2::/64', '10.244.2.0/24']);
  t.deepEqual(m.peerMarks, new Map([['192.168.0.2', M1], ['fd00::2', M1]]));
  t.deepEqual(m.peerCidrs, ['10.244.2.0/24', 'fd00:10:244:2::/64']);
  t.is(m.entryWrites, 4);
  await m.setPeerMarks(new Map([['192.168.0.2', M1], ['fd00::2', M1]]));
  await m.setPeerCidrs(['fd00:10:244:2::/64', '10.244.2.0/24']);
  t.is(m.entryWrites, 4, 'equal content: no entry written');
  await m.setPeerMarks(new Map([['192.168.0.2', M2], ['192.168.0.3', M1]]));
  t.is(m.entryWrites, 7, 'one changed, one added, one deleted');
  t.deepEqual(timeline.events, ['maps:setPeerMarks', 'maps:setPeerCidrs', 'maps:setPeerMarks', 'maps:setPeerCidrs', 'maps:setPeerMarks']);
});

test('maps: invalid input is refused before any entry changes, like the real encoders', async (t) => {
  const m = new FakeDatapathMaps();
  await m.setPeerCidrs(['10.244.2.0/24']);
  await t.throwsAsync(m.setPeerCidrs(['10.244.3.0/24', '10.244.4.5/24']), { instanceOf: TypeError, message: /not canonical/ });
  await t.throwsAsync(m.setPeerMarks(new Map([['192.168.0.2', M1], ['192.168.0.3', 0xe0]])), { instanceOf: RangeError, message: /not an inbound state mark/ });
  await t.throwsAsync(m.setPeerMarks(new Map([['::ffff:192.168.0.2', M1]])), { instanceOf: TypeError, message: /IPv4-mapped/ });
  t.deepEqual([m.peerCidrs, m.peerMarks], [['10.244.2.0/24'], new Map()]);
  t.deepEqual(m.log.map((l) => l.error === undefined), [true, false, false, false]);
});

test('maps: failWhen and crashOn (before or after the write)', async (t) => {
  const crash = new CrashSwitch();
  const m = new FakeDatapathMaps({ crash });
  m.failWhen('setPeerCidrs', undefined, { times: 1 });
  await t.throwsAsync(m.setPeerCidrs(['10.244.2.0/24']), { message: /simulated bpf/ });
  await m.setPeerCidrs(['10.244.2.0/24']);
  m.crashOn('setPeerMarks');
  await t.throwsAsync(m.setPeerMarks(new Map([['192.168.0.2', M1]])), { instanceOf: SimulatedCrash, message: /before setPeerMarks/ });
  t.deepEqual(m.peerMarks, new Map());
  crash.restart();
  m.crashOn('setPeerMarks', { afterWrite: true });
  await t.throwsAsync(m.setPeerMarks(new Map([['192.168.0.2', M1]])), { instanceOf: SimulatedCrash, message: /after setPeerMarks/ });
  t.deepEqual(m.peerMarks, new Map([['192.168.0.2', M1]]), 'the maps outlive the process');
  crash.restart();
  m.failWhen('setPeerMarks');
  m.clearFaults();
  await m.setPeerMarks(new Map());
  t.is(m.peerMarks.size, 0);
});
