/**
 * A whole kmesh-ipsec cluster on one machine: N nodes as network namespaces on a shared wire,
 * pods behind them, the local Kubernetes API, the real webhook and one real `kmesh-ipsec node`
 * daemon per node, each a process of its own that outlives the command that started it.
 * Everything the lab makes is recorded in <dir>/lab.json first (state.ts), so `down` removes
 * it all, also after a failed or killed `up`. Its directory: layout.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { KMESH_NAMESPACE } from '../core/constants.js';
import { SecretStore } from '../cli/secret-store.js';
import { WebhookNames } from '../webhook/configurations.js';
import type { KubeObject } from '../localapi/index.js';
import { kubeconfigYaml } from '../localapi/kubeconfig.js';
import { API_PROCESS, type ApiProcessConfig } from './api-process.js';
import { NODE_PLUGIN_USER, nodeObject, nodeToken, podObject } from './cluster-objects.js';
import { callControl } from './control.js';
import { NODE_API_SERVER, apiProcessConfig, webhookArgs, writeControlPlaneFiles } from './control-plane.js';
import { apiProblems, kernelProblems, type ConvergenceTarget } from './convergence.js';
import { probeEsp } from './kernel.js';
import { LabLayout } from './layout.js';
import { addBridge, plugNode, plugPod, routePodCidrs } from './network.js';
import { POD_AGENT, PodClient } from './pod-agent.js';
import { writeProjectedVolume } from './projected-volume.js';
import { type LabState, type ProcessRecord, readState, withLabLock, writeState } from './state.js';
import {
  addNetns, commandExists, deleteNetns, freePort, httpsAnswers, inNetns, ipIn, isRunning, listNetns, mountBpffs, netnsPids, nodeProcessesUsing, run, spawnDetached,
  stopProcess, unmountIfMounted,
} from './system.js';
import { LIMITS, NODE_STATUS_PORT, POD_PORT, planLab, planNetns, planNode, topologyOf, type LabOptions, type NodePlan, type PodPlan, type Topology } from './topology.js';

const DIST = fileURLToPath(new URL('..', import.meta.url));
export const CLI_MAIN = join(DIST, 'cli', 'main.js');
/** Where a lab lives unless --dir says otherwise (root's runtime directory: gone after a reboot). */
export const DEFAULT_LAB_DIR = '/run/kmesh-ipsec-lab';
/** How the lab runs the node plugins: short periods, so that a demo takes minutes, not hours. */
export const LAB_NODE_FLAGS = ['--grace-period', '10s', '--publish-jitter', '1s', '--resync-interval', '60s'] as const;

/** A problem the user can act on; the CLI prints its message as one line. */
export class LabError extends Error {
  override readonly name = 'LabError';
}

export type Progress = (line: string) => void;

export interface UpOptions extends LabOptions {
  readonly dir: string;
  readonly progress?: Progress;
  /** How long to wait for every node to advertise the first SPI (default 10 min: emulated VMs are slow). */
  readonly timeoutMs?: number;
}

/** Tools the lab runs; tcpdump only for captures (demo, tests). */
const TOOLS = ['ip', 'nsenter', 'tc', 'bpftool', 'mount'] as const;

/** Why this machine cannot run a lab (not root, a tool missing), or undefined. ESP is checked apart. */
export async function hostProblem(extraTools: readonly string[] = []): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, xfrm, BPF)';
  const missing: string[] = [];
  for (const tool of [...TOOLS, ...extraTools]) if (!(await commandExists(tool))) missing.push(tool);
  return missing.length === 0 ? undefined : `missing ${missing.join(', ')} (Debian: apt-get install iproute2 util-linux bpftool tcpdump)`;
}

export class Lab {
  readonly dir: string;
  readonly #layout: LabLayout;
  #state: LabState;

  private constructor(state: LabState) {
    this.dir = state.dir;
    this.#layout = new LabLayout(state.dir);
    this.#state = state;
  }

