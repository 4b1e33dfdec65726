/**
 * The Mutating- and ValidatingWebhookConfiguration that put this webhook in front of the API
 * server, as data: the manifests, the docs and the end-to-end test all render them from here,
 * so the names, paths and policies cannot drift apart. docs/webhook.md explains each choice.
 */
import { KMESH_NAMESPACE, KNI_GROUP, KNI_PLURAL, KNI_VERSION, SECRET_NAME } from '../core/constants.js';

/** Names chosen for the webhook (docs/webhook.md). */
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

/** Port the Service exposes (the API server's default) and the container port behind it. */
export const SERVICE_PORT = 443;
export const CONTAINER_PORT = 9443;
/** Our handlers take milliseconds; 5 s leaves room for the Node GET under API pressure. */
export const TIMEOUT_SECONDS = 5;

export interface ConfigurationOptions {
  /** base64 PEM of the CA that signed the serving certificate; omit when cert-manager injects it. */
  readonly caBundle?: string;
  /** `<namespace>/<certificate>` for cert-manager's cainjector (`cert-manager.io/inject-ca-from`). */
  readonly injectCaFrom?: string;
  readonly service?: { readonly name: string; readonly namespace: string; readonly port?: number };
}

type Json = Record<string, unknown>;

export function webhookConfigurations(options: ConfigurationOptions = {}): [mutating: Json, validating: Json] {
  const service = {
    name: options.service?.name ?? WebhookNames.service,
    namespace: options.service?.namespace ?? WebhookNames.serviceNamespace,
    port: options.service?.port ?? SERVICE_PORT,
  };
  const clientConfig = (path: string): Json => ({
    service: { ...service, path },
    ...(options.caBundle ? { caBundle: options.caBundle } : {}),
  });
  const metadata = {
    name: WebhookNames.configuration,
    labels: { 'app.kubernetes.io/name': 'kmesh-ipsec', 'app.kubernetes.io/component': 'webhook' },
    ...(options.injectCaFrom ? { annotations: { 'cert-manager.io/inject-ca-from': options.injectCaFrom } } : {}),
  };
  const common = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    // Fail closed: a key or a node claim the webhook has not seen must not reach the nodes.
    // Nothing else in the cluster depends on these objects, so an outage blocks only them.
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    timeoutSeconds: TIMEOUT_SECONDS,
  };
  const secretScope = {
    // Only kmesh-system reaches us at all (the label is set on every namespace by the API server)…
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': KMESH_NAMESPACE } },
    // …and inside it only the one Secret (CEL, GA in 1.30). Without matchConditions the handler
    // still lets every other Secret through unchanged; this only saves the round trip.
    matchConditions: [{ name: 'kmesh-ipsec-secret-only', expression: `request.name == '${SECRET_NAME}'` }],
  };
  const secretRule = (operations: string[]): Json => ({ apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], operations, scope: 'Namespaced' });
  const kniRule = (operations: string[], resources: string[]): Json => ({ apiGroups: [KNI_GROUP], apiVersions: [KNI_VERSION], resources, operations, scope: 'Namespaced' });

  const mutating: Json = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata,
    webhooks: [
      { name: WebhookNames.secrets, clientConfig: clientConfig(WebhookNames.mutatePath), rules: [secretRule(['CREATE', 'UPDATE'])], ...secretScope, ...common, reinvocationPolicy: 'IfNeeded' },
      // IfNeeded: if a later mutating webhook changes the spec, we are called again and re-stamp.
      { name: WebhookNames.nodeInfos, clientConfig: clientConfig(WebhookNames.mutatePath), rules: [kniRule(['CREATE', 'UPDATE'], [KNI_PLURAL])], ...common, reinvocationPolicy: 'IfNeeded' },
    ],
  };
  const validating: Json = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata,
    webhooks: [
      { name: WebhookNames.secrets, clientConfig: clientConfig(WebhookNames.validatePath), rules: [secretRule(['CREATE', 'UPDATE'])], ...secretScope, ...common },
      // Deleting the key only earns a warning (which SPI a re-created secret needs). That must
      // never block a deletion during an outage, so this one fails open.
      { name: WebhookNames.secretDeletions, clientConfig: clientConfig(WebhookNames.validatePath), rules: [secretRule(['DELETE'])], ...secretScope, ...common, failurePolicy: 'Ignore' },
      { name: WebhookNames.nodeInfos, clientConfig: clientConfig(WebhookNames.validatePath), rules: [kniRule(['CREATE', 'UPDATE', 'DELETE'], [KNI_PLURAL, `${KNI_PLURAL}/status`])], ...common },
    ],
  };
  // A deep copy without shared references: the webhooks share building blocks, and a caller
  // editing one (or a YAML writer turning shared references into anchors) must not see that.
  return JSON.parse(JSON.stringify([mutating, validating])) as [Json, Json];
}
