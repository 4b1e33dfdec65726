/**
 * ClusterView over the API server, with @kubernetes/client-node 1.4.
 *
 * KmeshNodeInfos come from a supervised informer (lib/supervised-informer.ts) so that admission
 * reads memory, not the API. While it is not synced, nodeInfos() says so and admission fails
 * closed.
 *
 * Nodes are read with a GET per KmeshNodeInfo write instead: Node objects are large (image
 * lists), KmeshNodeInfo writes are rare (start-up, key rotation, re-stamping twice a day), and
 * a GET is always current.
 */
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
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
}

export class KubeClusterView implements ClusterView {
  readonly #options: KubeClusterViewOptions;
  readonly #core: CoreV1Api;
  readonly #informer: SupervisedInformer<KubernetesObject>;

  constructor(kc: KubeConfig, options: KubeClusterViewOptions) {
    this.#options = options;
    this.#core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    this.#informer = new SupervisedInformer<KubernetesObject>({
      kubeConfig: kc,
      path: `/apis/${KNI_GROUP}/${KNI_VERSION}/namespaces/${KMESH_NAMESPACE}/${KNI_PLURAL}`,
      list: async () =>
        (await custom.listNamespacedCustomObject({ group: KNI_GROUP, version: KNI_VERSION, namespace: KMESH_NAMESPACE, plural: KNI_PLURAL })) as KubernetesListObject<KubernetesObject>,
      what: 'KmeshNodeInfo',
      logger: options.logger,
      ...(options.relistIntervalMs === undefined ? {} : { relistIntervalMs: options.relistIntervalMs }),
      ...(options.minBackoffMs === undefined ? {} : { minBackoffMs: options.minBackoffMs }),
      ...(options.maxBackoffMs === undefined ? {} : { maxBackoffMs: options.maxBackoffMs }),
    });
  }

  start(): void {
    this.#informer.start();
  }

  stop(): Promise<void> {
    return this.#informer.stop();
  }

  ready(): boolean {
    return this.#informer.synced();
  }

  nodeInfos(): Synced<readonly AdvertisedNodeInfo[]> {
    if (!this.#informer.synced()) return { synced: false, reason: this.#informer.unsyncedReason() };
    const value = this.#informer.list(KMESH_NAMESPACE).map(advertisedFrom).filter((n): n is AdvertisedNodeInfo => n !== undefined);
    return { synced: true, value };
  }

  async nodeFacts(name: string, signal: AbortSignal): Promise<Synced<NodeFacts | undefined>> {
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
