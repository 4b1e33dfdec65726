/**
 * LIST: selector filtering, limit/continue paging and the List envelope. Built-in kinds come
 * back without apiVersion/kind on each item (typed lists), custom resources with them.
 */

import { badRequest } from './status.js';
import { apiVersionOf, type ResourceType } from './resource-type.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, type FieldRequirement, type LabelSelector } from './selectors.js';
import type { ObjectStore } from './store.js';
import type { JsonObject, KubeObject } from './types.js';

export interface ListQuery {
  labels: LabelSelector;
  fields: FieldRequirement[];
}

/** Cluster-scoped kinds have no metadata.namespace field to select on (ObjectMetaFieldsSet). */
function metadataFields(rt: ResourceType): string[] {
  return rt.namespaced ? ['metadata.name', 'metadata.namespace'] : ['metadata.name'];
}

export function objectFields(rt: ResourceType, obj: KubeObject): Record<string, string> {
  const fields: Record<string, string> = { 'metadata.name': obj.metadata.name ?? '' };
  if (rt.namespaced) fields['metadata.namespace'] = obj.metadata.namespace ?? '';
  for (const [field, get] of Object.entries(rt.selectableFields)) fields[field] = get(obj);
  return fields;
}

export function parseListQuery(rt: ResourceType, params: URLSearchParams): ListQuery {
  const labels = parseLabelSelector(params.get('labelSelector'));
  const fields = parseFieldSelector(params.get('fieldSelector'));
  const supported = [...metadataFields(rt), ...Object.keys(rt.selectableFields)];
  for (const f of fields) {
    if (!supported.includes(f.field)) {
      throw badRequest(rt.builtin
        ? `field label not supported: ${f.field}`
        : `"${f.field}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
    }
  }
  return { labels, fields };
}

export function matchesQuery(rt: ResourceType, q: ListQuery, obj: KubeObject): boolean {
  return matchesLabels(q.labels, obj.metadata.labels) && matchesFields(q.fields, objectFields(rt, obj));
}

/** Typed lists serialise items without TypeMeta; clients must not rely on item.kind. */
export function listItem(rt: ResourceType, obj: KubeObject): KubeObject {
  if (!rt.builtin) return obj;
  const copy: KubeObject = { ...obj };
  delete copy.apiVersion;
  delete copy.kind;
  return copy;
}

interface ContinueToken {
  rv: number;
  start: string;
}

function itemKey(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

function decodeContinue(token: string): ContinueToken {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<ContinueToken>;
    if (typeof parsed.rv === 'number' && typeof parsed.start === 'string') return { rv: parsed.rv, start: parsed.start };
  } catch {
    // fall through to the error below
  }
  throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

export interface ListResult {
  items: KubeObject[];
  metadata: JsonObject;
}

/**
 * Current matching objects, one page at a time when `limit` is set. Pages are read from the
 * live state rather than a snapshot at the first page's resourceVersion (a simplification).
 */
export function listObjects(rt: ResourceType, store: ObjectStore, namespace: string | undefined, q: ListQuery, params: URLSearchParams): ListResult {
  let items = store.list(rt, namespace).filter((o) => matchesQuery(rt, q, o));
  let rv = store.currentResourceVersion();
  const token = params.get('continue');
  if (token !== null && token !== '') {
    const decoded = decodeContinue(token);
    rv = decoded.rv;
    items = items.filter((o) => itemKey(o) >= decoded.start);
  }
  const metadata: JsonObject = { resourceVersion: String(rv) };
  const limit = Number(params.get('limit') ?? '0');
  if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
    const next = items[limit];
    items = items.slice(0, limit);
    if (next !== undefined) {
      metadata.continue = Buffer.from(JSON.stringify({ rv, start: itemKey(next) })).toString('base64url');
      metadata.remainingItemCount = store.list(rt, namespace).filter((o) => matchesQuery(rt, q, o) && itemKey(o) >= itemKey(next)).length;
    }
  }
  return { items, metadata };
}

export function listEnvelope(rt: ResourceType, result: ListResult): JsonObject {
  return {
    kind: rt.listKind,
    apiVersion: apiVersionOf(rt),
    metadata: result.metadata,
    items: result.items.map((o) => listItem(rt, o)),
  };
}
