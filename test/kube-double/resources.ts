/**
 * The kinds the double serves out of the box. Add a kind with one more entry here (or pass
 * `resources` to startKubeDouble for a test-local kind).
 */

import { KNI_GROUP, KNI_KIND, KNI_PLURAL, KNI_VERSION } from '../../core/constants.js';
import { asString, isRecord } from './json.js';
import { AGE_COLUMN, NAME_COLUMN, customResource, defineResource, type ResourceType } from './resource-type.js';
import { namespaceStrategy } from './strategy-namespace.js';
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
    customResource(KNI_GROUP, KNI_VERSION, KNI_KIND, KNI_PLURAL),
  ];
}
