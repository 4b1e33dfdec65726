/**
 * `kmesh-ipsec lab demo`: the whole story on one machine. A lab comes up, every pod pair talks
 * over TCP with a capture on the wire, the key rotates under continuous traffic, a malformed
 * Secret is refused at `kubectl apply`, a node reboots, a node leaves; then the lab is removed.
 * Everything is observed from outside the daemons (tcpdump on the wire, the kernels' xfrm
 * state, the API), and the result is a short report (demo-report.ts).
 */
import { release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { SecretStore } from '../cli/secret-store.js';
import { type DemoReport, type PairResult, demoOk } from './demo-report.js';
import { Lab, type Progress } from './lab.js';
import { run } from './system.js';
import { POD_PORT, type NodePlan, type PodPlan } from './topology.js';
import { captureWire, espSpis } from './wire-capture.js';
import { netnsPath } from './system.js';

export interface DemoOptions {
  readonly dir: string;
  readonly nodes: number;
  readonly progress: Progress;
}

const STREAM_INTERVAL_MS = 20;

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const { progress } = options;
  const started = Date.now();
  progress(`up: ${options.nodes} nodes, one pod each in the Kmesh-managed namespace, one more in an unlabelled namespace`);
  const lab = await Lab.up({ dir: options.dir, nodes: options.nodes, podsPerNode: 1, dualStack: false, progress: (l) => { progress(`  ${l}`); } });
  try {
    progress('pod to pod over TCP, every ordered pair, tcpdump on the wire');
    const pairs = await exchangeAll(lab, lab.nodes);
    for (const p of pairs) progress(`  ${p.from} -> ${p.to}: ${p.encrypted ? `ESP, SPI ${p.spis.join(', ')}` : 'clear'}`);

    progress('a malformed secret through kubectl apply');
    const malformed = await applyMalformed(lab);
    progress(`  ${malformed.refused ? 'refused' : 'ACCEPTED'}: ${malformed.message}`);

    progress('key rotation under continuous traffic on every pair (kmesh-ipsec secret create)');
    const rotation = await rotateUnderTraffic(lab);
    progress(`  SPI ${rotation.fromSpi} -> ${rotation.toSpi}: converged in ${rotation.convergeSeconds.toFixed(1)} s; ${rotation.sent} datagrams sent, ${rotation.lost} lost`);

    const rebooted = lab.nodes[1] ?? lab.nodes[0];
    if (rebooted === undefined) throw new Error('no node to reboot');
    progress(`reboot of ${rebooted.name} (its namespaces and kernel state gone, new boot ID)`);
    const rebootStart = Date.now();
    await lab.reboot(rebooted.name);
    await lab.waitConverged();
    const rebootSeconds = (Date.now() - rebootStart) / 1000;
    const after = await exchangeAll(lab, lab.nodes, false);
    const pairsEncrypted = after.every((p) => p.encrypted);
    progress(`  converged in ${rebootSeconds.toFixed(1)} s; every pair ${pairsEncrypted ? 'encrypted again' : 'NOT all encrypted'}`);

    const removed = lab.nodes[lab.nodes.length - 1];
    if (removed === undefined || lab.nodes.length < 2) throw new Error('no node to remove');
    progress(`removal of ${removed.name} (its machine gone, its Node object deleted)`);
    const removeStart = Date.now();
    await lab.remove(removed.name);
    await lab.waitConverged({ exact: true });
    const removeSeconds = (Date.now() - removeStart) / 1000;
    progress(`  converged in ${removeSeconds.toFixed(1)} s`);

    const report = {
      nodes: options.nodes,
      kernel: release(),
      inVm: process.env.KMESH_IN_VM === '1',
      pairs,
      rotation,
      malformed,
      reboot: { node: rebooted.name, convergeSeconds: rebootSeconds, pairsEncrypted },
      removal: { node: removed.name, convergeSeconds: removeSeconds },
      totalSeconds: 0,
    };
    progress('down');
    await Lab.down(options.dir, (l) => { progress(`  ${l}`); });
    return { ...report, totalSeconds: (Date.now() - started) / 1000, ok: demoOk(report) };
  } catch (err: unknown) {
    progress(`demo failed: ${err instanceof Error ? err.message : String(err)}; removing the lab`);
    await Lab.down(options.dir).catch(() => undefined);
    throw err;
  }
}

const label = (p: PodPlan): string => `${p.namespace}/${p.name}`;
const marker = (from: PodPlan, to: PodPlan): string => `KMESH-DEMO-PLAINTEXT ${from.name} to ${to.name}|`;

