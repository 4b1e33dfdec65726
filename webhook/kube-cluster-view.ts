/**
 * ClusterView over the API server, with @kubernetes/client-node 1.4.
 *
 * KmeshNodeInfos come from an informer (list + watch) so that admission reads memory, not the
 * API. client-node's informer stops for good on most errors and, in 1.4, its watch has no
 * inactivity timeout, so a half-open connection could leave it silently stale. Hence a small
 * supervisor: restart after errors with capped exponential backoff, and relist periodically
 * through a fresh informer that replaces the old one only once it has listed. While no informer
 * is synced, nodeInfos() says so and admission fails closed.
 *
 * Nodes are read with a GET per KmeshNodeInfo write instead: Node objects are large (image
 * lists), KmeshNodeInfo writes are rare (start-up, key rotation, re-stamping twice a day), and
 * a GET is always current.
 */
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject, makeInformer } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KMESH_NAMESPACE, KNI_GROUP, KNI_PLURAL, KNI_VERSION } from '../core/constants.js';
import { type NodeFacts, nodeFactsFromNode } from '../core/nodeinfo-claims.js';
import { type AdvertisedNodeInfo, type ClusterView, type Synced, advertisedFrom } from './cluster-view.js';

type Informer = ReturnType<typeof makeInformer<KubernetesObject>>;

export interface KubeClusterViewOptions {
  readonly logger: Logger;
  /** Periodic relist through a fresh informer; default 10 min, with ±10 % jitter. */
  readonly relistIntervalMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class KubeClusterView implements ClusterView {
  readonly #kc: KubeConfig;
  readonly #options: KubeClusterViewOptions;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  #current: Informer | undefined;
  #unsyncedReason = 'the KmeshNodeInfo cache has not listed yet';
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(kc: KubeConfig, options: KubeClusterViewOptions) {
    this.#kc = kc;
    this.#options = options;
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
  }

  start(): void {
    this.#loop ??= this.#supervise();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    // A list stuck on an unreachable API server must not hold up shutdown.
    await Promise.race([this.#loop, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    await this.#current?.stop();
    this.#current = undefined;
  }

  ready(): boolean {
    return this.#current !== undefined;
  }

  nodeInfos(): Synced<readonly AdvertisedNodeInfo[]> {
    const informer = this.#current;
    if (!informer) return { synced: false, reason: this.#unsyncedReason };
    const value = informer.list(KMESH_NAMESPACE).map(advertisedFrom).filter((n): n is AdvertisedNodeInfo => n !== undefined);
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

  async #supervise(): Promise<void> {
    const minBackoff = this.#options.minBackoffMs ?? 1_000;
    const maxBackoff = this.#options.maxBackoffMs ?? 30_000;
    const relist = this.#options.relistIntervalMs ?? 600_000;
    let backoff = minBackoff;
    while (!this.#stopped) {
      const informer = this.#makeInformer();
      // Written from the informer's error callback, hence an object: not narrowed away across awaits.
      const state: { failure?: unknown } = {};
      let failed!: () => void;
      const failedOnce = new Promise<void>((resolve) => {
        failed = resolve;
      });
      informer.on('error', (err?: unknown) => {
        state.failure = err ?? new Error('watch ended with an error');
        failed();
      });
      try {
        await informer.start();
      } catch (err: unknown) {
        state.failure ??= err;
      }
      if (state.failure === undefined && !this.#isStopped()) {
        const previous = this.#current;
        this.#setSynced(informer);
        if (previous) await previous.stop();
        backoff = minBackoff;
        const outcome = await Promise.race([failedOnce.then(() => 'failed' as const), this.#sleep(jitter(relist)).then(() => 'relist' as const)]);
        if (outcome === 'relist') continue;
      }
      await informer.stop();
      // A failed relist also retires the informer it was meant to replace: it may be the stale one.
      const stale = this.#current;
      if (stale && stale !== informer) await stale.stop();
      if (this.#isStopped()) break;
      this.#setUnsynced(`the KmeshNodeInfo watch failed (${describeError(state.failure)}); reconnecting`);
      await this.#sleep(backoff);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }

  /** A method, not the field, so checks after an await are not narrowed away by the compiler. */
  #isStopped(): boolean {
    return this.#stopped;
  }

  #makeInformer(): Informer {
    const path = `/apis/${KNI_GROUP}/${KNI_VERSION}/namespaces/${KMESH_NAMESPACE}/${KNI_PLURAL}`;
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> =>
      (await this.#custom.listNamespacedCustomObject({ group: KNI_GROUP, version: KNI_VERSION, namespace: KMESH_NAMESPACE, plural: KNI_PLURAL })) as KubernetesListObject<KubernetesObject>;
    return makeInformer(this.#kc, path, list);
  }

  #setSynced(informer: Informer): void {
    if (!this.#current) this.#options.logger.info('KmeshNodeInfo cache synced');
    this.#current = informer;
  }

  #setUnsynced(reason: string): void {
    if (this.#current) this.#options.logger.warn({ reason }, 'KmeshNodeInfo cache lost; admission that needs it fails closed');
    this.#current = undefined;
    this.#unsyncedReason = reason;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function jitter(ms: number): number {
  return Math.round(ms * (0.9 + Math.random() * 0.2));
}

function describeError(err: unknown): string {
  if (err instanceof ApiException) return `HTTP ${err.code}`;
  if (typeof err === 'object' && err !== null) {
    const { statusCode, code, message } = err as { statusCode?: unknown; code?: unknown; message?: unknown };
    if (typeof statusCode === 'number') return `HTTP ${statusCode}`;
    if (typeof code === 'string' || typeof code === 'number') return String(code);
    if (typeof message === 'string') return message.slice(0, 200);
  }
  return 'unknown error';
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
