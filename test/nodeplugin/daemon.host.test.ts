/**
 * The node plugin daemon against the Kubernetes API test double (with the real webhook in
 * front of it) and the host kernel: real xfrm policies, BPF maps and tc programs in one network
 * namespace per node; SAs in a file because this kernel has no ESP (the VM suite uses real
 * ones). The tests share one cluster and run in order, each starting from where the previous
 * one left it: empty cluster, first key, nodes joining, resync, rotation, bad input, forged
 * peers, namespace labels, a reboot, a node leaving, and an API outage.
 */
import '../helpers/require-root.js';
import anyTest, { type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateStampKey } from '../../certs/stamp-keygen.js';
import type { IpsecKey } from '../../core/secret.js';
import { importStampSigningKey, signStamp } from '../../core/stamp.js';
import { CLI, MANAGED_NAMESPACE, PLAIN_NAMESPACE, type NodeHandle, PluginCluster, withLogs } from '../cluster/plugin-cluster.js';
import { runCommand } from '../../nodeplugin/command.js';
import { ownedPolicies, ownedStates, pinnedMaps, programsOn } from '../cluster/kernel-view.js';
import { useNetns } from '../helpers/netns.js';

const test = anyTest as TestFn<{ cluster: PluginCluster }>;
const netns = useNetns(anyTest);
const key = (spi: number): IpsecKey => ({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: new Uint8Array(randomBytes(36)), icvBits: 128 });
const K1 = key(1);
const K2 = key(2);
const K3 = key(3);

test.before(async (t) => {
  t.context.cluster = await PluginCluster.start(netns, { nodes: 1, daemon: 'hybrid', plainPod: true, graceSeconds: 3, resyncSeconds: 4 });
});
test.after.always((t) => t.context.cluster.stop());

const runCli = (args: string[]) => runCommand([process.execPath, CLI, ...args], { allowFailure: true });

const byName = (c: PluginCluster, name: string): NodeHandle => {
  const n = c.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no ${name}`);
  return n;
};

test.serial('empty cluster: without a Secret the plugin starts, advertises SPI 0 and installs no SA', async (t) => {
  const { cluster } = t.context;
  const n1 = byName(cluster, 'node1');
  await withLogs(t, async () => {
    await cluster.startDaemon(n1);
    await cluster.waitFor(async () => (await cluster.statusOf(n1)).ready, 30_000, 'node1 ready');
  });
  const s = await cluster.statusOf(n1);
  t.is(s.keys.advertised, 0);
  t.is(cluster.nodeInfo('node1')?.spec?.spi, 0);
  t.deepEqual(await ownedStates(cluster, n1), []);
  t.deepEqual(await ownedPolicies(n1), [], 'no key: not even the in/fwd policies');
  t.regex(s.secret, /missing: no key yet/);
  t.deepEqual(s.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`), ['Ready=True/Programmed', 'KeyInSync=False/NoKey']);
  t.deepEqual(await programsOn(n1, 'eth0'), ['kmipsec_node'], 'the node program sits on the interface carrying the InternalIP');
  t.deepEqual(await programsOn(n1, n1.pods[0]!.hostIf), ['kmipsec_pod'], 'the managed pod is attached already');
  t.deepEqual(await programsOn(n1, n1.pods[1]!.hostIf), [], 'the pod in the unlabelled namespace is not');
});

test.serial('the first key: the node installs its inbound side, then advertises SPI 1', async (t) => {
  const { cluster } = t.context;
  const n1 = byName(cluster, 'node1');
  await cluster.setSecret(K1);
  await withLogs(t, () => cluster.waitFor(() => cluster.nodeInfo('node1')?.spec?.spi === 1, 30_000, 'node1 advertises 1'));
  const policies = await ownedPolicies(n1);
  t.deepEqual(policies.map((p) => `${p.dir} ${p.dst}`), ['fwd 10.244.1.0/24', 'in 10.244.1.0/24']);
  t.truthy(cluster.nodeInfo('node1')?.metadata.annotations?.['kmesh.net/validity'], 'the webhook stamped it');
  const owners = cluster.nodeInfo('node1')?.metadata.ownerReferences as { kind: string; name: string }[] | undefined;
  t.deepEqual(owners?.map((r) => `${r.kind}/${r.name}`), ['Node/node1']);
});

