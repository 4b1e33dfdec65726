/**
 * The xfrm adapter against the host kernel, as root, each test in its own network namespace
 * (xfrm state is per namespace, so the host's own IPsec configuration is never touched). The
 * adapter runs in a worker process started inside the namespace (RemoteXfrm), and results are
 * checked against iproute2's view of the same namespace.
 *
 * The host kernel has xfrm policies but no ESP/GCM, so SAs are only exercised for their error
 * path here; test/vm/xfrm.vm.test.ts covers real SAs and traffic.
 */
import '../helpers/require-root.js';
import test from 'ava';
import { OWNED_REQID } from '../../core/marks.js';
import { XfrmError } from '../../nodeplugin/xfrm/index.js';
import type { XfrmPolicy, XfrmPolicyInfo, XfrmState } from '../../nodeplugin/xfrm/index.js';
import { useNetns } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';
import { parseIpXfrmPolicies } from './iproute.js';
import type { IpPolicy } from './iproute.js';
import { RemoteXfrm } from './remote.js';

const netns = useNetns(test);

const FULL = 0xffffffff;

async function setup(options: { maxBatchMessages?: number } = {}): Promise<{ ns: Netns; x: RemoteXfrm }> {
  const ns = await netns.create('xfrm');
  const x = await RemoteXfrm.open(ns, options);
  return { ns, x };
}

async function ipPolicies(ns: Netns): Promise<IpPolicy[]> {
  return parseIpXfrmPolicies(await ns.ip('xfrm', 'policy', 'list'));
}

const outV4: XfrmPolicy = {
  dir: 'out',
  selector: { src: '0.0.0.0/0', dst: '10.244.1.0/24' },
  mark: { value: 0xe0, mask: FULL },
  action: 'allow',
  tmpls: [{ family: 4, src: '192.168.0.1', dst: '192.168.0.2', proto: 'esp', mode: 'tunnel', spi: 1, reqid: OWNED_REQID }],
};
const inV6: XfrmPolicy = {
  dir: 'in',
  selector: { src: '::/0', dst: 'fd00:10:244::/64' },
  mark: { value: 0xd0, mask: FULL },
  action: 'allow',
  tmpls: [{ family: 6, src: '::', dst: 'fd00::1', proto: 'esp', mode: 'tunnel', spi: 0, reqid: OWNED_REQID }],
};
const fwdV6: XfrmPolicy = { ...inV6, dir: 'fwd', priority: 100 };

function ipView(p: XfrmPolicy): IpPolicy {
  return {
    src: p.selector.src,
    dst: p.selector.dst,
    dir: p.dir,
    priority: p.priority ?? 0,
    ...(p.mark ? { mark: p.mark } : {}),
    tmpls: p.tmpls.map((t) => ({ src: t.src, dst: t.dst, proto: t.proto, spi: t.spi, reqid: t.reqid, mode: t.mode })),
  };
}

const byKey = (p: { dir: string; dst: string }) => `${p.dir} ${p.dst}`;
const sortIp = (ps: IpPolicy[]) => [...ps].sort((a, b) => byKey(a).localeCompare(byKey(b)));

test('policies added, updated and deleted over netlink match `ip xfrm policy` (IPv4 and IPv6)', async (t) => {
  const { ns, x } = await setup();
  t.deepEqual(await ipPolicies(ns), [], 'a fresh namespace has no policies');

  await x.addPolicy(outV4);
  await x.addPolicy(inV6);
  await x.addPolicy(fwdV6);
  t.deepEqual(sortIp(await ipPolicies(ns)), sortIp([ipView(outV4), ipView(inV6), ipView(fwdV6)]));

  // update replaces the template in place (same selector/dir/mark key)
  const outV4spi2: XfrmPolicy = { ...outV4, tmpls: [{ ...outV4.tmpls[0]!, spi: 2 }] };
  await x.updatePolicy(outV4spi2);
  const fwdV6prio: XfrmPolicy = { ...fwdV6, priority: 5, tmpls: [{ ...fwdV6.tmpls[0]!, dst: 'fd00::9' }] };
  await x.updatePolicy(fwdV6prio);
  t.deepEqual(sortIp(await ipPolicies(ns)), sortIp([ipView(outV4spi2), ipView(inV6), ipView(fwdV6prio)]));

  // update of a missing policy creates it
  const created: XfrmPolicy = { ...outV4, selector: { src: '0.0.0.0/0', dst: '10.244.9.0/24' } };
  await x.updatePolicy(created);
  t.is((await ipPolicies(ns)).length, 4);

  await x.deletePolicy(outV4spi2);
  await x.deletePolicy({ dir: 'in', selector: inV6.selector, mark: inV6.mark });
  await x.deletePolicy(fwdV6prio);
  await x.deletePolicy(created);
  t.deepEqual(await ipPolicies(ns), []);
});

