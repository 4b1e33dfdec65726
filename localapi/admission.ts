/**
 * Webhook admission driven by the stored Mutating/ValidatingWebhookConfiguration objects,
 * following kube-apiserver's dispatchers: mutating webhooks one at a time in configuration-name
 * order (each sees the previous one's patch), then once more for the `reinvocationPolicy:
 * IfNeeded` ones a later webhook's change came after; validating webhooks in parallel;
 * matchConditions decide whether a webhook is called; failurePolicy applies to call failures
 * and to matchCondition errors; denials become the webhook's own Status.
 */

import { randomUUID } from 'node:crypto';
import jsonpatch from 'fast-json-patch';
import type { Operation as JsonPatchOperation } from 'fast-json-patch';
import type { Admission, AdmissionAttributes } from './admission-types.js';
import { asString, clone, deepEqual, isRecord } from './json.js';
import { evaluateMatchConditions } from './match-conditions.js';
import type { ServiceMap } from './service-map.js';
import { badRequest, forbidden, internalError, StatusError, type Status } from './status.js';
import type { JsonObject, KubeObject } from './types.js';
import { postAdmissionReview, WebhookCallError, type WebhookEndpoint } from './webhook-call.js';
import { namespaceSelectorMatches, objectSelectorMatches, rulesMatch } from './webhook-match.js';

export interface WebhookAdmissionDeps {
  /** Stored configurations of one flavour, sorted by name. */
  configurations: (flavour: 'mutating' | 'validating') => KubeObject[];
  namespaceLabels: (namespace: string) => Record<string, string> | undefined;
  services: ServiceMap;
}

interface Invocation {
  /** Stands in for the webhook's UID in the apiserver: configuration name and index. */
  id: string;
  hook: JsonObject;
  name: string;
}

/**
 * The apiserver's webhookReinvokeContext: IfNeeded webhooks called before a change made by a
 * later webhook are called again in one more round; a change in that round re-arms only the
 * webhooks still ahead in it (there is never a third round).
 */
class Reinvocation {
  private invokedSinceChange = new Set<string>();
  private readonly due = new Set<string>();
  private secondRound = false;

  called(inv: Invocation, changed: boolean): void {
    if (changed) {
      for (const id of this.invokedSinceChange) this.due.add(id);
      this.invokedSinceChange = new Set();
    }
    if (inv.hook.reinvocationPolicy === 'IfNeeded') this.invokedSinceChange.add(inv.id);
  }

  /** In the second round only due webhooks run: none is called there for the first time. */
  skips(inv: Invocation): boolean {
    return this.secondRound && !this.due.has(inv.id);
  }

  /** Whether a second round is needed; if so, it starts. */
  startSecondRound(): boolean {
    this.secondRound = this.due.size > 0;
    return this.secondRound;
  }
}

interface Verified {
  allowed: boolean;
  status: unknown;
  /** base64 JSONPatch text, only for mutating webhooks. */
  patch: string | undefined;
  patchType: string;
  warnings: string[];
}

const REVIEW_VERSIONS = ['v1', 'v1beta1'] as const;

/** webhookerrors.ToStatusErr: the webhook's Status, forced to a failure, message prefixed. */
export function rejectionStatus(webhook: string, result: unknown): StatusError {
  const r: JsonObject = isRecord(result) ? clone(result) : {};
  const deniedBy = `admission webhook "${webhook}" denied the request`;
  const code = typeof r.code === 'number' && r.code >= 400 ? r.code : 400;
  let message: string;
  if (typeof r.message === 'string' && r.message !== '') message = `${deniedBy}: ${r.message}`;
  else if (typeof r.reason === 'string' && r.reason !== '') message = `${deniedBy}: ${r.reason}`;
  else message = `${deniedBy} without explanation`;
  const status: Omit<Status, 'kind' | 'apiVersion' | 'metadata' | 'status'> & { code: number } = { message, code };
  if (typeof r.reason === 'string' && r.reason !== '') status.reason = r.reason;
  if (isRecord(r.details)) status.details = r.details;
  return new StatusError(status);
}

/** Admission never calls webhooks about the objects that configure admission. */
function exempt(attrs: AdmissionAttributes): boolean {
  return attrs.resource.group === 'admissionregistration.k8s.io';
}

