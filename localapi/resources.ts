/**
 * The kinds the double serves out of the box. Add a kind with one more entry here (or pass
 * `resources` to startLocalApi for a test-local kind).
 */

import { asString, isRecord } from './json.js';
import { resourcesFromCrdFiles } from './crd.js';
import { AGE_COLUMN, NAME_COLUMN, defineResource, type ResourceType } from './resource-type.js';
import { EVENT_COLUMNS, EVENT_FIELDS, NODE_COLUMNS, POD_COLUMNS, POD_FIELDS } from './printers.js';
import { configMapStrategy } from './strategy-configmap.js';
import { eventStrategy } from './strategy-event.js';
import { namespaceStrategy } from './strategy-namespace.js';
import { podStrategy } from './strategy-pod.js';
import { secretStrategy } from './strategy-secret.js';
import { mutatingWebhookConfigStrategy, validatingWebhookConfigStrategy } from './strategy-webhook-config.js';
import type { KubeObject } from './types.js';

const webhookCount = (obj: KubeObject): number => (Array.isArray(obj.webhooks) ? obj.webhooks.length : 0);

const WEBHOOKS_COLUMN = {
  name: 'Webhooks',
  type: 'integer',
  description: 'Webhooks indicates the number of webhooks in this configuration.',
  cell: webhookCount,
} as const;

/** Strategic-merge keys kubectl apply relies on when it patches a Pod. */
const POD_MERGE_KEYS = {
  'spec.containers': 'name', 'spec.initContainers': 'name', 'spec.volumes': 'name',
  'spec.containers.env': 'name', 'spec.containers.ports': 'containerPort', 'spec.containers.volumeMounts': 'mountPath',
  'status.conditions': 'type', 'status.podIPs': 'ip',
};

const ADMISSIONREGISTRATION = { group: 'admissionregistration.k8s.io', version: 'v1', namespaced: false } as const;

export function defaultResources(): ResourceType[] {
  return [
    defineResource({
      group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false,
      shortNames: ['ns'], nameRule: 'label', returnsDeletedObject: true, strategy: namespaceStrategy,
      knownFields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
      selectableFields: { 'status.phase': (o) => (isRecord(o.status) ? asString(o.status.phase) : '') },
      columns: [
        NAME_COLUMN,
        { name: 'Status', type: 'string', description: 'The status of the namespace', cell: (o) => (isRecord(o.status) ? asString(o.status.phase) : '') },
        AGE_COLUMN,
      ],
    }),
    defineResource({
      group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true, strategy: secretStrategy,
      knownFields: ['apiVersion', 'kind', 'metadata', 'data', 'stringData', 'type', 'immutable'],
      selectableFields: { type: (o) => asString(o.type) },
      columns: [
        NAME_COLUMN,
        { name: 'Type', type: 'string', description: 'The type of the secret', cell: (o) => asString(o.type) },
        { name: 'Data', type: 'integer', description: 'The number of entries in the data', cell: (o) => (isRecord(o.data) ? Object.keys(o.data).length : 0) },
        AGE_COLUMN,
      ],
    }),
    defineResource({
      group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true, shortNames: ['cm'], strategy: configMapStrategy,
      knownFields: ['apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'immutable'],
      columns: [
        NAME_COLUMN,
        { name: 'Data', type: 'integer', description: 'Data contains the configuration data.', cell: (o) => [o.data, o.binaryData].reduce<number>((n, m) => n + (isRecord(m) ? Object.keys(m).length : 0), 0) },
        AGE_COLUMN,
      ],
    }),
    defineResource({
      group: '', version: 'v1', kind: 'Node', plural: 'nodes', namespaced: false, shortNames: ['no'],
      statusSubresource: true, createKeepsStatus: true,
      knownFields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
      mergeKeys: { 'status.conditions': 'type', 'status.addresses': 'type' },
      selectableFields: { 'spec.unschedulable': (o) => String(isRecord(o.spec) && o.spec.unschedulable === true) },
      columns: NODE_COLUMNS,
    }),
    defineResource({
      group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true, shortNames: ['po'], categories: ['all'],
      statusSubresource: true, returnsDeletedObject: true, strategy: podStrategy,
      knownFields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
      mergeKeys: POD_MERGE_KEYS,
      selectableFields: POD_FIELDS, columns: POD_COLUMNS,
    }),
    defineResource({
      group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'], nameRule: 'any', strategy: eventStrategy,
      knownFields: [
        'apiVersion', 'kind', 'metadata', 'involvedObject', 'reason', 'message', 'source', 'firstTimestamp', 'lastTimestamp', 'count', 'type',
        'eventTime', 'series', 'action', 'related', 'reportingComponent', 'reportingInstance',
      ],
      selectableFields: EVENT_FIELDS, columns: EVENT_COLUMNS,
    }),
    defineResource({
      ...ADMISSIONREGISTRATION, kind: 'MutatingWebhookConfiguration', plural: 'mutatingwebhookconfigurations',
      categories: ['api-extensions'], tracksGeneration: true, strategy: mutatingWebhookConfigStrategy,
      knownFields: ['apiVersion', 'kind', 'metadata', 'webhooks'],
      mergeKeys: { webhooks: 'name' }, columns: [NAME_COLUMN, WEBHOOKS_COLUMN, AGE_COLUMN],
    }),
    defineResource({
      ...ADMISSIONREGISTRATION, kind: 'ValidatingWebhookConfiguration', plural: 'validatingwebhookconfigurations',
      categories: ['api-extensions'], tracksGeneration: true, strategy: validatingWebhookConfigStrategy,
      knownFields: ['apiVersion', 'kind', 'metadata', 'webhooks'],
      mergeKeys: { webhooks: 'name' }, columns: [NAME_COLUMN, WEBHOOKS_COLUMN, AGE_COLUMN],
    }),
    ...rbacResources(),
    // KmeshNodeInfo, from the CRD in manifests/ (its status subresource and printer columns).
    ...resourcesFromCrdFiles(),
  ];
}

const RBAC = { group: 'rbac.authorization.k8s.io', version: 'v1' } as const;

/**
 * Stored so that the manifests' RBAC objects can be applied, never enforced: authorization is
 * the `authorizer` option (allow everything by default).
 */
function rbacResources(): ResourceType[] {
  const rbacFields = ['apiVersion', 'kind', 'metadata', 'rules', 'aggregationRule', 'roleRef', 'subjects'];
  return [
    defineResource({ group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true, shortNames: ['sa'], knownFields: ['apiVersion', 'kind', 'metadata', 'secrets', 'imagePullSecrets', 'automountServiceAccountToken'] }),
    defineResource({ ...RBAC, kind: 'Role', plural: 'roles', namespaced: true, knownFields: rbacFields }),
    defineResource({ ...RBAC, kind: 'RoleBinding', plural: 'rolebindings', namespaced: true, knownFields: rbacFields }),
    defineResource({ ...RBAC, kind: 'ClusterRole', plural: 'clusterroles', namespaced: false, knownFields: rbacFields }),
    defineResource({ ...RBAC, kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', namespaced: false, knownFields: rbacFields }),
  ];
}
