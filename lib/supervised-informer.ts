/**
 * A client-node informer (list + watch into a local cache) that does not die quietly.
 *
 * In @kubernetes/client-node 1.4 an informer stops for good on most errors (it reports them
 * and never reconnects), and its watch has no inactivity timeout, so a half-open connection
 * can leave the cache silently stale. The supervisor here restarts it after an error with
 * capped exponential backoff, and relists periodically through a fresh informer that replaces
 * the old one only once it has listed (a relist is also what recovers from a quiet watch).
 * While no informer is synced, `synced()` is false and readers must not trust `list()`.
 *
 * A 410 Gone (compacted history) is handled inside client-node: it clears its resourceVersion
 * and relists.
 */
import { type KubeConfig, type KubernetesListObject, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface SupervisedInformerOptions<T extends KubernetesObject> {
  readonly kubeConfig: KubeConfig;
  /** Collection path to watch, e.g. `/api/v1/pods`. */
  readonly path: string;
  /** Lists the same collection with the same selectors. */
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Plural noun for log lines ("KmeshNodeInfos"). */
  readonly what: string;
  readonly logger: Logger;
  /** Periodic relist through a fresh informer; default 10 min, with ±10 % jitter. */
  readonly relistIntervalMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Called after every add, update or delete, and whenever the cache is replaced or lost. */
  readonly onChange?: () => void;
  /**
   * What to keep of each listed or watched object (it must keep metadata.name, namespace and
   * resourceVersion): the cache then holds only that, e.g. a few fields of a 10 KB Node.
   */
  readonly transform?: (obj: T) => T;
}

export class SupervisedInformer<T extends KubernetesObject> {
  readonly #options: SupervisedInformerOptions<T>;
  #current: ListWatch<T> | undefined;
  #unsyncedReason: string;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #restarts = 0;

  constructor(options: SupervisedInformerOptions<T>) {
    this.#options = options;
    this.#unsyncedReason = `the ${options.what} cache has not listed yet`;
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

  synced(): boolean {
    return this.#current !== undefined;
  }

  /** Why the cache cannot be trusted right now (meaningful while `synced()` is false). */
  unsyncedReason(): string {
    return this.#unsyncedReason;
  }

  /** Times the informer was restarted after a failure (for metrics and tests). */
  restarts(): number {
    return this.#restarts;
  }

  list(namespace?: string): readonly T[] {
    return this.#current?.list(namespace) ?? [];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#current?.get(name, namespace);
  }

  /** Replace the cache now through a fresh list (e.g. after the caller saw it go stale). */
  relistNow(): void {
    this.#wake?.();
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
        this.#options.onChange?.();
        backoff = minBackoff;
        const outcome = await Promise.race([failedOnce.then(() => 'failed' as const), this.#sleep(jitter(relist)).then(() => 'relist' as const)]);
        if (outcome === 'relist') continue;
      }
      await informer.stop();
      // A failed relist also retires the informer it was meant to replace: it may be the stale one.
      const stale = this.#current;
      if (stale && stale !== informer) await stale.stop();
      if (this.#isStopped()) break;
      this.#restarts++;
      this.#setUnsynced(`the ${this.#options.what} watch failed (${describeWatchError(state.failure)}); reconnecting`);
      await this.#sleep(backoff);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }

  /** A method, not the field, so checks after an await are not narrowed away by the compiler. */
  #isStopped(): boolean {
    return this.#stopped;
  }

  #makeInformer(): ListWatch<T> {
    const o = this.#options;
    const transform = o.transform;
    const list = transform === undefined ? o.list : async () => {
      const listed = await o.list();
      return { ...listed, items: listed.items.map(transform) };
    };
    const watch = transform === undefined ? new Watch(o.kubeConfig) : new TransformingWatch(o.kubeConfig, transform);
    const informer = new ListWatch<T>(o.path, watch, list, false, o.labelSelector, o.fieldSelector);
    const changed = (): void => {
      // Events of an informer that is listing but not yet in charge are folded into the swap.
      if (this.#current === informer) o.onChange?.();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    return informer;
  }

  #setSynced(informer: ListWatch<T>): void {
    if (!this.#current) this.#options.logger.info({ what: this.#options.what }, 'cache synced');
    this.#current = informer;
  }

  #setUnsynced(reason: string): void {
    if (this.#current) this.#options.logger.warn({ what: this.#options.what, reason }, 'cache lost');
    this.#current = undefined;
    this.#unsyncedReason = reason;
    this.#options.onChange?.();
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

/** A Watch that hands the informer transformed objects (ERROR and BOOKMARK events pass as they are). */
class TransformingWatch<T> extends Watch {
  readonly #transform: (obj: T) => T;

  constructor(kubeConfig: KubeConfig, transform: (obj: T) => T) {
    super(kubeConfig);
    this.#transform = transform;
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(path, queryParams, (phase, apiObj: T, watchObj) => {
      const object = phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? this.#transform(apiObj) : apiObj;
      callback(phase, object, watchObj);
    }, done);
  }
}

function jitter(ms: number): number {
  return Math.round(ms * (0.9 + Math.random() * 0.2));
}

/** A short, key-free description of why a watch or list failed. */
export function describeWatchError(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const { code, statusCode, message } = err as { code?: unknown; statusCode?: unknown; message?: unknown };
    if (typeof statusCode === 'number') return `HTTP ${statusCode}`;
    if (typeof code === 'number') return `HTTP ${code}`;
    if (typeof code === 'string') return code;
    if (typeof message === 'string') return message.slice(0, 200);
  }
  return 'unknown error';
}
