/** ObjectMeta checks every kind gets from the apiserver (ValidateObjectMeta and its update twin). */

import { dns1123LabelErrors, dns1123SubdomainErrors, type FieldError } from './field-errors.js';
import { asString, isRecord } from './json.js';
import type { ResourceType } from './resource-type.js';
import type { KubeObject } from './types.js';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const MAX_ANNOTATION_BYTES = 256 * 1024;

/** IsQualifiedName (label keys, matchCondition names): an optional DNS-subdomain prefix and a name part. */
export function qualifiedNameErrors(field: string, value: string): FieldError[] {
  if (QUALIFIED_NAME.test(value) && value.length <= 316) return [];
  return [{ type: 'Invalid', field, value, detail: "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')" }];
}

export function validateObjectMeta(rt: ResourceType, obj: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const { name, labels, annotations } = obj.metadata;
  if (name === undefined || name === '') {
    errors.push({ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' });
  } else if (rt.nameRule !== 'any') {
    errors.push(...(rt.nameRule === 'label' ? dns1123LabelErrors('metadata.name', name) : dns1123SubdomainErrors('metadata.name', name)));
  }
  for (const [key, value] of Object.entries(labels ?? {})) {
    errors.push(...qualifiedNameErrors('metadata.labels', key));
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      errors.push({ type: 'Invalid', field: 'metadata.labels', value, detail: "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')" });
    }
  }
  errors.push(...ownerReferenceErrors(obj.metadata.ownerReferences));
  const annotationBytes = Object.entries(annotations ?? {}).reduce((n, [k, v]) => n + k.length + v.length, 0);
  if (annotationBytes > MAX_ANNOTATION_BYTES) {
    errors.push({ type: 'TooLong', field: 'metadata.annotations', detail: `must have at most ${MAX_ANNOTATION_BYTES} bytes` });
  }
  return errors;
}

/** The garbage collector relies on these four; the apiserver refuses references lacking one. */
function ownerReferenceErrors(refs: unknown): FieldError[] {
  if (!Array.isArray(refs)) return [];
  const field = 'metadata.ownerReferences';
  return refs.flatMap((ref: unknown) => {
    const r = isRecord(ref) ? ref : {};
    const apiVersion = asString(r.apiVersion);
    const parts = apiVersion.split('/');
    const version = parts.length > 2 ? '' : (parts.at(-1) ?? '');
    const errors: FieldError[] = [];
    if (version === '') errors.push({ type: 'Invalid', field: `${field}.apiVersion`, value: apiVersion, detail: 'version must not be empty' });
    for (const key of ['kind', 'name', 'uid'] as const) {
      const value = asString(r[key]);
      if (value === '') errors.push({ type: 'Invalid', field: `${field}.${key}`, value, detail: `${key} must not be empty` });
    }
    return errors;
  });
}

export function validateObjectMetaUpdate(obj: KubeObject, old: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  for (const field of ['name', 'namespace', 'uid'] as const) {
    if (obj.metadata[field] !== old.metadata[field]) {
      errors.push({ type: 'Invalid', field: `metadata.${field}`, value: obj.metadata[field] ?? '', detail: 'field is immutable' });
    }
  }
  return errors;
}
