/**
 * Routes one request for a resource path to its verb (get, list, watch, create, update, patch,
 * delete, deletecollection), after scope checks and authorization, and writes the answer.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, type Authorizer } from './auth.js';
import { acceptsJson, decodeObjectBody, notAcceptable, readBody, sendJson, setWarnings } from './http-util.js';
import { isRecord } from './json.js';
import { listEnvelope, listItem, listObjects, matchesQuery, parseListQuery } from './list.js';
import { patchTypeOf } from './patch.js';
import type { Registry, Subresource, WriteContext, FieldValidation } from './registry.js';
import type { RequestInfo } from './request-info.js';
import { apiVersionOf, groupResource, type ResourceType } from './resource-type.js';
import type { ResourceTable } from './resource-table.js';
import { badRequest, deleteSuccess, methodNotAllowed, resourceNotFound } from './status.js';
import type { ObjectStore } from './store.js';
import { parseIncludeObject, toTable, wantsTable } from './table.js';
import type { JsonObject, KubeObject, UserInfo } from './types.js';
import { serveWatch, type WatchRegistry } from './watch.js';

export interface ResourceHandlerDeps {
  table: ResourceTable;
  store: ObjectStore;
  registry: Registry;
  authorizer: Authorizer | undefined;
  watches: WatchRegistry;
  bookmarkIntervalMs: number;
}

type ResourceInfo = Extract<RequestInfo, { type: 'resource' }>;

const DEFAULT_WATCH_TIMEOUT_SECONDS = 1800;

function isTrue(value: string | null): boolean {
  return value === 'true' || value === '1';
}

function parseDryRun(params: URLSearchParams, body?: JsonObject): boolean {
  const values = [...params.getAll('dryRun'), ...(Array.isArray(body?.dryRun) ? body.dryRun.map(String) : [])];
  for (const v of values) {
    if (v !== 'All') throw badRequest(`Invalid dry run value: ${v}; supported values: "All"`);
  }
  return values.length > 0;
}

function parseFieldValidation(params: URLSearchParams): FieldValidation {
  const v = params.get('fieldValidation');
  if (v === null || v === '') return 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw badRequest(`fieldValidation: Unsupported value: "${v}": supported values: "Ignore", "Strict", "Warn"`);
}

/** The status endpoint only reads and writes one object. */
const SUBRESOURCE_VERBS = new Map([['GET', 'get'], ['HEAD', 'get'], ['PUT', 'update'], ['PATCH', 'patch']]);

function verbOf(method: string, name: string | undefined, watch: boolean, subresource: Subresource): string {
  if (subresource !== '') return SUBRESOURCE_VERBS.get(method) ?? '';
  switch (method) {
    case 'GET':
    case 'HEAD':
      return watch ? 'watch' : name === undefined ? 'list' : 'get';
    case 'POST':
      return name === undefined ? 'create' : '';
    case 'PUT':
      return name === undefined ? '' : 'update';
    case 'PATCH':
      return name === undefined ? '' : 'patch';
    case 'DELETE':
      return name === undefined ? 'deletecollection' : 'delete';
    default:
      return '';
  }
}

interface Scope {
  rt: ResourceType;
  namespace: string | undefined;
  subresource: Subresource;
}

/** Resolves the kind and the namespace the request is really about, or 404s like the apiserver. */
function scopeOf(deps: ResourceHandlerDeps, info: ResourceInfo): Scope {
  const rt = deps.table.lookup(info.group, info.version, info.resource);
  if (rt === undefined) throw resourceNotFound();
  let subresource: Subresource = '';
  if (info.subresource !== undefined) {
    if (info.subresource !== 'status' || !rt.statusSubresource) throw resourceNotFound();
    subresource = 'status';
  }
  const isNamespaceKind = rt.group === '' && rt.plural === 'namespaces';
  if (isNamespaceKind) return { rt, namespace: undefined, subresource };
  if (!rt.namespaced && info.namespace !== undefined) throw resourceNotFound();
  return { rt, namespace: rt.namespaced ? info.namespace : undefined, subresource };
}

