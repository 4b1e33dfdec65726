/**
 * Restarts of the node plugin on the host kernel (policies, BPF, tc real; SAs in a file, see
 * hybrid-xfrm.ts): a rolling update (SIGTERM) adopts everything with zero kernel writes; a
 * `kill -9` in the middle of a reconcile converges to exactly the desired set on restart; a
 * restart that knows only a newer key than its peers advertise keeps their pairs encrypted
 * instead of falling back to clear text; `--strict` blocks what cannot be encrypted.
 */
import '../helpers/require-root.js';
import anyTest, { type TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IpsecKey } from '../../core/secret.js';
import { CLI, type NodeHandle, PluginCluster, withLogs } from '../cluster/plugin-cluster.js';
import { ownedPolicies, ownedStates, pinnedMaps, programsOn } from '../cluster/kernel-view.js';
import { useNetns } from '../helpers/netns.js';

const test = anyTest as TestFn<{ cluster: PluginCluster }>;
const netns = useNetns(anyTest);
const key = (spi: number): IpsecKey => ({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: new Uint8Array(randomBytes(36)), icvBits: 128 });

test.before(async (t) => {
  const cluster = await PluginCluster.start(netns, { nodes: 3, daemon: 'hybrid', graceSeconds: 2, resyncSeconds: 30 });
  t.context.cluster = cluster;
  await cluster.setSecret(key(1));
  for (const n of cluster.nodes) await cluster.startDaemon(n);
  await cluster.waitConverged(1, 60_000);
});
test.after.always((t) => t.context.cluster.stop());

/** Everything of ours in a node's kernel, in one comparable value. */
async function kernelOf(cluster: PluginCluster, n: NodeHandle): Promise<unknown> {
  return { states: await ownedStates(cluster, n), policies: await ownedPolicies(n), maps: pinnedMaps(cluster, n) };
}

test.serial('a rolling update (SIGTERM, start again) adopts the kernel state with zero writes', async (t) => {
  const { cluster } = t.context;
  const n1 = cluster.nodes[0]!;
  const before = await kernelOf(cluster, n1);
  t.regex(await cluster.metricsOf(n1), /kmesh_ipsec_node_kernel_writes_total\{kind="xfrm"\} [1-9]/, 'the first instance did write (so the counter is the right one)');
  await cluster.stopDaemon(n1, 'SIGTERM');
  t.deepEqual(await kernelOf(cluster, n1), before, 'SIGTERM leaves everything in place');
  await withLogs(t, async () => {
    await cluster.startDaemon(n1);
    await cluster.waitConverged(1, 30_000);
  });
  const metrics = await cluster.metricsOf(n1);
  t.notRegex(metrics, /kmesh_ipsec_node_kernel_writes_total\{kind="\w+"\} [1-9]/, 'no xfrm, map or tc write since the restart');
  t.deepEqual(await kernelOf(cluster, n1), before);
});

test.serial('kill -9 in the middle of a reconcile, then a restart: exactly the desired set, no leftovers', async (t) => {
  const { cluster } = t.context;
  const n1 = cluster.nodes[0]!;
  // A long drain holds node1 between installing the SPI 2 SAs and removing the SPI 1 ones.
  await cluster.stopDaemon(n1, 'SIGTERM');
  await cluster.startDaemon(n1, { drainMs: 8000 });
  const K2 = key(2);
  await cluster.setSecret(K2);
  await withLogs(t, () => cluster.waitFor(() => {
    const spis = new Set((JSON.parse(readFileSync(n1.stateFile, 'utf8')) as { state: { spi: number; mark?: unknown } }[]).filter((s) => s.state.mark === undefined).map((s) => s.state.spi));
    return spis.has(1) && spis.has(2);
  }, 30_000, 'node1 between install and removal (old and new outbound SAs both present)'));
  await cluster.stopDaemon(n1, 'SIGKILL');
  const torn = await ownedStates(cluster, n1);
  t.true(torn.some((s) => s.spi === 1) && torn.some((s) => s.spi === 2), 'killed with old and new SAs side by side');
  await withLogs(t, async () => {
    await cluster.startDaemon(n1);
    await cluster.waitConverged(2, 60_000);
    await cluster.waitFor(async () => (await ownedStates(cluster, n1)).every((s) => s.spi === 2), 30_000, 'SPI 1 gone after the grace period');
  });
  const peers = cluster.nodes.filter((p) => p !== n1);
  const states = await ownedStates(cluster, n1);
  t.deepEqual(states.map((s) => `${s.src}>${s.dst}/${s.spi}`).sort(), peers.flatMap((p) => [`${n1.ip}>${p.ip}/2`, `${p.ip}>${n1.ip}/2`]).sort(), 'one SA per direction per peer, nothing else');
  const policies = await ownedPolicies(n1);
  t.deepEqual(policies.map((p) => `${p.dir} ${p.dst} ${p.action} ${p.spi}`).sort(), [
    `fwd ${n1.cidr} allow 0`, `in ${n1.cidr} allow 0`, ...peers.map((p) => `out ${p.cidr} allow 2`),
  ].sort());
  const maps = pinnedMaps(cluster, n1);
  t.deepEqual(maps.peerCidrs, peers.map((p) => p.cidr).sort());
  t.deepEqual([...maps.peerMarks.keys()].sort(), peers.map((p) => p.ip).sort());
});

