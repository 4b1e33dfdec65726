/**
 * The lab's control plane as files and command lines: the webhook's dev certificates and stamp
 * key, the API process's configuration (the objects an installed cluster has, the users, the
 * kubeconfigs to write), and the webhook's command line.
 */
import { writeFileSync } from 'node:fs';
import { caBundle, generateDevPki, writeDevPki, type WrittenPki } from '../certs/dev-pki.js';
import { generateStampKey } from '../certs/stamp-keygen.js';
import { KMESH_NAMESPACE } from '../core/constants.js';
import type { KubeObject } from '../localapi/index.js';
import { WebhookNames, loadWebhookConfigurations } from '../webhook/configurations.js';
import type { ApiProcessConfig } from './api-process.js';
import { ADMIN_USER, jwksConfigMap, labUsers, manifestObjects, nodeObject, podObject, workloadNamespaces } from './cluster-objects.js';
import type { LabLayout } from './layout.js';
import { LIMITS, NODE_API_PORT, type NodePlan } from './topology.js';

/** The API as every node reaches it: 127.0.0.1 of its own namespace. */
export const NODE_API_SERVER = `https://127.0.0.1:${NODE_API_PORT}`;
/** Pause between two nodes' Secret volume updates (kubelets sync at different moments). */
const VOLUME_GAP_MS = 1000;
/**
 * The webhooks' timeoutSeconds in the lab. The manifests' 1-3 s suit a webhook on a real CPU;
 * the lab often runs under software emulation (the kernel VM), where a webhook busy with its
 * first requests next to a dozen starting processes answers in seconds. 10 s is the API
 * server's default; everything else of the configurations is the manifest's.
 */
const LAB_WEBHOOK_TIMEOUT_SECONDS = 10;

export interface ControlPlaneFiles {
  readonly tls: WrittenPki;
  /** The dev CA that signed the webhook's serving certificate. */
  readonly caPem: string;
  /** The stamp JWKS (public), as the ConfigMap carries it. */
  readonly jwks: string;
}

/** The webhook's serving pair (dev CA) and a fresh stamp signing key with its JWKS. */
export async function writeControlPlaneFiles(layout: LabLayout): Promise<ControlPlaneFiles> {
  const pki = generateDevPki({ service: WebhookNames.service, namespace: KMESH_NAMESPACE });
  const tls = await writeDevPki(layout.tlsDir, pki);
  const stamp = await generateStampKey();
  writeFileSync(layout.stampKey, JSON.stringify(stamp.privateJwk), { mode: 0o600 });
  const jwks = JSON.stringify({ keys: [stamp.publicJwk] });
  writeFileSync(layout.stampJwks, jwks);
  return { tls, caPem: pki.ca.certPem, jwks };
}

export async function apiProcessConfig(input: {
  readonly layout: LabLayout;
  readonly nodes: readonly NodePlan[];
  readonly bootIds: Readonly<Record<string, string>>;
  readonly apiPort: number;
  readonly webhookPort: number;
  readonly files: ControlPlaneFiles;
}): Promise<ApiProcessConfig> {
  const { layout, nodes } = input;
  // Tokens for every node the lab may ever have, so that a node joining later has one.
  const users = labUsers(Array.from({ length: LIMITS.nodes.max }, (_, k) => `node${k + 1}`));
  const configurations = await loadWebhookConfigurations({ caBundle: caBundle({ certPem: input.files.caPem }) });
  for (const c of configurations) for (const w of c.webhooks ?? []) w.timeoutSeconds = Math.max(w.timeoutSeconds ?? 0, LAB_WEBHOOK_TIMEOUT_SECONDS);
  const objects: KubeObject[] = [
    ...manifestObjects(),
    ...configurations.map((c) => c as unknown as KubeObject),
    jwksConfigMap(input.files.jwks),
    ...workloadNamespaces(),
    ...nodes.flatMap((n) => [nodeObject(n, input.bootIds[n.name] ?? ''), ...n.pods.map((p) => podObject(n, p))]),
  ];
  return {
    port: input.apiPort,
    users: users.tokens,
    objects,
    webhook: { namespace: KMESH_NAMESPACE, name: WebhookNames.service, port: input.webhookPort },
    kubeconfigs: [
      { path: layout.kubeconfig, token: users.admin, username: ADMIN_USER },
      { path: layout.webhookKubeconfig, token: users.webhook, username: 'kmesh-ipsec-webhook' },
      ...nodes.map((n) => ({ path: layout.node(n.name, 'kubeconfig'), token: users.nodes[n.name] ?? '', username: 'kmesh-ipsec-node', server: NODE_API_SERVER })),
    ],
    controlSocket: layout.controlSocket,
    nodeNetns: nodes.map((n) => n.netns),
    secretVolumes: Object.fromEntries(nodes.map((n) => [n.name, layout.node(n.name, 'secret')])),
    volumeGapMs: VOLUME_GAP_MS,
  };
}

/**
 * `kmesh-ipsec webhook` as the lab runs it: the manifests' flags, local files, no drain delay,
 * and the lab's admin (system:masters) allowed to repair any KmeshNodeInfo by hand, as an operator
 * would enable with --privileged-group on a real cluster (docs/webhook.md, "Who may write"):
 * without it even the admin cannot delete a forged object.
 */
export function webhookArgs(layout: LabLayout, port: number, tls: WrittenPki): string[] {
  return [
    '--kubeconfig', layout.webhookKubeconfig, 'webhook', '--host', '127.0.0.1', '--port', String(port),
    '--tls-cert', tls.tlsCert, '--tls-key', tls.tlsKey, '--stamp-key', layout.stampKey, '--stamp-jwks', layout.stampJwks, '--shutdown-delay', '0s',
    '--privileged-group', 'system:masters',
  ];
}