test.serial('a second and a third node join: every pair gets SAs, policies, marks and CIDRs', async (t) => {
  const { cluster } = t.context;
  for (const i of [2, 3]) {
    const n = await cluster.joinNode(i);
    await cluster.setSecret(K1, [n]);
    await withLogs(t, () => cluster.startDaemon(n));
  }
  await withLogs(t, () => cluster.waitConverged(1, 60_000));
  for (const n of cluster.nodes) {
    const peers = cluster.nodes.filter((p) => p !== n);
    const states = await ownedStates(cluster, n);
    t.is(states.length, 4, `${n.name}: an inbound and an outbound SA per peer`);
    t.is(new Set(states.filter((s) => s.dst === n.ip).map((s) => s.mark)).size, 2, `${n.name}: distinct inbound marks`);
    const out = (await ownedPolicies(n)).filter((p) => p.dir === 'out');
    t.deepEqual(out.map((p) => `${p.dst}->${p.tmplDst}/${p.spi}`), peers.map((p) => `${p.cidr}->${p.ip}/1`));
    const maps = pinnedMaps(cluster, n);
    t.deepEqual(maps.peerCidrs, peers.map((p) => p.cidr));
    t.deepEqual([...maps.peerMarks.keys()].sort(), peers.map((p) => p.ip));
    t.deepEqual(await programsOn(n, n.pods[0]!.hostIf), ['kmipsec_pod']);
    const info = cluster.nodeInfo(n.name);
    t.deepEqual(info?.status?.conditions?.map((c) => `${c.type}=${c.status}`), ['Ready=True', 'KeyInSync=True'], `${n.name}: conditions on the status subresource`);
  }
});

test.serial('kmesh-ipsec status shows the node from its endpoint; status --cluster says the cluster is in sync', async (t) => {
  const { cluster } = t.context;
  const n1 = byName(cluster, 'node1');
  const local = await n1.ns.exec([process.execPath, CLI, 'status'], { allowFailure: true });
  t.is(local.code, 0, local.stderr);
  t.regex(local.stdout, /^node node1: ready; Ready True \(Programmed\), KeyInSync True \(InSync\)/);
  t.regex(local.stdout, /key: current SPI 1, advertised 1, accepted inbound 1\n/);
  t.regex(local.stdout, /node2 +used +1 +1 +20\d\d-/);
  t.regex(local.stdout, /kernel: 2 inbound and 2 outbound SAs; policies 2 out, 1 in, 1 fwd, 0 block/);
  t.regex(local.stdout, /xfrm errors: none/);
  const json = JSON.parse((await n1.ns.exec([process.execPath, CLI, 'status', '--json'])).stdout) as { peers: { name: string }[] };
  t.deepEqual(json.peers.map((p) => p.name), ['node2', 'node3']);
  const root = await runCli(['--kubeconfig', cluster.double.kubeconfigPath('cluster-admin'), 'status', '--cluster']);
  t.is(root.code, 0, root.stdout + root.stderr);
  t.regex(root.stdout, /in-sync/);
  const nowhere = await runCli(['status', '--endpoint', 'http://127.0.0.1:9']);
  t.is(nowhere.code, 1);
  t.regex(nowhere.stderr, /cannot read the node plugin at http:\/\/127\.0\.0\.1:9\/status/);
});

