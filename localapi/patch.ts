/**
 * The four PATCH content types. JSON merge patch and JSON patch follow their RFCs; strategic
 * merge understands the directives kubectl emits ($patch, $retainKeys, $setElementOrder,
 * $deleteFromPrimitiveList) and merges lists by the kind's merge keys; server-side apply is
 * approximated as a strategic merge of the applied configuration (no field ownership).
 */

import jsonpatch from 'fast-json-patch';
import type { Operation as JsonPatchOperation } from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { clone, deepEqual, deleteKey, isRecord } from './json.js';
import { badRequest, StatusError, unsupportedMediaType } from './status.js';

export const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;

export type PatchType = (typeof PATCH_TYPES)[number];

export function patchTypeOf(contentType: string | undefined): PatchType {
  const base = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const found = PATCH_TYPES.find((t) => t === base);
  if (found === undefined) throw unsupportedMediaType(base);
  return found;
}

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return clone(patch);
  const result: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) deleteKey(result, key);
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * evanphx/json-patch failures reach clients as a 422 whose message is generic and whose cause
 * carries the detail; mirror that so callers branching on reason/code see the same thing.
 */
function jsonPatchFailure(detail: string): StatusError {
  return new StatusError({
    message: 'the server rejected our request due to an error in our request',
    reason: 'Invalid',
    details: { causes: [{ reason: 'UnexpectedServerResponse', message: detail }] },
    code: 422,
  });
}

export function applyJsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  try {
    jsonpatch.validate(ops as JsonPatchOperation[]);
  } catch (err) {
    throw badRequest(err instanceof Error ? err.message : String(err));
  }
  try {
    return jsonpatch.applyPatch(clone(target), ops as JsonPatchOperation[], true, false).newDocument;
  } catch (err) {
    throw jsonPatchFailure(err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err));
  }
}

type MergeKeys = Readonly<Record<string, string>>;

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

function stripDirectives(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.filter((v) => !(isRecord(v) && Object.keys(v).length === 1 && '$patch' in v)).map(stripDirectives);
  }
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!k.startsWith('$')) out[k] = stripDirectives(v);
  }
  return out;
}

function mergeList(original: unknown, patch: unknown[], path: string, mergeKeys: MergeKeys): unknown[] {
  const key = mergeKeys[path];
  if (patch.some((v) => isRecord(v) && v.$patch === 'replace')) return stripDirectives(patch) as unknown[];
  const base = Array.isArray(original) ? clone(original) : [];
  if (key === undefined) return stripDirectives(patch) as unknown[];
  if (key === '') {
    for (const v of patch) if (!base.some((b) => deepEqual(b, v))) base.push(clone(v));
    return base;
  }
  for (const item of patch) {
    if (!isRecord(item)) continue;
    const idx = base.findIndex((b) => isRecord(b) && b[key] === item[key]);
    if (item.$patch === 'delete') {
      if (idx >= 0) base.splice(idx, 1);
    } else if (idx >= 0) {
      base[idx] = strategicMerge(base[idx], item, path, mergeKeys);
    } else {
      base.push(stripDirectives(item));
    }
  }
  return base;
}

/**
 * Strategic merge patch for kinds whose schema the double describes only through `mergeKeys`.
 * Lists without a merge key are replaced, which is what the real server does for atomic lists.
 * Returns undefined when the patch deletes the value ($patch: delete).
 */
export function strategicMerge(original: unknown, patch: unknown, path: string, mergeKeys: MergeKeys): unknown {
  if (!isRecord(patch)) return clone(patch);
  if (patch.$patch === 'delete') return undefined;
  if (patch.$patch === 'replace') return stripDirectives(patch);
  const result: Record<string, unknown> = isRecord(original) ? clone(original) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const field = key.slice('$deleteFromPrimitiveList/'.length);
      const current = result[field];
      if (Array.isArray(current) && Array.isArray(value)) {
        result[field] = current.filter((v) => !value.some((d) => deepEqual(d, v)));
      }
      continue;
    }
    if (key.startsWith('$')) continue;
    const childPath = join(path, key);
    if (value === null) {
      deleteKey(result, key);
    } else if (Array.isArray(value)) {
      result[key] = mergeList(result[key], value, childPath, mergeKeys);
    } else if (isRecord(value)) {
      const merged = strategicMerge(result[key], value, childPath, mergeKeys);
      if (merged === undefined) deleteKey(result, key);
      else result[key] = merged;
    } else {
      result[key] = value;
    }
  }
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    for (const key of Object.keys(result)) if (!retain.includes(key)) deleteKey(result, key);
  }
  return result;
}

/** Parses a PATCH body: YAML (a JSON superset) for apply, JSON for everything else. */
export function parsePatchBody(patchType: PatchType, body: string): unknown {
  try {
    return patchType === 'application/apply-patch+yaml' ? parseYaml(body) : JSON.parse(body);
  } catch (err) {
    throw badRequest(`error decoding patch: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function applyPatch(patchType: PatchType, current: unknown, patch: unknown, mergeKeys: MergeKeys): unknown {
  switch (patchType) {
    case 'application/json-patch+json':
      return applyJsonPatch(current, patch);
    case 'application/merge-patch+json':
      if (!isRecord(patch)) throw badRequest('json: cannot unmarshal array into Go value of type map[string]interface {}');
      return mergePatch(current, patch);
    case 'application/strategic-merge-patch+json':
    case 'application/apply-patch+yaml':
      if (!isRecord(patch)) throw badRequest('json: cannot unmarshal array into Go value of type map[string]interface {}');
      return strategicMerge(current, patch, '', mergeKeys);
  }
}
