/**
 * End to end in the test VM (real ESP), on one lab: `kmesh-ipsec lab up --nodes 3 --dual-stack
 * --json`, later a fourth node (`lab join`). Every part together: the webhook at kubectl apply,
 * the node plugin daemons, the kernels, the CLI and the manifests. Driven with the real
 * commands (`kmesh-ipsec lab ...`, `kmesh-ipsec secret create`, kubectl) and checked from
 * outside the daemons: tcpdump on the wire bridge, `ip xfrm` and xfrm_stat in the node
 * namespaces, kubectl and client-node against the API, the pod agents' counts.
 *
 * One lab, because a lab costs minutes under emulation. In order: up; every ordered pod pair,
 * IPv4 and IPv6, ESP and never in clear, the unlabelled namespace in clear; a malformed Secret
 * denied; a rotation under traffic on every pair without loss; forged KmeshNodeInfos ignored;
 * a fourth node joins and all twelve pairs are ESP; kill -9 and a rolling restart of every
 * daemon under traffic lose nothing and write nothing; a daemon that knows only a newer key
 * never sends in clear; a reboot and a removal leave every other node right; down leaves
 * nothing, also after a killed up.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { policiesIn, statesIn } from '../../lab/kernel.js';
import { listNetns, nodeProcessesUsing } from '../../lab/system.js';
import { POD_PORT } from '../../lab/topology.js';
import { captureWire, espSpis } from '../../lab/wire-capture.js';
import { CLI, E2eLab, type NodeView, clearBetweenNodes, cli, marker, orderedPairs, waitFor } from './lab-e2e.js';

interface Ctx { lab: E2eLab; started: number }
const test = anyTest as TestFn<Ctx>;
const DIR = '/run/kmesh-e2e';
const KNI = { group: 'kmesh.net', version: 'v1alpha1', namespace: 'kmesh-system', plural: 'kmeshnodeinfos' } as const;

test.before(async (t) => {
  if (process.env.KMESH_IN_VM !== '1') throw new Error('VM suite: run it with test/vm/run-vm-suites.sh (npm run test:vm)');
  const started = Date.now();
  t.context = { lab: await E2eLab.up(DIR, ['--nodes', '3', '--dual-stack']), started };
});

test.after.always(async (t) => {
  await cli(['lab', 'down', '--dir', DIR], { allowFailure: true });
  t.log(`end-to-end suite: ${((Date.now() - ((t.context as Partial<Ctx>).started ?? Date.now())) / 1000).toFixed(0)} s wall time`);
});

const secretCreate = async (lab: E2eLab): Promise<number> =>
  (JSON.parse((await cli(['--kubeconfig', lab.topology.kubeconfig, 'secret', 'create', '-o', 'json'])).stdout) as { nextSpi: number }).nextSpi;

/** Every ordered pair of `nodes`, in each family, was ESP with `spi` and no marker in clear. */
async function assertAllEncrypted(t: { false: (v: boolean, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, lab: E2eLab, spi: number, families: readonly (4 | 6)[]): Promise<void> {
  const { pcap, text, markers } = await lab.exchangeAll(lab.nodes, families);
  for (const m of markers) t.false(pcap.includes(m), `never in clear: ${m}`);
  for (const [a, b] of orderedPairs(lab.nodes)) {
    for (const k of families.map((f) => (f === 4 ? 0 : 1))) t.deepEqual(espSpis(text, a.ips[k] ?? '', b.ips[k] ?? ''), [spi], `${a.name} -> ${b.name} IPv${k === 0 ? 4 : 6}: ESP with SPI ${spi}`);
  }
  t.deepEqual(clearBetweenNodes(text, lab.nodeIps), [], 'every packet between nodes is ESP');
}

test.serial('lab up: three dual-stack nodes, every KmeshNodeInfo on SPI 1 with Ready and KeyInSync, as kubectl shows them', async (t) => {
  const { lab } = t.context;
  t.log(`lab up took ${lab.upSeconds.toFixed(0)} s`);
  t.deepEqual(lab.nodes.map((n) => n.ips), [['192.168.77.1', 'fd00:77::1'], ['192.168.77.2', 'fd00:77::2'], ['192.168.77.3', 'fd00:77::3']]);
  const get = await lab.kubectl(['get', 'kmeshnodeinfos', '-n', 'kmesh-system']);
  t.is(get.code, 0, get.stderr);
  t.deepEqual(get.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 5).join(' ')), [
    'node1 1 ["192.168.77.1","fd00:77::1"] True True',
    'node2 1 ["192.168.77.2","fd00:77::2"] True True',
    'node3 1 ["192.168.77.3","fd00:77::3"] True True',
  ]);
  const status = await cli(['--kubeconfig', lab.topology.kubeconfig, 'status', '--cluster'], { allowFailure: true });
  t.is(status.code, 0, status.stdout);
});

