/**
 * The lab's address and name plan, and the topology document `lab up --json` prints. Pure.
 *
 * Node i is 192.168.77.i on the wire (fd00:77::i with dual stack), its pod CIDR 10.244.i.0/24
 * (fd00:244:i::/64), pod j on it 10.244.i.j; the gateway .1 sits on every pod's host-side
 * veth (routed per pod, like kindnet or the ptp plugin). Namespaces are named
 * kml-<lab id>-<role>, so several labs and the host's own namespaces never collide.
 */

export const MANAGED_NAMESPACE = 'demo';
export const PLAIN_NAMESPACE = 'plain';
/** The label that makes Kmesh (and this project) manage a namespace's pods. */
export const MANAGED_LABEL = { 'istio.io/dataplane-mode': 'Kmesh' } as const;
/** Port of every pod's echo service (TCP and UDP). */
export const POD_PORT = 5000;
/** Where a node reaches the API: 127.0.0.1 of its own namespace. */
export const NODE_API_PORT = 6443;
/** The node plugin's --listen port inside each node namespace. */
export const NODE_STATUS_PORT = 9478;

export const LIMITS = { nodes: { min: 1, max: 32 }, podsPerNode: { min: 1, max: 16 } } as const;
const PLAIN_POD_INDEX = 200;

export interface LabOptions {
  readonly nodes: number;
  readonly podsPerNode: number;
  readonly dualStack: boolean;
}

export interface PodPlan {
  readonly name: string;
  readonly namespace: string;
  readonly netns: string;
  readonly ip: string;
  readonly ip6?: string;
  /** The pod's veth end in the node namespace. */
  readonly hostIf: string;
}

export interface NodePlan {
  readonly index: number;
  readonly name: string;
  readonly netns: string;
  readonly ip: string;
  readonly ip6?: string;
  readonly podCIDR: string;
  readonly podCIDR6?: string;
  readonly gateway: string;
  readonly gateway6?: string;
  /** Fixed, so that a rebooted node keeps its MAC address and peers' neighbour entries stay right. */
  readonly mac: string;
  /** The node's veth end in the wire namespace. */
  readonly wireIf: string;
  readonly pods: readonly PodPlan[];
}

export interface LabPlan {
  readonly id: string;
  readonly options: LabOptions;
  readonly wire: { readonly netns: string; readonly bridge: string };
  readonly nodes: readonly NodePlan[];
}

/** What `lab up --json` prints; other tools depend on exactly this shape. */
export interface Topology {
  readonly kubeconfig: string;
  readonly wire: { readonly netns: string; readonly bridge: string };
  readonly nodes: readonly {
    readonly name: string;
    readonly netns: string;
    readonly ip: string;
    readonly podCIDR: string;
    readonly pods: readonly { readonly name: string; readonly netns: string; readonly ip: string }[];
  }[];
}

/** Problems with the options, each naming its flag; [] when they are usable. */
export function checkLabOptions(options: LabOptions): string[] {
  const problems: string[] = [];
  for (const [key, flag] of [['nodes', '--nodes'], ['podsPerNode', '--pods-per-node']] as const) {
    const { min, max } = LIMITS[key];
    const value = options[key];
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${flag}: must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return problems;
}

export function planLab(id: string, options: LabOptions): LabPlan {
  if (!/^[0-9a-f]{4}$/.test(id)) throw new TypeError(`lab id: 4 lowercase hex digits, got ${JSON.stringify(id)}`);
  const problems = checkLabOptions(options);
  if (problems.length > 0) throw new RangeError(problems.join('; '));
  return {
    id,
    options,
    wire: { netns: `kml-${id}-wire`, bridge: 'br0' },
    nodes: Array.from({ length: options.nodes }, (_, k) => planNode(id, k + 1, options)),
  };
}

export function planNode(id: string, i: number, options: LabOptions): NodePlan {
  const dual = options.dualStack;
  const pod = (name: string, namespace: string, j: number, netnsRole: string): PodPlan => ({
    name, namespace, netns: `kml-${id}-${netnsRole}`, ip: `10.244.${i}.${j}`, ...(dual ? { ip6: `fd00:244:${i}::${j}` } : {}), hostIf: `vp${i}x${j}`,
  });
  const pods = Array.from({ length: options.podsPerNode }, (_, k) => pod(`pod-${i}-${k + 2}`, MANAGED_NAMESPACE, k + 2, `pod-${i}-${k + 2}`));
  // One pod in a namespace without the label, on node 1: its traffic must stay in clear.
  if (i === 1) pods.push(pod(`plain-${i}`, PLAIN_NAMESPACE, PLAIN_POD_INDEX, `plain-${i}`));
  return {
    index: i,
    name: `node${i}`,
    netns: `kml-${id}-node${i}`,
    ip: `192.168.77.${i}`,
    ...(dual ? { ip6: `fd00:77::${i}` } : {}),
    podCIDR: `10.244.${i}.0/24`,
    ...(dual ? { podCIDR6: `fd00:244:${i}::/64` } : {}),
    gateway: `10.244.${i}.1`,
    ...(dual ? { gateway6: `fd00:244:${i}::1` } : {}),
    mac: `02:6b:6d:00:00:${i.toString(16).padStart(2, '0')}`,
    wireIf: `w${i}`,
    pods,
  };
}

/** Every namespace of the plan, wire first. */
export function planNetns(plan: LabPlan): string[] {
  return [plan.wire.netns, ...plan.nodes.flatMap((n) => [n.netns, ...n.pods.map((p) => p.netns)])];
}

export function topologyOf(plan: LabPlan, kubeconfig: string, nodes: readonly NodePlan[] = plan.nodes): Topology {
  return {
    kubeconfig,
    wire: { netns: plan.wire.netns, bridge: plan.wire.bridge },
    nodes: nodes.map((n) => ({ name: n.name, netns: n.netns, ip: n.ip, podCIDR: n.podCIDR, pods: n.pods.map((p) => ({ name: p.name, netns: p.netns, ip: p.ip })) })),
  };
}
