/**
 * The end-to-end suites' view of a lab: started and changed with the real `kmesh-ipsec lab`
 * commands, then checked from outside the daemons: tcpdump on the wire bridge, `ip xfrm` and
 * /proc/net/xfrm_stat in the node namespaces, kubectl and client-node against the API, the pod
 * agents' counts. Not a test file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Lab } from '../../lab/lab.js';
import { LabLayout } from '../../lab/layout.js';
import { PodClient } from '../../lab/pod-agent.js';
import { inNetns, isMountPoint, listNetns, netnsPath, nodeProcessesUsing, run } from '../../lab/system.js';
import { POD_PORT, type Topology } from '../../lab/topology.js';
import { captureWire, packetsBetween } from '../../lab/wire-capture.js';

export const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

/** `kmesh-ipsec ARGS`, failing with what it said unless `allowFailure`. */
export async function cli(args: readonly string[], options: { allowFailure?: boolean; input?: string; timeoutMs?: number } = {}): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return run([process.execPath, CLI, ...args], { timeoutMs: options.timeoutMs ?? 900_000, ...(options.input === undefined ? {} : { input: options.input }), allowFailure: options.allowFailure ?? false });
}

export interface PodView {
  readonly name: string;
  readonly namespace: string;
  readonly netns: string;
  /** IPv4 first, then IPv6 (from the Pod object's podIPs). */
  readonly ips: readonly string[];
  readonly agent: PodClient;
}

export interface NodeView {
  readonly name: string;
  readonly netns: string;
  /** InternalIPs from the Node object, IPv4 first. */
  readonly ips: readonly string[];
  readonly pods: readonly PodView[];
}

export class E2eLab {
  readonly dir: string;
  topology: Topology;
  readonly kc: KubeConfig;
  readonly upSeconds: number;
  nodes: NodeView[];

  private constructor(dir: string, topology: Topology, kc: KubeConfig, nodes: NodeView[], upSeconds: number) {
    this.dir = dir;
    this.topology = topology;
    this.kc = kc;
    this.nodes = nodes;
    this.upSeconds = upSeconds;
  }

  /** `kmesh-ipsec lab up --json ARGS --dir DIR`, then the cluster as the API describes it. */
  static async up(dir: string, args: readonly string[]): Promise<E2eLab> {
    const started = Date.now();
    const r = await cli(['lab', 'up', '--json', '--dir', dir, ...args]);
    const topology = JSON.parse(r.stdout) as Topology;
    const kc = new KubeConfig();
    kc.loadFromFile(topology.kubeconfig);
    const lab = new E2eLab(dir, topology, kc, [], (Date.now() - started) / 1000);
    await lab.refresh();
    return lab;
  }

  /** Re-reads the lab's topology (a node joined) and its Nodes and Pods through the API (a node removed). */
  async refresh(): Promise<void> {
    this.topology = this.handle().topology();
    const core = this.kc.makeApiClient(CoreV1Api);
    const [nodes, pods] = await Promise.all([core.listNode(), core.listPodForAllNamespaces()]);
    const v4first = (ips: string[]): string[] => [...ips].sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
    this.nodes = this.topology.nodes.filter((tn) => nodes.items.some((n) => n.metadata?.name === tn.name)).map((tn) => {
      const node = nodes.items.find((n) => n.metadata?.name === tn.name);
      return {
        name: tn.name,
        netns: tn.netns,
        ips: v4first((node?.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address)),
        pods: tn.pods.map((tp) => {
          const pod = pods.items.find((p) => p.metadata?.name === tp.name);
          return {
            name: tp.name, namespace: pod?.metadata?.namespace ?? '', netns: tp.netns,
            ips: v4first((pod?.status?.podIPs ?? []).map((p) => p.ip)), agent: new PodClient(new LabLayout(this.dir).podSocket(tp.name)),
          };
        }),
      };
    });
  }

