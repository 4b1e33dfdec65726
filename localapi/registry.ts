/**
 * The generic write path of kube-apiserver (handlers + generic registry store), in the same
 * order so that clients and webhooks observe the same things:
 *
 *   decode/default -> mutating admission -> re-default -> optimistic-concurrency check ->
 *   system fields + strategy -> validation (422) -> validating admission -> storage
 *
 * dryRun runs everything except the final storage write.
 */

import { randomUUID } from 'node:crypto';
import type { Admission, AdmissionAttributes } from './admission-types.js';
import { invalid, type FieldError } from './field-errors.js';
import { clone, deepEqual, deleteKey, isRecord } from './json.js';
import { validateObjectMeta, validateObjectMetaUpdate } from './meta-validation.js';
import { applyPatch, parsePatchBody, type PatchType } from './patch.js';
import { apiVersionOf, groupResource, type ResourceType } from './resource-type.js';
import type { ResourceTable } from './resource-table.js';
import { alreadyExists, badRequest, conflict, notFound, StatusError } from './status.js';
import type { ObjectStore } from './store.js';
import type { JsonObject, KubeObject, Operation, UserInfo } from './types.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** Per-request facts the write path needs; `warnings` collects what becomes Warning headers. */
export interface WriteContext {
  user: UserInfo;
  dryRun: boolean;
  fieldManager: string | undefined;
  fieldValidation: FieldValidation;
  warnings: string[];
  /**
   * Write `.status` as given even where a status subresource would keep it (the in-process
   * store's shortcut for "created, then its status written").
   */
  keepStatus?: boolean;
}

/** '' for the main resource, 'status' for `.../<name>/status`. */
export type Subresource = '' | 'status';

export type PropagationPolicy = 'Orphan' | 'Background' | 'Foreground';

export interface WriteResult {
  object: KubeObject;
  created: boolean;
}

export interface DeleteResult {
  object: KubeObject;
  /** False while finalizers hold the object (it only got a deletionTimestamp). */
  finished: boolean;
}

const GENERATE_NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function generatedSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += GENERATE_NAME_ALPHABET.charAt(Math.floor(Math.random() * GENERATE_NAME_ALPHABET.length));
  return s;
}

