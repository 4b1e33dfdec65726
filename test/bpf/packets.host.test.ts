/**
 * Real packets through filters attached with the adapter, in network namespaces.
 *
 * How marks are observed: nftables rules in the receiving namespace's prerouting hook (which
 * runs after tc ingress) count packets per (address, skb->mark), and ARP is counted in the arp
 * input hook. nftables reads the kernel's skb->mark; nothing of ours is involved in observing.
 *
 * Why a "foreign" filter: a packet's mark is scrubbed when it crosses into another namespace
 * over veth, so every packet would arrive with mark 0 and "left untouched" would be
 * indistinguishable from "cleared". A fixture tc program from "someone else" (prio 1, before
 * ours) puts a known mark on every packet first; it also shows our filter coexisting with a
 * pre-existing clsact qdisc and filter, and that our TC_ACT_UNSPEC lets the chain run on.
 *
 * ESP without ESP support in the kernel: the peer's nftables output hook rewrites the IP
 * protocol / IPv6 next header of UDP to port 5050 into 50, so real ESP-protocol packets (some
 * fragmented, exercising the IPv6 fragment-header walk) leave the peer from real addresses.
 */
import '../helpers/require-root.js';
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DECRYPTED_MARK, ENCRYPT_MARK, inboundStateMark } from '../../core/marks.js';
import { ensureMaps } from '../../nodeplugin/bpf/index.js';
import type { NodeBpf } from '../../nodeplugin/bpf/index.js';
import {
  NFT,
  OBJECT_DIR,
  addForeignFilter,
  addNetns,
  delNetns,
  foreignProgram,
  mountBpffs,
  nftCounters,
  sendUdp,
  sh,
  tcShow,
  vethPair,
} from './helpers.js';
import type { Bpffs } from './helpers.js';
import { eventually } from '../helpers/eventually.js';

/** Packets are counted asynchronously to the send: poll the counters for a while. */
const COUNTED = { timeoutMs: 3000, intervalMs: 50 };

const POD_FOREIGN = 0x1234;
const hex = (n: number) => `0x${n.toString(16)}`;

let fs: Bpffs;
let bpf: NodeBpf;
const namespaces: string[] = [];

test.before(async () => {
  fs = await mountBpffs();
  bpf = await ensureMaps(`${fs.dir}/node-1`, { objectDir: OBJECT_DIR });
});

test.after.always(async () => {
  for (const ns of namespaces) await delNetns(ns);
  (bpf as NodeBpf | undefined)?.close();
  await (fs as Bpffs | undefined)?.cleanup();
});

