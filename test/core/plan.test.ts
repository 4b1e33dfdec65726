import test from 'ava';
import fc from 'fast-check';
import { DerivedKeys, deriveKey } from '../../core/derive.js';
import { DECRYPTED_MARK, ENCRYPT_MARK, OWNED_REQID, inboundStateMark } from '../../core/marks.js';
import { type LocalNode, type PeerNode, type PlanInput, Planner, assignPeerIds, outboundSpi, plan } from '../../core/plan.js';
import { inboundSpisToKeep } from '../../core/retention.js';
import type { IpsecKey } from '../../core/secret.js';

const key = (spi: number, fill: number): IpsecKey => ({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: Uint8Array.from({ length: 36 }, (_, i) => (i * 7 + fill) & 0xff), icvBits: 128 });
const K1 = key(1, 1);
const K2 = key(2, 2);
const boot = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const node = (n: number, spi = 1, extra: Partial<PeerNode['spec']> = {}): PeerNode => ({
  name: `node-${n}`,
  spec: { spi, addresses: [`192.168.0.${n}`], bootID: boot(n), podCIDRS: [`10.244.${n}.0/24`], ...extra },
});
const local = (n: number, extra: Partial<LocalNode> = {}): LocalNode => ({ name: `node-${n}`, addresses: [`192.168.0.${n}`], bootID: boot(n), podCIDRS: [`10.244.${n}.0/24`], ...extra });
const input = (over: Partial<PlanInput> = {}): PlanInput => ({
  local: local(1), peers: [node(1), node(2), node(3)], keys: new Map([[1, K1]]), inboundSpis: [1], peerIds: new Map(), ...over,
});

test('three nodes: per-peer states, distinct inbound marks, one in/fwd pair per local CIDR', (t) => {
  const p = plan(input());
  t.deepEqual(p.skipped, []);
  const inbound = p.states.filter((s) => s.direction === 'in');
  const outbound = p.states.filter((s) => s.direction === 'out');
  t.is(inbound.length, 2);
  t.is(outbound.length, 2);
  // The kernel key of an inbound SA is (dst, spi, mark): it must be unique.
  t.is(new Set(inbound.map((s) => `${s.dst}/${s.spi}/${s.mark?.value}`)).size, 2);
  t.deepEqual(inbound.map((s) => s.mark?.value), [inboundStateMark(1), inboundStateMark(2)]);
  t.true(inbound.every((s) => s.outputMark?.value === DECRYPTED_MARK && s.reqid === OWNED_REQID));
  t.true(outbound.every((s) => s.mark === undefined && s.spi === 1));
  const inFwd = p.policies.filter((x) => x.dir !== 'out');
  t.deepEqual(inFwd.map((x) => [x.dir, x.selector.dst, x.tmpl.src, x.tmpl.dst, x.mark.value]), [
    ['in', '10.244.1.0/24', '0.0.0.0', '192.168.0.1', DECRYPTED_MARK],
    ['fwd', '10.244.1.0/24', '0.0.0.0', '192.168.0.1', DECRYPTED_MARK],
  ]);
  const out = p.policies.filter((x) => x.dir === 'out');
  t.deepEqual(out.map((x) => [x.selector.dst, x.tmpl.dst, x.tmpl.spi, x.mark.value]), [
    ['10.244.2.0/24', '192.168.0.2', 1, ENCRYPT_MARK],
    ['10.244.3.0/24', '192.168.0.3', 1, ENCRYPT_MARK],
  ]);
  t.deepEqual(p.peerPodCidrs, ['10.244.2.0/24', '10.244.3.0/24']);
  t.deepEqual([...p.peerMarks], [['192.168.0.2', inboundStateMark(1)], ['192.168.0.3', inboundStateMark(2)]]);
});

test('both ends derive the same key for each direction (Kmesh argument order)', (t) => {
  const a = plan(input({ local: local(1) }));
  const b = plan(input({ local: local(2) }));
  const aOut = a.states.find((s) => s.direction === 'out' && s.dst === '192.168.0.2');
  const bIn = b.states.find((s) => s.direction === 'in' && s.src === '192.168.0.1');
  t.truthy(aOut);
  t.deepEqual(aOut?.aead.key, bIn?.aead.key);
  t.deepEqual(aOut?.aead.key, deriveKey(K1.aeadKey, '192.168.0.1', '192.168.0.2', boot(1), boot(2)));
  t.is(aOut?.spi, bIn?.spi);
});

