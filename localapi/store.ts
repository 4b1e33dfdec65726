/**
 * In-memory object storage with etcd-like resource versions: one global counter bumped by every
 * write, and a bounded history of change events so watches can resume from a resourceVersion
 * and get 410 Gone once it has been compacted away.
 */

import { clone } from './json.js';
import { groupResource, type ResourceType } from './resource-type.js';
import { alreadyExists, notFound } from './status.js';
import type { KubeObject } from './types.js';

export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceType;
  /** State after the change; for DELETED the last state, carrying the deletion's resourceVersion. */
  object: KubeObject;
  /** State before the change (MODIFIED, DELETED). */
  oldObject?: KubeObject;
  resourceVersion: number;
}

export type StoreListener = (event: StoreEvent) => void;

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export class ObjectStore {
  private rv = 1;
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>();
  private history: StoreEvent[] = [];
  /** Every event at or below this revision is gone from the history. */
  private compactedRv = 0;
  private readonly listeners = new Set<StoreListener>();
  private readonly historyLimit: number;

  constructor(historyLimit: number) {
    this.historyLimit = historyLimit;
  }

  currentResourceVersion(): number {
    return this.rv;
  }

  /** Oldest revision a watch may still start from. */
  oldestResourceVersion(): number {
    return this.compactedRv;
  }

  private bucket(rt: ResourceType): Map<string, KubeObject> {
    let b = this.objects.get(rt);
    if (b === undefined) {
      b = new Map();
      this.objects.set(rt, b);
    }
    return b;
  }

  get(rt: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.bucket(rt).get(keyOf(rt.namespaced ? namespace : undefined, name));
    return obj === undefined ? undefined : clone(obj);
  }

  /** Items in etcd key order (namespace, then name), which is the order real lists come back in. */
  list(rt: ResourceType, namespace?: string): KubeObject[] {
    return [...this.bucket(rt).entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => clone(o));
  }

  create(rt: ResourceType, obj: KubeObject): KubeObject {
    const name = obj.metadata.name ?? '';
    const key = keyOf(obj.metadata.namespace, name);
    if (this.bucket(rt).has(key)) throw alreadyExists(groupResource(rt), name);
    return this.commit('ADDED', rt, obj, undefined);
  }

  replace(rt: ResourceType, obj: KubeObject): KubeObject {
    const name = obj.metadata.name ?? '';
    const old = this.bucket(rt).get(keyOf(obj.metadata.namespace, name));
    if (old === undefined) throw notFound(groupResource(rt), name);
    return this.commit('MODIFIED', rt, obj, old);
  }

  remove(rt: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const old = this.bucket(rt).get(keyOf(rt.namespaced ? namespace : undefined, name));
    if (old === undefined) throw notFound(groupResource(rt), name);
    return this.commit('DELETED', rt, old, old);
  }

  private commit(type: StoreEvent['type'], rt: ResourceType, obj: KubeObject, old: KubeObject | undefined): KubeObject {
    this.rv++;
    const stored = clone(obj);
    stored.metadata.resourceVersion = String(this.rv);
    const key = keyOf(stored.metadata.namespace, stored.metadata.name ?? '');
    if (type === 'DELETED') this.bucket(rt).delete(key);
    else this.bucket(rt).set(key, stored);
    const event: StoreEvent = { type, resource: rt, object: stored, resourceVersion: this.rv };
    if (old !== undefined) event.oldObject = old;
    this.history.push(event);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRv = dropped.at(-1)?.resourceVersion ?? this.compactedRv;
    }
    for (const listener of this.listeners) listener(copyEvent(event));
    return clone(stored);
  }

  /** Events after `rv`, or undefined when some of them were compacted away (410 Gone). */
  eventsAfter(rv: number): StoreEvent[] | undefined {
    if (rv < this.compactedRv) return undefined;
    return this.history.filter((e) => e.resourceVersion > rv).map(copyEvent);
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forget all history, as an etcd compaction would: older resourceVersions become 410. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
  }
}

function copyEvent(e: StoreEvent): StoreEvent {
  const copy: StoreEvent = { ...e, object: clone(e.object) };
  if (e.oldObject !== undefined) copy.oldObject = clone(e.oldObject);
  return copy;
}
