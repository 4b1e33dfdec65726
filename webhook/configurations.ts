/**
 * The Mutating- and ValidatingWebhookConfiguration that put this webhook in front of the API
 * server. Their one source is the package's manifests/base/webhook-configurations.yaml, which
 * operators apply (docs/webhook.md explains each choice); this module only loads that file,
 * typed, for tests and labs that register the webhook with an API server themselves, and can
 * fill in the caBundle and point the webhooks at another Service.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdmissionregistrationV1WebhookClientConfig, V1MutatingWebhookConfiguration, V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { KMESH_NAMESPACE } from '../core/constants.js';

/** Names chosen for the webhook (docs/webhook.md); the manifests use exactly these. */
export const WebhookNames = {
  /** Both configuration objects carry this name. */
  configuration: 'kmesh-ipsec',
  service: 'kmesh-ipsec-webhook',
  serviceNamespace: KMESH_NAMESPACE,
  secrets: 'secrets.ipsec.kmesh.net',
  /** Advisory only (a warning on delete), so it fails open. */
  secretDeletions: 'secret-deletions.ipsec.kmesh.net',
  nodeInfos: 'kmeshnodeinfos.ipsec.kmesh.net',
  mutatePath: '/mutate',
  validatePath: '/validate',
} as const;

/** The package's manifests/ directory (from dist/webhook/ when built). */
export const MANIFESTS_DIR = fileURLToPath(new URL('../../manifests/', import.meta.url));
export const WEBHOOK_CONFIGURATIONS_FILE = join(MANIFESTS_DIR, 'base', 'webhook-configurations.yaml');

export interface ConfigurationOptions {
  /** base64 PEM of the CA that signed the serving certificate (what `kmesh-ipsec certs` prints). */
  readonly caBundle?: string;
  /** Another Service for every webhook; the paths stay. `port` defaults to the manifest's. */
  readonly service?: { readonly name: string; readonly namespace: string; readonly port?: number };
}

export type WebhookConfigurations = [mutating: V1MutatingWebhookConfiguration, validating: V1ValidatingWebhookConfiguration];

/** Loads the two configurations from `file` (default: the package's manifest). */
export async function loadWebhookConfigurations(options: ConfigurationOptions = {}, file = WEBHOOK_CONFIGURATIONS_FILE): Promise<WebhookConfigurations> {
  const [mutating, validating] = parseConfigurations(await readFile(file, 'utf8'), file);
  for (const webhook of [...(mutating.webhooks ?? []), ...(validating.webhooks ?? [])]) {
    applyOptions(webhook.clientConfig, options);
  }
  return [mutating, validating];
}

/** Parses the manifest text, checking the shape the callers rely on; errors name the file and field. */
export function parseConfigurations(text: string, file: string): WebhookConfigurations {
  // YAML 1.1, as the API server and kubectl read manifests.
  const docs = parseAllDocuments(text, { version: '1.1' });
  if (!Array.isArray(docs)) throw new Error(`${file}: expected YAML documents`);
  const objects = docs.map((doc, i) => {
    const [error] = doc.errors;
    if (error) throw new Error(`${file}: document ${i + 1}: ${error.message}`);
    return doc.toJS() as unknown;
  });
  const expected = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'] as const;
  if (objects.length !== expected.length) throw new Error(`${file}: expected ${expected.join(' and ')}, found ${objects.length} document(s)`);
  objects.forEach((obj, i) => {
    checkConfiguration(obj, expected[i] ?? '', `${file}: document ${i + 1}`);
  });
  return objects as WebhookConfigurations;
}

function checkConfiguration(obj: unknown, kind: string, where: string): void {
  const o = obj as { apiVersion?: unknown; kind?: unknown; webhooks?: unknown } | null;
  if (o?.apiVersion !== 'admissionregistration.k8s.io/v1' || o.kind !== kind) throw new Error(`${where}: must be an admissionregistration.k8s.io/v1 ${kind}`);
  if (!Array.isArray(o.webhooks) || o.webhooks.length === 0) throw new Error(`${where}: webhooks: must be a non-empty list`);
  o.webhooks.forEach((w: { clientConfig?: { service?: { name?: unknown } } } | null, i) => {
    if (typeof w?.clientConfig?.service?.name !== 'string') throw new Error(`${where}: webhooks[${i}].clientConfig.service: required (the webhook is reached through its Service)`);
  });
}

/** Edits a freshly parsed clientConfig in place (nothing else holds it). */
function applyOptions(config: AdmissionregistrationV1WebhookClientConfig, options: ConfigurationOptions): void {
  if (config.service && options.service) {
    config.service.name = options.service.name;
    config.service.namespace = options.service.namespace;
    if (options.service.port !== undefined) config.service.port = options.service.port;
  }
  if (options.caBundle !== undefined) config.caBundle = options.caBundle;
}
