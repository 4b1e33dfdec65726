/**
 * Plumbing of the lab's machines, on namespaces that already exist: the wire bridge, each
 * node's eth0 on it, each pod's veth with routes the way a routed CNI (kindnet, ptp) sets them
 * up, and routes between nodes' pod CIDRs. Both ends of every veth are born in their
 * namespaces, so nothing appears in the caller's namespace, even for a moment.
 */
import { ipIn, sysctlIn } from './system.js';
import type { NodePlan, PodPlan } from './topology.js';

export async function addBridge(wire: { readonly netns: string; readonly bridge: string }): Promise<void> {
  await ipIn(wire.netns, 'link', 'add', wire.bridge, 'type', 'bridge');
  await ipIn(wire.netns, 'link', 'set', wire.bridge, 'up');
}

/** The node's eth0 on the wire, its addresses, forwarding on. */
export async function plugNode(wire: { readonly netns: string; readonly bridge: string }, node: NodePlan): Promise<void> {
  await ipIn(node.netns, 'link', 'add', 'eth0', 'address', node.mac, 'type', 'veth', 'peer', 'name', node.wireIf, 'netns', wire.netns);
  await ipIn(node.netns, 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0');
  if (node.ip6 !== undefined) await ipIn(node.netns, 'addr', 'add', `${node.ip6}/64`, 'dev', 'eth0', 'nodad');
  await ipIn(node.netns, 'link', 'set', 'eth0', 'up');
  await ipIn(wire.netns, 'link', 'set', node.wireIf, 'master', wire.bridge, 'up');
  await sysctlIn(node.netns, 'net.ipv4.ip_forward', '1');
  if (node.ip6 !== undefined) await sysctlIn(node.netns, 'net.ipv6.conf.all.forwarding', '1');
}

/**
 * A pod behind its own veth: a single address (/32, /128), the node's gateway address on the
 * host side, a host route per pod and proxy ARP, as routed CNIs do.
 */
export async function plugPod(node: NodePlan, pod: PodPlan): Promise<void> {
  await ipIn(node.netns, 'link', 'add', pod.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns);
  await ipIn(pod.netns, 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0');
  if (pod.ip6 !== undefined) await ipIn(pod.netns, 'addr', 'add', `${pod.ip6}/128`, 'dev', 'eth0', 'nodad');
  await ipIn(pod.netns, 'link', 'set', 'eth0', 'up');
  await ipIn(node.netns, 'link', 'set', pod.hostIf, 'up');
  await ipIn(node.netns, 'addr', 'add', `${node.gateway}/32`, 'dev', pod.hostIf);
  await ipIn(node.netns, 'route', 'add', `${pod.ip}/32`, 'dev', pod.hostIf);
  await ipIn(pod.netns, 'route', 'add', `${node.gateway}/32`, 'dev', 'eth0');
  await ipIn(pod.netns, 'route', 'add', 'default', 'via', node.gateway, 'dev', 'eth0');
  if (pod.ip6 !== undefined && node.gateway6 !== undefined) {
    await ipIn(node.netns, 'addr', 'add', `${node.gateway6}/128`, 'dev', pod.hostIf, 'nodad');
    await ipIn(node.netns, '-6', 'route', 'add', `${pod.ip6}/128`, 'dev', pod.hostIf);
    await ipIn(pod.netns, '-6', 'route', 'add', `${node.gateway6}/128`, 'dev', 'eth0');
    await ipIn(pod.netns, '-6', 'route', 'add', 'default', 'via', node.gateway6, 'dev', 'eth0');
  }
  await sysctlIn(node.netns, `net.ipv4.conf.${pod.hostIf}.proxy_arp`, '1');
}

/** On every node, a route to every other node's pod CIDRs via that node, as a routed CNI installs them. */
export async function routePodCidrs(nodes: readonly NodePlan[]): Promise<void> {
  for (const n of nodes) {
    for (const p of nodes) {
      if (p === n) continue;
      await ipIn(n.netns, 'route', 'replace', p.podCIDR, 'via', p.ip);
      if (n.ip6 !== undefined && p.ip6 !== undefined && p.podCIDR6 !== undefined) await ipIn(n.netns, '-6', 'route', 'replace', p.podCIDR6, 'via', p.ip6);
    }
  }
}