  get state(): Readonly<LabState> {
    return this.#state;
  }

  get nodes(): readonly NodePlan[] {
    return this.#state.nodes;
  }

  get kubeconfigPath(): string {
    return this.#layout.kubeconfig;
  }

  /** The lab recorded in `dir`. */
  static open(dir: string): Lab {
    const state = readState(dir);
    if (state === undefined) throw new LabError(`no lab in ${dir} (start one with: kmesh-ipsec lab up)`);
    return new Lab(state);
  }

  topology(): Topology {
    return topologyOf(this.#state.plan, this.kubeconfigPath, this.#state.nodes);
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  node(name: string): NodePlan {
    const node = this.#state.nodes.find((n) => n.name === name);
    if (node === undefined) throw new LabError(`no node ${JSON.stringify(name)} in this lab (nodes: ${this.#state.nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  pod(name: string): PodClient {
    return new PodClient(this.#layout.podSocket(name));
  }

  bootId(node: string): string {
    return readFileSync(this.#layout.node(node, 'boot_id'), 'utf8').trim();
  }

  /**
   * Builds and starts a lab; resolves once every node advertises the first SPI and every pair
   * is programmed. A failure removes everything made so far.
   */
  static async up(options: UpOptions): Promise<Lab> {
    const progress = options.progress ?? (() => undefined);
    const problem = await hostProblem();
    if (problem !== undefined) throw new LabError(`lab up: ${problem}`);
    const esp = await probeEsp();
    if (!esp.ok) throw new NoEspError(esp.reason);
    prepareDir(options.dir);
    const lab = await withLabLock(options.dir, async () => {
      const id = await freshId();
      const plan = planLab(id, options);
      const state: LabState = {
        version: 1, id, dir: options.dir, createdAt: new Date().toISOString(), plan, nodes: [...plan.nodes], netns: [], processes: {}, ready: false,
      };
      writeState(state);
      const created = new Lab(state);
      try {
        await created.#build(progress, options.timeoutMs ?? 600_000);
      } catch (err: unknown) {
        progress(`lab up failed: ${err instanceof Error ? err.message : String(err)}; removing what was made`);
        await created.#teardown(() => undefined);
        throw err;
      }
      return created;
    });
    return lab;
  }

  async #build(report: Progress, timeoutMs: number): Promise<void> {
    const s = this.#state;
    const { plan } = s;
    const started = Date.now();
    // Each line says when its step was done, so a slow machine shows where the time goes.
    const progress = (line: string): void => {
      report(`${line} [${((Date.now() - started) / 1000).toFixed(0)} s]`);
    };
    const layout = this.#layout;
    for (const sub of layout.subdirectories) mkdirSync(sub, { recursive: true, mode: 0o700 });

    s.bpffs = layout.bpffs;
    this.#save();
    await mountBpffs(s.bpffs);

    const podCount = plan.nodes.reduce((k, n) => k + n.pods.length, 0);
    await this.#createNetns([plan.wire.netns]);
    await addBridge(plan.wire);
    for (const node of plan.nodes) await this.#buildNode(node);
    await routePodCidrs(plan.nodes);
    progress(`network: ${plan.nodes.length} nodes and ${podCount} pods as namespaces kml-${plan.id}-*, wire bridge ${plan.wire.bridge} in ${plan.wire.netns}`);

    const files = await writeControlPlaneFiles(layout);
    for (const node of plan.nodes) await this.#prepareNodeFiles(node, randomUUID(), files.jwks);
    s.apiPort = await freePort();
    s.webhookPort = await freePort();
    this.#save();
    const config = await apiProcessConfig({
      layout, nodes: plan.nodes, bootIds: Object.fromEntries(plan.nodes.map((n) => [n.name, this.bootId(n.name)])), apiPort: s.apiPort, webhookPort: s.webhookPort, files,
    });
    writeFileSync(layout.apiConfig, JSON.stringify(config), { mode: 0o600 });
    const api = this.#spawn('api', 'api', [process.execPath, API_PROCESS, layout.apiConfig]);
    await this.#until(api, () => callControl(layout.controlSocket, 'GET', '/v1/ready', undefined, 5000).then(() => true, () => false), 'the API process to answer', 180_000);
    progress(`Kubernetes API (local, in memory) on https://127.0.0.1:${s.apiPort} and 127.0.0.1:6443 in every node; kubeconfig ${layout.kubeconfig}`);

    const webhookPort = s.webhookPort;
    const webhook = this.#spawn('webhook', 'webhook', [process.execPath, CLI_MAIN, ...webhookArgs(layout, webhookPort, files.tls)]);
    const servername = `${WebhookNames.service}.${KMESH_NAMESPACE}.svc`;
    await this.#until(webhook, () => httpsAnswers({ port: webhookPort, path: '/readyz', caPem: files.caPem, servername }), 'the webhook to be ready', 180_000);
    progress(`webhook (dev certificates) on 127.0.0.1:${webhookPort}, registered from manifests/base/webhook-configurations.yaml`);

    for (const node of plan.nodes) this.#startNode(node);
    for (const node of plan.nodes) for (const pod of node.pods) this.#startPod(pod);
    progress(`kmesh-ipsec node started in ${plan.nodes.map((n) => n.name).join(', ')}; an echo pod agent in each of ${podCount} pods`);
    await Promise.all(plan.nodes.flatMap((n) => n.pods.map((p) => this.#podUp(p))));

    const outcome = await new SecretStore(this.kubeConfig()).createOrRotate();
    const spi = outcome.action === 'refused' ? outcome.from : outcome.key.spi;
    progress(`secret kmesh-system/kmesh-ipsec created through the API and the webhook: SPI ${spi}, random key`);
    const waited = await this.waitConverged({ spi }, timeoutMs);
    progress(`every node advertises SPI ${spi} and every pair is programmed (${(waited / 1000).toFixed(1)} s after the secret)`);
    s.ready = true;
    this.#save();
  }

  /** Waits until the lab has converged on `spi` (default: the Secret's); resolves with the milliseconds it took. */
  async waitConverged(target: Partial<ConvergenceTarget> = {}, timeoutMs = 300_000): Promise<number> {
    const started = Date.now();
    const kc = this.kubeConfig();
    const spi = target.spi ?? (await secretSpi(kc));
    const full: ConvergenceTarget = { spi, bootIds: Object.fromEntries(this.nodes.map((n) => [n.name, this.bootId(n.name)])), ...(target.exact === undefined ? {} : { exact: target.exact }) };
    for (;;) {
      this.#checkProcesses();
      let problems = await apiProblems(kc, this.nodes, full).catch((err: unknown) => [`API: ${err instanceof Error ? err.message : String(err)}`]);
      if (problems.length === 0) problems = await kernelProblems(this.nodes, full);
      if (problems.length === 0) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new LabError(`not converged on SPI ${spi} after ${Math.round(timeoutMs / 1000)} s: ${problems.slice(0, 4).join('; ')}`);
      await sleep(500);
    }
  }

  /** Stops a node's plugin daemon (SIGTERM: a rolling update; SIGKILL: a crash). */
  async stopNode(name: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    this.node(name);
    await this.#locked(async () => {
      const proc = this.#state.processes[`node/${name}`];
      if (proc !== undefined) await stopProcess(proc, signal);
      Reflect.deleteProperty(this.#state.processes, `node/${name}`);
      this.#save();
    });
  }

  /** Starts a node's plugin daemon (if it is not running); resolves once it reports ready. */
  async startNode(name: string, timeoutMs = 180_000): Promise<void> {
    const node = this.node(name);
    await this.#locked(() => {
      const running = this.#state.processes[`node/${name}`];
      if (running === undefined || !isRunning(running)) this.#startNode(node);
      return Promise.resolve();
    });
    await this.#until(this.#process(`node/${name}`), () => this.#nodeReady(node), `${name}'s plugin to be ready`, timeoutMs);
  }

  /**
   * Power-cycles a node: its processes die at once, its namespaces, pins and Secret volume
   * (tmpfs) are gone, then it comes back with the same addresses and a new boot ID, which its
   * Node object reports; its pods and plugin start again.
   */
  async reboot(name: string): Promise<void> {
    const node = this.node(name);
    await this.#locked(async () => {
      await this.#kill(node, 'SIGKILL');
      await this.#unplug(node);
      rmSync(this.#layout.node(name, 'secret'), { recursive: true, force: true });
      const bootId = randomUUID();
      writeFileSync(this.#layout.node(name, 'boot_id'), `${bootId}\n`);
      await this.#buildNode(node);
      await routePodCidrs(this.nodes);
      await callControl(this.#layout.controlSocket, 'POST', '/v1/listen', { netns: node.netns });
      await callControl(this.#layout.controlSocket, 'PUT', `/v1/volumes/${name}`, { dir: this.#layout.node(name, 'secret') });
      const core = this.kubeConfig().makeApiClient(CoreV1Api);
      await core.patchNodeStatus({ name, body: { status: { nodeInfo: { bootID: bootId } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      for (const pod of node.pods) this.#startPod(pod);
      this.#startNode(node);
      this.#save();
    });
    await this.#until(this.#process(`node/${name}`), () => this.#nodeReady(node), `${name}'s plugin to be ready`, 180_000);
  }

  /**
   * A new machine joins: the next node (its namespaces on the wire, routes everywhere, its
   * Node and Pod objects, the API in its namespace, its Secret volume, pods and plugin).
   * Resolves with its name once its plugin is ready.
   */
  async join(): Promise<string> {
    let node: NodePlan | undefined;
    await this.#locked(async () => {
      const s = this.#state;
      const index = Math.max(0, ...s.plan.nodes.map((n) => n.index), ...s.nodes.map((n) => n.index)) + 1;
      if (index > LIMITS.nodes.max) throw new LabError(`a lab has at most ${LIMITS.nodes.max} nodes over its life`);
      const joining = planNode(s.id, index, s.plan.options);
      node = joining;
      s.nodes.push(joining);
      this.#save();
      await this.#buildNode(joining);
      await routePodCidrs(this.nodes);
      await this.#prepareNodeFiles(joining, randomUUID(), readFileSync(this.#layout.stampJwks, 'utf8'));
      const config = JSON.parse(readFileSync(this.#layout.apiConfig, 'utf8')) as ApiProcessConfig;
      const token = nodeToken(config.users, joining.name);
      if (token === undefined) throw new LabError(`no token for ${joining.name} in ${this.#layout.apiConfig}`);
      const admin = this.kubeConfig();
      const caPem = Buffer.from(admin.getCurrentCluster()?.caData ?? '', 'base64').toString('utf8');
      writeFileSync(this.#layout.node(joining.name, 'kubeconfig'), kubeconfigYaml({ server: NODE_API_SERVER, caPem, username: NODE_PLUGIN_USER, token }), { mode: 0o600 });
      // What its kubelet and the scheduler would write.
      const core = admin.makeApiClient(CoreV1Api);
      await core.createNode({ body: nodeObject(joining, this.bootId(joining.name)) as V1Node });
      for (const pod of joining.pods) {
        const { status, ...spec } = podObject(joining, pod) as V1Pod;
        await core.createNamespacedPod({ namespace: pod.namespace, body: spec });
        await core.patchNamespacedPodStatus({ name: pod.name, namespace: pod.namespace, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      }
      await callControl(this.#layout.controlSocket, 'POST', '/v1/listen', { netns: joining.netns });
      await callControl(this.#layout.controlSocket, 'PUT', `/v1/volumes/${joining.name}`, { dir: this.#layout.node(joining.name, 'secret') });
      for (const pod of joining.pods) this.#startPod(pod);
      this.#startNode(joining);
      this.#save();
    });
    if (node === undefined) throw new LabError('join: no node was planned');
    const joined = node;
    await this.#until(this.#process(`node/${joined.name}`), () => this.#nodeReady(joined), `${joined.name}'s plugin to be ready`, 180_000);
    await Promise.all(joined.pods.map((p) => this.#podUp(p)));
    return joined.name;
  }

  /** The node leaves for good: its machine is gone (processes, namespaces) and its Node object deleted. */
  async remove(name: string): Promise<void> {
    const node = this.node(name);
    await this.#locked(async () => {
      await this.#kill(node, 'SIGKILL');
      await this.#unplug(node);
      this.#state.nodes = this.#state.nodes.filter((n) => n.name !== name);
      // A routed CNI drops the routes to a node that left.
      for (const n of this.nodes) {
        await ipIn(n.netns, 'route', 'del', node.podCIDR).catch(() => undefined);
        if (node.podCIDR6 !== undefined) await ipIn(n.netns, '-6', 'route', 'del', node.podCIDR6).catch(() => undefined);
      }
      this.#save();
      await this.kubeConfig().makeApiClient(CoreV1Api).deleteNode({ name });
    });
  }

  /**
   * Lab only: stores `obj` in the API as given, around admission (no webhook sees it), the way
   * a compromised or buggy writer with direct etcd access would.
   */
  async storeAroundAdmission(obj: KubeObject): Promise<KubeObject> {
    return callControl<KubeObject>(this.#layout.controlSocket, 'PUT', '/v1/store', obj);
  }

  /** Lab only: the node's kubelet is late; its Secret volume keeps its content until releaseSecretVolume. */
  async holdSecretVolume(node: string): Promise<void> {
    this.node(node);
    await callControl(this.#layout.controlSocket, 'POST', `/v1/volumes/${node}/hold`);
  }

  async releaseSecretVolume(node: string): Promise<void> {
    this.node(node);
    await callControl(this.#layout.controlSocket, 'POST', `/v1/volumes/${node}/release`);
  }

  /** The last lines of a process's log (for error messages). */
  logTail(key: string, lines = 15): string {
    try {
      return readFileSync(this.#layout.log(key), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Removes everything the lab in `dir` made. Idempotent; safe after a killed `up`. */
  static async down(dir: string, progress: Progress = () => undefined): Promise<boolean> {
    if (process.getuid?.() !== 0) throw new LabError('lab down: needs root');
    const state = readState(dir);
    if (state === undefined) {
      if (existsSync(dir) && readdirSync(dir).length > 0) throw new LabError(`lab down: ${dir} holds no lab (no ${join(dir, 'lab.json')}); not touching it`);
      rmSync(dir, { recursive: true, force: true });
      return false;
    }
    // A command still working on the lab (a killed up's lock is stale and taken over).
    await withLabLock(dir, () => new Lab(state).#teardown(progress));
    return true;
  }

  async #teardown(progress: Progress): Promise<void> {
    const s = this.#state;
    const procs = Object.values(s.processes);
    // Every process the lab recorded, those still in its namespaces, and any started from this
    // lab directory (one spawned just before `up` was killed, before it was recorded).
    await Promise.all(procs.map((p) => stopProcess(p, 'SIGKILL', 5000)));
    const namespaces = new Set([...s.netns, ...planNetns(s.plan), ...(await listNetns()).filter((n) => n.startsWith(`kml-${s.id}-`))]);
    let strays = 0;
    for (const ns of namespaces) {
      for (const pid of await netnsPids(ns)) {
        strays++;
        try {
          process.kill(pid, 'SIGKILL');
        } catch { /* gone */ }
      }
    }
    for (const pid of nodeProcessesUsing(this.dir)) {
      strays++;
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    let removed = 0;
    const existing = new Set(await listNetns());
    for (const ns of namespaces) {
      if (!existing.has(ns)) continue;
      await deleteNetns(ns);
      removed++;
    }
    await unmountIfMounted(s.bpffs ?? this.#layout.bpffs);
    rmSync(this.dir, { recursive: true, force: true });
    progress(`removed lab ${s.id}: ${procs.length + strays} processes stopped, ${removed} namespaces (and their links, xfrm state and routes) deleted, pins unmounted, ${this.dir} deleted`);
  }

  #save(): void {
    writeState(this.#state);
  }

  async #locked(fn: () => Promise<void>): Promise<void> {
    await withLabLock(this.dir, async () => {
      // Another command may have changed the lab since this one read it.
      this.#state = readState(this.dir) ?? this.#state;
      await fn();
    });
  }

  async #createNetns(names: readonly string[]): Promise<void> {
    const s = this.#state;
    // Recorded first: a kill between the two still leaves it findable.
    for (const name of names) if (!s.netns.includes(name)) s.netns.push(name);
    this.#save();
    for (const name of names) await addNetns(name);
  }

  async #buildNode(node: NodePlan): Promise<void> {
    await this.#createNetns([node.netns, ...node.pods.map((p) => p.netns)]);
    await plugNode(this.#state.plan.wire, node);
    for (const pod of node.pods) await plugPod(node, pod);
  }

  /**
   * The node's machine is gone: its port on the wire first (deleting one end of a veth removes
   * both at once, while a deleted namespace's interfaces go later, in the background, and a
   * rebuilt node would find its old port still there), then its namespaces and pins.
   */
  async #unplug(node: NodePlan): Promise<void> {
    await ipIn(this.#state.plan.wire.netns, 'link', 'del', node.wireIf).catch(() => undefined);
    for (const ns of [node.netns, ...node.pods.map((p) => p.netns)]) await deleteNetns(ns);
    rmSync(this.#layout.pins(node.name), { recursive: true, force: true });
  }

  /** A node's own files: boot ID, an empty Secret volume, the stamp JWKS as its ConfigMap volume. */
  async #prepareNodeFiles(node: NodePlan, bootId: string, jwks: string): Promise<void> {
    mkdirSync(this.#layout.node(node.name), { recursive: true, mode: 0o700 });
    writeFileSync(this.#layout.node(node.name, 'boot_id'), `${bootId}\n`);
    mkdirSync(this.#layout.node(node.name, 'secret'), { recursive: true, mode: 0o700 });
    await writeProjectedVolume(this.#layout.node(node.name, 'stamp-jwks'), { 'jwks.json': jwks });
  }

  #podUp(pod: PodPlan): Promise<void> {
    return this.#until(this.#process(`pod/${pod.name}`), () => existsSync(this.#layout.podSocket(pod.name)), `pod ${pod.name}`, 180_000);
  }

  #spawn(key: string, name: string, argv: readonly string[]): ProcessRecord {
    const role = key.split('/')[0] as ProcessRecord['role'];
    const proc = spawnDetached(argv, this.#layout.log(key));
    const record: ProcessRecord = { role, name, ...proc };
    this.#state.processes[key] = record;
    this.#save();
    return record;
  }

  #startNode(node: NodePlan): ProcessRecord {
    const file = (f: 'kubeconfig' | 'boot_id' | 'secret' | 'stamp-jwks'): string => this.#layout.node(node.name, f);
    return this.#spawn(`node/${node.name}`, node.name, inNetns(node.netns, [
      process.execPath, CLI_MAIN, '--kubeconfig', file('kubeconfig'), 'node', '--node-name', node.name,
      '--secret-dir', file('secret'), '--stamp-jwks', join(file('stamp-jwks'), 'jwks.json'), '--bpffs-root', this.#layout.bpffs,
      '--boot-id-file', file('boot_id'), '--listen', `127.0.0.1:${NODE_STATUS_PORT}`, ...LAB_NODE_FLAGS,
    ]));
  }

  #startPod(pod: PodPlan): ProcessRecord {
    const socket = this.#layout.podSocket(pod.name);
    rmSync(socket, { force: true });
    return this.#spawn(`pod/${pod.name}`, pod.name, inNetns(pod.netns, [process.execPath, POD_AGENT, socket, String(POD_PORT), pod.ip, ...(pod.ip6 === undefined ? [] : [pod.ip6])]));
  }

  async #kill(node: NodePlan, signal: NodeJS.Signals): Promise<void> {
    const keys = [`node/${node.name}`, ...node.pods.map((p) => `pod/${p.name}`)];
    await Promise.all(keys.map(async (key) => {
      const proc = this.#state.processes[key];
      if (proc !== undefined) await stopProcess(proc, signal);
      Reflect.deleteProperty(this.#state.processes, key);
    }));
    this.#save();
  }

  #process(key: string): ProcessRecord {
    const proc = this.#state.processes[key];
    if (proc === undefined) throw new LabError(`no ${key} process in this lab`);
    return proc;
  }

  /**
   * Ready as its readiness probe sees it (/readyz: the first reconcile succeeded), read inside
   * the node with curl, which starts in milliseconds where a Node process takes seconds under
   * emulation; without curl, with `kmesh-ipsec status`.
   */
  async #nodeReady(node: NodePlan): Promise<boolean> {
    const endpoint = `http://127.0.0.1:${NODE_STATUS_PORT}`;
    if (await commandExists('curl')) return (await run(inNetns(node.netns, ['curl', '-sf', '--max-time', '5', `${endpoint}/readyz`]), { allowFailure: true, timeoutMs: 30_000 })).code === 0;
    const r = await run(inNetns(node.netns, [process.execPath, CLI_MAIN, 'status', '--json', '--endpoint', endpoint]), { allowFailure: true, timeoutMs: 60_000 });
    try {
      return (JSON.parse(r.stdout) as { ready?: unknown }).ready === true;
    } catch {
      return false;
    }
  }

  /** A process the lab needs died: say which, with its last words. */
  #checkProcesses(): void {
    for (const [key, proc] of Object.entries(this.#state.processes)) {
      if (!isRunning(proc)) throw new LabError(`${key} (pid ${proc.pid}) is not running; its log ends:\n${this.logTail(key)}`);
    }
  }

  async #until(proc: ProcessRecord, ready: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const key = proc.role === 'api' || proc.role === 'webhook' ? proc.role : `${proc.role}/${proc.name}`;
    for (;;) {
      if (await ready()) return;
      if (!isRunning(proc)) throw new LabError(`${key} exited while waiting for ${what}; its log ends:\n${this.logTail(key)}`);
      if (Date.now() > deadline) throw new LabError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; ${key}'s log ends:\n${this.logTail(key)}`);
      await sleep(300);
    }
  }
}

/** The kernel lacks ESP or AES-GCM: the lab cannot run here (the demo can run in the VM). */
export class NoEspError extends LabError {
  readonly reason: string;
  constructor(reason: string) {
    super(`this kernel cannot run the lab: ${reason}`);
    this.reason = reason;
  }
}

function prepareDir(dir: string): void {
  const existing = readState(dir);
  if (existing !== undefined) throw new LabError(`a lab (${existing.id}) is already in ${dir}; remove it first: kmesh-ipsec lab down${dir === DEFAULT_LAB_DIR ? '' : ` --dir ${dir}`}`);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new LabError(`${dir} is not empty and holds no lab; choose another --dir`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** A lab id no namespace on this machine uses yet. */
async function freshId(): Promise<string> {
  const names = await listNetns();
  for (;;) {
    const id = randomBytes(2).toString('hex');
    if (!names.some((n) => n.startsWith(`kml-${id}-`))) return id;
  }
}

async function secretSpi(kc: KubeConfig): Promise<number> {
  const seen = await new SecretStore(kc).peek();
  if (seen.state !== 'present') throw new LabError(seen.state === 'absent' ? 'the Secret kmesh-system/kmesh-ipsec does not exist' : `cannot read the Secret: ${seen.reason}`);
  return seen.spi;
}
