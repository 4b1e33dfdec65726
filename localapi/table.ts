/**
 * Server-side printing (meta.k8s.io/v1 Table), which `kubectl get` asks for and prints as-is:
 * the columns and AGE rendering come from the server, not from kubectl.
 */

import { acceptEntries } from './http-util.js';
import type { ResourceType } from './resource-type.js';
import type { JsonObject, KubeObject } from './types.js';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** True when the Accept header asks for a Table (kubectl get sends as=Table;g=meta.k8s.io). */
export function wantsTable(accept: string | undefined): boolean {
  return acceptEntries(accept).some((e) => e.params.as === 'Table' && (e.params.g ?? 'meta.k8s.io') === 'meta.k8s.io');
}

export function parseIncludeObject(value: string | null): IncludeObject {
  return value === 'None' || value === 'Object' ? value : 'Metadata';
}

function rowObject(obj: KubeObject, include: IncludeObject): JsonObject | undefined {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(rt: ResourceType, objects: readonly KubeObject[], listMeta: JsonObject, include: IncludeObject, now = new Date()): JsonObject {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: rt.columns.map((c) => ({
      name: c.name,
      type: c.type === 'date' ? 'string' : c.type,
      format: c.format ?? '',
      description: c.description,
      priority: c.priority ?? 0,
    })),
    rows: objects.map((obj) => {
      const row: JsonObject = { cells: rt.columns.map((c) => c.cell(obj, now)) };
      const object = rowObject(obj, include);
      if (object !== undefined) row.object = object;
      return row;
    }),
  };
}