test('wire SPI is the receiver\'s advertised SPI; fallback to our newest older key', (t) => {
  const keys = new Map([[1, K1], [2, K2]]);
  const p = plan(input({ keys, inboundSpis: [1, 2], peers: [node(2, 2), node(3, 1)] }));
  const out = new Map(p.states.filter((s) => s.direction === 'out').map((s) => [s.dst, s.spi]));
  t.is(out.get('192.168.0.2'), 2);
  t.is(out.get('192.168.0.3'), 1);
  t.is(outboundSpi(3, keys), 2, 'peer ahead of us: send with our newest key, which it still accepts');
  t.is(outboundSpi(0, keys), undefined);
  t.is(outboundSpi(1, new Map([[2, K2]])), undefined);
  // inbound: both SPIs from every peer during the rotation
  t.deepEqual(p.states.filter((s) => s.direction === 'in' && s.src === '192.168.0.2').map((s) => s.spi), [1, 2]);
});

test('peers without a usable key are skipped and their CIDRs are not marked', (t) => {
  const p = plan(input({ peers: [node(2, 0), node(3, 1)] }));
  t.deepEqual(p.skipped, [{ peer: 'node-2', reason: 'peer has no key yet (advertises SPI 0)' }]);
  t.deepEqual(p.peerPodCidrs, ['10.244.3.0/24']);
  // it can still reach us once it has a key, so inbound is ready
  t.true(p.states.some((s) => s.direction === 'in' && s.src === '192.168.0.2'));
});

test('no key at all: nothing is planned', (t) => {
  const p = plan(input({ keys: new Map(), inboundSpis: [] }));
  t.deepEqual([p.states.length, p.policies.length, p.peerPodCidrs.length, p.peerMarks.size], [0, 0, 0, 0]);
});

test('a peer boot ID change changes only that peer\'s keys', (t) => {
  const before = plan(input());
  const after = plan(input({ peers: [node(1), node(2, 1, { bootID: boot(99) }), node(3)] }));
  for (const [i, s] of before.states.entries()) {
    const same = Buffer.from(s.aead.key).equals(Buffer.from(after.states[i]?.aead.key ?? []));
    t.is(same, s.peer !== 'node-2', `${s.direction} ${s.peer}`);
  }
});

test('dual stack pairs addresses per family, never across families', (t) => {
  const l = local(1, { addresses: ['192.168.0.1', 'fd00::1'], podCIDRS: ['10.244.1.0/24', 'fd00:10:244:1::/64'] });
  const peer = node(2, 1, { addresses: ['fd00::2', '192.168.0.2'], podCIDRS: ['10.244.2.0/24', 'fd00:10:244:2::/64'] });
  const v4only = node(3, 1, { addresses: ['192.168.0.3'], podCIDRS: ['10.244.3.0/24', 'fd00:10:244:3::/64'] });
  const p = plan(input({ local: l, peers: [peer, v4only] }));
  for (const s of p.states) t.is(s.src.includes(':'), s.dst.includes(':'));
  const out = p.policies.filter((x) => x.dir === 'out').map((x) => `${x.selector.dst}>${x.tmpl.dst}`);
  t.deepEqual(out, ['10.244.2.0/24>192.168.0.2', 'fd00:10:244:2::/64>fd00::2', '10.244.3.0/24>192.168.0.3']);
  t.deepEqual(p.skipped, [{ peer: 'node-3', reason: 'pod CIDRs fd00:10:244:3::/64 have no address family in common with this node' }]);
  t.deepEqual(p.policies.filter((x) => x.dir === 'fwd').map((x) => x.tmpl.src), ['0.0.0.0', '::']);
});

test('peer ids: stable, lowest free for newcomers, freed when a peer leaves', (t) => {
  const first = assignPeerIds(['c', 'a', 'b'], new Map());
  t.deepEqual([...first.ids].sort(), [['a', 1], ['b', 2], ['c', 3]]);
  const second = assignPeerIds(['c', 'd', 'a'], first.ids);
  t.deepEqual([...second.ids].sort(), [['a', 1], ['c', 3], ['d', 2]]);
  const adopted = plan(input({ peerIds: new Map([['node-3', 7]]) }));
  t.deepEqual([...adopted.peerIds], [['node-3', 7], ['node-2', 1]]);
});

test('plan is deterministic and ignores peer order', (t) => {
  const a = plan(input());
  const b = plan(input({ peers: [node(3), node(2), node(1)] }));
  t.deepEqual(a, b);
});

