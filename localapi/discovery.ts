/**
 * API discovery in both forms kubectl 1.32 understands: aggregated discovery
 * (apidiscovery.k8s.io/v2, one request for /api and one for /apis) when the Accept header asks
 * for it, and the legacy per-group-version documents otherwise.
 */

import { acceptEntries } from './http-util.js';
import { apiVersionOf, type ResourceType } from './resource-type.js';
import type { ResourceTable } from './resource-table.js';
import type { JsonObject } from './types.js';

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS = ['get', 'patch', 'update'];

export interface ServerVersion {
  major: string;
  minor: string;
  gitVersion: string;
}

export function versionInfo(v: ServerVersion): JsonObject {
  return {
    ...v,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'go1.23.4',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

/** The aggregated-discovery version the client asked for, if any. */
export function aggregatedVersion(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  for (const e of acceptEntries(accept)) {
    if (e.params.g === 'apidiscovery.k8s.io' && e.params.as === 'APIGroupDiscoveryList') {
      if (e.params.v === 'v2' || e.params.v === 'v2beta1') return e.params.v;
    }
  }
  return undefined;
}

export function aggregatedContentType(version: 'v2' | 'v2beta1'): string {
  return `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`;
}

function optionalLists(rt: ResourceType): JsonObject {
  const out: JsonObject = {};
  if (rt.shortNames.length > 0) out.shortNames = rt.shortNames;
  if (rt.categories.length > 0) out.categories = rt.categories;
  return out;
}

function legacyResource(rt: ResourceType): JsonObject {
  return {
    name: rt.plural,
    singularName: rt.singular,
    namespaced: rt.namespaced,
    kind: rt.kind,
    verbs: VERBS,
    ...optionalLists(rt),
  };
}

/** The legacy form lists a subresource as a resource of its own, named "<plural>/status". */
function legacyResources(rt: ResourceType): JsonObject[] {
  const main = legacyResource(rt);
  if (!rt.statusSubresource) return [main];
  return [main, { name: `${rt.plural}/status`, singularName: '', namespaced: rt.namespaced, kind: rt.kind, verbs: STATUS_VERBS }];
}

function aggregatedResource(rt: ResourceType): JsonObject {
  const responseKind = { group: rt.group, version: rt.version, kind: rt.kind };
  return {
    resource: rt.plural,
    responseKind,
    scope: rt.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: rt.singular,
    verbs: VERBS,
    ...optionalLists(rt),
    ...(rt.statusSubresource ? { subresources: [{ subresource: 'status', responseKind, verbs: STATUS_VERBS }] } : {}),
  };
}

function groupVersions(table: ResourceTable, group: string): JsonObject[] {
  return table.versionsOf(group).map((version) => ({ groupVersion: group === '' ? version : `${group}/${version}`, version }));
}

export function apiVersions(serverAddress: string): JsonObject {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

export function apiGroup(table: ResourceTable, group: string): JsonObject | undefined {
  const versions = groupVersions(table, group);
  if (versions.length === 0) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions, preferredVersion: versions[0] };
}

export function apiGroupList(table: ResourceTable): JsonObject {
  const groups = table.groups().filter((g) => g !== '').map((g) => {
    const group = apiGroup(table, g) ?? {};
    delete group.kind;
    delete group.apiVersion;
    return group;
  });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function apiResourceList(table: ResourceTable, group: string, version: string): JsonObject | undefined {
  const resources = table.inGroupVersion(group, version);
  if (resources.length === 0) return undefined;
  const first = resources[0];
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: first === undefined ? version : apiVersionOf(first),
    resources: resources.flatMap(legacyResources),
  };
}

/** /api (core only) or /apis (every named group) as one APIGroupDiscoveryList. */
export function aggregatedDiscovery(table: ResourceTable, core: boolean, version: 'v2' | 'v2beta1'): JsonObject {
  const groups = table.groups().filter((g) => (g === '') === core);
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: groups.map((group) => ({
      metadata: group === '' ? { creationTimestamp: null } : { name: group, creationTimestamp: null },
      versions: table.versionsOf(group).map((v) => ({
        version: v,
        resources: table.inGroupVersion(group, v).map(aggregatedResource),
        freshness: 'Current',
      })),
    })),
  };
}