/** RFC 3339 with second precision, like metav1.Time. */
export function timestamp(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The part of an object whose change bumps metadata.generation: everything outside metadata,
 * and outside status where a status subresource owns it.
 */
function specPart(rt: ResourceType, obj: KubeObject): JsonObject {
  const rest: JsonObject = { ...obj };
  delete rest.metadata;
  if (rt.statusSubresource) delete rest.status;
  delete rest.apiVersion;
  delete rest.kind;
  return rest;
}

function setStatus(obj: KubeObject, status: unknown): void {
  if (status === undefined) delete obj.status;
  else obj.status = clone(status);
}

/**
 * The status strategies: a main-resource write keeps the stored status; a status write keeps
 * everything else (custom resources: the whole old object, metadata included; built-in kinds:
 * the spec, while metadata changes go through, as their status strategies allow).
 */
function applyStatusRules(rt: ResourceType, obj: KubeObject, existing: KubeObject, subresource: Subresource): KubeObject {
  if (subresource !== 'status') {
    setStatus(obj, existing.status);
    return obj;
  }
  if (!rt.builtin) {
    const next = clone(existing);
    setStatus(next, obj.status);
    return next;
  }
  for (const key of new Set([...Object.keys(obj), ...Object.keys(existing)])) {
    if (['apiVersion', 'kind', 'metadata', 'status'].includes(key)) continue;
    if (key in existing) obj[key] = clone(existing[key]);
    else deleteKey(obj, key);
  }
  rt.strategy.prepareForStatusUpdate?.(obj, existing);
  return obj;
}

/** DeleteOptions validation (422 before anything else happens) and the policy it asks for. */
export function propagationPolicyOf(options: JsonObject): PropagationPolicy | undefined {
  const policy = options.propagationPolicy;
  const orphan = options.orphanDependents;
  const errors: FieldError[] = [];
  if (policy !== undefined && policy !== null && orphan !== undefined && orphan !== null) {
    errors.push({ type: 'Invalid', field: 'propagationPolicy', value: policy, detail: 'orphanDependents and deletionPropagation cannot be both set' });
  }
  const supported = ['Foreground', 'Background', 'Orphan'] as const;
  const known = supported.find((p) => p === policy);
  if (policy !== undefined && policy !== null && known === undefined) {
    errors.push({ type: 'NotSupported', field: 'propagationPolicy', value: policy, detail: 'supported values: "Foreground", "Background", "Orphan", "nil"' });
  }
  if (errors.length > 0) throw invalid('meta.k8s.io', 'DeleteOptions', '', errors);
  if (known !== undefined) return known;
  return orphan === true ? 'Orphan' : undefined;
}

/** The finalizer through which the garbage collector orphans dependents before an owner goes. */
export const ORPHAN_FINALIZER = 'orphan';

function withoutResourceVersion(obj: KubeObject): KubeObject {
  const copy = clone(obj);
  delete copy.metadata.resourceVersion;
  return copy;
}

export class Registry {
  private readonly store: ObjectStore;
  private readonly table: ResourceTable;
  private readonly admission: Admission;
  private readonly namespaceLifecycle: boolean;

  /** `namespaceLifecycle` is an admission plugin too, so admission-free writers turn it off. */
  constructor(store: ObjectStore, table: ResourceTable, admission: Admission, namespaceLifecycle = true) {
    this.store = store;
    this.table = table;
    this.admission = admission;
    this.namespaceLifecycle = namespaceLifecycle;
  }

  get(rt: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.store.get(rt, namespace, name);
    if (obj === undefined) throw notFound(groupResource(rt), name);
    return obj;
  }

  /** NamespaceLifecycle: namespaced writes into a missing namespace are 404s before any webhook. */
  private requireNamespace(rt: ResourceType, namespace: string): void {
    if (!rt.namespaced || !this.namespaceLifecycle) return;
    const nsType = this.table.lookup('', 'v1', 'namespaces');
    if (nsType !== undefined && this.store.get(nsType, undefined, namespace) === undefined) {
      throw notFound({ group: '', resource: 'namespaces' }, namespace);
    }
  }

  /** What the handler's decoder does: type checks, namespace from the URL, defaulting, pruning. */
  private decode(ctx: WriteContext, rt: ResourceType, namespace: string, body: unknown, report = true): KubeObject {
    if (!isRecord(body)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    const expected = apiVersionOf(rt);
    if (typeof body.apiVersion === 'string' && body.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${expected})`);
    }
    if (typeof body.kind === 'string' && body.kind !== rt.kind) {
      throw badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${body.kind}: the kind in the data (${body.kind}) does not match the expected kind`);
    }
    if (body.metadata !== undefined && !isRecord(body.metadata)) {
      throw badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: json: cannot unmarshal into Go struct field ${rt.kind}.metadata of type v1.ObjectMeta`);
    }
    const rest = clone(body);
    delete rest.apiVersion;
    delete rest.kind;
    delete rest.metadata;
    const obj: KubeObject = { apiVersion: expected, kind: rt.kind, metadata: clone(body.metadata ?? {}), ...rest };
    if (rt.namespaced) {
      const given = obj.metadata.namespace;
      if (given !== undefined && given !== '' && given !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = namespace;
    } else {
      delete obj.metadata.namespace;
    }
    this.pruneUnknownFields(ctx, rt, obj, report);
    rt.strategy.normalize?.(obj);
    return obj;
  }

  /** Typed kinds silently lose unknown fields; fieldValidation decides whether anyone is told. */
  private pruneUnknownFields(ctx: WriteContext, rt: ResourceType, obj: KubeObject, report: boolean): void {
    if (rt.knownFields === undefined) return;
    const known = rt.knownFields;
    const unknown = Object.keys(obj).filter((k) => !known.includes(k));
    if (unknown.length === 0) return;
    if (report && ctx.fieldValidation === 'Strict') {
      throw badRequest(`strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
    }
    if (report && ctx.fieldValidation === 'Warn') ctx.warnings.push(...unknown.map((f) => `unknown field "${f}"`));
    for (const f of unknown) deleteKey(obj, f);
  }

  /** Re-applies decode-time defaulting to what mutating webhooks returned. */
  private redecode(ctx: WriteContext, rt: ResourceType, namespace: string, obj: KubeObject | null): KubeObject {
    if (obj === null) throw new StatusError({ code: 500, reason: 'InternalError', message: 'Internal error occurred: admission removed the object' });
    return this.decode(ctx, rt, namespace, obj, false);
  }

  private attributes(
    ctx: WriteContext,
    rt: ResourceType,
    operation: Operation,
    namespace: string,
    name: string,
    object: KubeObject | null,
    oldObject: KubeObject | null,
    options: JsonObject,
    subresource: Subresource = '',
  ): AdmissionAttributes {
    const isNamespace = rt.group === '' && rt.plural === 'namespaces';
    return {
      resource: rt,
      subresource,
      operation,
      // For Namespace objects the apiserver reports the namespace's own name here.
      namespace: isNamespace ? name : rt.namespaced ? namespace : '',
      name,
      object,
      oldObject,
      options,
      dryRun: ctx.dryRun,
      user: ctx.user,
    };
  }

  private operationOptions(ctx: WriteContext, kind: 'CreateOptions' | 'UpdateOptions'): JsonObject {
    const options: JsonObject = { kind, apiVersion: 'meta.k8s.io/v1' };
    if (ctx.dryRun) options.dryRun = ['All'];
    if (ctx.fieldManager !== undefined) options.fieldManager = ctx.fieldManager;
    options.fieldValidation = ctx.fieldValidation;
    return options;
  }

  private throwIfInvalid(rt: ResourceType, obj: KubeObject, errors: FieldError[]): void {
    if (errors.length > 0) throw invalid(rt.group, rt.kind, obj.metadata.name ?? '', errors);
  }

  async create(ctx: WriteContext, rt: ResourceType, namespace: string, body: unknown): Promise<KubeObject> {
    this.requireNamespace(rt, namespace);
    const decoded = this.decode(ctx, rt, namespace, body);
    if (decoded.metadata.resourceVersion !== undefined && decoded.metadata.resourceVersion !== '') {
      throw new StatusError({ code: 500, message: 'resourceVersion should not be set on objects to be created' });
    }
    return this.createDecoded(ctx, rt, namespace, decoded, this.operationOptions(ctx, 'CreateOptions'));
  }

  private async createDecoded(ctx: WriteContext, rt: ResourceType, namespace: string, decoded: KubeObject, options: JsonObject): Promise<KubeObject> {
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'managedFields', 'selfLink']) {
      deleteKey(decoded.metadata, f);
    }
    decoded.metadata.creationTimestamp = null;
    const mutated = await this.admission.mutate(
      this.attributes(ctx, rt, 'CREATE', namespace, decoded.metadata.name ?? '', decoded, null, options),
      ctx.warnings,
    );
    const obj = this.redecode(ctx, rt, namespace, mutated);
    const meta = obj.metadata;
    if ((meta.name === undefined || meta.name === '') && meta.generateName !== undefined && meta.generateName !== '') {
      meta.name = `${meta.generateName}${generatedSuffix()}`;
    }
    if (rt.statusSubresource && !rt.createKeepsStatus && ctx.keepStatus !== true) delete obj.status;
    rt.strategy.prepareForCreate?.(obj);
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp();
    if (rt.tracksGeneration) meta.generation = 1;
    delete meta.resourceVersion;
    this.throwIfInvalid(rt, obj, [...validateObjectMeta(rt, obj), ...(rt.strategy.validate?.(obj) ?? [])]);
    await this.admission.validate(
      this.attributes(ctx, rt, 'CREATE', namespace, meta.name ?? '', obj, null, options),
      ctx.warnings,
    );
    if (ctx.dryRun) {
      if (this.store.get(rt, namespace, meta.name ?? '') !== undefined) throw alreadyExists(groupResource(rt), meta.name ?? '');
      return obj;
    }
    return this.store.create(rt, obj);
  }

  async update(ctx: WriteContext, rt: ResourceType, namespace: string, name: string, body: unknown, subresource: Subresource = ''): Promise<KubeObject> {
    const decoded = this.decode(ctx, rt, namespace, body);
    if (decoded.metadata.name !== name) {
      throw badRequest(`the name of the object (${decoded.metadata.name ?? ''}) does not match the name on the URL (${name})`);
    }
    const existing = this.get(rt, namespace, name);
    return this.updateExisting(ctx, rt, namespace, decoded, existing, this.operationOptions(ctx, 'UpdateOptions'), subresource);
  }

  async patch(
    ctx: WriteContext,
    rt: ResourceType,
    namespace: string,
    name: string,
    patchType: PatchType,
    body: string,
    subresource: Subresource = '',
  ): Promise<WriteResult> {
    const isApply = patchType === 'application/apply-patch+yaml';
    // Custom resources have no Go structs to carry patch strategies, so the server refuses it.
    if (patchType === 'application/strategic-merge-patch+json' && !rt.builtin) {
      throw new StatusError({
        message: 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
        reason: 'UnsupportedMediaType',
        code: 415,
      });
    }
    if (isApply && (ctx.fieldManager === undefined || ctx.fieldManager === '')) {
      throw badRequest('PATCH, application/apply-patch+yaml requires fieldManager to be set');
    }
    const patch = parsePatchBody(patchType, body);
    const existing = this.store.get(rt, namespace, name);
    if (existing === undefined) {
      // Apply creates only through the main resource; a status apply needs the object.
      if (!isApply || subresource !== '') throw notFound(groupResource(rt), name);
      // Server-side apply creates what does not exist yet.
      this.requireNamespace(rt, namespace);
      const decoded = this.decode(ctx, rt, namespace, patch);
      decoded.metadata.name ??= name;
      const object = await this.createDecoded(ctx, rt, namespace, decoded, this.operationOptions(ctx, 'CreateOptions'));
      return { object, created: true };
    }
    const patched = applyPatch(patchType, existing, patch, rt.mergeKeys);
    const decoded = this.decode(ctx, rt, namespace, patched);
    if (decoded.metadata.name !== name) {
      throw invalid(rt.group, rt.kind, name, [{ type: 'Invalid', field: 'metadata.name', value: decoded.metadata.name ?? '', detail: 'field is immutable' }]);
    }
    const object = await this.updateExisting(ctx, rt, namespace, decoded, existing, this.operationOptions(ctx, 'UpdateOptions'), subresource);
    return { object, created: false };
  }

  private async updateExisting(
    ctx: WriteContext,
    rt: ResourceType,
    namespace: string,
    decoded: KubeObject,
    existing: KubeObject,
    options: JsonObject,
    subresource: Subresource,
  ): Promise<KubeObject> {
    const name = existing.metadata.name ?? '';
    const mutated = await this.admission.mutate(
      this.attributes(ctx, rt, 'UPDATE', namespace, name, decoded, existing, options, subresource),
      ctx.warnings,
    );
    const redecoded = this.redecode(ctx, rt, namespace, mutated);
    const old = existing.metadata;
    const rv = redecoded.metadata.resourceVersion;
    if (rv === undefined || rv === '') {
      if (!rt.allowUnconditionalUpdate) {
        // The generic store names the resource where the Invalid error normally names the kind.
        throw invalid(rt.group, rt.plural, name, [{ type: 'Invalid', field: 'metadata.resourceVersion', value: 0, rendered: '0x0', detail: 'must be specified for an update' }]);
      }
    } else if (rv !== old.resourceVersion) {
      throw conflict(groupResource(rt), name);
    }
    const obj = rt.statusSubresource && ctx.keepStatus !== true ? applyStatusRules(rt, redecoded, existing, subresource) : redecoded;
    const meta = obj.metadata;
    if (meta.uid === undefined || meta.uid === '') meta.uid = old.uid;
    meta.creationTimestamp = old.creationTimestamp ?? null;
    if (old.deletionTimestamp !== undefined) meta.deletionTimestamp = old.deletionTimestamp;
    else delete meta.deletionTimestamp;
    if (old.deletionGracePeriodSeconds !== undefined) meta.deletionGracePeriodSeconds = old.deletionGracePeriodSeconds;
    else delete meta.deletionGracePeriodSeconds;
    if (rt.tracksGeneration) {
      const bump = !deepEqual(specPart(rt, obj), specPart(rt, existing));
      meta.generation = (old.generation ?? 1) + (bump ? 1 : 0);
    } else {
      delete meta.generation;
    }
    rt.strategy.prepareForUpdate?.(obj, existing);
    meta.resourceVersion = old.resourceVersion;
    this.throwIfInvalid(rt, obj, [
      ...validateObjectMeta(rt, obj),
      ...validateObjectMetaUpdate(obj, existing),
      ...(rt.strategy.validate?.(obj) ?? []),
      ...(rt.strategy.validateUpdate?.(obj, existing) ?? []),
    ]);
    await this.admission.validate(
      this.attributes(ctx, rt, 'UPDATE', namespace, name, obj, existing, options, subresource),
      ctx.warnings,
    );
    // Removing the last finalizer from a terminating object completes its deletion.
    if (old.deletionTimestamp !== undefined && (meta.finalizers ?? []).length === 0) {
      return ctx.dryRun ? obj : this.store.remove(rt, namespace, name);
    }
    // etcd3 skips writes whose bytes did not change: same resourceVersion, no watch event.
    if (deepEqual(withoutResourceVersion(obj), withoutResourceVersion(existing))) return existing;
    if (ctx.dryRun) return obj;
    return this.store.replace(rt, obj);
  }

  async delete(ctx: WriteContext, rt: ResourceType, namespace: string, name: string, deleteOptions: JsonObject): Promise<DeleteResult> {
    const policy = propagationPolicyOf(deleteOptions);
    const existing = this.get(rt, namespace, name);
    const pre = isRecord(deleteOptions.preconditions) ? deleteOptions.preconditions : {};
    if (typeof pre.uid === 'string' && pre.uid !== existing.metadata.uid) {
      throw conflict(groupResource(rt), name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid ?? ''}`);
    }
    if (typeof pre.resourceVersion === 'string' && pre.resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(groupResource(rt), name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion ?? ''}`);
    }
    const options: JsonObject = { ...deleteOptions, kind: 'DeleteOptions', apiVersion: 'meta.k8s.io/v1' };
    if (ctx.dryRun) options.dryRun = ['All'];
    const attrs = this.attributes(ctx, rt, 'DELETE', namespace, name, null, existing, options);
    await this.admission.mutate(attrs, ctx.warnings);
    await this.admission.validate(attrs, ctx.warnings);

    // Orphan: the garbage collector frees the dependents, then drops this finalizer.
    const finalizers = [...(existing.metadata.finalizers ?? [])];
    if (policy === 'Orphan' && !finalizers.includes(ORPHAN_FINALIZER)) finalizers.push(ORPHAN_FINALIZER);
    if (finalizers.length > 0) {
      if (existing.metadata.deletionTimestamp !== undefined) return { object: existing, finished: false };
      const terminating = clone(existing);
      terminating.metadata.finalizers = finalizers;
      terminating.metadata.deletionTimestamp = timestamp();
      terminating.metadata.deletionGracePeriodSeconds = 0;
      if (rt.tracksGeneration) terminating.metadata.generation = (existing.metadata.generation ?? 1) + 1;
      return { object: ctx.dryRun ? terminating : this.store.replace(rt, terminating), finished: false };
    }
    if (ctx.dryRun) return { object: existing, finished: true };
    const removed = this.store.remove(rt, namespace, name);
    if (rt.group === '' && rt.plural === 'namespaces') this.purgeNamespace(name);
    return { object: removed, finished: true };
  }

  /** Stand-in for the namespace controller: contents go with the namespace, immediately. */
  private purgeNamespace(namespace: string): void {
    for (const rt of this.table.all.filter((r) => r.namespaced)) {
      for (const obj of this.store.list(rt, namespace)) this.store.remove(rt, namespace, obj.metadata.name ?? '');
    }
  }

  async deleteCollection(
    ctx: WriteContext,
    rt: ResourceType,
    namespace: string | undefined,
    filter: (obj: KubeObject) => boolean,
    deleteOptions: JsonObject,
  ): Promise<KubeObject[]> {
    const out: KubeObject[] = [];
    for (const item of this.store.list(rt, namespace).filter(filter)) {
      const result = await this.delete(ctx, rt, item.metadata.namespace ?? '', item.metadata.name ?? '', deleteOptions);
      out.push(result.object);
    }
    return out;
  }
}
