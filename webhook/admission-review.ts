/**
 * The AdmissionReview v1 envelope: reading the API server's request strictly, and building the
 * response exactly as it verifies it (same apiVersion/kind, echoed uid, base64 JSONPatch with
 * patchType, status only on denial, short warnings). Pure: no I/O, no clock.
 */
import type { JsonPatchOperation } from '../core/secret-patch.js';
import { type FieldError, type Result, fail, formatErrors, ok } from '../core/result.js';
import { safeText } from '../core/safe-text.js';
import { describeJsonValue, isRecord } from '../core/json-value.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const ADMISSION_KIND = 'AdmissionReview';
/** kubectl prints each warning on one line; the API server may truncate long or many ones. */
export const MAX_WARNING_CHARS = 120;
export const MAX_WARNINGS = 8;
/** Longest object description (`KmeshNodeInfo kmesh-system/node-a`) in a denial. */
const MAX_SUBJECT_CHARS = 300;

export const Operation = { Create: 'CREATE', Update: 'UPDATE', Delete: 'DELETE', Connect: 'CONNECT' } as const;
export type Operation = (typeof Operation)[keyof typeof Operation];
const OPERATIONS: readonly string[] = Object.values(Operation);

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

/** The fields of AdmissionRequest the webhook uses, checked for type. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly subResource: string;
  readonly name: string;
  readonly namespace: string;
  readonly operation: Operation;
  readonly userInfo: UserInfo;
  /** New object; null on DELETE. */
  readonly object: Readonly<Record<string, unknown>> | null;
  /** Stored object; set on UPDATE and DELETE. */
  readonly oldObject: Readonly<Record<string, unknown>> | null;
  readonly dryRun: boolean;
}

export interface AdmissionStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  readonly patch?: string;
  readonly patchType?: 'JSONPatch';
  readonly warnings?: readonly string[];
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: typeof ADMISSION_KIND;
  readonly response: AdmissionResponse;
}

/**
 * Check that `body` is an AdmissionReview v1 request. Errors name the offending field so the
 * 400 answer tells whoever misconfigured the caller what to change.
 */
export function parseAdmissionReview(body: unknown): Result<AdmissionRequest> {
  if (!isRecord(body)) return fail([{ field: 'body', message: `must be a JSON AdmissionReview object, got ${describeJsonValue(body)}` }]);
  const errors: FieldError[] = [];
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    errors.push({ field: 'apiVersion', message: `must be "${ADMISSION_API_VERSION}" (set admissionReviewVersions: ["v1"]), got ${describeJsonValue(body.apiVersion)}` });
  }
  if (body.kind !== ADMISSION_KIND) errors.push({ field: 'kind', message: `must be "${ADMISSION_KIND}", got ${describeJsonValue(body.kind)}` });
  if (body.response !== undefined) errors.push({ field: 'response', message: 'must be absent in a request' });
  const req = body.request;
  if (!isRecord(req)) {
    errors.push({ field: 'request', message: `required: the AdmissionRequest object, got ${describeJsonValue(req)}` });
    return fail(errors);
  }
  const uid = req.uid;
  if (typeof uid !== 'string' || uid === '' || uid.length > 256) errors.push({ field: 'request.uid', message: `required: a non-empty string of at most 256 characters, got ${describeJsonValue(uid)}` });
  const kind = readGvk(req.kind, 'request.kind', errors);
  const operation = req.operation;
  if (typeof operation !== 'string' || !OPERATIONS.includes(operation)) {
    errors.push({ field: 'request.operation', message: `must be one of ${OPERATIONS.join(', ')}, got ${describeJsonValue(operation)}` });
  }
  const name = optionalString(req.name, 'request.name', errors);
  const namespace = optionalString(req.namespace, 'request.namespace', errors);
  const subResource = optionalString(req.subResource, 'request.subResource', errors);
  const userInfo = readUserInfo(req.userInfo, errors);
  const object = optionalObject(req.object, 'request.object', errors);
  const oldObject = optionalObject(req.oldObject, 'request.oldObject', errors);
  if ((operation === Operation.Create || operation === Operation.Update) && object === null) {
    errors.push({ field: 'request.object', message: `required for ${operation}` });
  }
  if ((operation === Operation.Update || operation === Operation.Delete) && oldObject === null) {
    errors.push({ field: 'request.oldObject', message: `required for ${operation}` });
  }
  if (req.dryRun !== undefined && req.dryRun !== null && typeof req.dryRun !== 'boolean') {
    errors.push({ field: 'request.dryRun', message: `must be a boolean, got ${describeJsonValue(req.dryRun)}` });
  }
  if (errors.length > 0 || typeof uid !== 'string' || !kind || !userInfo) return fail(errors);
  return ok({
    uid,
    kind,
    subResource,
    name,
    namespace,
    operation: operation as Operation,
    userInfo,
    object,
    oldObject,
    dryRun: req.dryRun === true,
  });
}