  node(name: string): NodeView {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  /** The node's first pod in the Kmesh-managed namespace. */
  managed(node: NodeView): PodView {
    const p = node.pods.find((x) => x.namespace === 'demo');
    if (p === undefined) throw new Error(`${node.name} has no managed pod`);
    return p;
  }

  get wirePath(): string {
    return netnsPath(this.topology.wire.netns);
  }

  /** Every node address (both families), for "only ESP between nodes". */
  get nodeIps(): string[] {
    return this.nodes.flatMap((n) => [...n.ips]);
  }

  /**
   * The product's handle, for the lab-only doors (a late kubelet, a write around admission) and
   * waiting; opened afresh each time, as `lab` commands change the lab's state.
   */
  handle(): Lab {
    return Lab.open(this.dir);
  }

  async kubectl(args: readonly string[], input?: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
    return run(['kubectl', '--kubeconfig', this.topology.kubeconfig, ...args], { allowFailure: true, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
  }

  /** The daemon's /status (what `kmesh-ipsec status --json` prints), read inside the node with curl. */
  async status(node: NodeView): Promise<{ ready: boolean; keys: { advertised: number }; peers: { name: string; state: string; advertisedSpi?: number; protected?: { action: string }[] }[] }> {
    const r = await run(inNetns(node.netns, ['curl', '-sf', '--max-time', '10', 'http://127.0.0.1:9478/status']), { timeoutMs: 30_000 });
    return JSON.parse(r.stdout) as Awaited<ReturnType<E2eLab['status']>>;
  }

  async metrics(node: NodeView): Promise<string> {
    return (await run(inNetns(node.netns, ['curl', '-sf', '--max-time', '10', 'http://127.0.0.1:9478/metrics']), { timeoutMs: 30_000 })).stdout;
  }

  async xfrmErrors(node: NodeView): Promise<Record<string, number>> {
    const { xfrmErrorsIn } = await import('../../lab/kernel.js');
    return xfrmErrorsIn(node.netns);
  }

  /**
   * One TCP exchange per ordered pair of managed pods on different nodes, per address family,
   * under one capture: returns the capture and what was sent.
   */
  async exchangeAll(nodes: readonly NodeView[] = this.nodes, families: readonly (4 | 6)[] = [4]): Promise<{ pcap: Buffer; text: string; markers: string[] }> {
    const markers: string[] = [];
    const { pcap, text } = await captureWire(this.wirePath, async () => {
      for (const [a, b] of orderedPairs(nodes)) {
        for (const family of families) {
          const to = this.managed(b).ips.find((ip) => ip.includes(':') === (family === 6));
          if (to === undefined) throw new Error(`${b.name}'s pod has no IPv${family} address`);
          const m = marker(a.name, b.name, family);
          markers.push(m);
          await this.managed(a).agent.tcpExchange(to, POD_PORT, m.repeat(40), 60_000);
        }
      }
    });
    return { pcap, text, markers };
  }

  /** UDP streams on every ordered pair (and family), started now; `stop` counts them. */
  async streams(nodes: readonly NodeView[] = this.nodes, families: readonly (4 | 6)[] = [4], intervalMs = 25): Promise<() => Promise<{ sent: number; received: number }[]>> {
    const started = await Promise.all(orderedPairs(nodes).flatMap(([a, b]) => families.map(async (family) => {
      const to = this.managed(b).ips.find((ip) => ip.includes(':') === (family === 6)) ?? '';
      return { agent: this.managed(a).agent, id: await this.managed(a).agent.startStream(to, POD_PORT, intervalMs) };
    })));
    return () => Promise.all(started.map((s) => s.agent.stopStream(s.id)));
  }

  /** What `lab down` must have removed: namespaces, processes, mounts, files of this lab. */
  async leftovers(): Promise<string[]> {
    const id = /kml-([0-9a-f]{4})-wire/.exec(this.topology.wire.netns)?.[1] ?? '????';
    const left: string[] = [];
    left.push(...(await listNetns()).filter((n) => n.startsWith(`kml-${id}-`)).map((n) => `netns ${n}`));
    left.push(...nodeProcessesUsing(this.dir).map((p) => `process ${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ')}`));
    if (isMountPoint(`${this.dir}/bpffs`)) left.push(`mount ${this.dir}/bpffs`);
    if (existsSync(this.dir)) left.push(`directory ${this.dir}`);
    const links = (await run(['ip', '-o', 'link', 'show'])).stdout.split('\n').filter((l) => /: (w\d+|vp\d+x\d+|br0)[@:]/.test(l));
    left.push(...links.map((l) => `link in the host namespace: ${l}`));
    return left;
  }
}

export const marker = (a: string, b: string, family: 4 | 6 = 4): string => `PLAINTEXT-MARKER-${a}-to-${b}-v${family}|`;

export function orderedPairs<T>(xs: readonly T[]): [T, T][] {
  return xs.flatMap((a) => xs.filter((b) => b !== a).map((b) => [a, b] as [T, T]));
}

/**
 * Lines of node-to-node packets that are not ESP (must be none). IPv6 neighbour discovery
 * between the nodes is the link's own business (IPv4's ARP is not IP at all), not traffic.
 */
export function clearBetweenNodes(text: string, nodeIps: readonly string[]): string[] {
  return packetsBetween(text, nodeIps).filter((l) => !l.includes(': ESP(') && !/: ICMP6, neighbor (solicitation|advertisement)/.test(l));
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(500);
  }
}
