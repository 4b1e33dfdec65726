/**
 * End to end, N = 4: `kmesh-ipsec lab up --nodes 4 --json` in the test VM (real ESP). Every
 * ordered pod pair is ESP; `kill -9` and restart of a daemon, and a rolling restart of every
 * daemon, lose no packet under traffic and (the rolling one) change nothing in the kernel; a
 * daemon restarted knowing only a newer key than its peers never sends in clear. Then a
 * killed `lab up` is cleaned by `lab down`, and nothing of either lab is left.
 */
import anyTest, { type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { statesIn } from '../../lab/kernel.js';
import { listNetns, nodeProcessesUsing } from '../../lab/system.js';
import { espSpis } from '../../lab/wire-capture.js';
import { captureWire } from '../../lab/wire-capture.js';
import { POD_PORT } from '../../lab/topology.js';
import { CLI, E2eLab, clearBetweenNodes, cli, marker, orderedPairs, waitFor } from './lab-e2e.js';

interface Ctx { lab: E2eLab; started: number }
const test = anyTest as TestFn<Ctx>;
const DIR = '/run/kmesh-e2e-four';

test.before(async (t) => {
  if (process.env.KMESH_IN_VM !== '1') throw new Error('VM suite: run it with test/vm/run-vm-suites.sh (npm run test:vm)');
  const started = Date.now();
  t.context = { lab: await E2eLab.up(DIR, ['--nodes', '4']), started };
});

test.after.always(async (t) => {
  await cli(['lab', 'down', '--dir', DIR], { allowFailure: true });
  t.log(`e2e four nodes: ${((Date.now() - ((t.context as Partial<Ctx>).started ?? Date.now())) / 1000).toFixed(0)} s wall time`);
});

test.serial('all twelve ordered pod pairs are ESP on the wire, never in clear; no xfrm errors', async (t) => {
  const { lab } = t.context;
  t.log(`lab up took ${lab.upSeconds.toFixed(0)} s`);
  const { pcap, text, markers } = await lab.exchangeAll();
  t.is(markers.length, 12);
  for (const m of markers) t.false(pcap.includes(m), `never in clear: ${m}`);
  for (const [a, b] of orderedPairs(lab.nodes)) t.deepEqual(espSpis(text, a.ips[0] ?? '', b.ips[0] ?? ''), [1], `${a.name} -> ${b.name}: ESP, SPI 1`);
  t.deepEqual(clearBetweenNodes(text, lab.nodeIps), []);
  for (const n of lab.nodes) t.deepEqual(await lab.xfrmErrors(n), {}, `${n.name}: xfrm_stat all zero`);
});

test.serial('kill -9 of a daemon and its restart lose no packet on any pair; the kernel keeps its SAs', async (t) => {
  const { lab } = t.context;
  const before = await Promise.all(lab.nodes.map((n) => statesIn(n.netns)));
  const stop = await lab.streams();
  await sleep(1000);
  await cli(['lab', 'stop', 'node2', '--kill', '--dir', lab.dir]);
  await sleep(2000);
  await cli(['lab', 'start', 'node2', '--dir', lab.dir]);
  await lab.handle().waitConverged({ exact: true });
  await sleep(1000);
  const counts = await stop();
  t.log(`streams (received/sent): ${counts.map((c) => `${c.received}/${c.sent}`).join(', ')}`);
  for (const c of counts) {
    t.true(c.sent > 100);
    t.is(c.received, c.sent, 'no datagram lost across kill -9 and restart');
  }
  t.deepEqual(await Promise.all(lab.nodes.map((n) => statesIn(n.netns))), before, 'same SAs with the same keys');
});

test.serial('a rolling restart of every daemon under traffic loses nothing, and the new instances write nothing to the kernel', async (t) => {
  const { lab } = t.context;
  const before = await Promise.all(lab.nodes.map((n) => statesIn(n.netns)));
  const stop = await lab.streams();
  for (const n of lab.nodes) {
    await cli(['lab', 'stop', n.name, '--dir', lab.dir]);
    await sleep(500);
    await cli(['lab', 'start', n.name, '--dir', lab.dir]);
    t.notRegex(await lab.metrics(n), /kmesh_ipsec_node_kernel_writes_total\{kind="\w+"\} [1-9]/, `${n.name}: the new instance wrote nothing`);
  }
  await lab.handle().waitConverged({ exact: true });
  const counts = await stop();
  t.log(`streams (received/sent): ${counts.map((c) => `${c.received}/${c.sent}`).join(', ')}`);
  for (const c of counts) t.is(c.received, c.sent, 'no datagram lost across the rolling restart');
  t.deepEqual(await Promise.all(lab.nodes.map((n) => statesIn(n.netns))), before, 'same SAs with the same keys');
});

test.serial('never in clear: a daemon restarted knowing only a newer key than its peers keeps every pair encrypted', async (t) => {
  const { lab } = t.context;
  const [n1, ...others] = lab.nodes as [typeof lab.nodes[0], ...typeof lab.nodes];
  // The Secret moves to SPI 2; the kubelets of node2..4 are late, node1's plugin was down and
  // comes back knowing nothing but key 2.
  for (const n of others) await lab.handle().holdSecretVolume(n.name);
  await cli(['lab', 'stop', 'node1', '--kill', '--dir', lab.dir]);
  const created = await cli(['--kubeconfig', lab.topology.kubeconfig, 'secret', 'create', '-o', 'json']);
  t.is((JSON.parse(created.stdout) as { nextSpi: number }).nextSpi, 2);
  await cli(['lab', 'start', 'node1', '--dir', lab.dir]);
  await waitFor(async () => (await lab.status(n1)).keys.advertised === 2, 120_000, () => 'node1 to advertise SPI 2');
  const cap = await captureWire(lab.wirePath, async () => {
    for (const b of others) await lab.managed(n1).agent.tcpExchange(lab.managed(b).ips[0] ?? '', POD_PORT, marker('node1', b.name).repeat(40), 60_000);
    for (const a of others) await lab.managed(a).agent.tcpExchange(lab.managed(n1).ips[0] ?? '', POD_PORT, marker(a.name, 'node1').repeat(40), 60_000);
  });
  for (const b of others) {
    t.false(cap.pcap.includes(marker('node1', b.name)), `node1 -> ${b.name} not in clear`);
    t.false(cap.pcap.includes(marker(b.name, 'node1')), `${b.name} -> node1 not in clear`);
    t.deepEqual(espSpis(cap.text, n1.ips[0] ?? '', b.ips[0] ?? ''), [1], `node1 -> ${b.name}: still the SPI ${b.name} accepts`);
  }
  t.deepEqual(clearBetweenNodes(cap.text, lab.nodeIps), []);
  for (const n of others) await lab.handle().releaseSecretVolume(n.name);
  t.log(`converged on SPI 2 in ${((await lab.handle().waitConverged({ spi: 2, exact: true }, 300_000)) / 1000).toFixed(1)} s after the late kubelets caught up`);
  const after = await lab.exchangeAll();
  for (const m of after.markers) t.false(after.pcap.includes(m));
  for (const [a, b] of orderedPairs(lab.nodes)) t.deepEqual(espSpis(after.text, a.ips[0] ?? '', b.ips[0] ?? ''), [2]);
});

test.serial('lab down leaves nothing, also after a lab up that was killed half way', async (t) => {
  const { lab } = t.context;
  await cli(['lab', 'down', '--dir', lab.dir]);
  t.deepEqual(await lab.leftovers(), []);

  const dir = '/run/kmesh-e2e-killed';
  const up = spawn(process.execPath, [CLI, 'lab', 'up', '--nodes', '2', '--dir', dir], { stdio: 'ignore' });
  // Killed once its namespaces exist and its API process was spawned: namespaces, a bpffs mount and a process to leak.
  await waitFor(() => existsSync(`${dir}/logs/api.log`) || up.exitCode !== null, 300_000, () => 'the killed lab to start its API');
  up.kill('SIGKILL');
  await new Promise((r) => up.once('exit', r));
  t.true(nodeProcessesUsing(dir).length > 0, 'the killed up left processes running');
  t.true((await listNetns()).some((n) => n.startsWith('kml-')), 'and namespaces');
  await cli(['lab', 'down', '--dir', dir]);
  t.deepEqual(nodeProcessesUsing(dir), []);
  t.deepEqual((await listNetns()).filter((n) => n.startsWith('kml-')), []);
  t.false(existsSync(dir));
});
