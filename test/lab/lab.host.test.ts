// The lab's pieces that this machine's kernel can run (it has no ESP): one-line refusals, the
// network plumbing with pod agents talking across nodes, and the API listening inside a node
// namespace for kubectl run there. The whole lab runs in the VM (test/vm/e2e-*.vm.test.ts).
import '../helpers/require-root.js';
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLocalApi } from '../../localapi/index.js';
import { kubeconfigYaml } from '../../localapi/kubeconfig.js';
import { listenInNetns } from '../../lab/netns-listener.js';
import { addBridge, plugNode, plugPod, routePodCidrs } from '../../lab/network.js';
import { POD_AGENT, PodClient } from '../../lab/pod-agent.js';
import { addNetns, deleteNetns, inNetns, listNetns, netnsPath, run } from '../../lab/system.js';
import { POD_PORT, planLab, planNetns } from '../../lab/topology.js';
import { probeEsp } from '../../lab/kernel.js';

const CLI = new URL('../../cli/main.js', import.meta.url).pathname;
const plan = planLab(Math.floor(Math.random() * 0xffff).toString(16).padStart(4, '0'), { nodes: 2, podsPerNode: 1, dualStack: true });
const dir = mkdtempSync(join(tmpdir(), 'kmesh-lab-host-'));
const children: ReturnType<typeof spawn>[] = [];

test.before(async () => {
  for (const ns of planNetns(plan)) await addNetns(ns);
  await addBridge(plan.wire);
  for (const node of plan.nodes) {
    await plugNode(plan.wire, node);
    for (const pod of node.pods) await plugPod(node, pod);
  }
  await routePodCidrs(plan.nodes);
});

test.after.always(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const ns of planNetns(plan)) await deleteNetns(ns);
  rmSync(dir, { recursive: true, force: true });
});

test('on a kernel without ESP, lab up says so in one line and leaves nothing behind', async (t) => {
  const esp = await probeEsp();
  if (esp.ok) {
    t.pass('this kernel has ESP: the VM suites cover the lab');
    return;
  }
  const before = await listNetns();
  const labDir = join(dir, 'refused');
  const r = await run([process.execPath, CLI, 'lab', 'up', '--dir', labDir], { allowFailure: true });
  t.is(r.code, 1);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /^kmesh-ipsec: lab up: this kernel cannot run the lab: no ESP with rfc4106\(gcm\(aes\)\) over IPv4 \(ip xfrm state add: .*\)\. A lab that stays up needs a kernel with ESP; here, `kmesh-ipsec lab demo` runs itself in the kernel VM/);
  t.false(existsSync(labDir));
  t.deepEqual((await listNetns()).filter((n) => n.startsWith('kml-') && !before.includes(n)), [], 'the probe namespace is gone too');
  const demo = await run([process.execPath, CLI, 'lab', 'demo', '--no-vm', '--dir', labDir], { allowFailure: true });
  t.is(demo.code, 1);
  t.regex(demo.stderr, /^kmesh-ipsec: lab demo: this kernel cannot run the lab: /);
});

test('lab down: nothing recorded is nothing to do; a directory that is not a lab is left alone', async (t) => {
  const none = await run([process.execPath, CLI, 'lab', 'down', '--dir', join(dir, 'never')], { allowFailure: true });
  t.is(none.code, 0, none.stderr);
  t.regex(none.stderr, /no lab in .*never; nothing to remove/);
  const other = join(dir, 'other');
  mkdirSync(other);
  writeFileSync(join(other, 'precious'), 'x');
  const refused = await run([process.execPath, CLI, 'lab', 'down', '--dir', other], { allowFailure: true });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /holds no lab .*not touching it/);
  t.true(existsSync(join(other, 'precious')));
});

test('pods talk across nodes over the wire (routed per pod, IPv4 and IPv6), through their agents', async (t) => {
  const clients = [];
  for (const node of plan.nodes) {
    for (const pod of node.pods) {
      const socket = join(dir, `${pod.name}.sock`);
      children.push(spawn('nsenter', [`--net=${netnsPath(pod.netns)}`, '--', process.execPath, POD_AGENT, socket, String(POD_PORT), pod.ip, pod.ip6 ?? ''].filter((a) => a !== ''), { stdio: 'ignore' }));
      clients.push({ pod, client: new PodClient(socket) });
    }
  }
  for (const { client } of clients) for (let i = 0; i < 300 && !existsSync(client.socketPath); i++) await sleep(100);
  const [a, b] = [plan.nodes[0]!.pods[0]!, plan.nodes[1]!.pods[0]!];
  const agentA = clients.find((c) => c.pod === a)!.client;
  t.is(await agentA.tcpExchange(b.ip, POD_PORT, 'hello'), 5);
  t.is(await agentA.tcpExchange(b.ip6!, POD_PORT, 'hello6'), 6);
  const plain = clients.find((c) => c.pod.namespace === 'plain')!.client;
  t.is(await plain.tcpExchange(a.ip, POD_PORT, 'same node'), 9, 'pods on one node reach each other through the node');
  const route = await run(inNetns(plan.nodes[0]!.netns, ['ip', 'route', 'get', b.ip]));
  t.regex(route.stdout, new RegExp(`via ${plan.nodes[1]!.ip.replaceAll('.', '\\.')} dev eth0`));
});

test('the API listens on 127.0.0.1:6443 inside a node namespace; kubectl run there reaches it', async (t) => {
  const api = await startLocalApi();
  try {
    const node = plan.nodes[0]!;
    api.alsoServe(await listenInNetns(netnsPath(node.netns), '127.0.0.1', 6443));
    const kubeconfig = join(dir, 'node.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml({ server: 'https://127.0.0.1:6443', caPem: api.caPem, username: 'local-api-admin', token: api.tokenFor() }));
    const r = await run(inNetns(node.netns, ['kubectl', '--kubeconfig', kubeconfig, 'get', 'namespace', 'kmesh-system', '-o', 'name']), { allowFailure: true, env: { ...process.env, KUBECACHEDIR: join(dir, 'kubecache') } });
    t.is(r.stdout.trim(), 'namespace/kmesh-system', r.stderr);
    const outside = await run(inNetns(plan.nodes[1]!.netns, ['kubectl', '--kubeconfig', kubeconfig, '--request-timeout', '3s', 'get', 'ns']), { allowFailure: true });
    t.not(outside.code, 0, 'another namespace has no such listener');
  } finally {
    await api.close();
  }
});
