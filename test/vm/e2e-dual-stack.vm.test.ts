/**
 * End to end, N = 3, dual stack: `kmesh-ipsec lab up --nodes 3 --dual-stack --json` in the test
 * VM (real ESP), then every part together: the webhook at kubectl apply, the node plugin
 * daemons, the kernels, the CLI and the manifests. Checked from outside: tcpdump on the wire,
 * `ip xfrm` and xfrm_stat in the node namespaces, kubectl and client-node against the API.
 *
 * In order: up; every ordered pod pair over IPv4 and IPv6 is ESP and never in clear, the
 * unlabelled namespace stays in clear; a malformed Secret is denied at kubectl apply; a
 * rotation with `kmesh-ipsec secret create` under traffic on every pair loses nothing; forged
 * KmeshNodeInfos written around the webhook are ignored; a reboot and a removal leave every
 * other node right; down leaves nothing.
 */
import anyTest, { type TestFn } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { statesIn, policiesIn } from '../../lab/kernel.js';
import { POD_PORT } from '../../lab/topology.js';
import { captureWire, espSpis } from '../../lab/wire-capture.js';
import { E2eLab, clearBetweenNodes, cli, marker, orderedPairs, waitFor } from './lab-e2e.js';

interface Ctx { lab: E2eLab; started: number }
const test = anyTest as TestFn<Ctx>;
const DIR = '/run/kmesh-e2e-dual';

test.before(async (t) => {
  if (process.env.KMESH_IN_VM !== '1') throw new Error('VM suite: run it with test/vm/run-vm-suites.sh (npm run test:vm)');
  const started = Date.now();
  t.context = { lab: await E2eLab.up(DIR, ['--nodes', '3', '--dual-stack']), started };
});

test.after.always(async (t) => {
  await cli(['lab', 'down', '--dir', DIR], { allowFailure: true });
  t.log(`e2e dual stack: ${((Date.now() - ((t.context as Partial<Ctx>).started ?? Date.now())) / 1000).toFixed(0)} s wall time`);
});

test.serial('lab up: three dual-stack nodes, every KmeshNodeInfo on SPI 1 with Ready and KeyInSync, as kubectl shows them', async (t) => {
  const { lab } = t.context;
  t.log(`lab up took ${lab.upSeconds.toFixed(0)} s`);
  t.deepEqual(lab.nodes.map((n) => n.ips), [['192.168.77.1', 'fd00:77::1'], ['192.168.77.2', 'fd00:77::2'], ['192.168.77.3', 'fd00:77::3']]);
  const get = await lab.kubectl(['get', 'kmeshnodeinfos', '-n', 'kmesh-system']);
  t.is(get.code, 0, get.stderr);
  const rows = get.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 5).join(' '));
  t.deepEqual(rows, [
    'node1 1 ["192.168.77.1","fd00:77::1"] True True',
    'node2 1 ["192.168.77.2","fd00:77::2"] True True',
    'node3 1 ["192.168.77.3","fd00:77::3"] True True',
  ]);
  const status = await cli(['--kubeconfig', lab.topology.kubeconfig, 'status', '--cluster'], { allowFailure: true });
  t.is(status.code, 0, status.stdout);
});

