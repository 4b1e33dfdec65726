/**
 * The cluster state admission decisions depend on, behind one small interface: the
 * KmeshNodeInfos nodes publish (their SPIs, addresses and CIDRs) and the Node objects that bound
 * what each may claim. kube-cluster-view.ts implements it over the API server; tests and
 * benchmarks hand in fixed data. "Not synced" is a first-class answer so every caller has to
 * decide, visibly, to fail closed.
 */
import { MAX_NODE_ADDRESSES, MAX_POD_CIDRS } from '../core/nodeinfo.js';
import type { NodeFacts, PeerClaim } from '../core/nodeinfo-claims.js';

export type Synced<T> = { readonly synced: true; readonly value: T } | { readonly synced: false; readonly reason: string };

/** What one KmeshNodeInfo advertises, as far as it could be read (objects written before the webhook may be invalid). */
export interface AdvertisedNodeInfo extends PeerClaim {
  /** spec.spi when it is an integer, else undefined. */
  readonly spi: number | undefined;
}

export interface ClusterView {
  /** Every KmeshNodeInfo in kmesh-system, from a cache: cheap, synchronous. */
  nodeInfos(): Synced<readonly AdvertisedNodeInfo[]>;
  /** Facts of Node `name`; `value` undefined when there is no such Node. A read from the API gives up after `timeoutMs`. */
  nodeFacts(name: string, timeoutMs: number): Promise<Synced<NodeFacts | undefined>>;
  /** True once nodeInfos() can answer; drives /readyz. */
  ready(): boolean;
}

/**
 * Read what a KmeshNodeInfo advertises without trusting its shape. Objects stored around the
 * webhook may hold any number of items: only as many as an admitted one can are read, so every
 * admission's comparison with its peers costs what it would in a valid cluster.
 */
export function advertisedFrom(obj: unknown): AdvertisedNodeInfo | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const { metadata, spec } = obj as { metadata?: { name?: unknown }; spec?: Record<string, unknown> };
  if (typeof metadata?.name !== 'string') return undefined;
  const strings = (v: unknown, max: number): string[] => (Array.isArray(v) ? v.slice(0, max).filter((s): s is string => typeof s === 'string') : []);
  const spi = spec?.spi;
  return {
    name: metadata.name,
    spi: typeof spi === 'number' && Number.isSafeInteger(spi) ? spi : undefined,
    addresses: strings(spec?.addresses, MAX_NODE_ADDRESSES),
    podCIDRS: strings(spec?.podCIDRS, MAX_POD_CIDRS),
  };
}

/** A fixed view: for tests and benchmarks, which must not need an API server to exercise admission. */
export class StaticClusterView implements ClusterView {
  #nodeInfos: AdvertisedNodeInfo[] | undefined;
  readonly #nodes = new Map<string, NodeFacts>();

  constructor(options: { nodeInfos?: readonly AdvertisedNodeInfo[]; nodes?: readonly NodeFacts[]; synced?: boolean } = {}) {
    this.#nodeInfos = options.synced === false ? undefined : [...(options.nodeInfos ?? [])];
    for (const n of options.nodes ?? []) this.#nodes.set(n.name, n);
  }

  setNodeInfos(list: readonly AdvertisedNodeInfo[] | undefined): void {
    this.#nodeInfos = list ? [...list] : undefined;
  }

  setNode(facts: NodeFacts): void {
    this.#nodes.set(facts.name, facts);
  }

  nodeInfos(): Synced<readonly AdvertisedNodeInfo[]> {
    return this.#nodeInfos ? { synced: true, value: this.#nodeInfos } : { synced: false, reason: 'the KmeshNodeInfo cache has not synced' };
  }

  nodeFacts(name: string): Promise<Synced<NodeFacts | undefined>> {
    if (!this.#nodeInfos) return Promise.resolve({ synced: false, reason: 'the cluster view has not synced' });
    return Promise.resolve({ synced: true, value: this.#nodes.get(name) });
  }

  ready(): boolean {
    return this.#nodeInfos !== undefined;
  }
}
