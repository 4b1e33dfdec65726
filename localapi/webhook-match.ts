/**
 * Whether one webhook applies to one request: rules (operations, groups, versions, resources,
 * scope), then namespaceSelector, then objectSelector, in the order and with the special cases
 * of the apiserver's generic webhook matcher.
 */

import { isRecord } from './json.js';
import { labelSelectorFromObject, matchesLabels } from './selectors.js';
import type { AdmissionAttributes } from './admission-types.js';
import type { JsonObject } from './types.js';

function listOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

const matchesOne = (patterns: string[], value: string): boolean => patterns.some((p) => p === '*' || p === value);

function scopeMatches(scope: unknown, attrs: AdmissionAttributes): boolean {
  const isNamespaceObject = attrs.resource.group === '' && attrs.resource.plural === 'namespaces';
  switch (scope) {
    case undefined:
    case '*':
      return true;
    case 'Namespaced':
      return !isNamespaceObject && attrs.resource.namespaced;
    case 'Cluster':
      return isNamespaceObject || !attrs.resource.namespaced;
    default:
      return false;
  }
}

/** "secrets" matches only the main resource, "*\/*" also subresources, as splitResource does. */
function resourceMatches(patterns: string[], resource: string, subresource: string): boolean {
  return patterns.some((p) => {
    const [res = '', sub = ''] = p.split('/', 2);
    return (res === '*' || res === resource) && (sub === '*' || sub === subresource);
  });
}

export function rulesMatch(rules: unknown, attrs: AdmissionAttributes): boolean {
  if (!Array.isArray(rules)) return false;
  return rules.some((rule: unknown) => {
    if (!isRecord(rule)) return false;
    return (
      scopeMatches(rule.scope, attrs) &&
      matchesOne(listOf(rule.operations), attrs.operation) &&
      matchesOne(listOf(rule.apiGroups), attrs.resource.group) &&
      matchesOne(listOf(rule.apiVersions), attrs.resource.version) &&
      resourceMatches(listOf(rule.resources), attrs.resource.plural, attrs.subresource)
    );
  });
}

/**
 * Cluster-scoped objects other than Namespaces always match; a Namespace is matched on its own
 * labels; anything else on the labels of the namespace it lives in.
 */
export function namespaceSelectorMatches(
  hook: JsonObject,
  attrs: AdmissionAttributes,
  namespaceLabels: (namespace: string) => Record<string, string> | undefined,
): boolean {
  const isNamespaceObject = attrs.resource.group === '' && attrs.resource.plural === 'namespaces';
  if (!attrs.resource.namespaced && !isNamespaceObject) return true;
  const selector = labelSelectorFromObject(hook.namespaceSelector);
  if (selector.length === 0) return true;
  const labels = isNamespaceObject
    ? (attrs.object ?? attrs.oldObject)?.metadata.labels
    : namespaceLabels(attrs.namespace);
  return matchesLabels(selector, labels ?? {});
}

/** Matches when either the new or the old object carries matching labels. */
export function objectSelectorMatches(hook: JsonObject, attrs: AdmissionAttributes): boolean {
  const selector = labelSelectorFromObject(hook.objectSelector);
  if (selector.length === 0) return true;
  return [attrs.object, attrs.oldObject].some((o) => o !== null && matchesLabels(selector, o.metadata.labels ?? {}));
}
