/**
 * A small cluster on one machine for node-plugin tests: the Kubernetes API test double with the
 * real webhook in front of it, and N nodes as network namespaces on a shared wire (a bridge in
 * its own namespace), each with pods behind per-pod veths (routed like kindnet/ptp), its own
 * Secret volume written the way the kubelet writes one, its own boot ID, pin directory and
 * relay to the API. Daemons run as separate processes inside their node's namespace: the real
 * `kmesh-ipsec node` (kernels with ESP: the VM) or the same NodePlugin with SAs kept in a file
 * (hybrid-daemon.ts: this CI's kernel, which has no ESP).
 *
 * Addresses: node i is 192.168.77.i (and fd00:77::i with dualStack), pods 10.244.i.j
 * (fd00:244:i::j), the wire bridge carries nothing but node traffic.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { pino } from 'pino';
import { caBundle, generateDevPki, writeDevPki } from '../../certs/dev-pki.js';
import { generateStampKey } from '../../certs/stamp-keygen.js';
import { encodeIpsecValue, type IpsecKey } from '../../core/secret.js';
import type { NodePluginOptions } from '../../nodeplugin/daemon/node-plugin.js';
import type { NodeStatus } from '../../nodeplugin/daemon/status.js';
import { WebhookNames, loadWebhookConfigurations } from '../../webhook/configurations.js';
import { identityPolicy } from '../../webhook/identity.js';
import { type RunningWebhook, runWebhook } from '../../webhook/runtime.js';
import { eventually } from '../helpers/eventually.js';
import { createVethPair, type Netns, type NetnsFactory } from '../helpers/netns.js';
import { type Bpffs, mountBpffs } from '../bpf/helpers.js';
import { type KubeDouble, type KubeObject, startKubeDouble } from '../kube-double/index.js';
import { ApiGateway, NODE_API_PORT, RELAY_PROGRAM } from './api-relay.js';
import type { HybridDaemonConfig } from './hybrid-daemon.js';
import { writeProjectedVolume } from './projected-volume.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const CLI = join(HERE, '..', '..', 'cli', 'main.js');
const HYBRID = join(HERE, 'hybrid-daemon.js');
export const STATUS_PORT = 9478;
export const MANAGED_NAMESPACE = 'demo';
export const PLAIN_NAMESPACE = 'plain';
const ADMIN = 'cluster-admin';
const WEBHOOK_SA = 'system:serviceaccount:kmesh-system:kmesh-ipsec-webhook';
const PLUGIN_SA = 'system:serviceaccount:kmesh-system:kmesh-ipsec-node';

export interface PodHandle {
  readonly name: string;
  readonly namespace: string;
  readonly ns: Netns;
  readonly ip: string;
  readonly ip6?: string;
  /** Host-side interface in the node namespace. */
  readonly hostIf: string;
}

export interface NodeHandle {
  readonly i: number;
  readonly name: string;
  readonly ns: Netns;
  readonly ip: string;
  readonly ip6?: string;
  readonly cidr: string;
  readonly cidr6?: string;
  readonly pods: PodHandle[];
  readonly dir: string;
  readonly secretDir: string;
  readonly bootIdFile: string;
  readonly kubeconfigPath: string;
  readonly stateFile: string;
  readonly pinRoot: string;
  bootId: string;
  daemon?: ChildProcess;
  relay?: ChildProcess;
}

export interface ClusterOptions {
  readonly nodes: number;
  readonly podsPerNode?: number;
  readonly dualStack?: boolean;
  /** 'cli' runs `kmesh-ipsec node` (needs ESP: the VM); 'hybrid' keeps SAs in a file. */
  readonly daemon: 'cli' | 'hybrid';
  readonly graceSeconds?: number;
  readonly resyncSeconds?: number;
  readonly jitterSeconds?: number;
  /** An unlabelled namespace with one pod on node 1 (its traffic must stay in clear). */
  readonly plainPod?: boolean;
}

export class PluginCluster {
  readonly double: KubeDouble;
  readonly gateway: ApiGateway;
  readonly webhook: RunningWebhook;
  readonly wire: Netns;
  readonly nodes: NodeHandle[] = [];
  readonly dir: string;
  readonly jwksPath: string;
  readonly options: ClusterOptions;
  /** A private bpffs: pins of every node live here and vanish with it. */
  readonly bpffs: Bpffs;
  readonly #netns: NetnsFactory;
  readonly #removed: NodeHandle[] = [];

