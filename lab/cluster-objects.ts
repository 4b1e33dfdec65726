/**
 * The objects the lab's API starts with, as an installed cluster would have them: the install
 * manifests from manifests/base (namespace, service accounts, RBAC; the CRD is what the API
 * serves KmeshNodeInfos from; the webhook configurations come through
 * loadWebhookConfigurations with the lab's caBundle), the JWKS ConfigMap, and the Nodes,
 * Namespaces and Pods of the lab's topology. Workloads (the DaemonSet, the Deployment, its
 * Service and budget) are not stored: the lab runs them as processes. Also the users (bearer
 * tokens) of the admin, the webhook and each node plugin.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KMESH_NAMESPACE } from '../core/constants.js';
import type { KubeObject, UserInfo } from '../localapi/index.js';
import { MANIFESTS_DIR, WEBHOOK_CONFIGURATIONS_FILE } from '../webhook/configurations.js';
import { MANAGED_LABEL, MANAGED_NAMESPACE, PLAIN_NAMESPACE, type NodePlan, type PodPlan } from './topology.js';

export const ADMIN_USER = 'kubernetes-admin';
export const WEBHOOK_USER = `system:serviceaccount:${KMESH_NAMESPACE}:kmesh-ipsec-webhook`;
/** The DaemonSet's service account; the webhook's default --agent-user. */
export const NODE_PLUGIN_USER = `system:serviceaccount:${KMESH_NAMESPACE}:kmesh-ipsec-node`;
export const STAMP_JWKS_CONFIGMAP = 'kmesh-ipsec-stamp-jwks';

/** Kinds of manifests/base the lab stores; the rest run as processes or are served by other means. */
const STORED_KINDS = new Set(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

/** The install manifests' objects the lab's API stores (YAML 1.1, as kubectl reads them). */
export function manifestObjects(dir = join(MANIFESTS_DIR, 'base')): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const path = join(dir, file);
    if (path === WEBHOOK_CONFIGURATIONS_FILE) continue;
    const docs = parseAllDocuments(readFileSync(path, 'utf8'), { version: '1.1' });
    for (const doc of Array.isArray(docs) ? docs : []) {
      const obj = doc.toJS() as KubeObject | null;
      if (obj !== null && typeof obj.kind === 'string' && STORED_KINDS.has(obj.kind)) objects.push(obj);
    }
  }
  return objects;
}

export function jwksConfigMap(jwks: string): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: STAMP_JWKS_CONFIGMAP, namespace: KMESH_NAMESPACE }, data: { 'jwks.json': jwks } };
}

export function workloadNamespaces(): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: MANAGED_NAMESPACE, labels: { ...MANAGED_LABEL } } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PLAIN_NAMESPACE } },
  ];
}

export function nodeObject(node: NodePlan, bootID: string): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: node.name, labels: { 'kubernetes.io/hostname': node.name, 'kubernetes.io/os': 'linux' } },
    spec: { podCIDR: node.podCIDR, podCIDRs: [node.podCIDR, ...(node.podCIDR6 === undefined ? [] : [node.podCIDR6])] },
    status: {
      addresses: [{ type: 'InternalIP', address: node.ip }, ...(node.ip6 === undefined ? [] : [{ type: 'InternalIP', address: node.ip6 }]), { type: 'Hostname', address: node.name }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'lab node' }],
      nodeInfo: { bootID, kernelVersion: release(), osImage: 'kmesh-ipsec lab', containerRuntimeVersion: 'none (processes)', kubeletVersion: 'v1.32.0', kubeProxyVersion: '', operatingSystem: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch, machineID: '', systemUUID: '' },
    },
  };
}

export function podObject(node: NodePlan, pod: PodPlan): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: pod.name, namespace: pod.namespace, uid: randomUUID(), labels: { app: 'echo' } },
    spec: { nodeName: node.name, containers: [{ name: 'echo', image: 'kmesh-ipsec-lab/echo', ports: [{ containerPort: 5000 }] }] },
    status: {
      phase: 'Running', podIP: pod.ip, podIPs: [{ ip: pod.ip }, ...(pod.ip6 === undefined ? [] : [{ ip: pod.ip6 }])], hostIP: node.ip,
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'echo', ready: true, restartCount: 0, image: 'kmesh-ipsec-lab/echo', imageID: '', state: { running: {} } }],
    },
  };
}

export interface LabUsers {
  /** token -> user, as the API takes them. */
  readonly tokens: Record<string, UserInfo>;
  readonly admin: string;
  readonly webhook: string;
  /** Node name -> token (the service account's token, bound to the node, as projected tokens are). */

  readonly nodes: Record<string, string>;
}

/**
 * The admin, the webhook, and a node-bound token for every node the lab may ever have (node1 up
 * to the node limit), so that a node joining later has its token already.
 */
export function labUsers(nodes: readonly string[]): LabUsers {
  const token = (): string => randomBytes(24).toString('hex');
  const admin = token();
  const webhook = token();
  const tokens: Record<string, UserInfo> = {
    [admin]: { username: ADMIN_USER, groups: ['system:masters', 'system:authenticated'] },
    [webhook]: { username: WEBHOOK_USER, groups: ['system:serviceaccounts', `system:serviceaccounts:${KMESH_NAMESPACE}`, 'system:authenticated'] },
  };
  const byNode: Record<string, string> = {};
  for (const name of nodes) {
    const t = token();
    byNode[name] = t;
    tokens[t] = {
      username: NODE_PLUGIN_USER,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${KMESH_NAMESPACE}`, 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/node-name': [name] },
    };
  }
  return { tokens, admin, webhook, nodes: byNode };
}

/** The token of `node`'s plugin among the API's users (as labUsers made them). */
export function nodeToken(tokens: Readonly<Record<string, UserInfo>>, node: string): string | undefined {
  return Object.entries(tokens).find(([, u]) => u.username === NODE_PLUGIN_USER && u.extra?.['authentication.kubernetes.io/node-name']?.[0] === node)?.[0];
}
