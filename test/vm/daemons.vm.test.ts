/**
 * The whole node side with real ESP, in the test VM: `kmesh-ipsec node` daemons (one per node
 * namespace, each with its own pin directory, Secret volume, boot ID and API relay), the real
 * webhook in front of the Kubernetes API test double, keys created with
 * `kmesh-ipsec secret create` and projected into the volumes the way the kubelet does it.
 * Checked from outside: tcpdump on the wire bridge, UDP streams counting every datagram.
 *
 * The tests share one cluster and run in order: first key, six pod pairs on the wire, a
 * rotation under traffic, a rolling restart of every daemon under traffic, and the attacks on
 * "never in clear" with four nodes.
 */
import anyTest, { type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { type NodeHandle, type PodHandle, CLI, PluginCluster } from '../cluster/plugin-cluster.js';
import { captureWire, packetsBetween } from '../cluster/wire-capture.js';
import { ownedStates } from '../cluster/kernel-view.js';
import { runCommand } from '../../nodeplugin/command.js';
import { NetnsWorker, useNetns } from '../helpers/netns.js';
import type { PodWorkerApi } from './pod-worker.js';

interface Ctx { cluster: PluginCluster; workers: Map<PodHandle, NetnsWorker<PodWorkerApi>> }
const test = anyTest as TestFn<Ctx>;
const netns = useNetns(anyTest);
const PORT = 5000;

test.before(async (t) => {
  if (process.env.KMESH_IN_VM !== '1') throw new Error('VM suite: run it with test/vm/run-vm-suites.sh (npm run test:vm)');
  const cluster = await PluginCluster.start(netns, { nodes: 3, daemon: 'cli', plainPod: true, graceSeconds: 8, resyncSeconds: 120, jitterSeconds: 1 });
  t.context = { cluster, workers: new Map() };
  for (const n of cluster.nodes) await startPods(t.context, n);
  for (const n of cluster.nodes) await cluster.startDaemon(n);
});
test.after.always(async (t) => {
  await Promise.all([...t.context.workers.values()].map((w) => w.close()));
  await t.context.cluster.stop();
});

async function startPods(ctx: Ctx, n: NodeHandle): Promise<void> {
  for (const p of n.pods) {
    const w = await NetnsWorker.start<PodWorkerApi>(p.ns, new URL('./pod-worker.js', import.meta.url), { startTimeoutMs: 120_000 });
    await w.call('echo', p.ip, PORT);
    ctx.workers.set(p, w);
  }
}

const managed = (n: NodeHandle): PodHandle => n.pods.find((p) => p.namespace === 'demo')!;
const worker = (ctx: Ctx, p: PodHandle): NetnsWorker<PodWorkerApi> => ctx.workers.get(p)!;
const marker = (a: NodeHandle, b: NodeHandle) => `PLAINTEXT-MARKER-${a.name}-to-${b.name}|`;
const pairs = (nodes: readonly NodeHandle[]) => nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => [a, b] as const));
const exchange = (ctx: Ctx, a: NodeHandle, b: NodeHandle, timeoutMs = 60_000) =>
  worker(ctx, managed(a)).call('tcpExchange', managed(b).ip, PORT, marker(a, b).repeat(60), timeoutMs);

async function withLogs<T>(t: { context: Ctx; log: (...v: unknown[]) => void }, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    for (const n of t.context.cluster.nodes) t.log(`--- ${n.name}\n${t.context.cluster.logOf(n).split('\n').slice(-20).join('\n')}`);
    throw err;
  }
}