export async function handleResource(
  deps: ResourceHandlerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  info: ResourceInfo,
  url: URL,
  user: UserInfo,
): Promise<void> {
  const { rt, namespace, subresource } = scopeOf(deps, info);
  const params = url.searchParams;
  const method = req.method ?? 'GET';
  const watch = info.watchPath || isTrue(params.get('watch'));
  const verb = verbOf(method, info.name, watch, subresource);
  if (verb === '') throw methodNotAllowed();
  // A namespaced object can only be addressed inside its namespace; collections may span all.
  if (rt.namespaced && namespace === undefined && !['list', 'watch'].includes(verb)) throw resourceNotFound();
  authorize(deps.authorizer, {
    user,
    verb,
    group: rt.group,
    resource: rt.plural,
    subresource,
    namespace: namespace ?? '',
    name: info.name ?? '',
  });
  const accept = req.headers.accept;
  if (!acceptsJson(accept) && !wantsTable(accept)) throw notAcceptable();

  if (verb === 'watch') {
    const query = parseListQuery(rt, params);
    if (info.name !== undefined) query.fields.push({ field: 'metadata.name', value: info.name, negate: false });
    const timeout = Number(params.get('timeoutSeconds') ?? DEFAULT_WATCH_TIMEOUT_SECONDS);
    serveWatch(res, deps.store, {
      rt,
      namespace,
      query,
      resourceVersion: params.get('resourceVersion'),
      allowBookmarks: isTrue(params.get('allowWatchBookmarks')),
      sendInitialEvents: isTrue(params.get('sendInitialEvents')),
      timeoutSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : DEFAULT_WATCH_TIMEOUT_SECONDS,
      bookmarkIntervalMs: deps.bookmarkIntervalMs,
      asTable: wantsTable(accept),
    }, deps.watches);
    return;
  }
  if (verb === 'list') {
    const result = listObjects(rt, deps.store, namespace, parseListQuery(rt, params), params);
    const body = wantsTable(accept)
      ? toTable(rt, result.items, result.metadata, parseIncludeObject(params.get('includeObject')))
      : listEnvelope(rt, result);
    sendJson(res, 200, body);
    return;
  }
  if (verb === 'get') {
    const obj = deps.registry.get(rt, namespace, info.name ?? '');
    const body = wantsTable(accept)
      ? toTable(rt, [obj], { resourceVersion: obj.metadata.resourceVersion }, parseIncludeObject(params.get('includeObject')))
      : obj;
    sendJson(res, 200, body);
    return;
  }
  await handleWrite(deps, req, res, { rt, namespace: namespace ?? '', name: info.name ?? '', subresource, verb, params, user });
}

interface WriteRequest {
  rt: ResourceType;
  subresource: Subresource;
  namespace: string;
  name: string;
  verb: string;
  params: URLSearchParams;
  user: UserInfo;
}

function deleteOptionsFrom(text: string, params: URLSearchParams): JsonObject {
  let options: JsonObject = {};
  if (text.trim() !== '') {
    const parsed: unknown = JSON.parse(text);
    if (!isRecord(parsed)) throw badRequest('decoded object cannot be converted to DeleteOptions');
    options = { ...parsed };
    delete options.kind;
    delete options.apiVersion;
  }
  const policy = params.get('propagationPolicy');
  if (policy !== null) options.propagationPolicy = policy;
  const grace = params.get('gracePeriodSeconds');
  if (grace !== null) options.gracePeriodSeconds = Number(grace);
  return options;
}

async function handleWrite(deps: ResourceHandlerDeps, req: IncomingMessage, res: ServerResponse, w: WriteRequest): Promise<void> {
  const text = await readBody(req);
  const { rt, namespace, name, subresource, params } = w;
  let deleteOptions: JsonObject = {};
  if (w.verb === 'delete' || w.verb === 'deletecollection') {
    try {
      deleteOptions = deleteOptionsFrom(text, params);
    } catch (err) {
      throw err instanceof SyntaxError ? badRequest(`couldn't get version/kind; json parse error: ${err.message}`) : err;
    }
  }
  const ctx: WriteContext = {
    user: w.user,
    dryRun: parseDryRun(params, deleteOptions),
    fieldManager: params.get('fieldManager') ?? undefined,
    fieldValidation: parseFieldValidation(params),
    warnings: [],
  };
  try {
    switch (w.verb) {
      case 'create': {
        const obj = await deps.registry.create(ctx, rt, namespace, decodeObjectBody(req.headers['content-type'], text, rt.kind));
        setWarnings(res, ctx.warnings);
        sendJson(res, 201, obj);
        return;
      }
      case 'update': {
        const obj = await deps.registry.update(ctx, rt, namespace, name, decodeObjectBody(req.headers['content-type'], text, rt.kind), subresource);
        setWarnings(res, ctx.warnings);
        sendJson(res, 200, obj);
        return;
      }
      case 'patch': {
        const result = await deps.registry.patch(ctx, rt, namespace, name, patchTypeOf(req.headers['content-type']), text, subresource);
        setWarnings(res, ctx.warnings);
        sendJson(res, result.created ? 201 : 200, result.object);
        return;
      }
      case 'delete': {
        const result = await deps.registry.delete(ctx, rt, namespace, name, deleteOptions);
        setWarnings(res, ctx.warnings);
        const body = result.finished && !rt.returnsDeletedObject
          ? deleteSuccess(groupResource(rt), name, result.object.metadata.uid)
          : result.object;
        sendJson(res, 200, body);
        return;
      }
      case 'deletecollection': {
        const query = parseListQuery(rt, params);
        const deleted: KubeObject[] = await deps.registry.deleteCollection(ctx, rt, namespace === '' ? undefined : namespace, (o) => matchesQuery(rt, query, o), deleteOptions);
        setWarnings(res, ctx.warnings);
        sendJson(res, 200, { kind: rt.listKind, apiVersion: apiVersionOf(rt), metadata: {}, items: deleted.map((o) => listItem(rt, o)) });
        return;
      }
    }
  } catch (err) {
    // Warnings gathered before a failure (e.g. from an allowing webhook) still reach the client.
    setWarnings(res, ctx.warnings);
    throw err;
  }
}