test.serial('a resync with nothing new makes zero kernel writes; only resyncs read the kernel back', async (t) => {
  const { cluster } = t.context;
  for (const n of cluster.nodes) {
    await withLogs(t, () => cluster.waitFor(async () => {
      const s = await cluster.statusOf(n);
      return s.lastRun?.reasons.includes('resync') === true && s.lastRun.ok;
    }, 30_000, `${n.name}: a periodic resync`));
    const run = (await cluster.statusOf(n)).lastRun;
    t.deepEqual(run?.kernelWrites, { xfrm: 0, map: 0, tc: 0 }, `${n.name}: ${JSON.stringify(run)}`);
    t.deepEqual(run?.kernelReads, { xfrmDumps: 2, mapReads: 2 }, `${n.name}: the resync dumps states and policies and reads both maps`);
    t.is(run?.sync?.installed, 0);
    const metrics = await cluster.metricsOf(n);
    const sum = Number(/kmesh_ipsec_node_reconcile_duration_seconds_sum (\S+)/.exec(metrics)?.[1]);
    const count = Number(/kmesh_ipsec_node_reconcile_duration_seconds_count (\S+)/.exec(metrics)?.[1]);
    t.log(`${n.name}: no-change resync ${run?.durationMs ?? '?'} ms; ${count} reconciles, mean ${((sum / count) * 1000).toFixed(1)} ms`);
  }
  // An event that changes nothing for the kernel: a label on a Namespace without managed pods.
  // Touched again until each node ran for it alone (not merged into a resync).
  const eventOnly = new Map<string, unknown>();
  for (let attempt = 0; attempt < 5 && eventOnly.size < cluster.nodes.length; attempt++) {
    const plain = cluster.double.store.get('namespaces', undefined, PLAIN_NAMESPACE);
    if (!plain) throw new Error('fixture: no plain namespace');
    await cluster.double.store.put({ ...plain, metadata: { ...plain.metadata, labels: { ...plain.metadata.labels, touched: String(attempt) } } });
    for (const n of cluster.nodes) {
      await withLogs(t, () => cluster.waitFor(async () => (await cluster.statusOf(n)).lastRun?.reasons.includes('namespaces') === true, 30_000, `${n.name}: a run for the namespace event`));
      const run = (await cluster.statusOf(n)).lastRun;
      if (run?.ok === true && !run.reasons.includes('resync')) eventOnly.set(n.name, [run.kernelWrites, run.kernelReads]);
    }
  }
  for (const n of cluster.nodes) {
    t.deepEqual(eventOnly.get(n.name), [{ xfrm: 0, map: 0, tc: 0 }, { xfrmDumps: 0, mapReads: 0 }], `${n.name}: an event run neither writes nor reads the kernel`);
  }
});

test.serial('rotation to SPI 2: nodes learn the key one at a time, converge, and drop SPI 1 after the grace period', async (t) => {
  const { cluster } = t.context;
  for (const n of cluster.nodes) {
    await cluster.setSecret(K2, [n]);
    await new Promise((r) => setTimeout(r, 700));
  }
  await withLogs(t, () => cluster.waitConverged(2, 60_000));
  await withLogs(t, () => cluster.waitFor(async () => {
    for (const n of cluster.nodes) if ((await ownedStates(cluster, n)).some((s) => s.spi === 1)) return false;
    return true;
  }, 30_000, 'SPI 1 states removed after the grace period'));
  for (const n of cluster.nodes) {
    t.deepEqual([...new Set((await ownedStates(cluster, n)).map((s) => s.spi))], [2]);
    t.true((await ownedPolicies(n)).filter((p) => p.dir === 'out').every((p) => p.spi === 2));
    t.deepEqual((await cluster.statusOf(n)).keys.known, [2], `${n.name}: key 1 forgotten once nothing needs it`);
  }
});

test.serial('a malformed Secret, and one whose SPI goes backwards, are refused: the running key stays, the daemon stays up', async (t) => {
  const { cluster } = t.context;
  const n2 = byName(cluster, 'node2');
  await cluster.setSecret(undefined, [n2], '{"spi":3,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"00","length":128}');
  await withLogs(t, () => cluster.waitFor(async () => /secret_loads_total\{result="malformed"\} 1/.test(await cluster.metricsOf(n2)), 20_000, 'malformed counted'));
  let s = await cluster.statusOf(n2);
  t.regex(s.secret, /refused \(malformed\); SPI 2 stays in force/);
  t.is(s.keys.advertised, 2);
  await cluster.setSecret(K1, [n2]);
  await withLogs(t, () => cluster.waitFor(async () => /secret_loads_total\{result="spi-backwards"\} 1/.test(await cluster.metricsOf(n2)), 20_000, 'backwards counted'));
  s = await cluster.statusOf(n2);
  t.is(s.keys.current, 2);
  const events = cluster.double.store.list('events', 'default') as { reason?: string; involvedObject?: { name?: string }; message?: string }[];
  const refused = events.filter((e) => e.reason === 'SecretRefused' && e.involvedObject?.name === 'node2');
  t.is(refused.length, 2, 'one Event per refused content');
  const log = cluster.logOf(n2);
  t.false(log.includes(Buffer.from(K2.aeadKey).toString('base64')) || log.includes(Buffer.from(K2.aeadKey).toString('hex')), 'no key material in the log');
  t.is(n2.daemon?.exitCode, null, 'still running');
  await cluster.setSecret(K2, [n2]);
});