/** Aggregated errors as Go's utilerrors.NewAggregate prints them. */
function aggregate(errors: string[]): string {
  return errors.length === 1 ? (errors[0] ?? '') : `[${errors.join(', ')}]`;
}

function webhookUserInfo(attrs: AdmissionAttributes): JsonObject {
  const u = attrs.user;
  const out: JsonObject = {};
  if (u.username !== '') out.username = u.username;
  if (u.uid !== undefined && u.uid !== '') out.uid = u.uid;
  if (u.groups !== undefined && u.groups.length > 0) out.groups = u.groups;
  if (u.extra !== undefined && Object.keys(u.extra).length > 0) out.extra = u.extra;
  return out;
}

export class WebhookAdmission implements Admission {
  private readonly deps: WebhookAdmissionDeps;

  constructor(deps: WebhookAdmissionDeps) {
    this.deps = deps;
  }

  private invocations(flavour: 'mutating' | 'validating'): Invocation[] {
    return this.deps.configurations(flavour).flatMap((cfg) =>
      (Array.isArray(cfg.webhooks) ? cfg.webhooks : []).filter(isRecord).map((hook, i) => ({
        id: `${cfg.metadata.name ?? ''}/${i}`,
        hook,
        name: typeof hook.name === 'string' ? hook.name : '',
      })),
    );
  }

  /**
   * ShouldCallHook: rules, namespaceSelector, objectSelector, then matchConditions. A condition
   * that fails to evaluate under failurePolicy Fail rejects the request (403), as on a real server.
   */
  private applies(inv: Invocation, attrs: AdmissionAttributes): boolean {
    const matched =
      rulesMatch(inv.hook.rules, attrs) &&
      namespaceSelectorMatches(inv.hook, attrs, this.deps.namespaceLabels) &&
      objectSelectorMatches(inv.hook, attrs);
    if (!matched) return false;
    const outcome = evaluateMatchConditions(inv.hook.matchConditions, { object: attrs.object, oldObject: attrs.oldObject, request: requestAttributes(attrs) });
    if ('matches' in outcome) return outcome.matches;
    if (inv.hook.failurePolicy === 'Ignore') return false;
    throw forbidden({ group: attrs.resource.group, resource: attrs.resource.plural }, attrs.name, aggregate(outcome.errors));
  }

  async mutate(attrs: AdmissionAttributes, warnings: string[]): Promise<KubeObject | null> {
    if (exempt(attrs)) return attrs.object;
    const invocations = this.invocations('mutating');
    const reinvocation = new Reinvocation();
    let object = await this.mutatingRound(invocations, attrs, attrs.object, reinvocation, warnings);
    if (reinvocation.startSecondRound()) object = await this.mutatingRound(invocations, attrs, object, reinvocation, warnings);
    return object;
  }

  private async mutatingRound(
    invocations: Invocation[],
    attrs: AdmissionAttributes,
    start: KubeObject | null,
    reinvocation: Reinvocation,
    warnings: string[],
  ): Promise<KubeObject | null> {
    let object = start;
    for (const inv of invocations) {
      const current = { ...attrs, object };
      if (!this.applies(inv, current) || reinvocation.skips(inv)) continue;
      let verified: Verified;
      let patch: unknown[] = [];
      try {
        verified = await this.call(inv, current, true);
        if (verified.allowed && verified.patch !== undefined) patch = decodePatch(verified);
      } catch (err) {
        reinvocation.called(inv, false);
        if (err instanceof WebhookCallError && inv.hook.failurePolicy === 'Ignore') continue;
        throw this.asStatusError(inv, err);
      }
      warnings.push(...verified.warnings);
      if (!verified.allowed) throw rejectionStatus(inv.name, verified.status);
      const patched = patch.length > 0 ? this.applyWebhookPatch(inv, object, patch) : object;
      // Changed means a different object, not merely a non-empty patch (the apiserver compares).
      reinvocation.called(inv, !deepEqual(patched, object));
      object = patched;
    }
    return object;
  }

