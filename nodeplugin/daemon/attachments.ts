/**
 * Where the tc programs sit: the pod program on the host-side veth of every managed pod on
 * this node, the node program on every interface carrying the node's addresses. Diffed against
 * what is attached, so a steady state makes no kernel writes; a pod whose interface cannot be
 * found is reported with the reason, never guessed.
 *
 * Managed pods are those Kmesh manages: the pod's own `istio.io/dataplane-mode` label when it
 * has one, else its namespace's; the value `Kmesh` enrols it.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ProgramKind } from '../bpf/layout.js';
import type { PodLink } from './host-links.js';

export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
export const DATAPLANE_MODE_KMESH = 'Kmesh';

export interface ManagedPod {
  /** namespace/name */
  readonly key: string;
  readonly uid: string;
  readonly ips: readonly string[];
}

/** Running pods on this node that are enrolled and have an IP (host-network pods never are). */
export function managedPods(pods: readonly V1Pod[], namespaceLabels: (namespace: string) => Readonly<Record<string, string>> | undefined): ManagedPod[] {
  const out: ManagedPod[] = [];
  for (const pod of pods) {
    const ns = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    if (pod.spec?.hostNetwork === true || pod.status?.phase !== 'Running') continue;
    const mode = pod.metadata?.labels?.[DATAPLANE_MODE_LABEL] ?? namespaceLabels(ns)?.[DATAPLANE_MODE_LABEL];
    if (mode !== DATAPLANE_MODE_KMESH) continue;
    const ips = (pod.status.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => typeof ip === 'string' && ip !== '');
    if (ips.length === 0 && pod.status.podIP) ips.push(pod.status.podIP);
    if (ips.length > 0) out.push({ key: `${ns}/${name}`, uid: pod.metadata?.uid ?? '', ips });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The tc operations the manager needs (implemented over NodeBpf; faked in unit tests). */
export interface TcPort {
  attach(ifname: string, program: ProgramKind): Promise<void>;
  detach(ifname: string, program: ProgramKind): Promise<boolean>;
  /** Our filters on every interface, with the id of the program each runs. */
  list(): Promise<{ readonly ifname: string; readonly program: ProgramKind; readonly progId: number }[]>;
  /** Id of the program new attachments run. */
  programId(program: ProgramKind): Promise<number>;
  /** The host interface of a pod IP. */
  podInterface(ip: string): Promise<PodLink>;
}

export interface AttachmentReport {
  readonly attached: number;
  readonly detached: number;
  /** Managed pods the pod program could not be attached for, with why. */
  readonly problems: readonly { readonly pod: string; readonly reason: string }[];
  /** Interfaces carrying each program now. */
  readonly podInterfaces: readonly string[];
  readonly nodeInterfaces: readonly string[];
}

export class Attachments {
  readonly #tc: TcPort;
  /** What we believe is attached: program -> interfaces. */
  #attached: Record<ProgramKind, Set<string>> = { pod: new Set(), node: new Set() };
  /** Route lookups by pod uid + IP: a pod's interface does not change while it lives. */
  readonly #links = new Map<string, PodLink>();
  #adopted = false;

  constructor(tc: TcPort) {
    this.#tc = tc;
  }

  /**
   * Make the attachments match. With `verify` (start-up, periodic resync) what the kernel has
   * is re-read and every lookup repeated; otherwise only new pods cost a lookup.
   */
  async reconcile(pods: readonly ManagedPod[], nodeInterfaces: readonly string[], verify: boolean): Promise<AttachmentReport> {
    let attached = 0;
    let detached = 0;
    if (verify || !this.#adopted) {
      attached += await this.#readKernel(!this.#adopted);
      this.#adopted = true;
      this.#links.clear();
    }
    const problems: { pod: string; reason: string }[] = [];
    const podIfs = new Set<string>();
    const seen = new Set<string>();
    for (const pod of pods) {
      for (const ip of pod.ips) {
        const cacheKey = `${pod.uid}|${ip}`;
        seen.add(cacheKey);
        let link = this.#links.get(cacheKey);
        if (!link) {
          link = await this.#tc.podInterface(ip);
          this.#links.set(cacheKey, link);
        }
        if (!link.ok) problems.push({ pod: pod.key, reason: link.reason });
        // Marking a node interface would send every packet through it to the encrypt path.
        else if (nodeInterfaces.includes(link.ifname)) problems.push({ pod: pod.key, reason: `${ip} is reached through node interface ${link.ifname}, not a pod veth` });
        else podIfs.add(link.ifname);
      }
    }
    for (const k of [...this.#links.keys()]) if (!seen.has(k)) this.#links.delete(k);
    for (const [program, want] of [['pod', podIfs], ['node', new Set(nodeInterfaces)]] as const) {
      const have = this.#attached[program];
      for (const ifname of want) {
        if (have.has(ifname)) continue;
        await this.#tc.attach(ifname, program);
        have.add(ifname);
        attached++;
      }
      for (const ifname of [...have]) {
        if (want.has(ifname)) continue;
        if (await this.#tc.detach(ifname, program)) detached++;
        have.delete(ifname);
      }
    }
    return { attached, detached, problems, podInterfaces: [...podIfs].sort(), nodeInterfaces: [...nodeInterfaces].sort() };
  }

  /**
   * Learn our filters from the kernel. At start-up, filters that run an older program (left by
   * the previous instance or version) are re-attached: tc replaces the program atomically.
   */
  async #readKernel(upgrade: boolean): Promise<number> {
    const filters = await this.#tc.list();
    const ids: Record<ProgramKind, number> = { pod: await this.#tc.programId('pod'), node: await this.#tc.programId('node') };
    this.#attached = { pod: new Set(), node: new Set() };
    let replaced = 0;
    for (const f of filters) {
      if (upgrade && f.progId !== ids[f.program]) {
        await this.#tc.attach(f.ifname, f.program);
        replaced++;
      }
      this.#attached[f.program].add(f.ifname);
    }
    return replaced;
  }
}
