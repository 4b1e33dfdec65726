/**
 * The lab's Kubernetes API as a process of its own: the local API (localapi/) on 127.0.0.1 of
 * the host and of every node namespace, the webhook registered by Service, the kubelet's part
 * for Secret volumes (secret-volumes.ts), and a control socket for what only the lab does:
 * listening in a rebuilt node namespace, holding a node's Secret volume back, and writing an
 * object straight into the store, around admission (to show that nodes ignore forged objects).
 *
 * Run as `node api-process.js <config.json>`; `lab up` writes the configuration (mode 0600: it
 * holds the tokens) and waits until `GET /v1/ready` answers on the control socket.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { kubeconfigYaml } from '../localapi/kubeconfig.js';
import { type KubeObject, type LocalApi, type UserInfo, startLocalApi } from '../localapi/index.js';
import { ControlError, serveControl } from './control.js';
import { listenInNetns } from './netns-listener.js';
import { SecretVolumes } from './secret-volumes.js';
import { netnsPath } from './system.js';
import { NODE_API_PORT } from './topology.js';

export interface ApiProcessConfig {
  /** Port on the host's 127.0.0.1. */
  readonly port: number;
  /** Bearer token -> user. */
  readonly users: Readonly<Record<string, UserInfo>>;
  /** Stored at start, without admission (namespaces, the cluster's objects, Nodes, Pods). */
  readonly objects: readonly KubeObject[];
  /** The webhook's Service, answered by 127.0.0.1:<port>. */
  readonly webhook: { readonly namespace: string; readonly name: string; readonly port: number };
  /** Kubeconfig files to write: server is the host address unless `server` says otherwise. */
  readonly kubeconfigs: readonly { readonly path: string; readonly token: string; readonly username: string; readonly server?: string }[];
  readonly controlSocket: string;
  /** Node namespaces (names) to listen in, on 127.0.0.1:6443. */
  readonly nodeNetns: readonly string[];
  /** Node name -> Secret volume directory. */
  readonly secretVolumes: Readonly<Record<string, string>>;
  /** Pause between two nodes' Secret volume updates. */
  readonly volumeGapMs: number;
}

export const API_PROCESS = fileURLToPath(import.meta.url);

export async function runApiProcess(config: ApiProcessConfig): Promise<void> {
  const api = await startLocalApi({ users: { ...config.users }, objects: [...config.objects], host: '127.0.0.1', port: config.port });
  api.mapService({ namespace: config.webhook.namespace, name: config.webhook.name }, { port: config.webhook.port });
  for (const k of config.kubeconfigs) {
    writeFileSync(k.path, kubeconfigYaml({ server: k.server ?? api.url, caPem: api.caPem, username: k.username, token: k.token }), { mode: 0o600 });
  }
  const listenIn = async (netns: string): Promise<void> => {
    api.alsoServe(await listenInNetns(netnsPath(netns), '127.0.0.1', NODE_API_PORT));
  };
  await Promise.all(config.nodeNetns.map(listenIn));
  const volumes = new SecretVolumes(api.store, config.secretVolumes, config.volumeGapMs);
  await volumes.start();
  await serveControl(config.controlSocket, controlRoutes(api, volumes, listenIn));
  log(`serving ${api.url} and 127.0.0.1:${NODE_API_PORT} in ${config.nodeNetns.length} node namespace(s)`);
  const stop = (): void => {
    volumes.stop();
    void api.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function controlRoutes(api: LocalApi, volumes: SecretVolumes, listenIn: (netns: string) => Promise<void>): Parameters<typeof serveControl>[1] {
  const text = (value: unknown, field: string): string => {
    if (typeof value !== 'string' || value === '') throw new ControlError(`${field}: a non-empty string is required`);
    return value;
  };
  const body = (value: unknown): Record<string, unknown> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ControlError('request body: a JSON object is required');
    return value as Record<string, unknown>;
  };
  const node = (params: readonly string[]): string => text(params[0], 'node');
  const volume = async (run: () => unknown): Promise<object> => {
    try {
      await run();
    } catch (err: unknown) {
      throw err instanceof RangeError ? new ControlError(err.message, 404) : err;
    }
    return {};
  };
  return {
    'GET /v1/ready': () => ({ url: api.url }),
    'POST /v1/listen': async (b) => {
      await listenIn(text(body(b).netns, 'netns'));
      return {};
    },
    // Lab only: the object is stored as given, around every admission webhook.
    'PUT /v1/store': async (b) => {
      const obj = body(b) as unknown as KubeObject;
      if (typeof obj.metadata !== 'object') throw new ControlError('metadata: required');
      return api.store.put(obj);
    },
    'POST /v1/volumes/:node/hold': (_b, p) => volume(() => { volumes.hold(node(p)); }),
    'POST /v1/volumes/:node/release': (_b, p) => volume(() => volumes.release(node(p))),
    'PUT /v1/volumes/:node': (b, p) => volume(() => volumes.add(node(p), text(body(b).dir, 'dir'))),
  };
}

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} lab-api: ${message}\n`);
}

if (process.argv[1] === API_PROCESS) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: api-process.js <config.json>\n');
    process.exit(2);
  }
  runApiProcess(JSON.parse(readFileSync(file, 'utf8')) as ApiProcessConfig).catch((err: unknown) => {
    log(`cannot start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
}
