/**
 * What a KmeshNodeInfo may claim. Peers tunnel traffic for the listed pod CIDRs to the listed
 * addresses, so a node that advertised another node's CIDR would receive (and could read) that
 * node's pod traffic. Schema validation cannot see that; these rules compare a spec with the
 * node's own Node object (written by the kubelet and the node IPAM controller) and with what
 * other nodes already advertise.
 */
import { type ParsedCidr, maskBytes, parseCidr, parseIp } from './ip.js';
import { type KmeshNodeInfoSpec, MAX_NODE_ADDRESSES, MAX_POD_CIDRS } from './nodeinfo.js';
import type { FieldError } from './result.js';
import { isRecord } from './json-value.js';

/** The facts of a Node object that bound a KmeshNodeInfo. */
export interface NodeFacts {
  readonly name: string;
  /** status.addresses of type InternalIP, canonical text. */
  readonly internalIPs: readonly string[];
  /** spec.podCIDRs (or the older single spec.podCIDR), canonical. */
  readonly podCIDRs: readonly string[];
}

/** What another KmeshNodeInfo advertises. */
export interface PeerClaim {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly podCIDRS: readonly string[];
}

/**
 * Read NodeFacts from a Node object as the API returns it; undefined when it has no name. Only
 * the first MAX_NODE_ADDRESSES InternalIPs and MAX_POD_CIDRS pod CIDRs are read: a kubelet
 * that wrote thousands must not make every admission for its node parse them all.
 */
export function nodeFactsFromNode(node: unknown): NodeFacts | undefined {
  if (!isRecord(node) || !isRecord(node.metadata) || typeof node.metadata.name !== 'string') return undefined;
  const status = isRecord(node.status) ? node.status : {};
  const spec = isRecord(node.spec) ? node.spec : {};
  const internalIPs = (Array.isArray(status.addresses) ? (status.addresses as unknown[]) : [])
    .filter((a): a is Record<string, unknown> => isRecord(a) && a.type === 'InternalIP' && typeof a.address === 'string')
    .slice(0, MAX_NODE_ADDRESSES)
    .map((a) => parseIp(a.address as string)?.canonical)
    .filter((a): a is string => a !== undefined);
  const rawCidrs = Array.isArray(spec.podCIDRs) ? (spec.podCIDRs as unknown[]) : typeof spec.podCIDR === 'string' ? [spec.podCIDR] : [];
  const podCIDRs = rawCidrs
    .slice(0, MAX_POD_CIDRS)
    .map((c) => (typeof c === 'string' ? parseCidr(c)?.network : undefined))
    .filter((c): c is string => c !== undefined);
  return { name: node.metadata.name, internalIPs, podCIDRs };
}

/** True when `inner` lies entirely within `outer`. */
export function cidrContains(outer: ParsedCidr, inner: ParsedCidr): boolean {
  if (outer.family !== inner.family || inner.prefixLength < outer.prefixLength) return false;
  const a = maskBytes(inner.bytes, outer.prefixLength);
  const b = maskBytes(outer.bytes, outer.prefixLength);
  return a.every((x, i) => x === b[i]);
}

/** Two CIDRs overlap exactly when one contains the other. */
export function cidrsOverlap(a: ParsedCidr, b: ParsedCidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** Every address must be an InternalIP of the node, every pod CIDR within one of its pod CIDRs. */
export function checkSpecAgainstNode(spec: KmeshNodeInfoSpec, node: NodeFacts, field = 'spec'): FieldError[] {
  const errors: FieldError[] = [];
  const own = new Set(node.internalIPs);
  spec.addresses.forEach((text, i) => {
    const ip = parseIp(text);
    if (ip && !own.has(ip.canonical)) {
      errors.push({ field: `${field}.addresses[${i}]`, message: `${ip.canonical} is not an InternalIP of node ${node.name} (${listOrNone(node.internalIPs)})` });
    }
  });
  const nodeCidrs = node.podCIDRs.map((c) => parseCidr(c)).filter((c): c is ParsedCidr => c !== undefined);
  spec.podCIDRS.forEach((text, i) => {
    const cidr = parseCidr(text);
    if (cidr && !nodeCidrs.some((outer) => cidrContains(outer, cidr))) {
      errors.push({ field: `${field}.podCIDRS[${i}]`, message: `${cidr.network} is not within the pod CIDRs of node ${node.name} (${listOrNone(node.podCIDRs)})` });
    }
  });
  return errors;
}

/** No address and no overlapping pod CIDR may be advertised by another KmeshNodeInfo already. */
export function checkSpecAgainstPeers(nodeName: string, spec: KmeshNodeInfoSpec, peers: Iterable<PeerClaim>, field = 'spec'): FieldError[] {
  const errors: FieldError[] = [];
  const addressOwner = new Map<string, string>();
  const peerCidrs: { owner: string; cidr: ParsedCidr }[] = [];
  for (const peer of peers) {
    if (peer.name === nodeName) continue;
    for (const a of peer.addresses) {
      const ip = parseIp(a);
      if (ip) addressOwner.set(ip.canonical, peer.name);
    }
    for (const c of peer.podCIDRS) {
      const cidr = parseCidr(c);
      if (cidr) peerCidrs.push({ owner: peer.name, cidr });
    }
  }
  spec.addresses.forEach((text, i) => {
    const ip = parseIp(text);
    const owner = ip ? addressOwner.get(ip.canonical) : undefined;
    if (ip && owner !== undefined) errors.push({ field: `${field}.addresses[${i}]`, message: `${ip.canonical} is already advertised by KmeshNodeInfo ${owner}` });
  });
  spec.podCIDRS.forEach((text, i) => {
    const cidr = parseCidr(text);
    const clash = cidr ? peerCidrs.find((p) => cidrsOverlap(p.cidr, cidr)) : undefined;
    if (cidr && clash) errors.push({ field: `${field}.podCIDRS[${i}]`, message: `${cidr.network} overlaps ${clash.cidr.network} advertised by KmeshNodeInfo ${clash.owner}` });
  });
  return errors;
}

function listOrNone(items: readonly string[]): string {
  return items.length === 0 ? 'it has none' : `it has ${items.join(', ')}`;
}