test('policies stay installed (no time limit in the lifetime)', async (t) => {
  const { ns, x } = await setup();
  await x.addPolicy(outV4);
  await x.addPolicy(inV6);
  // The kernel's policy timer fires about 1 s after an add when a time limit is set.
  await new Promise((r) => setTimeout(r, 2500));
  t.is((await ipPolicies(ns)).length, 2);
  t.is((await x.dumpPolicies()).length, 2);
});

test('kernel refusals are typed XfrmErrors: EEXIST, ENOENT', async (t) => {
  const { x } = await setup();
  await x.addPolicy(outV4);

  const dup = await t.throwsAsync(x.addPolicy(outV4), { instanceOf: XfrmError });
  t.is(dup.errno, 17);
  t.is(dup.code, 'EEXIST');
  t.is(dup.operation, 'addPolicy');
  t.regex(dup.object, /policy out 0\.0\.0\.0\/0 -> 10\.244\.1\.0\/24 mark 0xe0\/0xffffffff/);
  t.regex(dup.message, /EEXIST/);

  // same selector but another mark is another policy
  await t.notThrowsAsync(x.addPolicy({ ...outV4, mark: { value: 0x1e0, mask: FULL } }));

  const missing = { dir: 'in' as const, selector: { src: '0.0.0.0/0', dst: '10.99.0.0/16' } };
  const del = await t.throwsAsync(x.deletePolicy(missing), { instanceOf: XfrmError });
  t.is(del.code, 'ENOENT');
  t.is(del.errno, 2);
  t.is(del.operation, 'deletePolicy');
  const get = await t.throwsAsync(x.getPolicy(missing), { instanceOf: XfrmError });
  t.is(get.code, 'ENOENT');
  t.is(get.operation, 'getPolicy');

  // a mark mismatch is a different key: ENOENT, not a delete of the unmarked-key policy
  const wrongMark = await t.throwsAsync(x.deletePolicy({ dir: 'out', selector: outV4.selector, mark: { value: 0xe1, mask: FULL } }), { instanceOf: XfrmError });
  t.is(wrongMark.code, 'ENOENT');

  t.true(del.notFound);
  t.false(del.alreadyExists);
  t.true(dup.alreadyExists);

  // the kernel reports a missing SA as ESRCH (policies: ENOENT); notFound covers both
  const stateDel = await t.throwsAsync(x.deleteState({ family: 4, dst: '192.168.0.2', spi: 0x77, proto: 'esp' }), { instanceOf: XfrmError });
  t.is(stateDel.code, 'ESRCH');
  t.true(stateDel.notFound);
  t.is(stateDel.operation, 'deleteState');
  const stateGet = await t.throwsAsync(x.getState({ family: 6, dst: 'fd00::2', spi: 0x77, proto: 'esp' }), { instanceOf: XfrmError });
  t.true(stateGet.notFound);
  t.is(stateGet.operation, 'getState');
});

test('getPolicy by selector and by index', async (t) => {
  const { x } = await setup();
  await x.addPolicy(fwdV6);
  const got = await x.getPolicy({ dir: 'fwd', selector: fwdV6.selector, mark: fwdV6.mark });
  t.like(got, { dir: 'fwd', priority: 100, action: 'allow', type: 'main', socket: false });
  t.deepEqual(got.tmpls, fwdV6.tmpls);
  t.true(got.index > 0);
  // by index the selector is ignored, but the mark still has to match
  const byIndex = await x.getPolicy({ dir: 'fwd', selector: { src: '::/0', dst: '::/0' }, mark: fwdV6.mark, index: got.index });
  t.deepEqual(byIndex, got);
  const unmarked = await t.throwsAsync(x.getPolicy({ dir: 'fwd', selector: fwdV6.selector, index: got.index }), { instanceOf: XfrmError });
  t.true(unmarked.notFound);
});

