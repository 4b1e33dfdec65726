/**
 * ConfigMap rules clients can trip over: config-key syntax in `data` and `binaryData`, a key in
 * only one of them, base64 `binaryData`, and `immutable: true`.
 */

import { configKeyErrors, decodeBytesMap, immutableErrors } from './config-data.js';
import type { FieldError } from './field-errors.js';
import { isRecord } from './json.js';
import type { KindStrategy } from './resource-type.js';
import type { KubeObject } from './types.js';

function normalize(obj: KubeObject): void {
  if (obj.binaryData !== undefined && obj.binaryData !== null) obj.binaryData = decodeBytesMap('ConfigMap', 'binaryData', obj.binaryData);
}

function validate(obj: KubeObject): FieldError[] {
  const data = isRecord(obj.data) ? obj.data : {};
  const binary = isRecord(obj.binaryData) ? obj.binaryData : {};
  const errors: FieldError[] = [];
  for (const key of Object.keys(data)) {
    errors.push(...configKeyErrors('data', key));
    if (key in binary) errors.push({ type: 'Invalid', field: `data[${key}]`, value: key, detail: 'duplicate of key present in binaryData' });
  }
  for (const key of Object.keys(binary)) errors.push(...configKeyErrors('binaryData', key));
  return errors;
}

function validateUpdate(obj: KubeObject, old: KubeObject): FieldError[] {
  return immutableErrors(obj, old, ['data', 'binaryData']);
}

export const configMapStrategy: KindStrategy = { normalize, validate, validateUpdate };
