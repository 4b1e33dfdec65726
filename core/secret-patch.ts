/**
 * The RFC 6902 JSON Patch that rewrites an IPsec Secret into the one form Kmesh daemons and our
 * node plugin read: `data.ipSec` holding encodeIpsecValue(key), nothing under stringData, and no
 * second copy of the key in kubectl's last-applied-configuration annotation. Kept minimal (only
 * what differs) so that a Secret already in canonical form yields an empty patch, which is what
 * makes the mutating webhook safe to reinvoke.
 */
import { SECRET_DATA_KEY } from './constants.js';
import { isRecord } from './json-value.js';
import { type IpsecKey, encodeIpsecValue } from './secret.js';

/**
 * `kubectl apply` stores the whole applied manifest here, stringData included: a plain-text copy
 * of the key that outlives rotations done by other tools (kmeshctl, kmesh-ipsec secret rotate).
 */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

export type JsonPatchOperation =
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

/** Escape one JSON Pointer reference token (RFC 6901 §4). */
export function jsonPointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** The canonical base64 text of data.ipSec for `key`. */
export function canonicalIpsecData(key: IpsecKey): string {
  return Buffer.from(encodeIpsecValue(key), 'utf8').toString('base64');
}

/** Operations turning `secret` (a Secret as the API server sent it) into the canonical Secret for `key`. */
export function canonicalSecretPatch(secret: Readonly<Record<string, unknown>>, key: IpsecKey): JsonPatchOperation[] {
  const want = canonicalIpsecData(key);
  const ops: JsonPatchOperation[] = [];
  const data = secret.data;
  if (isRecord(data)) {
    if (data[SECRET_DATA_KEY] !== want) {
      ops.push({ op: Object.hasOwn(data, SECRET_DATA_KEY) ? 'replace' : 'add', path: `/data/${jsonPointerToken(SECRET_DATA_KEY)}`, value: want });
    }
  } else {
    ops.push({ op: 'add', path: '/data', value: { [SECRET_DATA_KEY]: want } });
  }
  // The API server folds stringData into data before admission; a client that reaches us with
  // it anyway (or a future server) must not leave a second, possibly different copy behind.
  if (Object.hasOwn(secret, 'stringData')) ops.push({ op: 'remove', path: '/stringData' });
  if (secret.type === undefined) ops.push({ op: 'add', path: '/type', value: 'Opaque' });
  const meta = secret.metadata;
  if (isRecord(meta) && isRecord(meta.annotations) && Object.hasOwn(meta.annotations, LAST_APPLIED_ANNOTATION)) {
    ops.push({ op: 'remove', path: `/metadata/annotations/${jsonPointerToken(LAST_APPLIED_ANNOTATION)}` });
  }
  return ops;
}