test.serial('unstamped, forged and expired KmeshNodeInfos are refused by every node and get nothing', async (t) => {
  const { cluster } = t.context;
  const spec = (i: number) => ({ spi: 2, addresses: [`192.168.77.${i}`], bootID: '11111111-2222-4333-8444-55555555555' + String(i), podCIDRS: [`10.244.${i}.0/24`] });
  const foreign = await importStampSigningKey((await generateStampKey()).privateJwk);
  const ours = await importStampSigningKey(JSON.parse(readFileSync(join(cluster.dir, 'stamp-key.jwk'), 'utf8')) as unknown);
  if (!foreign.ok || !ours.ok) throw new Error('keys');
  const put = (name: string, i: number, stamp?: string) => cluster.double.store.put({
    apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name, namespace: 'kmesh-system', ...(stamp ? { annotations: { 'kmesh.net/validity': stamp } } : {}) }, spec: spec(i),
  });
  await put('node7', 7);
  await put('node8', 8, await signStamp({ nodeName: 'node8', spec: spec(8) }, foreign.value));
  await put('node9', 9, await signStamp({ nodeName: 'node9', spec: spec(9) }, ours.value, { now: Date.now() / 1000 - 3 * 86_400 }));
  for (const n of cluster.nodes) {
    await withLogs(t, () => cluster.waitFor(async () => (await cluster.statusOf(n)).peers.filter((p) => p.state === 'refused').length === 3, 20_000, `${n.name} refuses 3`));
    const refused = (await cluster.statusOf(n)).peers.filter((p) => p.state === 'refused').map((p) => `${p.name}:${p.reason?.split(':')[0] ?? ''}`);
    t.deepEqual(refused, ['node7:missing', 'node8:unknown-kid', 'node9:expired']);
    const dsts = (await ownedPolicies(n)).map((p) => p.dst);
    for (const i of [7, 8, 9]) t.false(dsts.includes(`10.244.${i}.0/24`));
    t.deepEqual(pinnedMaps(cluster, n).peerCidrs.filter((c) => /10\.244\.[789]\./.test(c)), []);
  }
  for (const name of ['node7', 'node8', 'node9']) await cluster.double.store.delete('kmeshnodeinfos.kmesh.net', 'kmesh-system', name);
});

test.serial('labelling a namespace enrols its pods; removing the label releases them', async (t) => {
  const { cluster } = t.context;
  const n1 = byName(cluster, 'node1');
  const plain = n1.pods.find((p) => p.namespace === PLAIN_NAMESPACE)!;
  const setLabel = async (value: string | undefined) => {
    await cluster.double.store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: PLAIN_NAMESPACE, ...(value ? { labels: { 'istio.io/dataplane-mode': value } } : {}) } });
  };
  await setLabel('Kmesh');
  await withLogs(t, () => cluster.waitFor(async () => (await programsOn(n1, plain.hostIf)).length === 1, 20_000, 'pod program attached'));
  // /status shows a reconcile once it has finished; the filter is attached in its middle.
  await withLogs(t, () => cluster.waitFor(async () => (await cluster.statusOf(n1)).pods.managed === 2, 20_000, 'two managed pods in /status'));
  await setLabel(undefined);
  await withLogs(t, () => cluster.waitFor(async () => (await programsOn(n1, plain.hostIf)).length === 0, 20_000, 'pod program detached'));
  t.deepEqual(await programsOn(n1, n1.pods.find((p) => p.namespace === MANAGED_NAMESPACE)!.hostIf), ['kmipsec_pod'], 'the other pod keeps its program');
});

