/**
 * What the double knows about one kind. Everything kind-specific (discovery, tables, field
 * selectors, defaulting, validation, patch merge keys) hangs off this record so that a new kind
 * is one `defineResource`/`customResource` call.
 */

import type { FieldError } from './field-errors.js';
import type { KubeObject } from './types.js';
import type { GroupResource } from './status.js';

/**
 * The per-kind hooks the generic registry calls. All are optional; a custom resource without
 * a schema needs none.
 */
export interface KindStrategy {
  /**
   * Decode-time work that happens before admission in the real server (defaulting, conversion
   * from the wire version). Throws a StatusError for bodies the decoder would refuse.
   */
  normalize?(obj: KubeObject): void;
  prepareForCreate?(obj: KubeObject): void;
  prepareForUpdate?(obj: KubeObject, old: KubeObject): void;
  /** After the generic status rules restored everything but status and metadata. */
  prepareForStatusUpdate?(obj: KubeObject, old: KubeObject): void;
  validate?(obj: KubeObject): FieldError[];
  validateUpdate?(obj: KubeObject, old: KubeObject): FieldError[];
}

/** One column of the server-side Table kubectl prints. `cell` gets the full object. */
export interface TableColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format?: string;
  description: string;
  priority?: number;
  /** null renders as kubectl's <none> (a CRD column whose JSONPath found nothing). */
  cell(obj: KubeObject, now: Date): string | number | boolean | null;
}

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  /** Plural resource name as it appears in URLs. */
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly listKind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  /**
   * Built-in (typed) kinds differ from custom resources in small visible ways: list items carry
   * no apiVersion/kind, and field-selector errors are worded differently.
   */
  readonly builtin: boolean;
  /** metadata.generation is set to 1 on create and bumped on non-metadata changes. */
  readonly tracksGeneration: boolean;
  /** DELETE answers with the object instead of a Success Status (pods, namespaces). */
  readonly returnsDeletedObject: boolean;
  /**
   * `.../<name>/status` exists: it writes only `.status`, and writes to the main resource keep
   * the stored `.status`.
   */
  readonly statusSubresource: boolean;
  /**
   * With a status subresource: whether a create may set `.status` (Nodes, whose kubelet
   * creates them with it) or has it cleared (custom resources, Pods).
   */
  readonly createKeepsStatus: boolean;
  /**
   * Whether a PUT without metadata.resourceVersion overwrites unconditionally (built-in kinds)
   * or is refused with 422 (custom resources).
   */
  readonly allowUnconditionalUpdate: boolean;
  /** 'any': only required (core/v1 Events skip name validation). */
  readonly nameRule: 'subdomain' | 'label' | 'any';
  readonly strategy: KindStrategy;
  readonly columns: readonly TableColumn[];
  /**
   * Extra fieldSelector keys beyond metadata.name (and metadata.namespace for namespaced
   * kinds).
   */
  readonly selectableFields: Readonly<Record<string, (obj: KubeObject) => string>>;
  /**
   * Strategic-merge keys by dotted path ("webhooks" -> "name"). An empty key marks a list of
   * scalars merged as a set (metadata.finalizers).
   */
  readonly mergeKeys: Readonly<Record<string, string>>;
  /** Top-level fields for fieldValidation=Strict; undefined disables the check. */
  readonly knownFields?: readonly string[];
}

export type ResourceSpec = Pick<ResourceType, 'group' | 'version' | 'plural' | 'kind' | 'namespaced'> &
  Partial<Omit<ResourceType, 'group' | 'version' | 'plural' | 'kind' | 'namespaced'>>;

export const NAME_COLUMN: TableColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
  priority: 0,
  cell: (obj) => obj.metadata.name ?? '',
};

export const AGE_COLUMN: TableColumn = {
  name: 'Age',
  type: 'date',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  priority: 0,
  cell: (obj, now) => humanDuration(obj.metadata.creationTimestamp, now),
};

const COMMON_MERGE_KEYS = { 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' };

/** A built-in (typed) kind; use `customResource` for CRD-backed ones. */
export function defineResource(spec: ResourceSpec): ResourceType {
  const singular = spec.singular ?? spec.kind.toLowerCase();
  return {
    singular,
    listKind: `${spec.kind}List`,
    shortNames: [],
    categories: [],
    builtin: true,
    tracksGeneration: false,
    returnsDeletedObject: false,
    statusSubresource: false,
    createKeepsStatus: false,
    allowUnconditionalUpdate: true,
    nameRule: 'subdomain',
    strategy: {},
    columns: [NAME_COLUMN, AGE_COLUMN],
    selectableFields: {},
    ...spec,
    mergeKeys: { ...COMMON_MERGE_KEYS, ...spec.mergeKeys },
  };
}

/** A CRD-backed kind with the defaults apiextensions-apiserver gives it. */
export function customResource(
  group: string,
  version: string,
  kind: string,
  plural: string,
  extra: Partial<ResourceSpec> = {},
): ResourceType {
  return defineResource({
    group, version, kind, plural, namespaced: true, builtin: false, tracksGeneration: true, allowUnconditionalUpdate: false, ...extra,
  });
}

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === '' ? rt.version : `${rt.group}/${rt.version}`;
}

export function groupResource(rt: ResourceType): GroupResource {
  return { group: rt.group, resource: rt.plural };
}

/**
 * duration.HumanDuration as kubectl's AGE column shows it ("42s", "3m7s", "5h", "12d").
 * The server renders it, so it has to match what a real cluster would print.
 */
export function humanDuration(since: string | null | undefined, now: Date): string {
  if (since === undefined || since === null) return '<unknown>';
  const seconds = Math.floor((now.getTime() - Date.parse(since)) / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}