test.serial('every ordered pod pair, IPv4 and IPv6, is ESP on the wire with SPI 1 and never in clear; the unlabelled namespace stays in clear', async (t) => {
  const { lab } = t.context;
  const { pcap, text, markers } = await lab.exchangeAll(lab.nodes, [4, 6]);
  t.is(markers.length, 12);
  for (const m of markers) t.false(pcap.includes(m), `never in clear: ${m}`);
  for (const [a, b] of orderedPairs(lab.nodes)) {
    for (const k of [0, 1]) t.deepEqual(espSpis(text, a.ips[k] ?? '', b.ips[k] ?? ''), [1], `${a.name} -> ${b.name} IPv${k === 0 ? 4 : 6}: ESP, SPI 1`);
  }
  t.deepEqual(clearBetweenNodes(text, lab.nodeIps), [], 'every packet between nodes is ESP, both families');
  for (const n of lab.nodes) t.deepEqual(await lab.xfrmErrors(n), {}, `${n.name}: /proc/net/xfrm_stat all zero`);

  const plain = lab.node('node1').pods.find((p) => p.namespace === 'plain')!;
  const target = lab.managed(lab.node('node2'));
  const clear = 'UNLABELLED-NAMESPACE-TRAFFIC|';
  const cap = await captureWire(lab.wirePath, () => plain.agent.tcpExchange(target.ips[0] ?? '', POD_PORT, clear.repeat(40)));
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
  const created = await cli(['--kubeconfig', lab.topology.kubeconfig, 'secret', 'create', '-o', 'json']);
  t.is((JSON.parse(created.stdout) as { nextSpi: number }).nextSpi, 2);
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
  const [n1, n2, n3] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0], typeof lab.nodes[0]];

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
  await kni.deleteNamespacedCustomObject({ group: 'kmesh.net', version: 'v1alpha1', namespace: 'kmesh-system', plural: 'kmeshnodeinfos', name: 'intruder' });

  // node3's own object rewritten with a stamp that does not verify (its plugin stopped, or it
  // would repair it at once): the others refuse node3, and block rather than send in clear.
  await cli(['lab', 'stop', 'node3', '--dir', lab.dir]);
  const current = (await kni.getNamespacedCustomObject({ group: 'kmesh.net', version: 'v1alpha1', namespace: 'kmesh-system', plural: 'kmeshnodeinfos', name: 'node3' })) as { metadata: Record<string, unknown> & { annotations?: Record<string, string> } };
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

test.serial('a reboot (new boot ID) and a removal leave the right state on every other node', async (t) => {
  const { lab } = t.context;
  const before = new Map(await Promise.all(lab.nodes.map(async (n) => [n.name, await statesIn(n.netns)] as const)));
  const bootBefore = (await lab.kubectl(['get', 'node', 'node2', '-o', 'jsonpath={.status.nodeInfo.bootID}'])).stdout;
  await cli(['lab', 'reboot', 'node2', '--dir', lab.dir]);
  const bootAfter = (await lab.kubectl(['get', 'node', 'node2', '-o', 'jsonpath={.status.nodeInfo.bootID}'])).stdout;
  t.not(bootAfter, bootBefore, 'the Node reports a new boot ID');
  t.log(`converged after the reboot in ${((await lab.handle().waitConverged({ exact: true })) / 1000).toFixed(1)} s`);
  for (const name of ['node1', 'node3']) {
    const n = lab.node(name);
    const after = await statesIn(n.netns);
    const toNode2 = (s: { src: string; dst: string }): boolean => lab.node('node2').ips.includes(s.src) || lab.node('node2').ips.includes(s.dst);
    const old = before.get(name) ?? [];
    t.is(after.filter(toNode2).length, 4, `${name}: in and out SAs with node2, both families`);
    for (const s of after.filter(toNode2)) t.false(old.some((o) => o.src === s.src && o.dst === s.dst && o.keyTag === s.keyTag), `${name}: rekeyed ${s.src} -> ${s.dst} for the new boot ID`);
    t.deepEqual(after.filter((s) => !toNode2(s)), old.filter((s) => !toNode2(s)), `${name}: SAs with the other node untouched`);
  }
  const { pcap, markers, text } = await lab.exchangeAll(lab.nodes, [4, 6]);
  for (const m of markers) t.false(pcap.includes(m));
  t.deepEqual(clearBetweenNodes(text, lab.nodeIps), []);

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
  const after = await lab.exchangeAll(lab.nodes, [4, 6]);
  for (const m of after.markers) t.false(after.pcap.includes(m));
});

test.serial('lab down removes every namespace, process, link, pin and file', async (t) => {
  const { lab } = t.context;
  await cli(['lab', 'down', '--dir', lab.dir]);
  t.deepEqual(await lab.leftovers(), []);
  const again = await cli(['lab', 'down', '--dir', lab.dir]);
  t.regex(again.stderr, /nothing to remove/, 'down is idempotent');
});
