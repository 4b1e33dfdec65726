/**
 * Secret semantics that clients can observe: stringData folded into base64 `data` before
 * anyone (webhooks included) sees the object, `type` defaulted and immutable, data keys
 * validated, and non-base64 `data` refused by the decoder.
 */

import type { FieldError } from './field-errors.js';
import { deepEqual, isRecord } from './json.js';
import type { KindStrategy } from './resource-type.js';
import { badRequest } from './status.js';
import type { KubeObject } from './types.js';

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const MAX_SECRET_BYTES = 1024 * 1024;
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

function decodeError(detail: string): Error {
  return badRequest(`Secret in version "v1" cannot be handled as a Secret: ${detail}`);
}

function normalize(obj: KubeObject): void {
  const data: Record<string, unknown> = isRecord(obj.data) ? obj.data : {};
  if (obj.data !== undefined && obj.data !== null && !isRecord(obj.data)) {
    throw decodeError('json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8');
  }
  for (const [key, value] of Object.entries(data)) {
    if (typeof value !== 'string') {
      throw decodeError(`json: cannot unmarshal ${typeof value} into Go struct field Secret.data of type []uint8`);
    }
    const offset = base64ErrorOffset(value);
    if (offset >= 0) throw decodeError(`illegal base64 data at input byte ${offset}`);
    data[key] = value.replace(/[\r\n]/g, '');
  }
  // The v1 -> internal conversion merges stringData over data; the field never reaches storage.
  if (isRecord(obj.stringData)) {
    for (const [key, value] of Object.entries(obj.stringData)) {
      if (typeof value !== 'string') {
        throw decodeError(`json: cannot unmarshal ${typeof value} into Go struct field Secret.stringData of type string`);
      }
      data[key] = Buffer.from(value, 'utf8').toString('base64');
    }
  }
  delete obj.stringData;
  if (Object.keys(data).length > 0) obj.data = data;
  else delete obj.data;
  if (obj.type === undefined || obj.type === '') obj.type = 'Opaque';
}

function validate(obj: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  let total = 0;
  if (isRecord(obj.data)) {
    for (const [key, value] of Object.entries(obj.data)) {
      if (!CONFIG_KEY.test(key)) {
        errors.push({
          type: 'Invalid',
          field: `data[${key}]`,
          value: key,
          detail: "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        });
      }
      total += Buffer.from(String(value), 'base64').length;
    }
  }
  if (total > MAX_SECRET_BYTES) {
    errors.push({ type: 'TooLong', field: 'data', detail: `must have at most ${MAX_SECRET_BYTES} bytes` });
  }
  return errors;
}

function validateUpdate(obj: KubeObject, old: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  if (obj.type !== old.type) {
    errors.push({ type: 'Invalid', field: 'type', value: obj.type, detail: 'field is immutable' });
  }
  if (old.immutable === true) {
    if (obj.immutable !== true) {
      errors.push({ type: 'Forbidden', field: 'immutable', detail: 'field is immutable when `immutable` is set' });
    }
    if (!deepEqual(obj.data ?? {}, old.data ?? {})) {
      errors.push({ type: 'Forbidden', field: 'data', detail: 'field is immutable when `immutable` is set' });
    }
  }
  return errors;
}

export const secretStrategy: KindStrategy = { normalize, validate, validateUpdate };
