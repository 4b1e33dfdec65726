/** kubeconfig documents pointing at the double, one per user (bearer token auth, pinned CA). */

import { stringify } from 'yaml';

export interface KubeconfigOptions {
  server: string;
  caPem: string;
  username: string;
  token: string;
  /** Context namespace, so kubectl without -n lands there. */
  namespace?: string;
}

export const CLUSTER_NAME = 'local-api';

export function kubeconfigYaml(o: KubeconfigOptions): string {
  const context = `${o.username}@${CLUSTER_NAME}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{
      name: CLUSTER_NAME,
      cluster: { server: o.server, 'certificate-authority-data': Buffer.from(o.caPem).toString('base64') },
    }],
    users: [{ name: o.username, user: { token: o.token } }],
    contexts: [{
      name: context,
      context: { cluster: CLUSTER_NAME, user: o.username, ...(o.namespace === undefined ? {} : { namespace: o.namespace }) },
    }],
    'current-context': context,
    preferences: {},
  });
}
