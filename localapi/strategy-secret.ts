/**
 * Secret semantics that clients can observe: stringData folded into base64 `data` before
 * anyone (webhooks included) sees the object, `type` defaulted and immutable, data keys
 * validated, and non-base64 `data` refused by the decoder.
 */

import { configKeyErrors, decodeBytesMap, immutableErrors } from './config-data.js';
import type { FieldError } from './field-errors.js';
import { isRecord } from './json.js';
import type { KindStrategy } from './resource-type.js';
import { badRequest } from './status.js';
import type { KubeObject } from './types.js';

const MAX_SECRET_BYTES = 1024 * 1024;

function decodeError(detail: string): Error {
  return badRequest(`Secret in version "v1" cannot be handled as a Secret: ${detail}`);
}

function normalize(obj: KubeObject): void {
  const data = decodeBytesMap('Secret', 'data', obj.data);
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
      errors.push(...configKeyErrors('data', key));
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
  errors.push(...immutableErrors(obj, old, ['data']));
  return errors;
}

export const secretStrategy: KindStrategy = { normalize, validate, validateUpdate };