test.serial('a restart that knows only a newer key than its peers advertise keeps their pairs encrypted (never clear)', async (t) => {
  const { cluster } = t.context;
  const n1 = cluster.nodes[0]!;
  const outBefore = (await ownedPolicies(n1)).filter((p) => p.dir === 'out');
  await cluster.stopDaemon(n1, 'SIGTERM');
  // The Secret moved on to SPI 3, but only node1's volume has it yet; the peers advertise 2.
  await cluster.setSecret(key(3), [n1]);
  await withLogs(t, async () => {
    await cluster.startDaemon(n1);
    await cluster.waitFor(async () => (await cluster.statusOf(n1)).keys.advertised === 3, 30_000, 'node1 advertises 3');
  });
  const out = (await ownedPolicies(n1)).filter((p) => p.dir === 'out');
  t.deepEqual(out, outBefore, 'the out policies still point at the SPI 2 SAs the peers accept');
  t.true((await ownedStates(cluster, n1)).filter((s) => s.src === n1.ip).every((s) => s.spi === 2), 'outbound SAs with SPI 2 kept');
  const status = await cluster.statusOf(n1);
  t.deepEqual(status.peers.map((p) => p.protected?.map((c) => c.action)), [['kept'], ['kept']]);
  t.deepEqual(pinnedMaps(cluster, n1).peerCidrs, cluster.nodes.slice(1).map((p) => p.cidr), 'the pod program still marks their traffic');
  // When the peers learn key 3 everything moves to SPI 3.
  await cluster.setSecret(undefined, cluster.nodes, readFileSync(`${n1.secretDir}/ipSec`, 'utf8'));
  await withLogs(t, () => cluster.waitConverged(3, 60_000));
  t.true((await ownedPolicies(n1)).filter((p) => p.dir === 'out').every((p) => p.spi === 3 && p.action === 'allow'));
});

test.serial('--strict: a peer pod CIDR that cannot be encrypted is dropped, not sent in clear', async (t) => {
  const { cluster } = t.context;
  const n2 = cluster.nodes[1]!;
  await cluster.double.store.put({
    apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'node9', namespace: 'kmesh-system' },
    spec: { spi: 3, addresses: ['192.168.77.9'], bootID: '11111111-2222-4333-8444-555555555559', podCIDRS: ['10.244.9.0/24'] },
  });
  await withLogs(t, () => cluster.waitFor(async () => (await cluster.statusOf(n2)).peers.some((p) => p.name === 'node9' && p.state === 'refused'), 20_000, 'node9 refused'));
  t.false((await ownedPolicies(n2)).some((p) => p.dst === '10.244.9.0/24'), 'without --strict, a never-encrypted refused peer stays as Kmesh leaves it');
  await cluster.stopDaemon(n2, 'SIGTERM');
  await withLogs(t, async () => {
    await cluster.startDaemon(n2, { strict: true });
    await cluster.waitFor(async () => (await ownedPolicies(n2)).some((p) => p.dst === '10.244.9.0/24'), 30_000, 'block policy');
  });
  const block = (await ownedPolicies(n2)).find((p) => p.dst === '10.244.9.0/24');
  t.is(block?.action, 'block');
  t.is(block?.mark, '0xe0/0xffffffff');
  t.true(pinnedMaps(cluster, n2).peerCidrs.includes('10.244.9.0/24'), 'marked by the pod program, so the block policy applies');
  await cluster.double.store.delete('kmeshnodeinfos.kmesh.net', 'kmesh-system', 'node9');
  await withLogs(t, () => cluster.waitFor(async () => !(await ownedPolicies(n2)).some((p) => p.dst === '10.244.9.0/24'), 30_000, 'released when node9 is gone'));
});

test.serial('kmesh-ipsec node cleanup removes exactly our objects, filters, pins and KmeshNodeInfo', async (t) => {
  const { cluster } = t.context;
  const n3 = cluster.nodes[2]!;
  await cluster.stopDaemon(n3, 'SIGTERM');
  // Someone else's IPsec config on the same node: same mark, another reqid.
  await n3.ns.exec(['ip', 'xfrm', 'policy', 'add', 'src', '0.0.0.0/0', 'dst', '10.99.0.0/16', 'dir', 'out', 'mark', '0xe0', 'mask', '0xffffffff',
    'tmpl', 'src', n3.ip, 'dst', '192.168.77.99', 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel']);
  t.true((await ownedPolicies(n3)).length > 0);
  t.true(pinnedMaps(cluster, n3).peerCidrs.length > 0);
  const r = await n3.ns.exec([process.execPath, CLI, '--kubeconfig', n3.kubeconfigPath, 'node', 'cleanup', '--node-name', n3.name, '--bpffs-root', n3.pinRoot], { allowFailure: true });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^removed \d+ xfrm policies, 0 xfrm states, 2 tc filters, 6 pins, KmeshNodeInfo deleted\n$/);
  t.deepEqual(await ownedPolicies(n3), []);
  t.regex((await n3.ns.exec(['ip', 'xfrm', 'policy', 'list', 'dst', '10.99.0.0/16'])).stdout, /reqid 1 /, 'the foreign policy stays');
  t.deepEqual(await programsOn(n3, 'eth0'), []);
  t.deepEqual(await programsOn(n3, n3.pods[0]!.hostIf), []);
  t.false(existsSync(cluster.daemonOptions(n3).pinDir), 'the pin directory is gone');
  t.is(cluster.nodeInfo(n3.name), undefined);
});