/**
 * Every ordered pair of managed pods on different nodes (and, with `plain`, the unlabelled pod
 * to a pod on another node), one TCP exchange each, under one capture.
 */
async function exchangeAll(lab: Lab, nodes: readonly NodePlan[], plain = true): Promise<PairResult[]> {
  const managed = nodes.flatMap((n) => n.pods.filter((p) => p.namespace === 'demo').slice(0, 1).map((p) => ({ node: n, pod: p })));
  const pairs = managed.flatMap((a) => managed.filter((b) => b.node !== a.node).map((b) => [a, b] as const));
  const unlabelled = plain ? nodes.flatMap((n) => n.pods.filter((p) => p.namespace !== 'demo').map((p) => ({ node: n, pod: p }))) : [];
  for (const u of unlabelled) {
    const target = managed.find((m) => m.node !== u.node);
    if (target !== undefined) pairs.push([u, target] as const);
  }
  const { pcap, text } = await captureWire(netnsPath(lab.state.plan.wire.netns), async () => {
    for (const [a, b] of pairs) await lab.pod(a.pod.name).tcpExchange(b.pod.ip, POD_PORT, marker(a.pod, b.pod).repeat(40));
  });
  return pairs.map(([a, b]) => {
    const clear = pcap.includes(marker(a.pod, b.pod));
    // The capture is per node pair: ESP seen there when this pair's payload went in clear is another pair's.
    const spis = clear ? [] : espSpis(text, a.node.ip, b.node.ip);
    return { from: label(a.pod), to: label(b.pod), managed: a.pod.namespace === 'demo', encrypted: !clear && spis.length > 0, spis };
  });
}

/** A Secret whose key lost a digit on the way from a password manager (71 hex digits, not 72). */
const MALFORMED_SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: kmesh-ipsec
  namespace: kmesh-system
type: Opaque
stringData:
  ipSec: '{"spi":99,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${'0123456789abcdef'.repeat(5).slice(0, 71)}","length":128}'
`;

async function applyMalformed(lab: Lab): Promise<DemoReport['malformed']> {
  const r = await run(['kubectl', '--kubeconfig', lab.kubeconfigPath, 'apply', '-f', '-'], { input: MALFORMED_SECRET, allowFailure: true, timeoutMs: 60_000 });
  const output = r.stderr.trim() || r.stdout.trim();
  const line = output.split('\n').find((l) => l.includes('denied the request')) ?? output;
  // kubectl's own prefix (`Error from server ...: error when patching "STDIN": `) says nothing the user needs.
  const said = line.includes('admission webhook') ? line.slice(line.indexOf('admission webhook')) : line;
  return { refused: r.code !== 0 && said.includes('denied the request'), message: said.slice(0, 400) };
}

async function rotateUnderTraffic(lab: Lab): Promise<DemoReport['rotation']> {
  const managed = lab.nodes.flatMap((n) => n.pods.filter((p) => p.namespace === 'demo').slice(0, 1));
  const pairs = managed.flatMap((a) => managed.filter((b) => b !== a).map((b) => [a, b] as const));
  const streams = await Promise.all(pairs.map(async ([a, b]) => ({ a, id: await lab.pod(a.name).startStream(b.ip, POD_PORT, STREAM_INTERVAL_MS) })));
  await sleep(1000);
  const store = new SecretStore(lab.kubeConfig());
  const t0 = Date.now();
  const outcome = await store.createOrRotate();
  if (outcome.action !== 'rotated') throw new Error(`secret create did not rotate (${outcome.action})`);
  await lab.waitConverged({ spi: outcome.key.spi });
  const convergeSeconds = (Date.now() - t0) / 1000;
  // Traffic keeps flowing while the old SAs age out (grace period), then the wire is checked.
  await lab.waitConverged({ spi: outcome.key.spi, exact: true }, 120_000);
  const { text } = await captureWire(netnsPath(lab.state.plan.wire.netns), () => sleep(1500));
  const counts = await Promise.all(streams.map((s) => lab.pod(s.a.name).stopStream(s.id)));
  const sent = counts.reduce((k, c) => k + c.sent, 0);
  const received = counts.reduce((k, c) => k + c.received, 0);
  const spisAfter = [...new Set(lab.nodes.flatMap((a) => lab.nodes.filter((b) => b !== a).flatMap((b) => espSpis(text, a.ip, b.ip))))].sort((x, y) => x - y);
  return { fromSpi: outcome.from, toSpi: outcome.key.spi, streams: streams.length, sent, lost: sent - received, convergeSeconds, spisAfter };
}