test('batch: more than UIO_MAXIOV (1024) policies in one sendmsg, then per-change results with failures', async (t) => {
  const { ns, x } = await setup();
  const limit = await x.batchLimit();
  const policies: XfrmPolicy[] = [];
  const N = 1200;
  for (let i = 0; i < N; i++) {
    policies.push(i % 2 === 0
      ? { ...outV4, selector: { src: '0.0.0.0/0', dst: `10.${100 + (i >> 8)}.${i & 255}.0/24` } }
      : { ...inV6, selector: { src: '::/0', dst: `fd00:${i.toString(16)}::/64` } });
  }
  const before = await x.stats();
  const results = await x.applyBatch(policies.map((policy) => ({ op: 'addPolicy', policy })));
  const after = await x.stats();
  t.is(results.length, N);
  t.true(results.every((r) => r.ok && r.op === 'addPolicy'));
  t.is(after.sendCalls - before.sendCalls, Math.ceil(N / limit), `batch limit ${limit}`);
  t.is(after.messagesSent - before.messagesSent, N);
  // Successful changes are not acked one by one: one closing ack per datagram.
  t.is(after.datagramsReceived - before.datagramsReceived, Math.ceil(N / limit));
  t.is((await ipPolicies(ns)).length, N);
  t.is((await x.dumpPolicies()).length, N);

  const beforeMixed = await x.stats();
  const mixed = await x.applyBatch([
    { op: 'addPolicy', policy: policies[0]! }, // exists
    { op: 'deletePolicy', id: { dir: 'out', selector: { src: '0.0.0.0/0', dst: '10.250.0.0/16' }, mark: outV4.mark } }, // missing
    { op: 'updatePolicy', policy: { ...policies[2]!, priority: 42 } },
    { op: 'deletePolicy', id: policies[4]! },
    { op: 'deletePolicy', id: policies[4]! }, // just deleted
  ]);
  t.deepEqual(mixed.map((r) => (r.ok ? 'ok' : r.error.code)), ['EEXIST', 'ENOENT', 'ok', 'ok', 'ENOENT']);
  t.deepEqual(mixed.map((r) => r.op), ['addPolicy', 'deletePolicy', 'updatePolicy', 'deletePolicy', 'deletePolicy']);
  t.is((await x.stats()).datagramsReceived - beforeMixed.datagramsReceived, 4, 'an ack for each of the 3 errors and the closing one');
  const failed = mixed[0]!;
  t.true(!failed.ok && failed.error instanceof XfrmError && failed.error.operation === 'addPolicy');
  t.is((await x.getPolicy(policies[2]!)).priority, 42);

  const rest = policies.filter((_, i) => i !== 4);
  const removed = await x.applyBatch(rest.map((id) => ({ op: 'deletePolicy', id })));
  t.true(removed.every((r) => r.ok));
  t.deepEqual(await ipPolicies(ns), []);
});

test('batch: split across sendmsg calls when limited, order and results kept', async (t) => {
  const { ns, x } = await setup({ maxBatchMessages: 16 });
  t.is(await x.batchLimit(), 16);
  const policies = Array.from({ length: 100 }, (_, i): XfrmPolicy => ({ ...outV4, selector: { src: '0.0.0.0/0', dst: `10.1.${i}.0/24` } }));
  // every 10th change collides with its predecessor
  const changes = policies.map((policy, i) => ({ op: 'addPolicy' as const, policy: i % 10 === 9 ? policies[i - 1]! : policy }));
  const before = await x.stats();
  const results = await x.applyBatch(changes);
  const after = await x.stats();
  t.is(after.sendCalls - before.sendCalls, 7); // ceil(100 / 16)
  t.deepEqual(results.map((r) => r.ok), changes.map((_, i) => i % 10 !== 9));
  t.is((await ipPolicies(ns)).length, 90);
});

