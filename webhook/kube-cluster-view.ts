/**
 * ClusterView over the API server, with @kubernetes/client-node 1.4.
 *
 * KmeshNodeInfos and Nodes come from supervised informers (lib/supervised-informer.ts), so
 * admission reads memory, not the API. While the KmeshNodeInfo cache is not synced,
 * nodeInfos() says so and admission fails closed.
 *
 * Nodes are cached with only what admission compares (name, InternalIPs, pod CIDRs): a Node
 * object is about 10 KB (image lists, conditions), its facts a few dozen bytes. A Node missing
 * from the cache (registered a moment ago, or the cache is not synced yet) is read with a GET,
 * so a new node's first KmeshNodeInfo is never refused for a cache that lags. Reading Nodes by
 * GET for every KmeshNodeInfo write, as before, cost a new TCP and TLS connection each time
 * (client-node 1.4 makes an https.Agent per request).
 */
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KMESH_NAMESPACE, KNI_GROUP, KNI_PLURAL, KNI_VERSION } from '../core/constants.js';
import { type NodeFacts, nodeFactsFromNode } from '../core/nodeinfo-claims.js';
import { SupervisedInformer } from '../lib/supervised-informer.js';
import { type AdvertisedNodeInfo, type ClusterView, type Synced, advertisedFrom } from './cluster-view.js';

export interface KubeClusterViewOptions {
  readonly logger: Logger;
  /** Periodic relist through a fresh informer; default 10 min, with ±10 % jitter. */
  readonly relistIntervalMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Cache Nodes (needs list and watch on nodes); default true. Off, every KmeshNodeInfo write GETs its Node. */
  readonly watchNodes?: boolean;
}

export class KubeClusterView implements ClusterView {
  readonly #options: KubeClusterViewOptions;
  readonly #core: CoreV1Api;
  readonly #informer: SupervisedInformer<KubernetesObject>;
  readonly #nodes: SupervisedInformer<V1Node> | undefined;
  /** nodeInfos() of the current cache content, made once per change. */
  #advertised: readonly AdvertisedNodeInfo[] | undefined;

  constructor(kc: KubeConfig, options: KubeClusterViewOptions) {
    this.#options = options;
    this.#core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const tuning = {
      logger: options.logger,
      ...(options.relistIntervalMs === undefined ? {} : { relistIntervalMs: options.relistIntervalMs }),
      ...(options.minBackoffMs === undefined ? {} : { minBackoffMs: options.minBackoffMs }),
      ...(options.maxBackoffMs === undefined ? {} : { maxBackoffMs: options.maxBackoffMs }),
    };
    this.#informer = new SupervisedInformer<KubernetesObject>({
      kubeConfig: kc,
      path: `/apis/${KNI_GROUP}/${KNI_VERSION}/namespaces/${KMESH_NAMESPACE}/${KNI_PLURAL}`,
      list: async () =>
        (await custom.listNamespacedCustomObject({ group: KNI_GROUP, version: KNI_VERSION, namespace: KMESH_NAMESPACE, plural: KNI_PLURAL })) as KubernetesListObject<KubernetesObject>,
      what: 'KmeshNodeInfo',
      onChange: () => {
        this.#advertised = undefined;
      },
      ...tuning,
    });
    this.#nodes = options.watchNodes === false ? undefined : new SupervisedInformer<V1Node>({
      kubeConfig: kc,
      path: '/api/v1/nodes',
      list: () => this.#core.listNode(),
      what: 'Node',
      transform: nodeFactsOnly,
      ...tuning,
    });
  }

  start(): void {
    this.#informer.start();
    this.#nodes?.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#informer.stop(), this.#nodes?.stop()]);
  }

  ready(): boolean {
    return this.#informer.synced();
  }

  nodeInfos(): Synced<readonly AdvertisedNodeInfo[]> {
    if (!this.#informer.synced()) return { synced: false, reason: this.#informer.unsyncedReason() };
    this.#advertised ??= this.#informer.list(KMESH_NAMESPACE).map(advertisedFrom).filter((n): n is AdvertisedNodeInfo => n !== undefined);
    return { synced: true, value: this.#advertised };
  }

  /** Facts of Node `name` from the Node cache alone; undefined when it is not synced or does not hold it. */
  nodeFactsCached(name: string): NodeFacts | undefined {
    const node = this.#nodes?.synced() === true ? this.#nodes.get(name) : undefined;
    return node && nodeFactsFromNode(node);
  }

  async nodeFacts(name: string, timeoutMs: number): Promise<Synced<NodeFacts | undefined>> {
    const cached = this.nodeFactsCached(name);
    if (cached) return { synced: true, value: cached };
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const node = await abortable(this.#core.readNode({ name }), signal);
      return { synced: true, value: nodeFactsFromNode(node) };
    } catch (err: unknown) {
      if (err instanceof ApiException && err.code === 404) return { synced: true, value: undefined };
      const why = err instanceof ApiException ? `HTTP ${err.code}` : signal.aborted ? 'timed out' : ((err as NodeJS.ErrnoException).code ?? 'error');
      this.#options.logger.warn({ node: name, why }, 'cannot read Node');
      return { synced: false, reason: `reading Node ${name} failed: ${why}` };
    }
  }
}

/** What the Node cache keeps: identity, InternalIPs and pod CIDRs (nodeFactsFromNode reads nothing else). */
export function nodeFactsOnly(node: V1Node): V1Node {
  const { name, namespace, resourceVersion, uid } = node.metadata ?? {};
  const spec = node.spec ?? {};
  return {
    metadata: { name, namespace, resourceVersion, uid },
    spec: { podCIDR: spec.podCIDR, podCIDRs: spec.podCIDRs },
    status: { addresses: (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP') },
  };
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
