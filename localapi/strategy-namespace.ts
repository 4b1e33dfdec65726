/**
 * Namespace behaviour the rest of the double and its clients rely on: the
 * kubernetes.io/metadata.name label (webhook namespaceSelectors commonly match on it), the
 * "kubernetes" finalizer and an Active phase that updates cannot change (status is a subresource).
 */

import { isRecord } from './json.js';
import type { KindStrategy } from './resource-type.js';
import type { KubeObject } from './types.js';

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function normalize(obj: KubeObject): void {
  const name = obj.metadata.name;
  if (name !== undefined && name !== '') {
    obj.metadata.labels = { ...obj.metadata.labels, [NAMESPACE_NAME_LABEL]: name };
  }
}

function prepareForCreate(obj: KubeObject): void {
  const spec = isRecord(obj.spec) ? obj.spec : {};
  if (!Array.isArray(spec.finalizers)) spec.finalizers = ['kubernetes'];
  obj.spec = spec;
  obj.status = { phase: 'Active' };
}

function prepareForUpdate(obj: KubeObject, old: KubeObject): void {
  obj.status = old.status;
  if (!isRecord(obj.spec)) obj.spec = old.spec;
}

export const namespaceStrategy: KindStrategy = { normalize, prepareForCreate, prepareForUpdate };
