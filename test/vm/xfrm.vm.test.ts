/**
 * Real ESP through the xfrm adapter, inside the test VM (test/vm/kernel-vm.sh: a kernel with
 * ESP and AES-GCM). Two namespaces joined by a veth act as two nodes, each with a "pod" address
 * on a dummy interface; every SA and policy is installed through XfrmSocket only (in a worker
 * process inside each namespace). TCP between the pod addresses must work and the SA byte
 * counters must rise. Also: inbound SAs sharing (dst, SPI) need distinct marks.
 */
import { randomBytes } from 'node:crypto';
import anyTest from 'ava';
import type { TestFn } from 'ava';
import { DECRYPTED_MARK, MARK_MASK, OWNED_REQID, inboundStateMark } from '../../core/marks.js';
import { XfrmError } from '../../nodeplugin/xfrm/index.js';
import type { XfrmChange, XfrmStateInfo } from '../../nodeplugin/xfrm/index.js';
import { eventually } from '../helpers/eventually.js';
import { createVethPair, useNetns } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';
import { parseIpXfrmStates } from '../xfrm/iproute.js';
import { RemoteXfrm } from '../xfrm/remote.js';

interface Node {
  ns: Netns;
  x: RemoteXfrm;
}
const test = anyTest as TestFn<{ a: Node; b: Node }>;
const netns = useNetns(anyTest);

const AEAD = 'rfc4106(gcm(aes))';
const FULL = { value: 0, mask: MARK_MASK };
const key = (): Uint8Array => new Uint8Array(randomBytes(36));
/** Compares keys without ever printing them (a failed deepEqual would show the bytes). */
const sameKey = (x: Uint8Array | undefined, y: Uint8Array): boolean => x !== undefined && Buffer.from(x).equals(Buffer.from(y));

/** Addresses per family: outer (node) addresses on the veth, inner (pod) CIDRs on dummies. */
const NET = {
  4: { nodeA: '192.168.77.1', nodeB: '192.168.77.2', nodePrefix: 24, podA: '10.1.0.1', podB: '10.2.0.1', podCidrA: '10.1.0.0/24', podCidrB: '10.2.0.0/24', podPrefix: 24, any: '0.0.0.0' },
  6: { nodeA: 'fd00:77::1', nodeB: 'fd00:77::2', nodePrefix: 64, podA: 'fd00:1::1', podB: 'fd00:2::1', podCidrA: 'fd00:1::/64', podCidrB: 'fd00:2::/64', podPrefix: 64, any: '::' },
} as const;

test.before(async (t) => {
  if (process.env.KMESH_IN_VM !== '1') throw new Error('VM suite: run it with test/vm/run-vm-suites.sh (npm run test:vm)');
  const [nsA, nsB] = await Promise.all([netns.create('nodea'), netns.create('nodeb')]);
  await createVethPair(
    { ns: nsA, name: 'eth-a', addresses: [`${NET[4].nodeA}/24`, `${NET[6].nodeA}/64`] },
    { ns: nsB, name: 'eth-b', addresses: [`${NET[4].nodeB}/24`, `${NET[6].nodeB}/64`] },
  );
  for (const [ns, side, peer] of [[nsA, 'A', 'B'], [nsB, 'B', 'A']] as const) {
    await ns.ip('link', 'add', 'pod0', 'type', 'dummy');
    await ns.ip('link', 'set', 'pod0', 'up');
    for (const f of [4, 6] as const) {
      const n = NET[f];
      await ns.ip('addr', 'add', `${n[`pod${side}`]}/${n.podPrefix}`, 'dev', 'pod0', ...(f === 6 ? ['nodad'] : []));
      await ns.ip(`-${f}`, 'route', 'add', n[`podCidr${peer}`], 'via', n[`node${peer}`], 'src', n[`pod${side}`]);
    }
  }
  const [xA, xB] = await Promise.all([RemoteXfrm.open(nsA), RemoteXfrm.open(nsB)]);
  t.context = { a: { ns: nsA, x: xA }, b: { ns: nsB, x: xB } };

  // One key and SPI per direction and family, shared by the sender's out SA and the receiver's in SA.
  const changes: { a: XfrmChange[]; b: XfrmChange[] } = { a: [], b: [] };
  for (const f of [4, 6] as const) {
    const n = NET[f];
    for (const [from, to, spi] of [['A', 'B', 0x1000 + f], ['B', 'A', 0x2000 + f]] as const) {
      const base = {
        family: f, src: n[`node${from}`], dst: n[`node${to}`], spi, proto: 'esp', mode: 'tunnel',
        reqid: OWNED_REQID, aead: { name: AEAD, key: key(), icvBits: 128 },
      } as const;
      const sender = from === 'A' ? changes.a : changes.b;
      const receiver = to === 'A' ? changes.a : changes.b;
      sender.push({ op: 'addState', state: base });
      receiver.push({ op: 'addState', state: { ...base, outputMark: { ...FULL, value: DECRYPTED_MARK } } });
      sender.push({
        op: 'addPolicy',
        policy: {
          dir: 'out', selector: { src: n[`podCidr${from}`], dst: n[`podCidr${to}`] }, action: 'allow',
          tmpls: [{ family: f, src: n[`node${from}`], dst: n[`node${to}`], proto: 'esp', mode: 'tunnel', spi, reqid: OWNED_REQID }],
        },
      });
      // Decrypted packets carry the output mark; the in policy requires an SA for them, from any source.
      receiver.push({
        op: 'addPolicy',
        policy: {
          dir: 'in', selector: { src: n[`podCidr${from}`], dst: n[`podCidr${to}`] }, mark: { ...FULL, value: DECRYPTED_MARK }, action: 'allow',
          tmpls: [{ family: f, src: n.any, dst: n[`node${to}`], proto: 'esp', mode: 'tunnel', spi: 0, reqid: OWNED_REQID }],
        },
      });
    }
  }
  for (const [node, list] of [[xA, changes.a], [xB, changes.b]] as const) {
    const results = await node.applyBatch(list);
    const failed = results.filter((r) => !r.ok);
    if (failed.length > 0) throw new Error(`SA/policy install failed: ${failed.map((r) => r.error.message).join('; ')}`);
  }
});