test.serial('a node reboots (new boot ID, empty kernel): only the pairs with that node are rekeyed', async (t) => {
  const { cluster } = t.context;
  const [n1, n2, n3] = ['node1', 'node2', 'node3'].map((n) => byName(cluster, n)) as [NodeHandle, NodeHandle, NodeHandle];
  const before = new Map((await ownedStates(cluster, n1)).map((s) => [`${s.src}>${s.dst}`, s.keyTag]));
  await cluster.stopDaemon(n3, 'SIGKILL');
  // What a reboot leaves: no SAs, no policies, no pins, no tc filters.
  await n3.ns.exec(['rm', '-f', n3.stateFile]);
  await n3.ns.exec(['ip', 'xfrm', 'policy', 'flush']);
  await n3.ns.exec(['rm', '-rf', cluster.daemonOptions(n3).pinDir]);
  for (const dev of ['eth0', ...n3.pods.map((p) => p.hostIf)]) await n3.ns.exec(['tc', 'qdisc', 'del', 'dev', dev, 'clsact'], { allowFailure: true });
  await cluster.reboot(n3);
  await withLogs(t, async () => {
    await cluster.startDaemon(n3);
    await cluster.waitFor(() => (cluster.nodeInfo('node3')?.spec as { bootID?: string } | undefined)?.bootID === n3.bootId, 30_000, 'new boot ID published');
    await cluster.waitConverged(2, 60_000);
  });
  const after = await ownedStates(cluster, n1);
  for (const s of after) {
    const withN3 = s.src === n3.ip || s.dst === n3.ip;
    t.is(before.get(`${s.src}>${s.dst}`) !== s.keyTag, withN3, `${s.src}>${s.dst}: rekeyed only if it involves node3`);
  }
  t.is((await ownedStates(cluster, n3)).length, 4);
  t.deepEqual(await programsOn(n3, 'eth0'), ['kmipsec_node']);
  t.truthy(n2);
});

test.serial('a node leaves: its Node and KmeshNodeInfo go, every other node removes its SAs, policies and map entries', async (t) => {
  const { cluster } = t.context;
  const n3 = byName(cluster, 'node3');
  await cluster.removeNode(n3);
  // The KmeshNodeInfo is owned by the Node: the garbage collector deletes it, through the webhook.
  await withLogs(t, () => cluster.waitFor(() => cluster.nodeInfo('node3') === undefined, 20_000, 'garbage collection of node3\'s KmeshNodeInfo'));
  for (const n of cluster.nodes) {
    await withLogs(t, () => cluster.waitFor(async () => (await ownedStates(cluster, n)).every((s) => s.src !== n3.ip && s.dst !== n3.ip), 30_000, `${n.name} forgets node3`));
    t.false((await ownedPolicies(n)).some((p) => p.dst === n3.cidr || p.tmplDst === n3.ip));
    const maps = pinnedMaps(cluster, n);
    t.false(maps.peerCidrs.includes(n3.cidr));
    t.false(maps.peerMarks.has(n3.ip));
    t.is((await ownedStates(cluster, n)).length, 2);
  }
});

test.serial('the API server is unreachable for a while: kernel state stays, then the cluster converges on what changed meanwhile', async (t) => {
  const { cluster } = t.context;
  const before = await Promise.all(cluster.nodes.map((n) => ownedPolicies(n)));
  await cluster.gateway.down();
  await cluster.setSecret(K3);
  // While the API is away the nodes install SPI 3 inbound, but cannot advertise it.
  for (const n of cluster.nodes) {
    await withLogs(t, () => cluster.waitFor(async () => (await ownedStates(cluster, n)).some((s) => s.spi === 3), 30_000, `${n.name}: SPI 3 inbound installed offline`));
  }
  await new Promise((r) => setTimeout(r, 3000));
  for (const [k, n] of cluster.nodes.entries()) {
    const s = await cluster.statusOf(n);
    t.is(n.daemon?.exitCode, null, `${n.name} still running`);
    t.true(s.ready);
    t.deepEqual((await ownedPolicies(n)).filter((p) => p.dir === 'out'), before[k]!.filter((p) => p.dir === 'out'), `${n.name}: outbound untouched`);
  }
  await cluster.gateway.up();
  await withLogs(t, () => cluster.waitConverged(3, 60_000));
  t.pass();
});
