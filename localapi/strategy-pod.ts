/**
 * Pod rules the node plugin's tests must not be able to sidestep: a new pod starts Pending,
 * the spec is immutable apart from the few fields the real validator lets through (so a pod
 * cannot "move" to another node), and the status endpoint cannot touch ownerReferences.
 */

import type { FieldError } from './field-errors.js';
import { clone, deepEqual, isRecord } from './json.js';
import type { KindStrategy } from './resource-type.js';
import type { JsonObject, KubeObject } from './types.js';

const MUTABLE_SPEC_MESSAGE = 'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

function prepareForCreate(obj: KubeObject): void {
  const status: JsonObject = isRecord(obj.status) ? obj.status : {};
  status.phase ??= 'Pending';
  obj.status = status;
}

function containersOf(spec: JsonObject, field: string): JsonObject[] {
  const list = spec[field];
  return Array.isArray(list) ? list.filter(isRecord) : [];
}

function validate(obj: KubeObject): FieldError[] {
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const containers = containersOf(spec, 'containers');
  if (containers.length === 0) return [{ type: 'Required', field: 'spec.containers', detail: '' }];
  return containers.flatMap((c, i) => (['name', 'image'] as const)
    .filter((key) => typeof c[key] !== 'string' || c[key] === '')
    .map((key): FieldError => ({ type: 'Required', field: `spec.containers[${i}].${key}`, detail: '' })));
}

/** The spec without the fields an update may change. */
function frozenSpec(obj: KubeObject): JsonObject {
  const spec: JsonObject = isRecord(obj.spec) ? clone(obj.spec) : {};
  for (const field of ['containers', 'initContainers']) {
    for (const c of containersOf(spec, field)) delete c.image;
  }
  delete spec.activeDeadlineSeconds;
  delete spec.tolerations;
  delete spec.terminationGracePeriodSeconds;
  return spec;
}

function validateUpdate(obj: KubeObject, old: KubeObject): FieldError[] {
  if (deepEqual(frozenSpec(obj), frozenSpec(old))) return [];
  return [{ type: 'Forbidden', field: 'spec', detail: MUTABLE_SPEC_MESSAGE }];
}

function prepareForStatusUpdate(obj: KubeObject, old: KubeObject): void {
  if (old.metadata.ownerReferences === undefined) delete obj.metadata.ownerReferences;
  else obj.metadata.ownerReferences = clone(old.metadata.ownerReferences);
}

export const podStrategy: KindStrategy = { prepareForCreate, validate, validateUpdate, prepareForStatusUpdate };
