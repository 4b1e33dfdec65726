/**
 * Rules Secrets and ConfigMaps share: the config-key syntax of their data keys and what
 * `immutable: true` freezes.
 */

import type { FieldError } from './field-errors.js';
import { deepEqual, isRecord } from './json.js';
import { badRequest } from './status.js';
import type { KubeObject } from './types.js';

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64_CHAR = /[A-Za-z0-9+/]/;

/**
 * Offset Go's base64.StdEncoding would report for `s`, or -1 when it decodes. The real server
 * decodes `data` as []byte with the padded standard alphabet, so URL-safe or unpadded values fail.
 */
export function base64ErrorOffset(s: string): number {
  const clean = s.replace(/[\r\n]/g, '');
  let padStart = -1;
  for (let i = 0; i < clean.length; i++) {
    const c = clean.charAt(i);
    if (c === '=') {
      if (padStart < 0) padStart = i;
      continue;
    }
    if (padStart >= 0 || !BASE64_CHAR.test(c)) return i;
  }
  const rem = clean.length % 4;
  if (rem !== 0) return clean.length - rem;
  if (padStart >= 0 && clean.length - padStart > 2) return padStart;
  return -1;
}

/**
 * What the decoder does with a map[string][]byte field (Secret.data, ConfigMap.binaryData):
 * refuses non-strings and bad base64 with the decoder's message, strips line breaks.
 */
export function decodeBytesMap(kind: string, field: string, value: unknown): Record<string, string> {
  const fail = (detail: string): Error => badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: ${detail}`);
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw fail(`json: cannot unmarshal into Go struct field ${kind}.${field} of type map[string][]uint8`);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw fail(`json: cannot unmarshal ${typeof item} into Go struct field ${kind}.${field} of type []uint8`);
    const offset = base64ErrorOffset(item);
    if (offset >= 0) throw fail(`illegal base64 data at input byte ${offset}`);
    out[key] = item.replace(/[\r\n]/g, '');
  }
  return out;
}

/** validation.IsConfigMapKey, as reported under `<field>[<key>]`. */
export function configKeyErrors(field: string, key: string): FieldError[] {
  if (CONFIG_KEY.test(key)) return [];
  return [{
    type: 'Invalid',
    field: `${field}[${key}]`,
    value: key,
    detail: "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
  }];
}

/** Once `immutable` is true it stays true and `fields` (data, binaryData) stay as they are. */
export function immutableErrors(obj: KubeObject, old: KubeObject, fields: readonly string[]): FieldError[] {
  if (old.immutable !== true) return [];
  const detail = 'field is immutable when `immutable` is set';
  const errors: FieldError[] = [];
  if (obj.immutable !== true) errors.push({ type: 'Forbidden', field: 'immutable', detail });
  for (const field of fields) {
    if (!deepEqual(obj[field] ?? {}, old[field] ?? {})) errors.push({ type: 'Forbidden', field, detail });
  }
  return errors;
}