function stateOf(states: readonly XfrmStateInfo[], src: string, dst: string): XfrmStateInfo {
  const s = states.find((x) => x.src === src && x.dst === dst);
  if (!s) throw new Error(`no SA ${src} -> ${dst}`);
  return s;
}

async function xfrmErrors(ns: Netns): Promise<string[]> {
  const text = (await ns.exec(['cat', '/proc/net/xfrm_stat'])).stdout;
  return text.split('\n').filter((l) => /\s[1-9]\d*\s*$/.test(l)).map((l) => l.trim());
}

for (const family of [4, 6] as const) {
  test.serial(`IPv${family}: TCP between the pod addresses is carried by the ESP SAs`, async (t) => {
    const { a, b } = t.context;
    const n = NET[family];
    const before = { a: await a.x.dumpStates(), b: await b.x.dumpStates() };
    t.is(before.a.length, 4);
    t.is(stateOf(before.a, n.nodeA, n.nodeB).current.bytes, 0);

    const port = 7000 + family;
    await b.x.tcpEchoServer(n.podB, port);
    const echoed = await a.x.tcpRoundTrip(n.podB, port, 64 * 1024, 60_000);
    t.is(echoed, 64 * 1024);

    // The last segments (FIN/ACK) may still be in flight: wait until both ends agree.
    let after = { a: await a.x.dumpStates(), b: await b.x.dumpStates() };
    await eventually(async () => {
      after = { a: await a.x.dumpStates(), b: await b.x.dumpStates() };
      return stateOf(after.a, n.nodeA, n.nodeB).current.packets === stateOf(after.b, n.nodeA, n.nodeB).current.packets
        && stateOf(after.b, n.nodeB, n.nodeA).current.packets === stateOf(after.a, n.nodeB, n.nodeA).current.packets;
    }, { timeoutMs: 5000, intervalMs: 250 });
    const outA = stateOf(after.a, n.nodeA, n.nodeB);
    const inB = stateOf(after.b, n.nodeA, n.nodeB);
    const outB = stateOf(after.b, n.nodeB, n.nodeA);
    const inA = stateOf(after.a, n.nodeB, n.nodeA);
    for (const [name, s] of [['A out', outA], ['B in', inB], ['B out', outB], ['A in', inA]] as const) {
      t.true(s.current.bytes >= 64 * 1024 && s.current.packets > 0, `${name}: ${s.current.bytes} bytes, ${s.current.packets} packets`);
      t.like(s, { proto: 'esp', mode: 'tunnel', reqid: OWNED_REQID, family });
      t.is(s.aead?.name, AEAD);
      t.is(s.aead?.icvBits, 128);
    }
    t.is(outA.current.packets, inB.current.packets, 'every ESP packet A sent was decrypted by B');
    t.is(outB.current.packets, inA.current.packets, 'every ESP packet B sent was decrypted by A');
    t.deepEqual(inB.outputMark, { value: DECRYPTED_MARK, mask: MARK_MASK });
    t.is(outA.outputMark, undefined);
    t.log(`A->B SA: ${outA.current.bytes} bytes / ${outA.current.packets} packets; B->A SA: ${outB.current.bytes} bytes`);

    // iproute2 sees the same counters
    const ipView = parseIpXfrmStates(await a.ns.ip('-s', 'xfrm', 'state', 'list'));
    const ipOut = ipView.find((s) => s.src === n.nodeA && s.dst === n.nodeB);
    t.is(ipOut?.bytes, outA.current.bytes);
    t.is(ipOut?.packets, outA.current.packets);
    t.is(ipOut?.aead, AEAD);

    t.deepEqual(await xfrmErrors(a.ns), [], 'no xfrm errors on A');
    t.deepEqual(await xfrmErrors(b.ns), [], 'no xfrm errors on B');
  });
}

