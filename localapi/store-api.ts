/**
 * The in-process view tests get of the double's state: read and write objects without HTTP or
 * admission, and observe every change (callback, async iterator, or "wait until").
 */

import type { Admission } from './admission-types.js';
import { Registry, type WriteContext } from './registry.js';
import { apiVersionOf, type ResourceType } from './resource-type.js';
import type { ResourceTable } from './resource-table.js';
import type { ObjectStore, StoreEvent } from './store.js';
import type { KubeObject } from './types.js';

export interface ChangeEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** "secrets", "kmeshnodeinfos.kmesh.net": plural, qualified by group for non-core kinds. */
  resource: string;
  object: KubeObject;
  oldObject?: KubeObject;
  resourceVersion: string;
}

const NO_ADMISSION: Admission = {
  mutate: (attrs) => Promise.resolve(attrs.object),
  validate: () => Promise.resolve(),
};

function resourceName(rt: ResourceType): string {
  return rt.group === '' ? rt.plural : `${rt.plural}.${rt.group}`;
}

function toChange(e: StoreEvent): ChangeEvent {
  const change: ChangeEvent = {
    type: e.type,
    resource: resourceName(e.resource),
    object: e.object,
    resourceVersion: String(e.resourceVersion),
  };
  if (e.oldObject !== undefined) change.oldObject = e.oldObject;
  return change;
}

export class LocalApiStore {
  private readonly store: ObjectStore;
  private readonly table: ResourceTable;
  private readonly registry: Registry;

  /** @internal built by startLocalApi. */
  constructor(store: ObjectStore, table: ResourceTable) {
    this.store = store;
    this.table = table;
    this.registry = new Registry(store, table, NO_ADMISSION, false);
  }

  private context(): WriteContext {
    return { user: { username: 'system:local-api' }, dryRun: false, fieldManager: undefined, fieldValidation: 'Ignore', warnings: [], keepStatus: true };
  }

  /**
   * `resource` is "secrets", "secret", "Secret" or "kmeshnodeinfos.kmesh.net" (anything
   * unambiguous). Cluster-scoped kinds ignore `namespace`.
   */
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.store.get(this.table.resolve(resource), namespace, name);
  }

  list(resource: string, namespace?: string): KubeObject[] {
    return this.store.list(this.table.resolve(resource), namespace);
  }

  /**
   * Creates or replaces `obj` (kind from its apiVersion/kind) with the server's defaulting and
   * validation but without admission webhooks or the namespace-exists check. `.status` is
   * written as given, as if its status subresource had been written too (a new Pod without a
   * phase is Pending). A set metadata.resourceVersion is honoured as a precondition; without
   * one the write is unconditional, custom resources included.
   */
  async put(obj: KubeObject): Promise<KubeObject> {
    const rt = this.table.byKind(obj.apiVersion ?? '', obj.kind ?? '');
    if (rt === undefined) throw new Error(`local API: no resource for ${obj.apiVersion ?? ''}/${obj.kind ?? ''}`);
    const namespace = rt.namespaced ? (obj.metadata.namespace ?? 'default') : '';
    const name = obj.metadata.name ?? '';
    const existing = name === '' ? undefined : this.store.get(rt, namespace, name);
    if (existing !== undefined) {
      const resourceVersion = obj.metadata.resourceVersion ?? existing.metadata.resourceVersion;
      return this.registry.update(this.context(), rt, namespace, name, { ...obj, metadata: { ...obj.metadata, resourceVersion } });
    }
    return this.registry.create(this.context(), rt, namespace, { ...obj, metadata: { ...obj.metadata, resourceVersion: undefined } });
  }

  /** Deletes immediately (finalizers are honoured as on the server); undefined if absent. */
  async delete(resource: string, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const rt = this.table.resolve(resource);
    if (this.store.get(rt, namespace, name) === undefined) return undefined;
    return (await this.registry.delete(this.context(), rt, namespace ?? '', name, {})).object;
  }

  /** Current global resourceVersion (what a LIST issued now would return). */
  resourceVersion(): string {
    return String(this.store.currentResourceVersion());
  }

  /** Calls `listener` synchronously after every committed write; returns the unsubscribe function. */
  onChange(listener: (event: ChangeEvent) => void): () => void {
    return this.store.subscribe((e) => {
      listener(toChange(e));
    });
  }

  /** Every change from now on, until `signal` aborts or the iterator is returned. */
  async *changes(signal?: AbortSignal): AsyncGenerator<ChangeEvent, void, undefined> {
    const queue: ChangeEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.onChange((e) => {
      queue.push(e);
      wake?.();
    });
    const onAbort = (): void => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      while (signal?.aborted !== true) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Resolves with the first object of `resource` satisfying `predicate`, checking the current
   * state first and then every change; rejects after `timeoutMs`.
   */
  waitFor(resource: string, predicate: (obj: KubeObject) => boolean, timeoutMs = 5000): Promise<KubeObject> {
    const rt = this.table.resolve(resource);
    const existing = this.store.list(rt).find(predicate);
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`local API: no ${resourceName(rt)} matched within ${timeoutMs} ms`));
      }, timeoutMs);
      const unsubscribe = this.store.subscribe((e) => {
        if (e.resource === rt && e.type !== 'DELETED' && predicate(e.object)) {
          clearTimeout(timer);
          unsubscribe();
          resolve(e.object);
        }
      });
    });
  }

  /**
   * Resolves once `name` of `resource` does not exist (now, or after a later deletion, e.g. by
   * the garbage collector); rejects after `timeoutMs`.
   */
  waitForGone(resource: string, namespace: string | undefined, name: string, timeoutMs = 5000): Promise<void> {
    const rt = this.table.resolve(resource);
    if (this.store.get(rt, namespace, name) === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`local API: ${resourceName(rt)} "${name}" still exists after ${timeoutMs} ms`));
      }, timeoutMs);
      const unsubscribe = this.store.subscribe((e) => {
        if (e.resource === rt && e.type === 'DELETED' && e.object.metadata.name === name && (!rt.namespaced || e.object.metadata.namespace === namespace)) {
          clearTimeout(timer);
          unsubscribe();
          resolve();
        }
      });
    });
  }

  /** Drops the watch history: watches resuming from an older resourceVersion get 410 Gone. */
  compactHistory(): void {
    this.store.compact();
  }

  /** apiVersion a kind is served under (handy when building objects in tests). */
  apiVersionOf(resource: string): string {
    return apiVersionOf(this.table.resolve(resource));
  }
}