  async validate(attrs: AdmissionAttributes, warnings: string[]): Promise<void> {
    if (exempt(attrs)) return;
    const failures: StatusError[] = [];
    // Every webhook is matched before any is called, so a failing matchCondition calls none.
    const calls = this.invocations('validating')
      .filter((inv) => this.applies(inv, attrs))
      .map(async (inv) => {
        try {
          const verified = await this.call(inv, attrs, false);
          warnings.push(...verified.warnings);
          if (!verified.allowed) failures.push(rejectionStatus(inv.name, verified.status));
        } catch (err) {
          if (err instanceof WebhookCallError && inv.hook.failurePolicy === 'Ignore') return;
          failures.push(this.asStatusError(inv, err));
        }
      });
    await Promise.all(calls);
    // Like the real dispatcher: the first failure to arrive wins, the rest are only logged.
    const [first] = failures;
    if (first !== undefined) throw first;
  }

  private asStatusError(inv: Invocation, err: unknown): StatusError {
    if (err instanceof WebhookCallError) return internalError(`failed calling webhook "${inv.name}": ${err.message}`);
    if (err instanceof StatusError) return err;
    return internalError(err instanceof Error ? err.message : String(err));
  }

  private applyWebhookPatch(inv: Invocation, object: KubeObject | null, patch: unknown[]): KubeObject {
    if (object === null) {
      throw internalError(`admission webhook "${inv.name}" attempted to modify the object, which is not supported for this operation`);
    }
    try {
      return jsonpatch.applyPatch(clone(object), patch as JsonPatchOperation[], true, false).newDocument;
    } catch (err) {
      throw internalError(err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err));
    }
  }

  private endpoint(hook: JsonObject, timeoutSeconds: number): WebhookEndpoint {
    const cc = isRecord(hook.clientConfig) ? hook.clientConfig : {};
    let caPem: string | undefined;
    if (typeof cc.caBundle === 'string' && cc.caBundle !== '') {
      caPem = Buffer.from(cc.caBundle, 'base64').toString('utf8');
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new WebhookCallError('could not get REST client: unable to load root certificates: unable to parse bytes as PEM block');
      }
    }
    const timeout = `timeout=${timeoutSeconds}s`;
    if (typeof cc.url === 'string') {
      const parsed = new URL(cc.url);
      // Keep the configured spelling of host and port, as Go's url.URL does.
      const host = /^https:\/\/([^/?#]+)/i.exec(cc.url)?.[1] ?? parsed.host;
      const path = `${parsed.pathname}${parsed.search === '' ? '?' : `${parsed.search}&`}${timeout}`;
      const serverName = parsed.hostname.replace(/^\[|\]$/g, '');
      return {
        href: `https://${host}${path}`,
        host,
        path,
        connectHost: serverName,
        connectPort: parsed.port === '' ? 443 : Number(parsed.port),
        serverName,
        caPem,
      };
    }
    const svc = isRecord(cc.service) ? cc.service : {};
    const ref = { namespace: String(svc.namespace), name: String(svc.name), port: typeof svc.port === 'number' ? svc.port : 443 };
    const serverName = `${ref.name}.${ref.namespace}.svc`;
    const host = `${serverName}:${ref.port}`;
    const path = `${typeof svc.path === 'string' && svc.path !== '' ? svc.path : '/'}?${timeout}`;
    const href = `https://${host}${path}`;
    const target = this.deps.services.resolve(ref);
    if (target === undefined) {
      throw new WebhookCallError(`failed to call webhook: Post "${href}": service "${ref.name}" not found`);
    }
    return { href, host, path, connectHost: target.host, connectPort: target.port, serverName, caPem };
  }

  private async call(inv: Invocation, attrs: AdmissionAttributes, mutating: boolean): Promise<Verified> {
    const { hook } = inv;
    if (attrs.dryRun && hook.sideEffects !== 'None' && hook.sideEffects !== 'NoneOnDryRun') {
      throw badRequest(`admission webhook "${inv.name}" does not support dry run`);
    }
    const versions = Array.isArray(hook.admissionReviewVersions) ? hook.admissionReviewVersions : [];
    const version = versions.find((v): v is (typeof REVIEW_VERSIONS)[number] => REVIEW_VERSIONS.some((k) => k === v));
    if (version === undefined) {
      throw new WebhookCallError('could not create admission objects: webhook does not accept known AdmissionReview versions (v1, v1beta1)');
    }
    const timeoutSeconds = typeof hook.timeoutSeconds === 'number' ? hook.timeoutSeconds : 10;
    const endpoint = this.endpoint(hook, timeoutSeconds);
    const uid = randomUUID();
    const review = this.review(uid, version, attrs);
    let answer: unknown;
    try {
      answer = await postAdmissionReview(endpoint, review, timeoutSeconds * 1000);
    } catch (err) {
      throw new WebhookCallError(`failed to call webhook: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      return verifyResponse(answer, uid, version, mutating);
    } catch (err) {
      throw new WebhookCallError(`received invalid webhook response: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private review(uid: string, version: string, attrs: AdmissionAttributes): JsonObject {
    const request: JsonObject = { uid, ...requestAttributes(attrs), object: attrs.object, oldObject: attrs.oldObject };
    return { kind: 'AdmissionReview', apiVersion: `admission.k8s.io/${version}`, request };
  }
}

/**
 * The AdmissionRequest fields other than uid, object and oldObject, empty ones left out as Go's
 * omitempty does: what webhooks receive and what matchConditions see as `request`.
 */
function requestAttributes(attrs: AdmissionAttributes): JsonObject {
  const rt = attrs.resource;
  const kind = { group: rt.group, version: rt.version, kind: rt.kind };
  const resource = { group: rt.group, version: rt.version, resource: rt.plural };
  const request: JsonObject = { kind, resource };
  if (attrs.subresource !== '') request.subResource = attrs.subresource;
  Object.assign(request, { requestKind: kind, requestResource: resource });
  if (attrs.subresource !== '') request.requestSubResource = attrs.subresource;
  if (attrs.name !== '') request.name = attrs.name;
  if (attrs.namespace !== '') request.namespace = attrs.namespace;
  Object.assign(request, { operation: attrs.operation, userInfo: webhookUserInfo(attrs), dryRun: attrs.dryRun, options: attrs.options });
  return request;
}

/** request.VerifyAdmissionResponse, including its wording. */
function verifyResponse(answer: unknown, uid: string, version: string, mutating: boolean): Verified {
  const review = isRecord(answer) ? answer : {};
  const response = review.response;
  if (!isRecord(response)) throw new Error('webhook response was absent');
  const strict = version === 'v1';
  if (strict && response.uid !== uid) {
    throw new Error(`expected response.uid="${uid}", got "${typeof response.uid === 'string' ? response.uid : ''}"`);
  }
  const apiVersion = typeof review.apiVersion === 'string' ? review.apiVersion : '';
  const kind = typeof review.kind === 'string' ? review.kind : '';
  if (strict && (apiVersion !== 'admission.k8s.io/v1' || kind !== 'AdmissionReview')) {
    throw new Error(`expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${apiVersion === '' ? '/' : apiVersion}, Kind=${kind}`);
  }
  const hasPatch = typeof response.patch === 'string' && response.patch !== '';
  const hasPatchType = response.patchType !== undefined && response.patchType !== null;
  if (mutating) {
    if (strict && hasPatch && !hasPatchType) throw new Error('webhook returned response.patch but not response.patchType');
    if (strict && !hasPatch && hasPatchType) throw new Error('webhook returned response.patchType but not response.patch');
    if (strict && response.patchType === '') throw new Error('webhook returned invalid response.patchType of ""');
  } else {
    if (hasPatch) throw new Error('validating webhook may not return response.patch');
    if (hasPatchType) throw new Error('validating webhook may not return response.patchType');
  }
  const warnings = Array.isArray(response.warnings) ? response.warnings.filter((w): w is string => typeof w === 'string') : [];
  return {
    allowed: response.allowed === true,
    status: response.status,
    patch: hasPatch && mutating ? String(response.patch) : undefined,
    // v1beta1 never checked patchType; the apiserver pins it to JSONPatch.
    patchType: strict ? asString(response.patchType) : 'JSONPatch',
    warnings,
  };
}

/** Decodes a mutating webhook's base64 JSONPatch; failures are call errors (failurePolicy applies). */
function decodePatch(verified: Verified): unknown[] {
  if (verified.patchType !== 'JSONPatch') throw new WebhookCallError(`unsupported patch type "${verified.patchType}"`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(verified.patch ?? '', 'base64').toString('utf8'));
  } catch (err) {
    throw new WebhookCallError(`received undecodable patch in webhook response: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Array.isArray(parsed)) {
    throw new WebhookCallError('received undecodable patch in webhook response: json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  }
  return parsed;
}