async function nft(netns: string, script: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kmi-nft-'));
  try {
    await writeFile(join(dir, 'rules.nft'), `${script}\n`);
    await sh([NFT, '-f', join(dir, 'rules.nft')], netns);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test.serial('pod program on a pod veth: peer destinations marked 0xe0, others and ARP keep their mark', async (t) => {
  const node = await addNetns('n');
  const pod = await addNetns('p');
  namespaces.push(node, pod);
  await vethPair(node, 'vethpod1', pod, 'eth0');
  await sh(['ip', 'addr', 'add', '10.244.1.1/24', 'dev', 'vethpod1'], node);
  await sh(['ip', 'addr', 'add', 'fd00:10:244:1::1/64', 'dev', 'vethpod1', 'nodad'], node);
  // Destinations, local to the node namespace so they answer without more topology.
  for (const a of ['10.244.2.5/32', '172.16.9.5/32']) await sh(['ip', 'addr', 'add', a, 'dev', 'lo'], node);
  for (const a of ['fd00:10:244:2::5/128', '2001:db8:9::5/128']) await sh(['ip', 'addr', 'add', a, 'dev', 'lo'], node);
  await sh(['ip', 'addr', 'add', '10.244.1.10/24', 'dev', 'eth0'], pod);
  await sh(['ip', 'addr', 'add', 'fd00:10:244:1::10/64', 'dev', 'eth0', 'nodad'], pod);
  await sh(['ip', 'route', 'add', 'default', 'via', '10.244.1.1'], pod);
  await sh(['ip', '-6', 'route', 'add', 'default', 'via', 'fd00:10:244:1::1'], pod);

  await addForeignFilter(node, 'vethpod1', await foreignProgram(fs.dir, POD_FOREIGN), 1);
  bpf.setPeerCidrs(['10.244.2.0/24', 'fd00:10:244:2::/64']);
  await bpf.attachPodProgram('vethpod1', { netns: node });
  t.deepEqual(await tcShow(node, 'vethpod1'), [
    { pref: 1, handle: '0x1', progName: 'foreign_mark' },
    { pref: 107, handle: '0x6b6d0001', progName: 'kmipsec_pod' },
  ]);

  const rules: [string, string][] = [];
  for (const [name, match] of [['v4hit', 'ip daddr 10.244.2.5'], ['v4miss', 'ip daddr 172.16.9.5'],
    ['v6hit', 'ip6 daddr fd00:10:244:2::5'], ['v6miss', 'ip6 daddr 2001:db8:9::5']] as const) {
    rules.push([`${name}-e0`, `${match} meta mark ${hex(ENCRYPT_MARK)}`]);
    rules.push([`${name}-foreign`, `${match} meta mark ${hex(POD_FOREIGN)}`]);
    rules.push([`${name}-all`, match]);
  }
  await nft(node, [
    'table inet kmitest { chain pre { type filter hook prerouting priority -300; }; }',
    ...rules.map(([c, m]) => `add rule inet kmitest pre ${m} counter comment "${c}"`),
    'table arp kmitest { chain in { type filter hook input priority 0; }; }',
    `add rule arp kmitest in meta mark ${hex(POD_FOREIGN)} counter comment "arp-foreign"`,
    'add rule arp kmitest in counter comment "arp-all"',
  ].join('\n'));

  const before = bpf.readCounters();
  const N = 5;
  await sendUdp(pod, ['10.244.2.5', '172.16.9.5', 'fd00:10:244:2::5', '2001:db8:9::5'].map((dst) => ({ dst, port: 9, count: N })));
  const ok = await eventually(async () => {
    const c = await nftCounters(node);
    return ['v4hit', 'v4miss', 'v6hit', 'v6miss'].every((n) => c.get(`${n}-all`) === N);
  }, COUNTED);
  const c = await nftCounters(node);
  t.true(ok, JSON.stringify(Object.fromEntries(c)));
  for (const fam of ['v4', 'v6']) {
    t.is(c.get(`${fam}hit-e0`), N, `${fam}: every packet to a peer CIDR carries 0xe0`);
    t.is(c.get(`${fam}miss-foreign`), N, `${fam}: packets elsewhere keep the foreign mark`);
    t.is(c.get(`${fam}miss-e0`), 0);
  }
  t.true((c.get('arp-all') ?? 0) >= 1, 'the pod resolved its gateway');
  t.is(c.get('arp-foreign'), c.get('arp-all'), 'ARP keeps the foreign mark');

  const after = bpf.readCounters();
  t.is(after.pod.marked - before.pod.marked, 2 * N);
  // Misses include the pod's neighbour discovery and router solicitations.
  t.true(after.pod.missed - before.pod.missed >= 2 * N);
  t.true(after.pod.nonIp - before.pod.nonIp >= 1);
  t.is(after.pod.malformed - before.pod.malformed, 0);

  // Detached: the same traffic goes through unmarked, the foreign filter still runs.
  t.deepEqual(await bpf.detach('vethpod1', { netns: node }), ['pod']);
  t.deepEqual(await tcShow(node, 'vethpod1'), [{ pref: 1, handle: '0x1', progName: 'foreign_mark' }]);
  await sendUdp(pod, [{ dst: '10.244.2.5', port: 9, count: N }]);
  t.true(await eventually(async () => (await nftCounters(node)).get('v4hit-all') === 2 * N, COUNTED));
  const d = await nftCounters(node);
  t.is(d.get('v4hit-e0'), N, 'no new 0xe0 packets after detach');
  t.is(d.get('v4hit-foreign'), N);
  t.is(bpf.readCounters().pod.marked, after.pod.marked);
});

test.serial('node program on a node interface: ESP from known peers gets their inbound mark, the rest keeps its mark', async (t) => {
  const node = await addNetns('n');
  const peer = await addNetns('q');
  namespaces.push(node, peer);
  await vethPair(node, 'eth1', peer, 'eth0');
  await sh(['ip', 'addr', 'add', '192.168.50.1/24', 'dev', 'eth1'], node);
  await sh(['ip', 'addr', 'add', 'fd00:50::1/64', 'dev', 'eth1', 'nodad'], node);
  for (const a of ['192.168.50.2/24', '192.168.50.3/24']) await sh(['ip', 'addr', 'add', a, 'dev', 'eth0'], peer);
  for (const a of ['fd00:50::2/64', 'fd00:50::3/64']) await sh(['ip', 'addr', 'add', a, 'dev', 'eth0', 'nodad'], peer);

  // The foreign filter stamps DECRYPTED_MARK: what a decrypted packet carries when it comes
  // back through tc ingress, and must keep.
  await addForeignFilter(node, 'eth1', await foreignProgram(fs.dir, DECRYPTED_MARK), 1);
  const m4 = inboundStateMark(1);
  const m6 = inboundStateMark(2);
  bpf.setPeerMarks(new Map([['192.168.50.2', m4], ['fd00:50::2', m6]]));
  await bpf.attachNodeProgram('eth1', { netns: node });

  await nft(peer, [
    'table inet kmitest { chain out { type filter hook output priority 0; }; }',
    'add rule inet kmitest out udp dport 5050 ip protocol set 50',
    'add rule inet kmitest out udp dport 5050 ip6 nexthdr set 50',
  ].join('\n'));
  const rules: [string, string][] = [];
  const cases = [
    ['v4known', 'ip saddr 192.168.50.2 ip protocol esp', m4],
    ['v4unknown', 'ip saddr 192.168.50.3 ip protocol esp', DECRYPTED_MARK],
    ['v4udp', 'ip saddr 192.168.50.2 ip protocol udp', DECRYPTED_MARK],
    // 44: fragments of the large datagrams, whose fragment header says ESP.
    ['v6known', 'ip6 saddr fd00:50::2 ip6 nexthdr { 50, 44 }', m6],
    ['v6unknown', 'ip6 saddr fd00:50::3 ip6 nexthdr { 50, 44 }', DECRYPTED_MARK],
    ['v6udp', 'ip6 saddr fd00:50::2 ip6 nexthdr udp', DECRYPTED_MARK],
  ] as const;
  for (const [name, match, mark] of cases) {
    rules.push([`${name}-want`, `${match} meta mark ${hex(mark)}`]);
    rules.push([`${name}-all`, match]);
  }
  await nft(node, [
    'table inet kmitest { chain pre { type filter hook prerouting priority -300; }; }',
    ...rules.map(([c, m]) => `add rule inet kmitest pre ${m} counter comment "${c}"`),
  ].join('\n'));

  const before = bpf.readCounters();
  const N = 5;
  await sendUdp(peer, [
    { src: '192.168.50.2', dst: '192.168.50.1', port: 5050, count: N },
    { src: '192.168.50.2', dst: '192.168.50.1', port: 5050, count: 2, size: 3000 },
    { src: '192.168.50.3', dst: '192.168.50.1', port: 5050, count: N },
    { src: '192.168.50.2', dst: '192.168.50.1', port: 5051, count: N },
    { src: 'fd00:50::2', dst: 'fd00:50::1', port: 5050, count: N },
    { src: 'fd00:50::2', dst: 'fd00:50::1', port: 5050, count: 2, size: 3000 },
    { src: 'fd00:50::3', dst: 'fd00:50::1', port: 5050, count: N },
    { src: 'fd00:50::2', dst: 'fd00:50::1', port: 5051, count: N },
  ]);
  // 3000-byte datagrams leave as 3 fragments each at MTU 1500.
  const expected: Record<string, number> = { v4known: N + 6, v4unknown: N, v4udp: N, v6known: N + 6, v6unknown: N, v6udp: N };
  const ok = await eventually(async () => {
    const c = await nftCounters(node);
    return Object.entries(expected).every(([n, v]) => c.get(`${n}-all`) === v);
  }, COUNTED);
  const c = await nftCounters(node);
  t.true(ok, JSON.stringify(Object.fromEntries(c)));
  for (const [name, , mark] of cases) t.is(c.get(`${name}-want`), expected[name], `${name}: all packets carry ${hex(mark)}`);

  const after = bpf.readCounters();
  t.is(after.node.espMarked - before.node.espMarked, 2 * (N + 6));
  t.is(after.node.espUnknownPeer - before.node.espUnknownPeer, 2 * N);
  t.is(after.node.espSeen - before.node.espSeen, 2 * (N + 6) + 2 * N);
  t.true(after.node.nonEsp - before.node.nonEsp >= 2 * N);
  t.is(after.node.malformed - before.node.malformed, 0);
});
