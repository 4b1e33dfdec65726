/**
 * Three nodes with real ESP, programmed only through the kernel layer (plan -> reconciler ->
 * xfrm netlink + tc/BPF adapters), inside the test VM. Topology: a bridge in a "wire"
 * namespace joins node1..3 (192.168.0.N); each node routes to a pod namespace behind a veth
 * (10.244.N.2 in 10.244.N.0/24) and to the other pod CIDRs via the other nodes. tcpdump on
 * every port of the bridge (-i any in the wire namespace; the bridge device itself only sees
 * frames addressed to it) records everything that crosses between nodes.
 *
 * The tests share one cluster and run in order: clear-text control, encryption for all six
 * ordered pod pairs, rotation 1 -> 2 under traffic, a peer reboot, and ownership.
 */
import anyTest from 'ava';
import type { TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import type { IpsecKey } from '../../core/secret.js';
import type { PeerNode } from '../../core/plan.js';
import type { SyncMemory } from '../../nodeplugin/node-datapath.js';
import { runCommand } from '../../nodeplugin/command.js';
import { createVethPair, NetnsWorker, useNetns, type Netns } from '../helpers/netns.js';
import type { NodeWorkerApi, StateSummary } from './node-worker.js';
import type { PodWorkerApi } from './pod-worker.js';
import { setTimeout as sleep } from 'node:timers/promises';

interface Node {
  readonly i: number;
  readonly name: string;
  readonly ip: string;
  readonly podIp: string;
  readonly cidr: string;
  readonly ns: Netns;
  agent: NetnsWorker<NodeWorkerApi>;
  readonly pod: NetnsWorker<PodWorkerApi>;
  bootID: string;
  keys: Map<number, IpsecKey>;
  advertised: number;
  memory?: SyncMemory;
}
interface Ctx { wire: Netns; nodes: Node[]; now: number }
const test = anyTest as TestFn<Ctx>;
const netns = useNetns(anyTest);

const GRACE_MS = 60_000;
const PORT = 5000;
const makeKey = (spi: number): IpsecKey => ({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: new Uint8Array(randomBytes(36)), icvBits: 128 });
const K1 = makeKey(1);
const K2 = makeKey(2);
const uuid = (): string => {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

test.before(async (t) => {
  if (process.env.KMESH_IN_VM !== '1') throw new Error('VM suite: run it with test/vm/run-vm-suites.sh (npm run test:vm)');
  const wire = await netns.create('wire');
  await wire.ip('link', 'add', 'br0', 'type', 'bridge');
  await wire.ip('link', 'set', 'br0', 'up');
  const nodes: Node[] = [];
  for (const i of [1, 2, 3]) {
    const ns = await netns.create(`node${i}`);
    const podNs = await netns.create(`pod${i}`);
    await createVethPair({ ns, name: 'eth0', addresses: [`192.168.0.${i}/24`] }, { ns: wire, name: `w${i}` });
    await wire.ip('link', 'set', `w${i}`, 'master', 'br0');
    await createVethPair({ ns, name: 'vpod', addresses: [`10.244.${i}.1/24`] }, { ns: podNs, name: 'eth0', addresses: [`10.244.${i}.2/24`] });
    await podNs.ip('route', 'add', 'default', 'via', `10.244.${i}.1`);
    await ns.sysctl('net.ipv4.ip_forward', '1');
    for (const j of [1, 2, 3]) if (j !== i) await ns.ip('route', 'add', `10.244.${j}.0/24`, 'via', `192.168.0.${j}`);
    const agent = await NetnsWorker.start<NodeWorkerApi>(ns, new URL('./node-worker.js', import.meta.url), { startTimeoutMs: 120_000 });
    await agent.call('setup', `/sys/fs/bpf/kmesh-ipsec-vmtest/node${i}`, ['vpod'], ['eth0']);
    const pod = await NetnsWorker.start<PodWorkerApi>(podNs, new URL('./pod-worker.js', import.meta.url), { startTimeoutMs: 120_000 });
    await pod.call('echo', `10.244.${i}.2`, PORT);
    nodes.push({ i, name: `node${i}`, ip: `192.168.0.${i}`, podIp: `10.244.${i}.2`, cidr: `10.244.${i}.0/24`, ns, agent, pod, bootID: uuid(), keys: new Map(), advertised: 0 });
  }
  t.context = { wire, nodes, now: Date.now() };
});

test.after.always((t) => {
  rmSync('/sys/fs/bpf/kmesh-ipsec-vmtest', { recursive: true, force: true });
  return Promise.all(t.context.nodes.flatMap((n) => [n.agent.close(), n.pod.close()]));
});

const knis = (nodes: readonly Node[]): PeerNode[] =>
  nodes.map((n) => ({ name: n.name, spec: { spi: n.advertised, addresses: [n.ip], bootID: n.bootID, podCIDRS: [n.cidr] } }));

/** One reconcile of node `n` against what every node currently advertises; then it advertises. */
async function sync(ctx: Ctx, n: Node) {
  const r = await n.agent.call('sync', {
    local: { name: n.name, addresses: [n.ip], bootID: n.bootID, podCIDRS: [n.cidr] },
    peers: knis(ctx.nodes), keys: n.keys, now: ctx.now, graceMs: GRACE_MS,
  }, n.memory);
  if (r.report.errors.length > 0) throw new Error(`${n.name}: ${r.report.errors.join('; ')}`);
  n.memory = r.memory;
  n.advertised = r.advertisedSpi;
  return r;
}

async function xfrmErrors(n: Node): Promise<Record<string, number>> {
  const text = (await n.ns.exec(['cat', '/proc/net/xfrm_stat'])).stdout;
  const nonZero: Record<string, number> = {};
  for (const [k, v] of text.trim().split('\n').map((l) => l.trim().split(/\s+/))) if (k && v !== '0') nonZero[k] = Number(v);
  return nonZero;
}

/** Runs `fn` while tcpdump records every bridge port; returns the raw pcap and tcpdump's text view. */
async function capture<T>(ctx: Ctx, fn: () => Promise<T>): Promise<{ result: T; pcap: Buffer; text: string }> {
  const file = `/tmp/kmesh-vm-${randomBytes(4).toString('hex')}.pcap`;
  const dump = spawn('nsenter', [`--net=${ctx.wire.path}`, '--', 'tcpdump', '-i', 'any', '-nn', '-U', '--immediate-mode', '-s', '0', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('tcpdump did not start')); }, 60_000);
    dump.stderr.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) { clearTimeout(timer); resolve(); } });
  });
  try {
    const result = await fn();
    await sleep(500);
    return { result, ...(await stop()) };
  } catch (err) {
    await stop();
    throw err;
  }
  async function stop(): Promise<{ pcap: Buffer; text: string }> {
    const exited = new Promise((r) => dump.once('exit', r));
    dump.kill('SIGINT');
    await exited;
    const pcap = readFileSync(file);
    const read = await runCommand(['tcpdump', '-r', file, '-nn'], { allowFailure: true });
    if (process.env.KMESH_VM_DEBUG) console.error(`capture: ${pcap.length} bytes; tcpdump -r: ${read.stderr}`);
    const text = read.stdout;
    rmSync(file, { force: true });
    return { pcap, text };
  }
}

