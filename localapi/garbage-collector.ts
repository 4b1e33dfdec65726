/**
 * The part of kube-controller-manager's garbage collector that clients can observe, with
 * background propagation: an object whose every owner (metadata.ownerReferences, matched by
 * uid) is gone is deleted; references to owners that are gone are removed while another owner
 * remains; an owner deleted with propagationPolicy Orphan keeps its `orphan` finalizer until
 * its dependents no longer point at it. It acts through the registry as the real one acts
 * through the API, so admission webhooks see its requests with its service account.
 */

import { asString, isRecord } from './json.js';
import { ORPHAN_FINALIZER, type Registry, type WriteContext } from './registry.js';
import type { ResourceTable } from './resource-table.js';
import type { ResourceType } from './resource-type.js';
import type { ObjectStore, StoreEvent } from './store.js';
import type { JsonObject, KubeObject } from './types.js';

const GC_USER = {
  username: 'system:serviceaccount:kube-system:generic-garbage-collector',
  groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
};

/** A failed action (say, a webhook said no) is retried after this long, as the GC's work queue would. */
const RETRY_MS = 1000;

interface Item {
  rt: ResourceType;
  obj: KubeObject;
}

type OwnerState = 'solid' | 'dangling' | 'unresolvable';

function ownerReferences(obj: KubeObject): JsonObject[] {
  const refs = obj.metadata.ownerReferences;
  return Array.isArray(refs) ? refs.filter(isRecord) : [];
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** Only these changes can give the collector work: an owner gone, a dependent written, an orphaning owner. */
function relevant(e: StoreEvent): boolean {
  return e.type === 'DELETED' || ownerReferences(e.object).length > 0 || (e.object.metadata.finalizers ?? []).includes(ORPHAN_FINALIZER);
}

export class GarbageCollector {
  private readonly store: ObjectStore;
  private readonly table: ResourceTable;
  private readonly registry: Registry;
  private unsubscribe: (() => void) | undefined;
  private pending = false;
  private running = false;
  private paused = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(store: ObjectStore, table: ResourceTable, registry: Registry) {
    this.store = store;
    this.table = table;
    this.registry = registry;
  }

  start(): void {
    this.unsubscribe ??= this.store.subscribe((e) => {
      if (relevant(e)) this.schedule();
    });
    this.schedule();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.retry);
  }

  /** While the API is "down", the collector cannot act either; it catches up on resume. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.unsubscribe === undefined) return;
    this.pending = true;
    if (this.running || this.paused) return;
    this.running = true;
    // Never inside the write that triggered us: the real collector reacts to watch events.
    setImmediate(() => {
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending && !this.paused && this.unsubscribe !== undefined) {
        this.pending = false;
        if (!(await this.pass())) {
          clearTimeout(this.retry);
          this.retry = setTimeout(() => {
            this.schedule();
          }, RETRY_MS).unref();
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** One sweep over everything; false when some action failed. */
  private async pass(): Promise<boolean> {
    const items = this.table.all.flatMap((rt) => this.store.list(rt).map((obj) => ({ rt, obj })));
    let ok = true;
    for (const owner of items) {
      if (owner.obj.metadata.deletionTimestamp !== undefined && (owner.obj.metadata.finalizers ?? []).includes(ORPHAN_FINALIZER)) {
        ok = (await this.orphanDependents(owner, items)) && ok;
      }
    }
    for (const item of items) ok = (await this.collect(item)) && ok;
    return ok;
  }

  private context(): WriteContext {
    return { user: GC_USER, dryRun: false, fieldManager: undefined, fieldValidation: 'Warn', warnings: [] };
  }

  private async attempt(action: () => Promise<unknown>): Promise<boolean> {
    try {
      await action();
      return true;
    } catch {
      return false;
    }
  }

  private ownerState(dependent: Item, ref: JsonObject): OwnerState {
    const group = groupOf(asString(ref.apiVersion));
    const ownerRt = this.table.all.find((rt) => rt.group === group && rt.kind === ref.kind);
    // Kinds the cluster does not serve, and namespaced owners of cluster-scoped objects, cannot
    // be resolved; the real collector leaves such dependents alone.
    if (ownerRt === undefined || (ownerRt.namespaced && !dependent.rt.namespaced)) return 'unresolvable';
    const owner = this.store.get(ownerRt, ownerRt.namespaced ? dependent.obj.metadata.namespace : undefined, asString(ref.name));
    return owner !== undefined && owner.metadata.uid === ref.uid ? 'solid' : 'dangling';
  }

  /** The current state of a swept object: earlier actions of the same pass may have changed it. */
  private fresh(snapshot: Item): Item | undefined {
    const obj = this.store.get(snapshot.rt, snapshot.obj.metadata.namespace, snapshot.obj.metadata.name ?? '');
    return obj === undefined || obj.metadata.uid !== snapshot.obj.metadata.uid ? undefined : { rt: snapshot.rt, obj };
  }

  private async collect(snapshot: Item): Promise<boolean> {
    const item = this.fresh(snapshot);
    if (item === undefined) return true;
    const { rt, obj } = item;
    const refs = ownerReferences(obj);
    if (refs.length === 0 || obj.metadata.deletionTimestamp !== undefined) return true;
    const states = refs.map((ref) => this.ownerState(item, ref));
    const namespace = obj.metadata.namespace ?? '';
    const name = obj.metadata.name ?? '';
    if (states.every((s) => s === 'dangling')) {
      return this.attempt(() => this.registry.delete(this.context(), rt, namespace, name, {
        propagationPolicy: 'Background',
        preconditions: { uid: obj.metadata.uid },
      }));
    }
    if (!states.includes('dangling')) return true;
    return this.removeReferences(item, refs.filter((_, i) => states[i] !== 'dangling'));
  }

  private removeReferences(item: Item, keep: JsonObject[]): Promise<boolean> {
    const { rt, obj } = item;
    const patch = { metadata: { ownerReferences: keep.length === 0 ? null : keep, uid: obj.metadata.uid } };
    return this.attempt(() => this.registry.patch(this.context(), rt, obj.metadata.namespace ?? '', obj.metadata.name ?? '', 'application/merge-patch+json', JSON.stringify(patch)));
  }

  private async orphanDependents(owner: Item, items: readonly Item[]): Promise<boolean> {
    const uid = owner.obj.metadata.uid;
    let ok = true;
    for (const snapshot of items) {
      const item = this.fresh(snapshot);
      if (item === undefined) continue;
      const refs = ownerReferences(item.obj);
      if (refs.some((r) => r.uid === uid)) ok = (await this.removeReferences(item, refs.filter((r) => r.uid !== uid))) && ok;
    }
    const current = this.fresh(owner);
    if (!ok || current === undefined) return ok;
    const meta = current.obj.metadata;
    const finalizers = (meta.finalizers ?? []).filter((f) => f !== ORPHAN_FINALIZER);
    const patch = { metadata: { finalizers: finalizers.length === 0 ? null : finalizers, resourceVersion: meta.resourceVersion } };
    return this.attempt(() => this.registry.patch(this.context(), owner.rt, meta.namespace ?? '', meta.name ?? '', 'application/merge-patch+json', JSON.stringify(patch)));
  }
}
