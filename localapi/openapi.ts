/**
 * Just enough OpenAPI v3 for kubectl: per group-version documents whose PATCH operations carry
 * x-kubernetes-group-version-kind and the `fieldValidation` query parameter. With that, kubectl
 * leaves schema validation to the server (fieldValidation=Strict) instead of downloading the
 * protobuf /openapi/v2 document, so `kubectl apply/create` work without --validate=false.
 * Schemas are deliberately empty; kubectl then falls back to its compiled-in types (built-in
 * kinds: strategic merge) or JSON merge patch (custom resources), as with any CRD lacking them.
 */

import { createHash } from 'node:crypto';
import type { ResourceTable } from './resource-table.js';
import type { ResourceType } from './resource-type.js';
import type { JsonObject } from './types.js';

const ANY_OBJECT = { schema: { type: 'object' } };
const query = (name: string, type = 'string'): JsonObject => ({ name, in: 'query', schema: { type } });
const WRITE_PARAMS = [query('dryRun'), query('fieldManager'), query('fieldValidation')];
const LIST_PARAMS = ['labelSelector', 'fieldSelector', 'resourceVersion', 'resourceVersionMatch', 'continue', 'limit', 'timeoutSeconds', 'watch', 'allowWatchBookmarks', 'sendInitialEvents'].map((n) => query(n));
const PATH_PARAM = (name: string): JsonObject => ({ name, in: 'path', required: true, schema: { type: 'string', uniqueItems: true } });

function gvPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

function operation(rt: ResourceType, action: string, extra: JsonObject = {}): JsonObject {
  return {
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: rt.group, version: rt.version, kind: rt.kind },
    responses: { '200': { description: 'OK', content: { 'application/json': ANY_OBJECT } } },
    ...extra,
  };
}

function patchContent(rt: ResourceType): JsonObject {
  const types = ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'];
  if (rt.builtin) types.push('application/strategic-merge-patch+json');
  return Object.fromEntries(types.map((t) => [t, ANY_OBJECT]));
}

function pathsFor(rt: ResourceType): Record<string, JsonObject> {
  const base = `/${gvPath(rt.group, rt.version)}`;
  const collection = rt.namespaced ? `${base}/namespaces/{namespace}/${rt.plural}` : `${base}/${rt.plural}`;
  const scopeParams = rt.namespaced ? [PATH_PARAM('namespace')] : [];
  const body = { requestBody: { content: { 'application/json': ANY_OBJECT }, required: true } };
  const paths: Record<string, JsonObject> = {
    [collection]: {
      get: operation(rt, 'list', { parameters: LIST_PARAMS }),
      post: operation(rt, 'post', { parameters: WRITE_PARAMS, ...body }),
      delete: operation(rt, 'deletecollection', { parameters: [...WRITE_PARAMS, ...LIST_PARAMS] }),
      parameters: scopeParams,
    },
    [`${collection}/{name}`]: {
      get: operation(rt, 'get'),
      put: operation(rt, 'put', { parameters: WRITE_PARAMS, ...body }),
      patch: operation(rt, 'patch', {
        parameters: [...WRITE_PARAMS, query('force', 'boolean')],
        requestBody: { content: patchContent(rt), required: true },
      }),
      delete: operation(rt, 'delete', { parameters: WRITE_PARAMS }),
      parameters: [PATH_PARAM('name'), ...scopeParams],
    },
  };
  if (rt.statusSubresource) {
    const item = paths[`${collection}/{name}`] ?? {};
    paths[`${collection}/{name}/status`] = { get: item.get, put: item.put, patch: item.patch, parameters: item.parameters };
  }
  if (rt.namespaced) {
    paths[`${base}/${rt.plural}`] = { get: operation(rt, 'list', { parameters: LIST_PARAMS }) };
  }
  return paths;
}

export function groupVersionDocument(table: ResourceTable, group: string, version: string, serverVersion: string): JsonObject | undefined {
  const resources = table.inGroupVersion(group, version);
  if (resources.length === 0) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: serverVersion },
    paths: Object.assign({}, ...resources.map(pathsFor)) as JsonObject,
    components: { schemas: {} },
  };
}

/** The /openapi/v3 index: one entry per group-version, addressed by content hash like the real one. */
export function openApiIndex(table: ResourceTable, serverVersion: string): JsonObject {
  const paths: JsonObject = {};
  for (const group of table.groups()) {
    for (const version of table.versionsOf(group)) {
      const doc = groupVersionDocument(table, group, version, serverVersion);
      const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();
      const path = gvPath(group, version);
      paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
    }
  }
  return { paths };
}