const marker = (a: Node, b: Node) => `PLAINTEXT-MARKER-${a.name}-to-${b.name}|`;
const pairs = (nodes: readonly Node[]) => nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => [a, b] as const));
const exchange = (a: Node, b: Node) => a.pod.call('tcpExchange', b.podIp, PORT, marker(a, b).repeat(80), 60_000);

test.serial('control: without a key, pod traffic crosses the wire in clear (the capture can see it)', async (t) => {
  const [a, b] = t.context.nodes as [Node, Node];
  const { pcap, text } = await capture(t.context, () => exchange(a, b));
  t.true(pcap.includes(marker(a, b)), 'the marker is visible in clear');
  t.notRegex(text, /ESP/);
});

test.serial('three nodes: all six ordered pod pairs exchange TCP over ESP, nothing in clear, no xfrm errors', async (t) => {
  const ctx = t.context;
  for (const n of ctx.nodes) n.keys = new Map([[1, K1]]);
  // Round 1 installs inbound states and advertises SPI 1; round 2 sees every peer's SPI.
  for (let round = 0; round < 2; round++) for (const n of ctx.nodes) await sync(ctx, n);
  for (const n of ctx.nodes) {
    const states = await n.agent.call('ownedStates');
    t.is(states.length, 4, `${n.name}: one inbound and one outbound SA per peer`);
    t.is(new Set(states.filter((s) => s.dst === n.ip).map((s) => s.mark)).size, 2, `${n.name}: distinct inbound marks`);
    t.is(await n.agent.call('ownedPolicyCount'), 4, `${n.name}: two out, one in, one fwd`);
  }
  const { result, pcap, text } = await capture(ctx, async () => {
    const bytes: number[] = [];
    for (const [a, b] of pairs(ctx.nodes)) bytes.push(await exchange(a, b));
    return bytes;
  });
  t.is(result.length, 6);
  t.true(result.every((n) => n > 0));
  for (const [a, b] of pairs(ctx.nodes)) {
    t.false(pcap.includes(marker(a, b)), `no clear payload ${a.name} -> ${b.name}`);
    t.regex(text, new RegExp(`IP ${a.ip.replaceAll('.', '\\.')} > ${b.ip.replaceAll('.', '\\.')}: ESP\\(spi=0x00000001,`), `ESP spi 1 ${a.name} -> ${b.name}`);
  }
  t.notRegex(text, /10\.244\.\d+\.2\.5000|\.5000:/, 'no pod port visible on the wire');
  // Link-local ICMPv6 (router solicitations from interfaces coming up) is the kernel talking
  // to the link, not pod traffic; everything else must be ESP.
  const ipLines = text.split('\n').filter((l) => / IP6? /.test(l) && !/ IP6 fe80:/.test(l));
  t.true(ipLines.length > 0);
  t.deepEqual(ipLines.filter((l) => !l.includes(': ESP(')), [], 'every IP packet between nodes is ESP');
  for (const n of ctx.nodes) {
    t.deepEqual(await xfrmErrors(n), {}, `${n.name}: /proc/net/xfrm_stat all zero`);
    const c = await n.agent.call('counters');
    t.true(c.pod.marked >= 2, `${n.name}: pod program marked its packets`);
    t.true(c.node.espMarked >= 2, `${n.name}: node program marked inbound ESP`);
    t.is(c.node.espUnknownPeer, 0);
    const again = await sync(ctx, n);
    t.deepEqual([again.report.installed, again.report.removed], [0, 0], `${n.name}: a second reconcile changes nothing`);
  }
  t.log(`IP packets captured between nodes: ${ipLines.length}, all ESP`);
});

