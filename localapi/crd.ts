/**
 * Custom resources served from their CustomResourceDefinition, as apiextensions-apiserver does:
 * names, scope, the storage version, the status subresource and the printer columns come from
 * the CRD document. The schema is not enforced (README.md: what is faithful); the webhook and
 * the core validate what this project writes.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JSONPath } from 'jsonpath-plus';
import { parseAllDocuments } from 'yaml';
import { MANIFESTS_DIR } from '../webhook/configurations.js';
import { isRecord } from './json.js';
import { AGE_COLUMN, NAME_COLUMN, customResource, humanDuration, type ResourceType, type TableColumn } from './resource-type.js';
import type { JsonObject, KubeObject } from './types.js';

/** This project's CRDs, loaded from the package's manifests/ (the one source operators apply). */
export const PROJECT_CRD_FILES: readonly string[] = [join(MANIFESTS_DIR, 'base', 'crd-kmeshnodeinfos.yaml')];

/** The kinds defined by the CRDs in `files` (YAML, one or more documents each). */
export function resourcesFromCrdFiles(files: readonly string[] = PROJECT_CRD_FILES): ResourceType[] {
  return files.flatMap((file) => {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1' });
    if (!Array.isArray(docs)) throw new Error(`${file}: expected YAML documents`);
    return docs.map((doc, i) => {
      const [error] = doc.errors;
      if (error) throw new Error(`${file}: document ${i + 1}: ${error.message}`);
      return resourceFromCrd(doc.toJS() as unknown, `${file}: document ${i + 1}`);
    });
  });
}

/** One apiextensions.k8s.io/v1 CustomResourceDefinition as a served kind (its storage version). */
export function resourceFromCrd(crd: unknown, where = 'CustomResourceDefinition'): ResourceType {
  const fail = (field: string, expected: string): never => {
    throw new Error(`${where}: ${field}: ${expected}`);
  };
  if (!isRecord(crd) || crd.apiVersion !== 'apiextensions.k8s.io/v1' || crd.kind !== 'CustomResourceDefinition') {
    return fail('kind', 'must be an apiextensions.k8s.io/v1 CustomResourceDefinition');
  }
  const spec = isRecord(crd.spec) ? crd.spec : fail('spec', 'required');
  const names = isRecord(spec.names) ? spec.names : fail('spec.names', 'required');
  const text = (value: unknown, field: string): string => (typeof value === 'string' && value !== '' ? value : fail(field, 'must be a non-empty string'));
  const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  const group = text(spec.group, 'spec.group');
  const kind = text(names.kind, 'spec.names.kind');
  const plural = text(names.plural, 'spec.names.plural');
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isRecord) : [];
  const version = versions.find((v) => v.storage === true && v.served !== false) ?? fail('spec.versions', 'needs one served storage version');
  const subresources = isRecord(version.subresources) ? version.subresources : {};
  const printerColumns = Array.isArray(version.additionalPrinterColumns) ? version.additionalPrinterColumns.filter(isRecord) : [];
  return customResource(group, text(version.name, 'spec.versions[].name'), kind, plural, {
    namespaced: spec.scope !== 'Cluster',
    singular: typeof names.singular === 'string' ? names.singular : kind.toLowerCase(),
    listKind: typeof names.listKind === 'string' ? names.listKind : `${kind}List`,
    shortNames: strings(names.shortNames),
    categories: strings(names.categories),
    statusSubresource: isRecord(subresources.status),
    // Like the apiextensions server: the name, the CRD's columns (Age among them when it
    // declares one), else Age.
    columns: printerColumns.length === 0 ? [NAME_COLUMN, AGE_COLUMN] : [NAME_COLUMN, ...printerColumns.map((c, i) => printerColumn(c, `${where}: additionalPrinterColumns[${i}]`))],
  });
}

const COLUMN_TYPES = new Set(['string', 'integer', 'number', 'boolean', 'date']);

function printerColumn(column: JsonObject, where: string): TableColumn {
  const { name, type, jsonPath } = column;
  if (typeof name !== 'string' || typeof jsonPath !== 'string' || typeof type !== 'string' || !COLUMN_TYPES.has(type)) {
    throw new Error(`${where}: needs name, jsonPath and a type of ${[...COLUMN_TYPES].join(', ')}`);
  }
  const path = `$${jsonPath}`;
  return {
    name,
    type: type as TableColumn['type'],
    ...(typeof column.format === 'string' ? { format: column.format } : {}),
    description: typeof column.description === 'string' ? column.description : '',
    priority: typeof column.priority === 'number' ? column.priority : 0,
    cell: (obj: KubeObject, now: Date) => {
      const found = JSONPath<unknown[] | undefined>({ path, json: obj, wrap: true })?.[0];
      if (found === undefined || found === null) return null;
      switch (type) {
        // Non-strings print as JSON, the way the API server's JSONPath printer renders them.
        case 'string': return typeof found === 'string' ? found : JSON.stringify(found);
        case 'date': return typeof found === 'string' ? humanDuration(found, now) : null;
        case 'integer': return typeof found === 'number' && Number.isInteger(found) ? found : null;
        case 'number': return typeof found === 'number' ? found : null;
        default: return typeof found === 'boolean' ? found : null;
      }
    },
  };
}