test('dumpPolicies decodes what `ip xfrm policy add` created (any owner)', async (t) => {
  const { ns, x } = await setup();
  await ns.ip('xfrm', 'policy', 'add', 'src', '10.1.0.0/16', 'dst', '10.2.0.0/16', 'dir', 'out', 'priority', '7',
    'mark', '0x100e0', 'mask', '0xffff00ff',
    'tmpl', 'src', '192.168.0.1', 'dst', '192.168.0.2', 'proto', 'esp', 'spi', '0x1234', 'reqid', '1', 'mode', 'tunnel');
  await ns.ip('xfrm', 'policy', 'add', 'src', 'fd00:1::/48', 'dst', 'fd00:2::5/128', 'proto', 'tcp', 'dport', '443', 'dir', 'in',
    'tmpl', 'src', '::', 'dst', 'fd00::1', 'proto', 'esp', 'reqid', '27501', 'mode', 'tunnel', 'level', 'use');
  await ns.ip('xfrm', 'policy', 'add', 'src', '0.0.0.0/0', 'dst', '10.3.0.0/16', 'dir', 'fwd', 'action', 'block');

  const dumped = await x.dumpPolicies();
  const find = (dir: string): XfrmPolicyInfo => {
    const p = dumped.find((d) => d.dir === dir);
    if (!p) throw new Error(`no ${dir} policy in the dump`);
    return p;
  };
  t.is(dumped.length, 3);
  t.like(find('out'), {
    selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, priority: 7, action: 'allow', type: 'main', socket: false,
    mark: { value: 0x100e0, mask: 0xffff00ff },
  });
  t.deepEqual(find('out').tmpls, [{ family: 4, src: '192.168.0.1', dst: '192.168.0.2', proto: 'esp', mode: 'tunnel', spi: 0x1234, reqid: 1 }]);
  t.deepEqual(find('in').selector, { src: 'fd00:1::/48', dst: 'fd00:2::5/128', proto: 6, dstPort: 443 });
  t.deepEqual(find('in').tmpls, [{ family: 6, src: '::', dst: 'fd00::1', proto: 'esp', mode: 'tunnel', spi: 0, reqid: OWNED_REQID, optional: true }]);
  t.is(find('in').mark, undefined);
  t.like(find('fwd'), { action: 'block', tmpls: [] });

  // A dumped policy is a valid id: delete all three with what the dump returned.
  const results = await x.applyBatch(dumped.map((id) => ({ op: 'deletePolicy', id })));
  t.true(results.every((r) => r.ok));
  t.deepEqual(await ipPolicies(ns), []);
});

test('SA add on this kernel: succeeds, or fails with a typed error that carries no key bytes', async (t) => {
  const { ns, x } = await setup();
  const key = Uint8Array.from({ length: 36 }, (_, i) => 0xc0 ^ i);
  const keyHex = Buffer.from(key).toString('hex');
  const state: XfrmState = {
    family: 4, src: '192.168.0.2', dst: '192.168.0.1', spi: 0x100, proto: 'esp', mode: 'tunnel', reqid: OWNED_REQID,
    aead: { name: 'rfc4106(gcm(aes))', key, icvBits: 128 }, mark: { value: 0x100d0, mask: FULL }, outputMark: { value: 0xd0, mask: FULL },
  };
  try {
    await x.addState(state);
    t.log('this kernel has ESP + GCM: the state was installed');
    t.is((await x.dumpStates()).length, 1);
    await x.deleteState(state);
  } catch (err) {
    t.true(err instanceof XfrmError, String(err));
    const e = err as XfrmError;
    t.log(`host kernel refused the SA as expected: ${e.code}`);
    t.is(e.operation, 'addState');
    t.regex(e.object, /state esp spi 0x100 192\.168\.0\.2 -> 192\.168\.0\.1 tunnel reqid 27501 mark 0x100d0\/0xffffffff/);
    for (const text of [e.message, e.object, JSON.stringify(e), String(e.stack)]) {
      t.false(text.toLowerCase().includes(keyHex.slice(0, 12)), 'key bytes leaked');
    }
  }
  t.deepEqual(await x.dumpStates(), []);
  t.is((await ns.ip('xfrm', 'state', 'list')).trim(), '');
});
