/**
 * core/v1 Event validation as the apiserver applies it to that (legacy) API: only the
 * namespace rule for old-style events, and the reporting fields for new-style ones (those
 * with eventTime). Events about cluster-scoped objects such as Nodes belong in "default".
 */

import type { FieldError } from './field-errors.js';
import { asString, isRecord } from './json.js';
import type { KindStrategy } from './resource-type.js';
import type { KubeObject } from './types.js';

const LIMITS = { reportingInstance: 128, action: 128, reason: 128, message: 1024 } as const;

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

function validate(obj: KubeObject): FieldError[] {
  const involved = isRecord(obj.involvedObject) ? obj.involvedObject : {};
  const involvedNamespace = asString(involved.namespace);
  const namespace = obj.metadata.namespace ?? '';
  const mismatch: FieldError = { type: 'Invalid', field: 'involvedObject.namespace', value: involvedNamespace, detail: 'does not match event.namespace' };
  if (!isSet(obj.eventTime)) {
    const ok = involvedNamespace === '' ? ['', 'default'].includes(namespace) : namespace === involvedNamespace;
    return ok ? [] : [mismatch];
  }
  const errors: FieldError[] = [];
  if (involvedNamespace === '' && !['default', 'kube-system'].includes(namespace)) errors.push(mismatch);
  // The v1 JSON name of reportingController is reportingComponent, and errors use it.
  if (!isSet(obj.reportingComponent)) errors.push({ type: 'Required', field: 'reportingComponent', detail: '' });
  for (const [field, limit] of Object.entries(LIMITS)) {
    const value = asString(obj[field]);
    if (field !== 'message' && value === '') errors.push({ type: 'Required', field, detail: '' });
    if (value.length > limit) errors.push({ type: 'Invalid', field, value: '', detail: `can have at most ${limit} characters` });
  }
  return errors;
}

export const eventStrategy: KindStrategy = { validate, validateUpdate: (obj) => validate(obj) };