/** `kmesh-ipsec secret create` as an operator runs it, through the API and the webhook. */
async function secretCreate(cluster: PluginCluster): Promise<number> {
  const r = await runCommand([process.execPath, CLI, '--kubeconfig', cluster.double.kubeconfigPath('cluster-admin'), 'secret', 'create', '-o', 'json'], { allowFailure: true, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`secret create failed (${r.code}): ${r.stderr}${r.stdout}`);
  return (JSON.parse(r.stdout) as { nextSpi: number }).nextSpi;
}

/** The kubelet's part: the stored Secret's ipSec into the nodes' volumes, one node at a time. */
async function project(cluster: PluginCluster, nodes: readonly NodeHandle[] = cluster.nodes, gapMs = 1500): Promise<void> {
  const secret = cluster.double.store.get('secrets', 'kmesh-system', 'kmesh-ipsec') as { data?: { ipSec?: string } } | undefined;
  const text = Buffer.from(secret?.data?.ipSec ?? '', 'base64').toString('utf8');
  for (const n of nodes) {
    await cluster.setSecret(undefined, [n], text);
    await sleep(gapMs);
  }
}

async function xfrmErrors(n: NodeHandle): Promise<Record<string, number>> {
  const text = (await n.ns.exec(['cat', '/proc/net/xfrm_stat'])).stdout;
  const nonZero: Record<string, number> = {};
  for (const [k, v] of text.trim().split('\n').map((l) => l.trim().split(/\s+/))) if (k && v !== '0') nonZero[k] = Number(v);
  return nonZero;
}

test.serial('kmesh-ipsec secret create goes through the webhook; every daemon installs it and advertises SPI 1', async (t) => {
  const { cluster } = t.context;
  t.is(await secretCreate(cluster), 1);
  await project(cluster);
  const statuses = await withLogs(t, () => cluster.waitConverged(1, 180_000));
  for (const s of statuses) t.deepEqual(s.conditions.map((c) => `${c.type}=${c.status}`), ['Ready=True', 'KeyInSync=True']);
});

test.serial('all six ordered pod pairs are ESP on the wire, nothing in clear; the unlabelled namespace stays in clear', async (t) => {
  const ctx = t.context;
  const { cluster } = ctx;
  const nodeIps = cluster.nodes.map((n) => n.ip);
  const { result, pcap, text } = await captureWire(cluster.wire, async () => {
    const bytes: number[] = [];
    for (const [a, b] of pairs(cluster.nodes)) bytes.push(await exchange(ctx, a, b));
    return bytes;
  });
  t.true(result.every((b) => b > 0));
  for (const [a, b] of pairs(cluster.nodes)) {
    t.false(pcap.includes(marker(a, b)), `no clear payload ${a.name} -> ${b.name}`);
    t.regex(text, new RegExp(`IP ${a.ip.replaceAll('.', '\\.')} > ${b.ip.replaceAll('.', '\\.')}: ESP\\(spi=0x00000001,`));
  }
  const between = packetsBetween(text, nodeIps);
  t.true(between.length > 0);
  t.deepEqual(between.filter((l) => !l.includes(': ESP(')), [], 'every packet between nodes is ESP');
  for (const n of cluster.nodes) t.deepEqual(await xfrmErrors(n), {}, `${n.name}: /proc/net/xfrm_stat all zero`);
  t.log(`packets between nodes: ${between.length}, all ESP`);

  const n1 = cluster.nodes[0]!;
  const n2 = cluster.nodes[1]!;
  const plain = n1.pods.find((p) => p.namespace === 'plain')!;
  const plainWorker = await NetnsWorker.start<PodWorkerApi>(plain.ns, new URL('./pod-worker.js', import.meta.url), { startTimeoutMs: 120_000 });
  ctx.workers.set(plain, plainWorker);
  const clear = 'UNLABELLED-NAMESPACE-TRAFFIC|';
  const cap = await captureWire(cluster.wire, () => plainWorker.call('tcpExchange', managed(n2).ip, PORT, clear.repeat(40), 60_000));
  t.true(cap.pcap.includes(clear), 'traffic of a pod outside Kmesh-managed namespaces is not encrypted (as in Kmesh)');
});

test.serial('rotation with kmesh-ipsec secret create under continuous traffic: zero datagrams lost, SPI 2 on the wire', async (t) => {
  const ctx = t.context;
  const { cluster } = ctx;
  const [n1, n2, n3] = cluster.nodes as [NodeHandle, NodeHandle, NodeHandle];
  const streams = await Promise.all([[n1, n2], [n2, n3], [n3, n1], [n2, n1]].map(async ([a, b]) => ({ a: a!, id: await worker(ctx, managed(a!)).call('startStream', managed(b!).ip, PORT, 20) })));
  await sleep(1000);
  t.is(await secretCreate(cluster), 2);
  await project(cluster);
  await withLogs(t, () => cluster.waitConverged(2, 180_000));
  await withLogs(t, () => cluster.waitFor(async () => {
    for (const n of cluster.nodes) if ((await ownedStates(cluster, n)).some((s) => s.spi === 1)) return false;
    return true;
  }, 120_000, 'SPI 1 states removed after the grace period'));
  const { text } = await captureWire(cluster.wire, () => sleep(1500));
  const counts = await Promise.all(streams.map((s) => worker(ctx, managed(s.a)).call('stopStream', s.id)));
  t.log(`streams (received/sent): ${counts.map((c) => `${c.received}/${c.sent}`).join(', ')}`);
  for (const c of counts) {
    t.true(c.sent > 100, 'traffic really flowed');
    t.is(c.received, c.sent, 'no datagram lost across the rotation');
  }
  t.regex(text, /ESP\(spi=0x00000002,/);
  t.notRegex(text, /ESP\(spi=0x00000001,/);
  for (const n of cluster.nodes) t.deepEqual(await xfrmErrors(n), {}, `${n.name}: no xfrm errors`);
});

test.serial('a rolling restart of every daemon in turn under continuous traffic loses nothing and changes nothing', async (t) => {
  const ctx = t.context;
  const { cluster } = ctx;
  const before = await Promise.all(cluster.nodes.map((n) => ownedStates(cluster, n)));
  const streams = await Promise.all(pairs(cluster.nodes).map(async ([a, b]) => ({ a, id: await worker(ctx, managed(a)).call('startStream', managed(b).ip, PORT, 25) })));
  for (const n of cluster.nodes) {
    await cluster.stopDaemon(n, 'SIGTERM');
    await sleep(500);
    await withLogs(t, () => cluster.startDaemon(n));
    await withLogs(t, () => cluster.waitConverged(2, 120_000));
    t.notRegex(await cluster.metricsOf(n), /kmesh_ipsec_node_kernel_writes_total\{kind="\w+"\} [1-9]/, `${n.name}: the new instance wrote nothing`);
  }
  const counts = await Promise.all(streams.map((s) => worker(ctx, managed(s.a)).call('stopStream', s.id)));
  t.log(`streams (received/sent): ${counts.map((c) => `${c.received}/${c.sent}`).join(', ')}`);
  for (const c of counts) t.is(c.received, c.sent, 'no datagram lost across the rolling restart');
  const after = await Promise.all(cluster.nodes.map((n) => ownedStates(cluster, n)));
  t.deepEqual(after, before, 'same SAs with the same keys');
});

test.serial('never in clear, with four nodes: a restart that only knows a newer key, and a peer whose stamp is forged', async (t) => {
  const ctx = t.context;
  const { cluster } = ctx;
  const n4 = await cluster.joinNode(4);
  await startPods(ctx, n4);
  await project(cluster, [n4], 0);
  await withLogs(t, () => cluster.startDaemon(n4));
  await withLogs(t, () => cluster.waitConverged(2, 180_000));
  const [n1, n2, n3] = cluster.nodes as [NodeHandle, NodeHandle, NodeHandle, NodeHandle];

  // The Secret moves to SPI 3 and reaches node1 only; node1 restarts knowing nothing but key 3.
  t.is(await secretCreate(cluster), 3);
  await cluster.stopDaemon(n1, 'SIGKILL');
  await project(cluster, [n1], 0);
  await withLogs(t, () => cluster.startDaemon(n1));
  await withLogs(t, () => cluster.waitFor(async () => (await cluster.statusOf(n1)).keys.advertised === 3, 120_000, 'node1 advertises 3'));
  const restarted = await captureWire(cluster.wire, async () => {
    for (const b of [n2, n3, n4]) await exchange(ctx, n1, b);
    for (const a of [n2, n3, n4]) await exchange(ctx, a, n1);
  });
  for (const b of [n2, n3, n4]) {
    t.false(restarted.pcap.includes(marker(n1, b)), `node1 -> ${b.name} not in clear`);
    t.false(restarted.pcap.includes(marker(b, n1)), `${b.name} -> node1 not in clear`);
  }
  t.deepEqual(packetsBetween(restarted.text, cluster.nodes.map((n) => n.ip)).filter((l) => !l.includes(': ESP(')), []);
  t.regex(restarted.text, new RegExp(`IP ${n1.ip.replaceAll('.', '\\.')} > 192\\.168\\.77\\.\\d: ESP\\(spi=0x00000002,`), 'node1 keeps sending with the SPI its peers accept');
  await project(cluster, [n2, n3, n4], 500);
  await withLogs(t, () => cluster.waitConverged(3, 180_000));

  // node4's KmeshNodeInfo rewritten around the webhook: its stamp no longer verifies. (node4's
  // plugin is stopped meanwhile, or it would repair its object at once.)
  await cluster.stopDaemon(n4, 'SIGTERM');
  const kni = cluster.nodeInfo('node4')!;
  await cluster.double.store.put({ ...kni, metadata: { ...kni.metadata, annotations: { 'kmesh.net/validity': 'forged.forged.forged' } } });
  await withLogs(t, () => cluster.waitFor(async () => {
    for (const n of [n1, n2, n3]) if (!(await cluster.statusOf(n)).peers.some((p) => p.name === 'node4' && p.state === 'refused')) return false;
    return true;
  }, 60_000, 'node4 refused by every other node'));
  const refusedCap = await captureWire(cluster.wire, async () => {
    for (const a of [n1, n2, n3]) await exchange(ctx, a, n4, 3000).catch(() => 0);
  });
  for (const a of [n1, n2, n3]) t.false(refusedCap.pcap.includes(marker(a, n4)), `${a.name} -> node4: dropped, not sent in clear`);
  for (const n of [n1, n2, n3]) t.true((await cluster.statusOf(n)).peers.find((p) => p.name === 'node4')?.protected?.every((c) => c.action === 'blocked') === true);
  // node4's plugin comes back, sees its stamp is bad and re-publishes through the webhook.
  await withLogs(t, () => cluster.startDaemon(n4));
  await withLogs(t, () => cluster.waitConverged(3, 180_000));
  t.true((await exchange(ctx, n1, n4)) > 0);
});
