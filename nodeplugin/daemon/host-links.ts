/**
 * What the node's network looks like, read with iproute2 in the plugin's network namespace:
 * which interfaces carry the node's addresses (where ESP from peers arrives) and which host
 * interface leads to a pod (where its packets leave the pod).
 *
 * Pod interfaces are found from the host's route to the pod IP, which works for every CNI that
 * gives each pod its own veth and a host route to it (Calico, Cilium, kindnet, the ptp plugin).
 * A bridge-based CNI (the bridge plugin, flannel's cni0) routes the whole pod CIDR to the bridge;
 * the bridge is not the pod's interface and marking there would catch every pod, so such pods
 * are reported, not guessed.
 */
import { canonicalIp, parseIp } from '../../core/ip.js';
import { CommandError, runCommand } from '../command.js';

interface RawAddr {
  ifname?: string;
  link_type?: string;
  addr_info?: { local?: string }[];
}

interface RawRoute {
  dst?: string;
  dev?: string;
  gateway?: string;
  type?: string;
}

interface RawLink {
  ifname?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string };
}

export type PodLink = { readonly ok: true; readonly ifname: string } | { readonly ok: false; readonly reason: string };

async function ip(args: readonly string[]): Promise<string> {
  return (await runCommand(['ip', ...args])).stdout;
}

function parseJson<T>(text: string): T[] {
  const v: unknown = JSON.parse(text.trim() === '' ? '[]' : text);
  return Array.isArray(v) ? (v as T[]) : [];
}

/** Interfaces (not loopback) that carry one of `addresses`, sorted. */
export async function interfacesCarrying(addresses: readonly string[]): Promise<string[]> {
  const wanted = new Set(addresses.map(canonicalIp));
  const out = new Set<string>();
  for (const link of parseJson<RawAddr>(await ip(['-j', 'addr', 'show']))) {
    if (!link.ifname || link.link_type === 'loopback') continue;
    if ((link.addr_info ?? []).some((a) => a.local !== undefined && wanted.has(canonicalIp(a.local)))) out.add(link.ifname);
  }
  return [...out].sort();
}

/** The host-side interface of the pod with this IP, or why there is none we can use. */
export async function podInterface(podIp: string): Promise<PodLink> {
  if (!parseIp(podIp)) return { ok: false, reason: `pod IP ${JSON.stringify(podIp)} is not an IP address` };
  let routes: RawRoute[];
  try {
    routes = parseJson<RawRoute>(await ip(['-j', 'route', 'get', podIp]));
  } catch (err: unknown) {
    return { ok: false, reason: `no route to ${podIp} (${err instanceof CommandError ? err.stderr.trim() || err.message : String(err)})` };
  }
  const route = routes[0];
  if (!route?.dev) return { ok: false, reason: `no route to ${podIp}` };
  if (route.type === 'local' || route.dev === 'lo') return { ok: false, reason: `${podIp} is an address of this host (a host-network pod?)` };
  if (route.gateway) return { ok: false, reason: `${podIp} is routed via ${route.gateway} on ${route.dev}, not to a pod interface on this node` };
  let kind: string | undefined;
  let slaveKind: string | undefined;
  try {
    const link = parseJson<RawLink>(await ip(['-j', '-d', 'link', 'show', 'dev', route.dev]))[0];
    kind = link?.linkinfo?.info_kind;
    slaveKind = link?.linkinfo?.info_slave_kind;
  } catch (err: unknown) {
    return { ok: false, reason: `cannot read interface ${route.dev} (${err instanceof CommandError ? err.stderr.trim() || err.message : String(err)})` };
  }
  if (kind === 'bridge') {
    return { ok: false, reason: `${podIp} is behind bridge ${route.dev}: bridge-based CNIs are not supported (the pod's own veth is a bridge port, not routed)` };
  }
  if (kind !== 'veth') return { ok: false, reason: `${podIp} is reached through ${route.dev} (${kind ?? 'unknown kind'}), not a per-pod veth` };
  if (slaveKind === 'bridge') return { ok: false, reason: `${route.dev} is a bridge port: bridge-based CNIs are not supported` };
  return { ok: true, ifname: route.dev };
}