test.serial('rotation 1 -> 2 under continuous traffic loses no packet', async (t) => {
  const ctx = t.context;
  const [n1, n2, n3] = ctx.nodes as [Node, Node, Node];
  const streams = await Promise.all([[n1, n2], [n2, n3], [n3, n1]].map(async ([a, b]) => ({ a: a!, id: await a!.pod.call('startStream', b!.podIp, PORT, 20) })));
  await sleep(1000);
  // Nodes learn the new key one at a time; each one reconciles, advertises, and the others follow.
  for (const learner of [n1, n2, n3]) {
    learner.keys = new Map([[1, K1], [2, K2]]);
    await sync(ctx, learner);
    t.is(learner.advertised, 2, `${learner.name} advertises SPI 2 once its inbound SPI-2 states exist`);
    for (const other of ctx.nodes) if (other !== learner) await sync(ctx, other);
    await sleep(500);
  }
  const midway = await n1.agent.call('ownedStates');
  t.deepEqual([...new Set(midway.filter((s) => s.dst === n1.ip).map((s) => s.spi))].sort(), [1, 2], 'old and new inbound SPIs coexist during the grace period');
  ctx.now += GRACE_MS + 1;
  for (const n of ctx.nodes) await sync(ctx, n);
  const { text } = await capture(ctx, () => sleep(1500));
  const counts = await Promise.all(streams.map((s) => s.a.pod.call('stopStream', s.id)));
  t.log(`streams (sent/received): ${counts.map((c) => `${c.received}/${c.sent}`).join(', ')}`);
  for (const c of counts) {
    t.true(c.sent > 50, 'traffic really flowed');
    t.is(c.received, c.sent, 'no datagram lost across the rotation');
  }
  t.regex(text, /ESP\(spi=0x00000002,/);
  t.notRegex(text, /ESP\(spi=0x00000001,/, 'after the grace period nothing uses SPI 1');
  for (const n of ctx.nodes) {
    const spis = new Set((await n.agent.call('ownedStates')).map((s) => s.spi));
    t.deepEqual([...spis], [2], `${n.name}: SPI 1 states removed after the grace period`);
    t.deepEqual(await xfrmErrors(n), {}, `${n.name}: no xfrm errors`);
  }
});

test.serial('a peer boot ID change rekeys that peer only', async (t) => {
  const ctx = t.context;
  const [n1, n2, n3] = ctx.nodes as [Node, Node, Node];
  const before = await n1.agent.call('ownedStates');
  const stream = await n1.pod.call('startStream', n2.podIp, PORT, 20);
  n3.bootID = uuid(); // node3 "rebooted"
  for (const n of [n3, n1, n2]) await sync(ctx, n);
  const { received, sent } = await n1.pod.call('stopStream', stream);
  t.is(received, sent, 'node1 <-> node2 traffic untouched by node3\'s rekey');
  const after = await n1.agent.call('ownedStates');
  const key = (s: StateSummary) => `${s.src}>${s.dst}/${s.spi}`;
  const old = new Map(before.map((s) => [key(s), s]));
  for (const s of after) {
    const prev = old.get(key(s));
    t.truthy(prev, `${key(s)} existed before`);
    const withN3 = s.src === n3.ip || s.dst === n3.ip;
    t.is(prev?.keyFingerprint !== s.keyFingerprint, withN3, `${key(s)}: rekeyed only if it involves node3`);
  }
  for (const [a, b] of [[n1, n3], [n3, n1], [n2, n3], [n3, n2]] as const) t.true((await exchange(a, b)) > 0, `${a.name} -> ${b.name} after the rekey`);
  for (const n of ctx.nodes) t.deepEqual(await xfrmErrors(n), {}, `${n.name}: no xfrm errors`);
});

test.serial('a restarted node plugin adopts the kernel state: no change, no loss', async (t) => {
  const ctx = t.context;
  const [n1, n2] = ctx.nodes as [Node, Node];
  const before = await n1.agent.call('ownedStates');
  const stream = await n2.pod.call('startStream', n1.podIp, PORT, 20);
  await n1.agent.close(); // the plugin dies; the kernel keeps its SAs, policies, maps and programs
  n1.agent = await NetnsWorker.start<NodeWorkerApi>(n1.ns, new URL('./node-worker.js', import.meta.url), { startTimeoutMs: 120_000 });
  await n1.agent.call('setup', '/sys/fs/bpf/kmesh-ipsec-vmtest/node1', ['vpod'], ['eth0']);
  delete n1.memory; // nothing carried over: peer ids and accepted SPIs come back from the kernel
  const r = await sync(ctx, n1);
  t.deepEqual([r.report.installed, r.report.removed], [0, 0], 'converged without touching a working SA');
  t.is(r.report.unchanged, 8);
  const { sent, received } = await n2.pod.call('stopStream', stream);
  t.is(received, sent, 'no datagram lost across the restart');
  const after = await n1.agent.call('ownedStates');
  const view = (xs: StateSummary[]) => xs.map((s) => `${s.src}>${s.dst}/${s.spi}/${s.mark ?? '-'}/${s.keyFingerprint}/${s.addTime}`).sort();
  t.deepEqual(view(after), view(before), 'same SAs, same keys, same install times');
});

test.serial('objects we do not own survive every reconcile', async (t) => {
  const ctx = t.context;
  const n1 = ctx.nodes[0]!;
  const foreignKey = `0x${randomBytes(36).toString('hex')}`;
  await n1.ns.exec(['ip', 'xfrm', 'state', 'add', 'src', '192.168.0.9', 'dst', n1.ip, 'proto', 'esp', 'spi', '0x1234', 'reqid', '1', 'mode', 'tunnel', 'aead', 'rfc4106(gcm(aes))', foreignKey, '128']);
  await n1.ns.exec(['ip', 'xfrm', 'policy', 'add', 'src', '0.0.0.0/0', 'dst', '10.99.0.0/16', 'dir', 'out', 'mark', '0xe0', 'mask', '0xffffffff', 'tmpl', 'src', n1.ip, 'dst', '192.168.0.9', 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel']);
  await sync(ctx, n1);
  ctx.now += GRACE_MS;
  await sync(ctx, n1);
  t.regex((await n1.ns.exec(['ip', 'xfrm', 'state', 'list', 'spi', '0x1234'])).stdout, /reqid 1 /);
  t.regex((await n1.ns.exec(['ip', 'xfrm', 'policy', 'list', 'dst', '10.99.0.0/16'])).stdout, /reqid 1 /);
});