test.serial('every ordered pod pair, IPv4 and IPv6, is ESP on the wire and never in clear; the unlabelled namespace stays in clear', async (t) => {
  const { lab } = t.context;
  await assertAllEncrypted(t, lab, 1, [4, 6]);
  for (const n of lab.nodes) t.deepEqual(await lab.xfrmErrors(n), {}, `${n.name}: /proc/net/xfrm_stat all zero`);
  const plain = lab.node('node1').pods.find((p) => p.namespace === 'plain')!;
  const clear = 'UNLABELLED-NAMESPACE-TRAFFIC|';
  const cap = await captureWire(lab.wirePath, () => plain.agent.tcpExchange(lab.managed(lab.node('node2')).ips[0] ?? '', POD_PORT, clear.repeat(40)));
  t.true(cap.pcap.includes(clear), 'a pod outside Kmesh-managed namespaces is not encrypted (as in Kmesh)');
});

test.serial('kubectl apply of a malformed secret is denied with our message', async (t) => {
  const { lab } = t.context;
  const r = await lab.kubectl(['apply', '-f', '-'], `apiVersion: v1
kind: Secret
metadata: {name: kmesh-ipsec, namespace: kmesh-system}
stringData:
  ipSec: '{"spi":2,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${'ab'.repeat(35)}a","length":128}'
`);
  t.not(r.code, 0);
  t.regex(r.stderr, /admission webhook "secrets\.ipsec\.kmesh\.net" denied the request: Secret kmesh-system\/kmesh-ipsec: data\.ipSec\.aeadKey: must be 72 hex characters \(36 bytes\); got 71 hex characters/);
  const still = await cli(['--kubeconfig', lab.topology.kubeconfig, 'secret', 'get', '-o', 'json']);
  t.is((JSON.parse(still.stdout) as { spi: number }).spi, 1, 'the stored Secret is unchanged');
});

