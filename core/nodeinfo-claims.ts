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
  return networkKey(inner.bytes, outer.prefixLength) === networkKey(outer.bytes, outer.prefixLength);
}

/** Two CIDRs overlap exactly when one contains the other. */
export function cidrsOverlap(a: ParsedCidr, b: ParsedCidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** The first `prefixLength` bits of an address as a string key (host bits cleared). */
function networkKey(bytes: Uint8Array, prefixLength: number): string {
  return String.fromCharCode(...maskBytes(bytes, prefixLength));
}

interface ClaimedCidr {
  readonly owner: string;
  readonly cidr: ParsedCidr;
}

/**
 * What every other KmeshNodeInfo claims, indexed so that checking one spec costs a few lookups
 * however many nodes there are: addresses by canonical text, pod CIDRs by network per prefix
 * length. Two CIDRs overlap when one contains the other: a claimed CIDR of length l <= L contains
 * a new one of length L when it equals the new one cut to l; one of length l > L lies in the new
 * one when, cut to L, it equals the new one (that view is made on first use per (l, L)).
 */
export class PeerClaimsIndex {
  readonly #addresses = new Map<string, string[]>();
  readonly #cidrs: ClaimedCidr[] = [];
  /** `family/l` -> network key -> claims of length l. */
  readonly #exact = new Map<string, Map<string, ClaimedCidr[]>>();
  /** `family/l/L` -> key of the claim cut to L -> claims of length l. */
  readonly #cut = new Map<string, Map<string, ClaimedCidr[]>>();

  constructor(peers: Iterable<PeerClaim>) {
    for (const peer of peers) {
      for (const a of peer.addresses) {
        const ip = parseIp(a);
        if (ip) push(this.#addresses, ip.canonical, peer.name);
      }
      for (const c of peer.podCIDRS) {
        const cidr = parseCidr(c);
        if (!cidr) continue;
        const claim = { owner: peer.name, cidr };
        this.#cidrs.push(claim);
        let byNetwork = this.#exact.get(`${cidr.family}/${cidr.prefixLength}`);
        if (!byNetwork) this.#exact.set(`${cidr.family}/${cidr.prefixLength}`, (byNetwork = new Map<string, ClaimedCidr[]>()));
        push(byNetwork, networkKey(cidr.bytes, cidr.prefixLength), claim);
      }
    }
  }

  /** A node other than `exclude` that advertises `ip` (canonical), if any. */
  addressOwner(ip: string, exclude: string): string | undefined {
    return this.#addresses.get(ip)?.find((owner) => owner !== exclude);
  }

  /** A CIDR advertised by a node other than `exclude` that overlaps `cidr`, if any. */
  overlapping(cidr: ParsedCidr, exclude: string): ClaimedCidr | undefined {
    for (const [lengthKey, byNetwork] of this.#exact) {
      const [family, lengthText] = lengthKey.split('/');
      const l = Number(lengthText);
      if (Number(family) !== cidr.family) continue;
      const found = l <= cidr.prefixLength
        ? byNetwork.get(networkKey(cidr.bytes, l))
        : this.#cutTo(cidr.family, l, cidr.prefixLength).get(networkKey(cidr.bytes, cidr.prefixLength));
      const clash = found?.find((c) => c.owner !== exclude);
      if (clash) return clash;
    }
    return undefined;
  }

  #cutTo(family: number, l: number, to: number): Map<string, ClaimedCidr[]> {
    const key = `${family}/${l}/${to}`;
    let view = this.#cut.get(key);
    if (view) return view;
    view = new Map();
    for (const claim of this.#cidrs) {
      if (claim.cidr.family === family && claim.cidr.prefixLength === l) push(view, networkKey(claim.cidr.bytes, to), claim);
    }
    this.#cut.set(key, view);
    return view;
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Indexes of peer lists seen before (a cluster view hands out the same list until its cache changes). */
const indexes = new WeakMap<readonly PeerClaim[], PeerClaimsIndex>();

function indexOf(peers: Iterable<PeerClaim>): PeerClaimsIndex {
  if (!Array.isArray(peers)) return new PeerClaimsIndex(peers);
  const list = peers as readonly PeerClaim[];
  let index = indexes.get(list);
  if (!index) indexes.set(list, (index = new PeerClaimsIndex(list)));
  return index;
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

/**
 * No address and no overlapping pod CIDR may be advertised by another KmeshNodeInfo already.
 * `peers` may be a PeerClaimsIndex; an array is indexed once and the index kept while the array
 * lives, so a view that returns the same list until it changes pays for the index once.
 */
export function checkSpecAgainstPeers(nodeName: string, spec: KmeshNodeInfoSpec, peers: Iterable<PeerClaim> | PeerClaimsIndex, field = 'spec'): FieldError[] {
  const errors: FieldError[] = [];
  const index = peers instanceof PeerClaimsIndex ? peers : indexOf(peers);
  spec.addresses.forEach((text, i) => {
    const ip = parseIp(text);
    const owner = ip ? index.addressOwner(ip.canonical, nodeName) : undefined;
    if (ip && owner !== undefined) errors.push({ field: `${field}.addresses[${i}]`, message: `${ip.canonical} is already advertised by KmeshNodeInfo ${owner}` });
  });
  spec.podCIDRS.forEach((text, i) => {
    const cidr = parseCidr(text);
    const clash = cidr ? index.overlapping(cidr, nodeName) : undefined;
    if (cidr && clash) errors.push({ field: `${field}.podCIDRS[${i}]`, message: `${cidr.network} overlaps ${clash.cidr.network} advertised by KmeshNodeInfo ${clash.owner}` });
  });
  return errors;
}

function listOrNone(items: readonly string[]): string {
  return items.length === 0 ? 'it has none' : `it has ${items.join(', ')}`;
}