/** The uid of a body that failed parseAdmissionReview, when it has a usable one (for logs). */
export function peekUid(body: unknown): string | undefined {
  if (!isRecord(body) || !isRecord(body.request)) return undefined;
  const uid = body.request.uid;
  return typeof uid === 'string' && uid.length <= 256 ? uid : undefined;
}

function readGvk(v: unknown, field: string, errors: FieldError[]): GroupVersionKind | undefined {
  if (!isRecord(v)) {
    errors.push({ field, message: `required: {group, version, kind}, got ${describeJsonValue(v)}` });
    return undefined;
  }
  const { group, version, kind } = v;
  if (typeof group !== 'string' || typeof version !== 'string' || typeof kind !== 'string' || version === '' || kind === '') {
    errors.push({ field, message: 'must have string group and non-empty version and kind' });
    return undefined;
  }
  return { group, version, kind };
}

function optionalString(v: unknown, field: string, errors: FieldError[]): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') errors.push({ field, message: `must be a string, got ${describeJsonValue(v)}` });
  return typeof v === 'string' ? v : '';
}

function optionalObject(v: unknown, field: string, errors: FieldError[]): Readonly<Record<string, unknown>> | null {
  if (v === undefined || v === null) return null;
  if (!isRecord(v)) {
    errors.push({ field, message: `must be an object, got ${describeJsonValue(v)}` });
    return null;
  }
  return v;
}

function readUserInfo(v: unknown, errors: FieldError[]): UserInfo | undefined {
  const field = 'request.userInfo';
  if (!isRecord(v)) {
    errors.push({ field, message: `required: {username, groups, extra}, got ${describeJsonValue(v)}` });
    return undefined;
  }
  const before = errors.length;
  const username = typeof v.username === 'string' ? v.username : '';
  if (v.username !== undefined && typeof v.username !== 'string') errors.push({ field: `${field}.username`, message: `must be a string, got ${describeJsonValue(v.username)}` });
  const groups = stringList(v.groups, `${field}.groups`, errors);
  const extra: Record<string, readonly string[]> = {};
  if (v.extra !== undefined && v.extra !== null) {
    if (!isRecord(v.extra)) errors.push({ field: `${field}.extra`, message: `must be a map of string lists, got ${describeJsonValue(v.extra)}` });
    else {
      for (const [k, list] of Object.entries(v.extra)) {
        Object.defineProperty(extra, k, { value: stringList(list, `${field}.extra["${safeText(k, 64)}"]`, errors), enumerable: true });
      }
    }
  }
  if (errors.length > before) return undefined;
  return { username, ...(typeof v.uid === 'string' ? { uid: v.uid } : {}), groups, extra };
}

function stringList(v: unknown, field: string, errors: FieldError[]): readonly string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    errors.push({ field, message: `must be a list of strings, got ${describeJsonValue(v)}` });
    return [];
  }
  return v;
}

// ---- responses -------------------------------------------------------------------------------

/**
 * One warning as kubectl will show it: printable ASCII only (it travels as an HTTP Warning
 * header), at most MAX_WARNING_CHARS characters.
 */
export function clampWarning(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length <= MAX_WARNING_CHARS ? printable : `${printable.slice(0, MAX_WARNING_CHARS - 3)}...`;
}

export function allowResponse(uid: string, patch: readonly JsonPatchOperation[] = [], warnings: readonly string[] = []): AdmissionReviewResponse {
  return envelope({
    uid,
    allowed: true,
    // An empty patch is legal but pointless; omitting it keeps the "no mutation" case obvious in audit logs.
    ...(patch.length > 0 ? { patchType: 'JSONPatch' as const, patch: Buffer.from(JSON.stringify(patch), 'utf8').toString('base64') } : {}),
    ...warningsField(warnings),
  });
}

export function denyResponse(uid: string, status: AdmissionStatus, warnings: readonly string[] = []): AdmissionReviewResponse {
  return envelope({ uid, allowed: false, status, ...warningsField(warnings) });
}

/**
 * `subject: field: message; ...` for the first few errors, then a count of the rest: bounded
 * (about 3.5 KB at most) and escaped, since names and field paths come from the request.
 */
export function denialMessage(subject: string, errors: readonly FieldError[]): string {
  return `${safeText(subject, MAX_SUBJECT_CHARS)}: ${formatErrors(errors)}`;
}

function warningsField(warnings: readonly string[]): { warnings?: readonly string[] } {
  if (warnings.length === 0) return {};
  return { warnings: warnings.slice(0, MAX_WARNINGS).map(clampWarning) };
}

function envelope(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_KIND, response };
}
