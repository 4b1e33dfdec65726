/**
 * WATCH as a stream of newline-delimited JSON events, with the watch cache's semantics:
 * resume strictly after a resourceVersion, synthetic ADDED events for "0"/unset, ADDED/DELETED
 * when a selector starts/stops matching, 410 Expired as an ERROR event for compacted
 * revisions, optional BOOKMARKs, and a server-side timeout that ends the stream.
 */

import type { ServerResponse } from 'node:http';
import { matchesQuery, type ListQuery } from './list.js';
import { apiVersionOf, type ResourceType } from './resource-type.js';
import { badRequest, gone } from './status.js';
import type { ObjectStore, StoreEvent } from './store.js';
import { toTable } from './table.js';
import type { JsonObject, KubeObject, WatchEventType } from './types.js';

export interface WatchOptions {
  rt: ResourceType;
  namespace: string | undefined;
  query: ListQuery;
  resourceVersion: string | null;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds: number;
  bookmarkIntervalMs: number;
  asTable: boolean;
}

/** Closers of the open watches, so the double can end them instead of waiting for clients. */
export type WatchRegistry = Set<() => void>;

export function serveWatch(res: ServerResponse, store: ObjectStore, opts: WatchOptions, open: WatchRegistry): void {
  const { rt } = opts;
  const rvText = opts.resourceVersion ?? '';
  // sendInitialEvents starts from current state whatever the resourceVersion (NotOlderThan).
  const fromCurrent = rvText === '' || rvText === '0' || opts.sendInitialEvents;
  const startRv = fromCurrent ? store.currentResourceVersion() : Number(rvText);
  if (!Number.isSafeInteger(startRv) || startRv < 0) {
    throw badRequest(`resourceVersion: Invalid value: "${rvText}": strconv.ParseUint: parsing "${rvText}": invalid syntax`);
  }

  const inScope = (obj: KubeObject): boolean =>
    (opts.namespace === undefined || obj.metadata.namespace === opts.namespace) && matchesQuery(rt, opts.query, obj);

  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();

  let finished = false;
  const write = (type: WatchEventType, object: JsonObject): void => {
    if (finished) return;
    const payload = opts.asTable && type !== 'ERROR' && type !== 'BOOKMARK'
      ? toTable(rt, [object as KubeObject], { resourceVersion: (object as KubeObject).metadata.resourceVersion }, 'Object')
      : object;
    res.write(`${JSON.stringify({ type, object: payload })}\n`);
  };
  const bookmark = (annotations?: Record<string, string>): void => {
    const metadata: JsonObject = { resourceVersion: String(store.currentResourceVersion()), creationTimestamp: null };
    if (annotations !== undefined) metadata.annotations = annotations;
    write('BOOKMARK', { kind: rt.kind, apiVersion: apiVersionOf(rt), metadata });
  };

  const deliver = (e: StoreEvent): void => {
    if (e.resource !== rt) return;
    const now = e.type !== 'DELETED' && inScope(e.object);
    const before = e.oldObject !== undefined && inScope(e.oldObject);
    if (e.type === 'DELETED') {
      if (before) write('DELETED', e.object);
    } else if (now && before) {
      write('MODIFIED', e.object);
    } else if (now) {
      write('ADDED', e.object);
    } else if (before && e.oldObject !== undefined) {
      // Stopped matching: the watch cache reports the previous state at the new revision.
      const last = { ...e.oldObject, metadata: { ...e.oldObject.metadata, resourceVersion: String(e.resourceVersion) } };
      write('DELETED', last);
    }
  };

  const timers: NodeJS.Timeout[] = [];
  let unsubscribe = (): void => undefined;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    open.delete(finish);
    if (!res.writableEnded) res.end();
  };
  open.add(finish);

  // Replay and subscription happen in the same tick, so no event can fall between them.
  const backlog = fromCurrent ? [] : store.eventsAfter(startRv);
  if (backlog === undefined) {
    write('ERROR', gone(`too old resource version: ${startRv} (${store.oldestResourceVersion() + 1})`).status as unknown as JsonObject);
    finish();
    return;
  }
  if (fromCurrent) {
    for (const obj of store.list(rt, opts.namespace).filter(inScope)) write('ADDED', obj);
    if (opts.sendInitialEvents && opts.allowBookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  }
  for (const e of backlog) deliver(e);
  unsubscribe = store.subscribe(deliver);

  if (opts.allowBookmarks) {
    const tick = (): void => {
      bookmark();
      timers.push(setTimeout(tick, opts.bookmarkIntervalMs).unref());
    };
    timers.push(setTimeout(tick, opts.bookmarkIntervalMs).unref());
  }
  timers.push(setTimeout(() => {
    // A last bookmark lets clients resume exactly where this stream stopped.
    if (opts.allowBookmarks) bookmark();
    finish();
  }, opts.timeoutSeconds * 1000).unref());
  // Not req 'close': for a GET that fires once the (empty) request is consumed, not on hang-up.
  res.on('close', finish);
  res.on('finish', finish);
}