test('retention: old SPI kept while any peer lags, then for the grace period', (t) => {
  const base = { localSpi: 2, accepted: [1, 2], unusedSince: new Map<number, number>(), graceMs: 1000 };
  const lagging = inboundSpisToKeep({ ...base, peerSpis: [2, 1], now: 0 });
  t.deepEqual(lagging.keep, [1, 2]);
  t.is(lagging.nextExpiry, undefined);
  const caughtUp = inboundSpisToKeep({ ...base, peerSpis: [2, 2], now: 5000 });
  t.deepEqual(caughtUp.keep, [1, 2]);
  t.is(caughtUp.nextExpiry, 6000);
  const inGrace = inboundSpisToKeep({ ...base, peerSpis: [2, 3], unusedSince: caughtUp.unusedSince, now: 5999 });
  t.deepEqual(inGrace.keep, [1, 2]);
  const expired = inboundSpisToKeep({ ...base, peerSpis: [2, 2], unusedSince: caughtUp.unusedSince, now: 6000 });
  t.deepEqual(expired.keep, [2]);
  // a peer falling back (e.g. rebooted before loading the key) stops the clock again
  const relapse = inboundSpisToKeep({ ...base, peerSpis: [1], unusedSince: caughtUp.unusedSince, now: 5500 });
  t.deepEqual(relapse.keep, [1, 2]);
  t.deepEqual([...relapse.unusedSince], []);
});

test('retention: without any key (restart while the Secret is missing) every accepted SPI stays', (t) => {
  const r = inboundSpisToKeep({ localSpi: 0, accepted: [3, 2], peerSpis: [3, 3], unusedSince: new Map([[2, 0]]), now: 1e9, graceMs: 1000 });
  t.deepEqual(r.keep, [2, 3]);
  t.is(r.nextExpiry, undefined);
  t.deepEqual([...r.unusedSince], []);
});

// ---- Planner: plan() for a caller that plans again and again -------------------------------

const plannerStep = fc.record({
  present: fc.subarray([2, 3, 4, 5], { minLength: 0 }),
  spis: fc.dictionary(fc.constantFrom('2', '3', '4', '5'), fc.constantFrom(0, 1, 2)),
  reboot: fc.subarray([2, 3, 4, 5]),
  keys: fc.constantFrom([K1], [K1, K2], [K2]),
  inbound: fc.constantFrom([1], [1, 2], [2], []),
  localReboot: fc.boolean(),
});

test('Planner: over any sequence of inputs it answers exactly what plan() answers', (t) => {
  fc.assert(fc.property(fc.array(plannerStep, { minLength: 1, maxLength: 10 }), (steps) => {
    const planner = new Planner();
    const generation = new Map<number, number>();
    let peerIds = new Map<string, number>();
    let localBoot = 1;
    for (const s of steps) {
      for (const n of s.reboot) generation.set(n, (generation.get(n) ?? 0) + 1);
      if (s.localReboot) localBoot++;
      const peers = s.present.map((n) => node(n, s.spis[String(n)] ?? 1, { bootID: boot(n * 100 + (generation.get(n) ?? 0)) }));
      const i: PlanInput = { local: local(1, { bootID: boot(localBoot * 1000) }), peers, keys: new Map(s.keys.map((k) => [k.spi, k])), inboundSpis: s.inbound, peerIds };
      const expected = plan(i);
      t.deepEqual(planner.plan(i), expected);
      peerIds = new Map(expected.peerIds);
    }
  }), { numRuns: 100 });
});

test('Planner: a peer whose spec and id did not change gets the very same objects; a changed one new ones', (t) => {
  const planner = new Planner();
  const first = planner.plan(input());
  const second = planner.plan(input({ peers: [node(1), node(2), node(3, 1, { bootID: boot(33) })], peerIds: first.peerIds }));
  const of = (p: typeof first, peer: string) => [...p.states.filter((s) => s.peer === peer), ...p.policies.filter((x) => x.peer === peer)];
  t.true(of(second, 'node-2').every((o, i) => o === of(first, 'node-2')[i]), 'node-2 unchanged: same objects');
  t.true(of(second, 'node-3').every((o, i) => o !== of(first, 'node-3')[i]), 'node-3 rebooted: new objects');
  const rotated = planner.plan(input({ keys: new Map([[1, K1], [2, K2]]), inboundSpis: [1, 2], peerIds: second.peerIds }));
  t.true(of(rotated, 'node-2').every((o) => !of(second, 'node-2').includes(o)), 'new keys: every peer is planned again');
});

test('DerivedKeys: the same keys as deriveKey, each derived once while it is asked for every round', (t) => {
  const cache = new DerivedKeys();
  const args = [K1.aeadKey, '10.0.0.1', '10.0.0.2', boot(1), boot(2)] as const;
  cache.nextRound();
  const a = cache.derive(...args);
  t.deepEqual(a, deriveKey(...args));
  cache.nextRound();
  t.is(cache.derive(...args), a, 'asked for in the last round: the same key object, not derived again');
  cache.nextRound();
  cache.nextRound();
  const b = cache.derive(...args);
  t.not(b, a, 'not asked for for a whole round: dropped, derived again');
  t.deepEqual(b, a);
  t.not(cache.derive(K2.aeadKey, '10.0.0.1', '10.0.0.2', boot(1), boot(2)), b, 'another PSK object is another key');
});