  private constructor(init: { double: KubeDouble; gateway: ApiGateway; webhook: RunningWebhook; wire: Netns; dir: string; jwksPath: string; options: ClusterOptions; netns: NetnsFactory; bpffs: Bpffs }) {
    this.bpffs = init.bpffs;
    this.double = init.double;
    this.gateway = init.gateway;
    this.webhook = init.webhook;
    this.wire = init.wire;
    this.dir = init.dir;
    this.jwksPath = init.jwksPath;
    this.options = init.options;
    this.#netns = init.netns;
  }

  /**
   * Builds the cluster. `netns` comes from useNetns(test) at the top of the test file (ava
   * wants hooks declared synchronously); call stop() in test.after.always.
   */
  static async start(netns: NetnsFactory, options: ClusterOptions): Promise<PluginCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'kmesh-cluster-'));
    const users: Record<string, { username: string; groups: string[]; extra?: Record<string, string[]> }> = {
      [randomBytes(16).toString('hex')]: { username: ADMIN, groups: ['system:masters', 'system:authenticated'] },
      [randomBytes(16).toString('hex')]: { username: WEBHOOK_SA, groups: ['system:serviceaccounts', 'system:authenticated'] },
    };
    for (let i = 1; i <= 8; i++) {
      users[randomBytes(16).toString('hex')] = {
        username: `${PLUGIN_SA}#node${i}`, groups: ['system:serviceaccounts', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/node-name': [`node${i}`] },
      };
    }
    const double = await startKubeDouble({
      users,
      namespaces: ['kmesh-system'],
      objects: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: MANAGED_NAMESPACE, labels: { 'istio.io/dataplane-mode': 'Kmesh' } } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PLAIN_NAMESPACE } },
      ],
    });
    const port = Number(new URL(double.url).port);
    const gateway = new ApiGateway(join(dir, 'api.sock'), { host: '127.0.0.1', port });
    await gateway.up();

    const pki = generateDevPki({ service: WebhookNames.service, namespace: 'kmesh-system' });
    const tls = await writeDevPki(join(dir, 'tls'), pki);
    const stamp = await generateStampKey();
    await writeFile(join(dir, 'stamp-key.jwk'), JSON.stringify(stamp.privateJwk), { mode: 0o600 });
    const jwksPath = join(dir, 'stamp-jwks.json');
    await writeFile(jwksPath, JSON.stringify({ keys: [stamp.publicJwk] }));
    const { KubeConfig } = await import('@kubernetes/client-node');
    const webhookKc = new KubeConfig();
    webhookKc.loadFromString(double.kubeconfig(WEBHOOK_SA));
    const webhook = await runWebhook({
      host: '127.0.0.1', port: 0, certFile: tls.tlsCert, keyFile: tls.tlsKey, stampKeyFile: join(dir, 'stamp-key.jwk'), stampJwksFile: jwksPath,
      identity: identityPolicy({ agentUsernames: [...Array.from({ length: 8 }, (_, i) => `${PLUGIN_SA}#node${i + 1}`)], privilegedGroups: ['system:masters'] }),
      checkNodeFacts: true,
    }, { kubeConfig: webhookKc }, pino({ level: 'silent' }), { processMetrics: false });
    double.mapService({ namespace: 'kmesh-system', name: WebhookNames.service }, { port: webhook.server.port });
    for (const config of await loadWebhookConfigurations({ caBundle: caBundle(pki.ca) })) await double.store.put(config as unknown as KubeObject);

    const wire = await netns.create('wire');
    await wire.ip('link', 'add', 'br0', 'type', 'bridge');
    await wire.ip('link', 'set', 'br0', 'up');
    const bpffs = await mountBpffs();
    const cluster = new PluginCluster({ double, gateway, webhook, wire, dir, jwksPath, options, netns, bpffs });
    for (let i = 1; i <= options.nodes; i++) await cluster.addNode(i);
    await cluster.#routeAll();
    return cluster;
  }

  /** Creates node i (namespaces, links, pods, Node and Pod objects). Its daemon is not started. */
  async addNode(i: number): Promise<NodeHandle> {
    const dual = this.options.dualStack === true;
    const name = `node${i}`;
    const ns = await this.#netns.create(`node${i}`);
    const ip = `192.168.77.${i}`;
    const ip6 = dual ? `fd00:77::${i}` : undefined;
    await createVethPair({ ns, name: 'eth0', addresses: [`${ip}/24`, ...(ip6 ? [`${ip6}/64`] : [])] }, { ns: this.wire, name: `w${i}` });
    await this.wire.ip('link', 'set', `w${i}`, 'master', 'br0');
    await ns.sysctl('net.ipv4.ip_forward', '1');
    if (dual) await ns.sysctl('net.ipv6.conf.all.forwarding', '1');
    const dir = join(this.dir, name);
    mkdirSync(dir, { recursive: true });
    const node: NodeHandle = {
      i, name, ns, ip, ...(ip6 ? { ip6 } : {}), cidr: `10.244.${i}.0/24`, ...(dual ? { cidr6: `fd00:244:${i}::/64` } : {}), pods: [], dir,
      secretDir: join(dir, 'secret'), bootIdFile: join(dir, 'boot_id'), kubeconfigPath: join(dir, 'kubeconfig'), stateFile: join(dir, 'xfrm-states.json'),
      pinRoot: join(this.bpffs.dir, name), bootId: randomUUID(),
    };
    writeFileSync(node.bootIdFile, `${node.bootId}\n`);
    const kc = parse(this.double.kubeconfig(`${PLUGIN_SA}#${name}`)) as { clusters: { cluster: { server: string } }[] };
    for (const c of kc.clusters) c.cluster.server = `https://127.0.0.1:${NODE_API_PORT}`;
    writeFileSync(node.kubeconfigPath, stringify(kc), { mode: 0o600 });
    await writeProjectedVolume(node.secretDir, undefined);
    const podCount = this.options.podsPerNode ?? 1;
    for (let j = 2; j < 2 + podCount; j++) node.pods.push(await this.#addPod(node, `pod-${i}-${j}`, MANAGED_NAMESPACE, j));
    if (this.options.plainPod === true && i === 1) node.pods.push(await this.#addPod(node, `plain-${i}`, PLAIN_NAMESPACE, 200));
    await this.double.store.put(this.#nodeObject(node));
    this.nodes.push(node);
    node.relay = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, RELAY_PROGRAM, String(NODE_API_PORT), this.gateway.socketPath], { stdio: 'ignore' });
    return node;
  }

  async #addPod(node: NodeHandle, name: string, namespace: string, j: number): Promise<PodHandle> {
    const podNs = await this.#netns.create(`p${node.i}x${j}`);
    const hostIf = `vp${node.i}x${j}`;
    const ip = `10.244.${node.i}.${j}`;
    const ip6 = node.cidr6 ? `fd00:244:${node.i}::${j}` : undefined;
    await createVethPair({ ns: node.ns, name: hostIf }, { ns: podNs, name: 'eth0', addresses: [`${ip}/24`, ...(ip6 ? [`${ip6}/64`] : [])] });
    // ptp-style: the host side holds the gateway address, a host route per pod.
    await node.ns.ip('addr', 'add', `10.244.${node.i}.1/32`, 'dev', hostIf);
    await node.ns.ip('route', 'add', `${ip}/32`, 'dev', hostIf);
    await podNs.ip('route', 'add', `10.244.${node.i}.1/32`, 'dev', 'eth0');
    await podNs.ip('route', 'add', 'default', 'via', `10.244.${node.i}.1`, 'dev', 'eth0');
    if (ip6) {
      await node.ns.ip('addr', 'add', `fd00:244:${node.i}::1/128`, 'dev', hostIf, 'nodad');
      await node.ns.ip('-6', 'route', 'add', `${ip6}/128`, 'dev', hostIf);
      await podNs.ip('-6', 'route', 'add', `fd00:244:${node.i}::1/128`, 'dev', 'eth0');
      await podNs.ip('-6', 'route', 'add', 'default', 'via', `fd00:244:${node.i}::1`, 'dev', 'eth0');
    }
    await node.ns.sysctl(`net.ipv4.conf.${hostIf}.proxy_arp`, '1');
    const pod: PodHandle = { name, namespace, ns: podNs, ip, ...(ip6 ? { ip6 } : {}), hostIf };
    await this.double.store.put({
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, uid: randomUUID() },
      spec: { nodeName: node.name, containers: [{ name: 'app', image: 'app' }] },
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }, ...(ip6 ? [{ ip: ip6 }] : [])], hostIP: node.ip },
    });
    return pod;
  }

  #nodeObject(node: NodeHandle): KubeObject {
    const existing = this.double.store.get('nodes', undefined, node.name);
    return {
      apiVersion: 'v1', kind: 'Node',
      metadata: { name: node.name, ...(existing?.metadata.uid ? { uid: existing.metadata.uid } : {}) },
      spec: { podCIDR: node.cidr, podCIDRs: [node.cidr, ...(node.cidr6 ? [node.cidr6] : [])] },
      status: {
        addresses: [{ type: 'InternalIP', address: node.ip }, ...(node.ip6 ? [{ type: 'InternalIP', address: node.ip6 }] : []), { type: 'Hostname', address: node.name }],
        nodeInfo: { bootID: node.bootId },
      },
    };
  }

  /** Routes between nodes: every pod CIDR via its node, as a routed CNI installs them. */
  async #routeAll(): Promise<void> {
    for (const n of this.nodes) {
      for (const p of this.nodes) {
        if (p === n) continue;
        await n.ns.ip('route', 'replace', p.cidr, 'via', p.ip);
        if (n.ip6 && p.ip6 && p.cidr6) await n.ns.ip('-6', 'route', 'replace', p.cidr6, 'via', p.ip6);
      }
    }
  }

  /** Adds node i to a running cluster (routes on every node updated). */
  async joinNode(i: number): Promise<NodeHandle> {
    const node = await this.addNode(i);
    await this.#routeAll();
    return node;
  }

  /**
   * The node leaves the cluster: its daemon stops (SIGTERM) and its Node object is deleted;
   * its namespaces stay until stop() (a powered-off machine keeps its state too).
   */
  async removeNode(node: NodeHandle): Promise<void> {
    await this.stopDaemon(node, 'SIGTERM');
    node.relay?.kill('SIGKILL');
    delete node.relay;
    await this.double.store.delete('nodes', undefined, node.name);
    this.nodes.splice(this.nodes.indexOf(node), 1);
    this.#removed.push(node);
  }

  /** A reboot: new boot ID in the Node object and the kernel's file; the daemon is restarted by the caller. */
  async reboot(node: NodeHandle): Promise<void> {
    node.bootId = randomUUID();
    writeFileSync(node.bootIdFile, `${node.bootId}\n`);
    await this.double.store.put(this.#nodeObject(node));
  }

  /** Writes the key into every node's Secret volume (undefined: the Secret was deleted); `text` overrides. */
  async setSecret(key: IpsecKey | undefined, nodes: readonly NodeHandle[] = this.nodes, text?: string): Promise<void> {
    const content = text ?? (key ? encodeIpsecValue(key) : undefined);
    for (const n of nodes) await writeProjectedVolume(n.secretDir, content === undefined ? undefined : { ipSec: content });
  }

  daemonOptions(node: NodeHandle, extra: Partial<NodePluginOptions> = {}): NodePluginOptions {
    return {
      nodeName: node.name,
      secretDir: node.secretDir,
      stampJwksFile: this.jwksPath,
      pinDir: join(node.pinRoot, node.name),
      graceMs: (this.options.graceSeconds ?? 3) * 1000,
      publishJitterMs: (this.options.jitterSeconds ?? 0) * 1000,
      resyncIntervalMs: (this.options.resyncSeconds ?? 30) * 1000,
      strict: false,
      bootIdFile: node.bootIdFile,
      listen: { host: '127.0.0.1', port: STATUS_PORT },
      filePollIntervalMs: 1000,
      drainMs: 300,
      informers: { relistIntervalMs: 30_000, minBackoffMs: 200, maxBackoffMs: 2000 },
      startupSyncWaitMs: 5000,
      ...extra,
    };
  }

  /** Starts node's daemon; resolves once its HTTP endpoint answers. */
  async startDaemon(node: NodeHandle, extra: Partial<NodePluginOptions> = {}, cliArgs: readonly string[] = []): Promise<void> {
    const log = createWriteStream(join(node.dir, 'daemon.log'), { flags: 'a' });
    const o = this.daemonOptions(node, extra);
    const argv = this.options.daemon === 'hybrid'
      ? [HYBRID, JSON.stringify({ options: o, kubeconfigPath: node.kubeconfigPath, stateFile: node.stateFile } satisfies HybridDaemonConfig)]
      : [CLI, '--kubeconfig', node.kubeconfigPath, 'node', '--node-name', node.name, '--secret-dir', o.secretDir, '--stamp-jwks', o.stampJwksFile,
        '--bpffs-root', node.pinRoot, '--grace-period', `${o.graceMs / 1000}s`, '--publish-jitter', `${o.publishJitterMs / 1000}s`,
        '--resync-interval', `${o.resyncIntervalMs / 1000}s`, '--boot-id-file', o.bootIdFile, '--listen', `127.0.0.1:${STATUS_PORT}`,
        ...(o.strict ? ['--strict'] : []), ...cliArgs];
    const child = spawn('nsenter', [`--net=${node.ns.path}`, '--', process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    node.daemon = child;
    // Generous: under software emulation on a busy host, starting Node and loading the modules over 9p can take a minute.
    await this.waitFor(async () => (await this.statusOf(node).catch(() => undefined)) !== undefined, 180_000, `${node.name}: daemon endpoint`);
  }

  /** SIGTERM (a rolling update) or SIGKILL; resolves when the process is gone. */
  async stopDaemon(node: NodeHandle, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = node.daemon;
    delete node.daemon;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    // nsenter execs node, so the child is the daemon itself.
    child.kill(signal);
    await gone;
  }

  /** The daemon's /status, read inside its namespace. */
  async statusOf(node: NodeHandle): Promise<NodeStatus> {
    const r = await node.ns.exec(['curl', '-sf', '--max-time', '5', `http://127.0.0.1:${STATUS_PORT}/status`], { timeoutMs: 10_000 });
    return JSON.parse(r.stdout) as NodeStatus;
  }

  async metricsOf(node: NodeHandle): Promise<string> {
    return (await node.ns.exec(['curl', '-sf', '--max-time', '5', `http://127.0.0.1:${STATUS_PORT}/metrics`], { timeoutMs: 10_000 })).stdout;
  }

  /** The KmeshNodeInfo of `name` as stored. */
  nodeInfo(name: string): (KubeObject & { spec?: { spi?: number }; status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }) | undefined {
    return this.double.store.get('kmeshnodeinfos.kmesh.net', 'kmesh-system', name);
  }

  async waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
    if (!(await eventually(cond, { timeoutMs, intervalMs: 200 }))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  /** Waits until every running daemon advertises `spi` and reports its last run ok with no pending errors. */
  async waitConverged(spi: number, timeoutMs = 60_000, nodes: readonly NodeHandle[] = this.nodes.filter((n) => n.daemon)): Promise<NodeStatus[]> {
    let last: NodeStatus[] = [];
    await this.waitFor(async () => {
      last = await Promise.all(nodes.map((n) => this.statusOf(n)));
      return last.every((s, k) => s.ready && s.keys.advertised === spi && this.nodeInfo(nodes[k]?.name ?? '')?.spec?.spi === spi &&
        s.peers.filter((p) => p.state === 'used').length === nodes.length - 1 && s.peers.every((p) => p.state !== 'used' || p.advertisedSpi === spi) &&
        s.lastRun?.ok === true);
    }, timeoutMs, `every node on SPI ${spi}: ${JSON.stringify(last.map((s) => ({ node: s.node, adv: s.keys.advertised, peers: s.peers.map((p) => `${p.name}:${p.state}:${p.advertisedSpi ?? '-'}`), err: s.lastRun?.error })))}`);
    return last;
  }

  /** What a daemon wrote to its log (for failure messages). */
  logOf(node: NodeHandle): string {
    try {
      return readFileSync(join(node.dir, 'daemon.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    for (const n of [...this.nodes, ...this.#removed]) {
      await this.stopDaemon(n, 'SIGKILL');
      n.relay?.kill('SIGKILL');
    }
    await this.bpffs.cleanup();
    await this.webhook.close(0);
    await this.gateway.down();
    await this.double.close();
    await this.#netns.destroyAll();
    if (process.env.KMESH_KEEP_CLUSTER_DIR === undefined) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Count of our xfrm policies in a node (real kernel). */
export async function ownedPolicyLines(node: NodeHandle): Promise<string[]> {
  const out = (await node.ns.exec(['ip', 'xfrm', 'policy', 'list'])).stdout;
  return out.split(/\n(?=src )/).filter((b) => b.includes('reqid 27501'));
}