test.serial('inbound SAs with the same (dst, SPI): distinct marks coexist, unmarked ones collide with EEXIST', async (t) => {
  const ns = await netns.create('marks');
  const x = await RemoteXfrm.open(ns);
  const inbound = (src: string, dst: string, spi: number, peerId?: number) => ({
    family: dst.includes(':') ? 6 : 4, src, dst, spi, proto: 'esp', mode: 'tunnel', reqid: OWNED_REQID,
    aead: { name: AEAD, key: key(), icvBits: 128 }, outputMark: { value: DECRYPTED_MARK, mask: MARK_MASK },
    ...(peerId === undefined ? {} : { mark: { value: inboundStateMark(peerId), mask: MARK_MASK } }),
  } as const);

  // marked: peers 1 and 2 share dst 10.0.0.1 and SPI 1
  const p1 = inbound('10.0.0.2', '10.0.0.1', 1, 1);
  const p2 = inbound('10.0.0.3', '10.0.0.1', 1, 2);
  await x.addState(p1);
  await x.addState(p2);
  const got1 = await x.getState(p1);
  const got2 = await x.getState(p2);
  t.is(got1.src, '10.0.0.2');
  t.is(got2.src, '10.0.0.3');
  t.deepEqual(got2.mark, { value: 0x200d0, mask: MARK_MASK });
  t.true(sameKey(got1.aead?.key, p1.aead.key), 'key read back equals the key written');
  t.is(Object.getPrototypeOf(got1.aead?.key), Uint8Array.prototype, 'decoded keys are plain Uint8Arrays');

  // same for IPv6
  await x.addState(inbound('fd00::2', 'fd00::1', 1, 1));
  await x.addState(inbound('fd00::3', 'fd00::1', 1, 2));

  // unmarked: the second SA for (10.0.1.1, SPI 2) is refused, whatever its source
  await x.addState(inbound('10.0.1.2', '10.0.1.1', 2));
  const dup = await t.throwsAsync(x.addState(inbound('10.0.1.3', '10.0.1.1', 2)), { instanceOf: XfrmError });
  t.is(dup.code, 'EEXIST');
  t.is(dup.errno, 17);
  t.is(dup.operation, 'addState');
  t.regex(dup.object, /spi 0x2 10\.0\.1\.3 -> 10\.0\.1\.1/);
  // ...and an unmarked SA also shadows any marked one with that (dst, SPI)
  const shadow = await t.throwsAsync(x.addState(inbound('10.0.1.4', '10.0.1.1', 2, 3)), { instanceOf: XfrmError });
  t.is(shadow.code, 'EEXIST');

  // XFRM_MSG_UPDSA does not replace the algorithms of an installed SA: the kernel acks but keeps
  // the old key. Rekeying an SA in place takes a delete + add (one batch).
  const rekeyed = { ...p1, aead: { ...p1.aead, key: key() } };
  await x.updateState(rekeyed);
  t.true(sameKey((await x.getState(p1)).aead?.key, p1.aead.key), 'updateState kept the old key');
  const swap = await x.applyBatch([{ op: 'deleteState', id: p1 }, { op: 'addState', state: rekeyed }]);
  t.deepEqual(swap.map((r) => r.ok), [true, true]);
  t.true(sameKey((await x.getState(p1)).aead?.key, rekeyed.aead.key), 'delete + add rekeyed p1');
  t.true(sameKey((await x.getState(p2)).aead?.key, p2.aead.key), 'p2 unchanged');

  const all = await x.dumpStates();
  t.is(all.length, 5);
  t.is(all.filter((s) => s.spi === 1 && s.mark !== undefined).length, 4);

  // delete by (dst, SPI, mark) removes exactly one
  await x.deleteState(p2);
  const left = await x.dumpStates();
  t.is(left.length, 4);
  t.false(left.some((s) => s.src === '10.0.0.3'));
  const again = await t.throwsAsync(x.deleteState(p2), { instanceOf: XfrmError });
  t.true(again.notFound);
  await x.close();
});
