/**
 * Validates rendered objects against the published schemas: kubernetes-models (generated from
 * Kubernetes' OpenAPI) and @kubernetes-models/cert-manager (from cert-manager's CRDs). Those
 * schemas, like the API server's default field validation, let unknown fields through, so
 * built-in kinds are also checked field by field against client-node's type map: the API
 * server's strict field validation (kubectl's default) refuses what that finds.
 */
import * as client from '@kubernetes/client-node';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { CronJob } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import type { KubeObject } from './render.js';

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
}

const MODELS: readonly ModelClass[] = [
  Namespace, Service, ServiceAccount, Secret, ConfigMap, Deployment, DaemonSet, CronJob, PodDisruptionBudget,
  Role, RoleBinding, ClusterRole, ClusterRoleBinding, CustomResourceDefinition, MutatingWebhookConfiguration,
  ValidatingWebhookConfiguration, Certificate, Issuer, NetworkPolicy,
];
const byType = new Map(MODELS.map((m) => [`${m.apiVersion}/${m.kind}`, m]));

/** Kinds whose apiVersion/kind the schema check knows. */
export const knownKinds = (): string[] => [...byType.keys()];

/** Throws the model's validation error (JSON pointer and reason) for an invalid object. */
export function validateAgainstSchema(obj: KubeObject): void {
  const model = byType.get(`${obj.apiVersion}/${obj.kind}`);
  if (!model) throw new Error(`no schema known for ${obj.apiVersion} ${obj.kind}; add its model to test/manifests/schemas.ts`);
  // Each model class takes its own data type; the object's apiVersion/kind picked the class.
  const Model = model as unknown as new (data: unknown) => { validate(): void };
  new Model(asDecoded(obj)).validate();
}

/**
 * kustomize wraps long base64 values (generated Secrets, caBundle) over several lines. The API
 * server's decoder skips line breaks in base64; the schema's "byte" format does not, so they
 * are removed before validating, as the server would.
 */
function asDecoded(obj: KubeObject): KubeObject {
  const unwrap = (v: unknown): unknown => (typeof v === 'string' ? v.replaceAll('\n', '') : v);
  if (obj.kind === 'Secret' && isObject(obj.data)) {
    return { ...obj, data: Object.fromEntries(Object.entries(obj.data).map(([k, v]) => [k, unwrap(v)])) };
  }
  if (obj.kind.endsWith('WebhookConfiguration') && Array.isArray(obj.webhooks)) {
    const webhooks = (obj.webhooks as { clientConfig?: Record<string, unknown> }[]).map((w) =>
      w.clientConfig?.caBundle === undefined ? w : { ...w, clientConfig: { ...w.clientConfig, caBundle: unwrap(w.clientConfig.caBundle) } });
    return { ...obj, webhooks };
  }
  return obj;
}

interface Attribute {
  readonly baseName: string;
  readonly type: string;
}
type TypeMap = () => readonly Attribute[];

/**
 * Field paths that client-node's model of a built-in kind does not know (typos such as
 * `readOnlyRootFileSystem`). Custom resources (cert-manager) are skipped: client-node has no
 * model for them.
 */
export function unknownFields(obj: KubeObject): string[] {
  const version = obj.apiVersion.split('/').pop() ?? '';
  const typeName = `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind}`;
  return typeMapOf(typeName) ? walk(obj, typeName, obj.kind) : [];
}

function typeMapOf(typeName: string): TypeMap | undefined {
  const cls = (client as unknown as Record<string, { getAttributeTypeMap?: TypeMap } | undefined>)[typeName];
  return typeof cls?.getAttributeTypeMap === 'function' ? cls.getAttributeTypeMap.bind(cls) : undefined;
}

function walk(value: unknown, type: string, path: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1] !== undefined) return Array.isArray(value) ? value.flatMap((v, i) => walk(v, array[1] ?? '', `${path}[${String(i)}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1] !== undefined) return isObject(value) ? Object.entries(value).flatMap(([k, v]) => walk(v, map[1] ?? '', `${path}.${k}`)) : [];
  const attributes = typeMapOf(type)?.();
  if (!attributes || !isObject(value)) return [];
  const known = new Map(attributes.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const t = known.get(k);
    return t === undefined ? [`${path}.${k}`] : walk(v, t, `${path}.${k}`);
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