test.serial('rotation with kmesh-ipsec secret create under traffic on every pair and family: nothing lost, the wire moves from SPI 1 to 2', async (t) => {
  const { lab } = t.context;
  const stop = await lab.streams(lab.nodes, [4, 6]);
  await sleep(1000);
  t.is(await secretCreate(lab), 2);
  t.log(`converged on SPI 2 in ${((await lab.handle().waitConverged({ spi: 2 })) / 1000).toFixed(1)} s`);
  await lab.handle().waitConverged({ spi: 2, exact: true }, 180_000);
  const { text } = await captureWire(lab.wirePath, () => sleep(1500));
  const counts = await stop();
  t.log(`streams (received/sent): ${counts.map((c) => `${c.received}/${c.sent}`).join(', ')}`);
  t.is(counts.length, 12);
  for (const c of counts) {
    t.true(c.sent > 100, 'traffic really flowed');
    t.is(c.received, c.sent, 'no datagram lost across the rotation');
  }
  t.regex(text, /ESP\(spi=0x00000002,/);
  t.notRegex(text, /ESP\(spi=0x00000001,/);
  for (const n of lab.nodes) {
    t.deepEqual([...new Set((await statesIn(n.netns)).map((s) => s.spi))], [2], `${n.name}: SPI 1 states gone after the grace period`);
    t.deepEqual(await lab.xfrmErrors(n), {}, `${n.name}: no xfrm errors`);
  }
});

test.serial('forged KmeshNodeInfos written straight into the store, around the webhook, are ignored by every node', async (t) => {
  const { lab } = t.context;
  const kni = lab.kc.makeApiClient(CustomObjectsApi);
  const [n1, n2, n3] = lab.nodes as [NodeView, NodeView, NodeView];

  // A node that does not exist, claiming a pod CIDR, with a stamp nobody signed.
  await lab.handle().storeAroundAdmission({
    apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo',
    metadata: { name: 'intruder', namespace: 'kmesh-system', annotations: { 'kmesh.net/validity': 'forged.forged.forged' } },
    spec: { spi: 2, addresses: ['192.168.77.66'], bootID: '00000000-0000-4000-8000-000000000066', podCIDRS: ['10.244.66.0/24'] },
  });
  await waitFor(async () => {
    for (const n of lab.nodes) if (!(await lab.status(n)).peers.some((p) => p.name === 'intruder' && p.state === 'refused')) return false;
    return true;
  }, 120_000, () => 'every node to refuse intruder');
  for (const n of lab.nodes) {
    t.false((await statesIn(n.netns)).some((s) => s.src === '192.168.77.66' || s.dst === '192.168.77.66'), `${n.name}: no SA for the intruder`);
    t.false((await policiesIn(n.netns)).some((p) => p.dst === '10.244.66.0/24' && p.action !== 'block'), `${n.name}: no policy sends to its CIDR`);
  }
  await kni.deleteNamespacedCustomObject({ ...KNI, name: 'intruder' });

  // node3's own object rewritten with a stamp that does not verify (its plugin stopped, or it
  // would repair it at once): the others refuse node3, and block rather than send in clear.
  await cli(['lab', 'stop', 'node3', '--dir', lab.dir]);
  const current = (await kni.getNamespacedCustomObject({ ...KNI, name: 'node3' })) as { metadata: Record<string, unknown> & { annotations?: Record<string, string> } };
  await lab.handle().storeAroundAdmission({ ...current, metadata: { ...current.metadata, resourceVersion: undefined, annotations: { ...current.metadata.annotations, 'kmesh.net/validity': 'forged.forged.forged' } } });
  await waitFor(async () => {
    for (const n of [n1, n2]) if (!(await lab.status(n)).peers.some((p) => p.name === 'node3' && p.state === 'refused')) return false;
    return true;
  }, 120_000, () => 'node3 refused by node1 and node2');
  const cap = await captureWire(lab.wirePath, async () => {
    for (const a of [n1, n2]) await lab.managed(a).agent.tcpExchange(lab.managed(n3).ips[0] ?? '', POD_PORT, marker(a.name, 'node3').repeat(40), 3000).catch(() => 0);
  });
  for (const a of [n1, n2]) t.false(cap.pcap.includes(marker(a.name, 'node3')), `${a.name} -> node3: dropped, not sent in clear`);
  for (const n of [n1, n2]) t.true((await lab.status(n)).peers.find((p) => p.name === 'node3')?.protected?.every((c) => c.action === 'blocked') === true);
  // node3's plugin comes back, sees its stamp is bad and publishes again through the webhook.
  await cli(['lab', 'start', 'node3', '--dir', lab.dir]);
  await lab.handle().waitConverged({ spi: 2 });
  t.true((await lab.managed(n1).agent.tcpExchange(lab.managed(n3).ips[0] ?? '', POD_PORT, 'back')) > 0);
});

test.serial('a fourth node joins: all twelve ordered pod pairs, in both families, are ESP and never in clear', async (t) => {
  const { lab } = t.context;
  // The forged-object test's blocked sends count in XfrmOutPolBlock on the senders: compare with then.
  const before = new Map(await Promise.all(lab.nodes.map(async (n) => [n.name, await lab.xfrmErrors(n)] as const)));
  t.is((await cli(['lab', 'join', '--dir', lab.dir])).stdout.trim(), 'node4');
  await lab.refresh();
  t.is(lab.nodes.length, 4);
  t.log(`converged with node4 in ${((await lab.handle().waitConverged({ spi: 2, exact: true })) / 1000).toFixed(1)} s after it was ready`);
  await assertAllEncrypted(t, lab, 2, [4, 6]);
  for (const n of lab.nodes) t.deepEqual(await lab.xfrmErrors(n), before.get(n.name) ?? {}, `${n.name}: no new xfrm errors`);
});

test.serial('kill -9 of one daemon and a rolling restart of every daemon, under traffic: nothing lost, and every new instance writes nothing to the kernel', async (t) => {
  const { lab } = t.context;
  const before = await Promise.all(lab.nodes.map((n) => statesIn(n.netns)));
  const stop = await lab.streams();
  await sleep(1000);
  for (const n of lab.nodes) {
    // node2 crashes (SIGKILL); the others stop as a rolling update stops them (SIGTERM).
    await cli(['lab', 'stop', n.name, '--dir', lab.dir, ...(n.name === 'node2' ? ['--kill'] : [])]);
    await sleep(1000);
    await cli(['lab', 'start', n.name, '--dir', lab.dir]);
    t.notRegex(await lab.metrics(n), /kmesh_ipsec_node_kernel_writes_total\{kind="\w+"\} [1-9]/, `${n.name}: the new instance wrote nothing`);
  }
  await lab.handle().waitConverged({ exact: true });
  const counts = await stop();
  t.log(`streams (received/sent): ${counts.map((c) => `${c.received}/${c.sent}`).join(', ')}`);
  for (const c of counts) {
    t.true(c.sent > 100);
    t.is(c.received, c.sent, 'no datagram lost across kill -9 and the rolling restart');
  }
  t.deepEqual(await Promise.all(lab.nodes.map((n) => statesIn(n.netns))), before, 'same SAs with the same keys');
});

test.serial('never in clear: a daemon restarted knowing only a newer key than its peers keeps every pair encrypted', async (t) => {
  const { lab } = t.context;
  const [n1, ...others] = lab.nodes as [NodeView, ...NodeView[]];
  // The Secret moves to SPI 3; the kubelets of node2..4 are late, and node1's plugin, down
  // meanwhile, comes back knowing nothing but key 3.
  for (const n of others) await lab.handle().holdSecretVolume(n.name);
  await cli(['lab', 'stop', 'node1', '--kill', '--dir', lab.dir]);
  t.is(await secretCreate(lab), 3);
  await cli(['lab', 'start', 'node1', '--dir', lab.dir]);
  await waitFor(async () => (await lab.status(n1)).keys.advertised === 3, 120_000, () => 'node1 to advertise SPI 3');
  const cap = await captureWire(lab.wirePath, async () => {
    for (const b of others) await lab.managed(n1).agent.tcpExchange(lab.managed(b).ips[0] ?? '', POD_PORT, marker('node1', b.name).repeat(40), 60_000);
    for (const a of others) await lab.managed(a).agent.tcpExchange(lab.managed(n1).ips[0] ?? '', POD_PORT, marker(a.name, 'node1').repeat(40), 60_000);
  });
  for (const b of others) {
    t.false(cap.pcap.includes(marker('node1', b.name)), `node1 -> ${b.name} not in clear`);
    t.false(cap.pcap.includes(marker(b.name, 'node1')), `${b.name} -> node1 not in clear`);
    t.deepEqual(espSpis(cap.text, n1.ips[0] ?? '', b.ips[0] ?? ''), [2], `node1 -> ${b.name}: still the SPI ${b.name} accepts`);
  }
  t.deepEqual(clearBetweenNodes(cap.text, lab.nodeIps), []);
  for (const n of others) await lab.handle().releaseSecretVolume(n.name);
  t.log(`converged on SPI 3 in ${((await lab.handle().waitConverged({ spi: 3, exact: true })) / 1000).toFixed(1)} s after the late kubelets caught up`);
});

test.serial('a reboot (new boot ID) and a removal leave the right state on every other node', async (t) => {
  const { lab } = t.context;
  const node2 = lab.node('node2');
  const ofNode2 = (s: { src: string; dst: string }): boolean => node2.ips.includes(s.src) || node2.ips.includes(s.dst);
  const before = new Map(await Promise.all(lab.nodes.map(async (n) => [n.name, await statesIn(n.netns)] as const)));
  const bootBefore = (await lab.kubectl(['get', 'node', 'node2', '-o', 'jsonpath={.status.nodeInfo.bootID}'])).stdout;
  await cli(['lab', 'reboot', 'node2', '--dir', lab.dir]);
  const bootAfter = (await lab.kubectl(['get', 'node', 'node2', '-o', 'jsonpath={.status.nodeInfo.bootID}'])).stdout;
  t.not(bootAfter, bootBefore, 'the Node reports a new boot ID');
  t.log(`converged after the reboot in ${((await lab.handle().waitConverged({ exact: true })) / 1000).toFixed(1)} s after its plugin was ready`);
  for (const n of lab.nodes.filter((x) => x !== node2)) {
    const after = await statesIn(n.netns);
    const old = before.get(n.name) ?? [];
    t.is(after.filter(ofNode2).length, 4, `${n.name}: in and out SAs with node2, both families`);
    for (const s of after.filter(ofNode2)) t.false(old.some((o) => o.src === s.src && o.dst === s.dst && o.keyTag === s.keyTag), `${n.name}: rekeyed ${s.src} -> ${s.dst} for the new boot ID`);
    t.deepEqual(after.filter((s) => !ofNode2(s)), old.filter((s) => !ofNode2(s)), `${n.name}: SAs with the other nodes untouched`);
  }
  await assertAllEncrypted(t, lab, 3, [4]);

  const node3 = lab.node('node3');
  await cli(['lab', 'remove', 'node3', '--dir', lab.dir]);
  await lab.refresh();
  t.log(`converged after the removal in ${((await lab.handle().waitConverged({ exact: true })) / 1000).toFixed(1)} s`);
  const gone = await lab.kubectl(['get', 'kmeshnodeinfo', 'node3', '-n', 'kmesh-system']);
  t.regex(gone.stderr, /NotFound/, 'its KmeshNodeInfo went with its Node (owner reference)');
  for (const n of lab.nodes) {
    t.false((await statesIn(n.netns)).some((s) => node3.ips.includes(s.src) || node3.ips.includes(s.dst)), `${n.name}: no SA with node3`);
    t.false((await policiesIn(n.netns)).some((p) => node3.ips.includes(p.tmplDst) || p.dst.startsWith('10.244.3.') || p.dst.startsWith('fd00:244:3:')), `${n.name}: no policy for node3`);
  }
  await assertAllEncrypted(t, lab, 3, [4, 6]);
});

test.serial('lab down leaves nothing, also after a lab up that was killed half way', async (t) => {
  const { lab } = t.context;
  await cli(['lab', 'down', '--dir', lab.dir]);
  t.deepEqual(await lab.leftovers(), []);
  t.regex((await cli(['lab', 'down', '--dir', lab.dir])).stderr, /nothing to remove/, 'down is idempotent');

  const dir = '/run/kmesh-e2e-killed';
  const up = spawn(process.execPath, [CLI, 'lab', 'up', '--nodes', '2', '--dir', dir], { stdio: 'ignore' });
  // Killed once its namespaces exist and its API process was spawned: namespaces, a bpffs mount and a process to leak.
  await waitFor(() => existsSync(`${dir}/logs/api.log`) || up.exitCode !== null, 300_000, () => 'the killed lab to start its API');
  up.kill('SIGKILL');
  await new Promise((r) => up.once('exit', r));
  t.true(nodeProcessesUsing(dir).length > 0, 'the killed up left a process running');
  t.true((await listNetns()).some((n) => n.startsWith('kml-')), 'and namespaces');
  await cli(['lab', 'down', '--dir', dir]);
  t.deepEqual(nodeProcessesUsing(dir), []);
  t.deepEqual((await listNetns()).filter((n) => n.startsWith('kml-')), []);
  t.false(existsSync(dir));
});
