/**
 * kube-double: an in-process stand-in for kube-apiserver that speaks the real REST protocol
 * (HTTPS, bearer tokens, discovery, OpenAPI v3 stubs, CRUD/PATCH/WATCH, metav1.Status errors,
 * admission webhooks), for tests only. See README.md for what is faithful and what is not.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { createCertificateAuthority, issueServingCertificate } from '../../certs/dev-pki.js';
import { WebhookAdmission } from './admission.js';
import type { Authorizer } from './auth.js';
import type { ServerVersion } from './discovery.js';
import { GarbageCollector } from './garbage-collector.js';
import { kubeconfigYaml } from './kubeconfig.js';
import { Registry } from './registry.js';
import { ResourceTable } from './resource-table.js';
import type { ResourceType } from './resource-type.js';
import { defaultResources } from './resources.js';
import { listen } from './server.js';
import { ServiceMap, type ServiceResolver, type ServiceTarget } from './service-map.js';
import { ObjectStore } from './store.js';
import { KubeDoubleStore } from './store-api.js';
import type { KubeObject, UserInfo } from './types.js';
import type { WatchRegistry } from './watch.js';

export type { AuthorizationRequest, Authorizer } from './auth.js';
export type { ChangeEvent } from './store-api.js';
export { KubeDoubleStore } from './store-api.js';
export type { ServiceRef, ServiceResolver, ServiceTarget } from './service-map.js';
export type { KubeObject, ObjectMeta, UserInfo } from './types.js';
export { customResource, defineResource, type ResourceType } from './resource-type.js';

/** Namespaces every cluster has. */
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export interface KubeDoubleOptions {
  /**
   * Bearer token -> user. The first entry is the default user of `kubeconfig()` and friends.
   * Default: one user "kube-double-admin" (groups system:masters, system:authenticated) with a
   * random token.
   */
  users?: Record<string, UserInfo>;
  /** Treat requests without a token as system:anonymous instead of answering 401. Default false. */
  anonymous?: boolean;
  /** Authorization hook; by default every authenticated request is allowed. */
  authorizer?: Authorizer;
  /** Kinds served in addition to the built-in table (see resources.ts and `customResource`). */
  extraResources?: ResourceType[];
  /** Namespaces created at start besides default/kube-system/kube-public/kube-node-lease. Default ["kmesh-system"]. */
  namespaces?: string[];
  /** Objects stored at start (no admission), after the namespaces. */
  objects?: KubeObject[];
  /** Resolver for webhook clientConfig.service references not registered with `mapService`. */
  resolveService?: ServiceResolver;
  /** Watch history length in events before old resourceVersions answer 410. Default 1000. */
  historySize?: number;
  /** Interval of BOOKMARK events on watches with allowWatchBookmarks. Default 60000 ms. */
  bookmarkIntervalMs?: number;
  /** What /version reports. Default 1.32 (kubectl's version dispatcher keys off it). */
  serverVersion?: ServerVersion;
  /**
   * Bind address. Default 127.0.0.1. With a wildcard (0.0.0.0, ::) the URL uses the first of
   * `ipAddresses`, else 127.0.0.1.
   */
  host?: string;
  /** Port to listen on. Default: a free one. */
  port?: number;
  /**
   * More IP SANs for the serving certificate (127.0.0.1 and an IP `host` are always in it), for
   * clients that reach the double through another address, e.g. from another network namespace.
   */
  ipAddresses?: string[];
}

export interface KubeDouble {
  /** https://<host>:<port>, also the server of every kubeconfig. */
  readonly url: string;
  /** PEM of the CA that signed the serving certificate (also inside every kubeconfig). */
  readonly caPem: string;
  /** Direct state access and change notifications for tests (no HTTP, no admission). */
  readonly store: KubeDoubleStore;
  /** Usernames known to the double, default user first. */
  readonly usernames: readonly string[];
  /** kubeconfig YAML for `username` (default: the first user), optionally with a context namespace. */
  kubeconfig(username?: string, options?: { namespace?: string }): string;
  /** Path of a kubeconfig file for `username`, written once into a temp dir removed by close(). */
  kubeconfigPath(username?: string): string;
  /** Writes the kubeconfig for `username` to `path`. */
  writeKubeconfig(path: string, username?: string): void;
  /** The bearer token of `username` (default: the first user). */
  tokenFor(username?: string): string;
  /**
   * Routes webhook calls for service `namespace/name:port` (port defaults to 443, as in
   * clientConfig.service) to `target` (host defaults to 127.0.0.1). Certificates are still
   * checked against "<name>.<namespace>.svc".
   */
  mapService(service: { namespace: string; name: string; port?: number }, target: { host?: string; port: number }): void;
  unmapService(service: { namespace: string; name: string; port?: number }): void;
  /** Forget watch history: watches from an older resourceVersion get a 410 Gone ERROR event. */
  compactHistory(): void;
  /**
   * Ends every open watch stream, as an apiserver restart or watch timeout would; clients
   * reconnect from their last resourceVersion.
   */
  closeWatches(): void;
  /**
   * "The API server is down": drops every connection (watches break, requests in flight are
   * reset) and stops listening, so new connections are refused. State, history and the
   * resourceVersion counter are kept; the garbage collector pauses. `store` still works.
   */
  suspend(): Promise<void>;
  /**
   * Serves again on the same address and port; watches resume from their last resourceVersion
   * (or get 410 if `compactHistory()` was called meanwhile).
   */
  resume(): Promise<void>;
  /** Ends open watches and connections, stops the server and removes temp files. */
  close(): Promise<void>;
}

function defaultUsers(): Record<string, UserInfo> {
  return {
    [randomBytes(16).toString('hex')]: {
      username: 'kube-double-admin',
      uid: 'kube-double-admin-uid',
      groups: ['system:masters', 'system:authenticated'],
    },
  };
}

async function seed(store: KubeDoubleStore, namespaces: readonly string[], objects: readonly KubeObject[]): Promise<void> {
  for (const name of namespaces) {
    if (store.get('namespaces', undefined, name) === undefined) {
      await store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    }
  }
  for (const obj of objects) await store.put(obj);
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** Where to bind, what to tell clients, and the names the serving certificate must carry. */
function addressing(options: KubeDoubleOptions): { host: string; advertise: string; dnsNames: string[]; ipAddresses: string[] } {
  const host = options.host ?? '127.0.0.1';
  const extra = options.ipAddresses ?? [];
  const wildcard = WILDCARDS.has(host);
  const advertise = wildcard ? (extra[0] ?? '127.0.0.1') : host;
  const hostIp = isIP(host) !== 0 && !wildcard ? [host] : [];
  const hostName = isIP(host) === 0 ? [host] : [];
  return {
    host,
    advertise,
    dnsNames: [...new Set(['localhost', 'kubernetes.default.svc', ...hostName])],
    ipAddresses: [...new Set(['127.0.0.1', ...hostIp, ...extra])],
  };
}

/** Starts a kube-apiserver double on https://127.0.0.1:<random port> (see `host`, `port`). */
export async function startKubeDouble(options: KubeDoubleOptions = {}): Promise<KubeDouble> {
  const where = addressing(options);
  const ca = createCertificateAuthority({ commonName: 'kube-double-ca', days: 30 });
  const serving = issueServingCertificate(ca, { commonName: 'kube-apiserver', dnsNames: where.dnsNames, ipAddresses: where.ipAddresses, days: 30 });
  const users = options.users ?? defaultUsers();
  const tokens = new Map(Object.entries(users));
  const usernames = [...tokens.values()].map((u) => u.username);
  if (usernames.length === 0 && options.anonymous !== true) throw new Error('kube-double: no users and anonymous access off');

  const table = new ResourceTable([...defaultResources(), ...(options.extraResources ?? [])]);
  const objectStore = new ObjectStore(options.historySize ?? 1000);
  const services = new ServiceMap(options.resolveService);
  const webhookKind = (kind: string): ResourceType | undefined => table.byKind('admissionregistration.k8s.io/v1', kind);
  const admission = new WebhookAdmission({
    configurations: (flavour) => {
      const rt = webhookKind(flavour === 'mutating' ? 'MutatingWebhookConfiguration' : 'ValidatingWebhookConfiguration');
      return rt === undefined ? [] : objectStore.list(rt);
    },
    namespaceLabels: (namespace) => {
      const rt = table.lookup('', 'v1', 'namespaces');
      return rt === undefined ? undefined : objectStore.get(rt, undefined, namespace)?.metadata.labels;
    },
    services,
  });
  const store = new KubeDoubleStore(objectStore, table);
  await seed(store, [...SYSTEM_NAMESPACES, ...(options.namespaces ?? ['kmesh-system'])], options.objects ?? []);
  const registry = new Registry(objectStore, table, admission);
  const collector = new GarbageCollector(objectStore, table, registry);

  const watches: WatchRegistry = new Set();
  const server = await listen({
    table,
    store: objectStore,
    registry,
    authorizer: options.authorizer,
    watches,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
    tokens,
    anonymous: options.anonymous ?? false,
    version: options.serverVersion ?? { major: '1', minor: '32', gitVersion: 'v1.32.0' },
    tls: serving,
  }, { host: where.host, port: options.port ?? 0, advertise: where.advertise });
  const { url } = server;
  collector.start();
  const closeWatches = (): void => {
    for (const close of [...watches]) close();
  };

  let tempDir: string | undefined;
  const paths = new Map<string, string>();
  const tokenFor = (username?: string): string => {
    const wanted = username ?? usernames[0];
    for (const [token, user] of tokens) if (user.username === wanted) return token;
    throw new Error(`kube-double: unknown user "${wanted ?? ''}"`);
  };
  const kubeconfig = (username?: string, opts: { namespace?: string } = {}): string => {
    const name = username ?? usernames[0] ?? '';
    return kubeconfigYaml({ server: url, caPem: ca.certPem, username: name, token: tokenFor(name), ...opts });
  };
  const serviceKey = (s: { namespace: string; name: string; port?: number }): { namespace: string; name: string; port: number } =>
    ({ namespace: s.namespace, name: s.name, port: s.port ?? 443 });

  return {
    url,
    caPem: ca.certPem,
    store,
    usernames,
    kubeconfig,
    kubeconfigPath(username) {
      const name = username ?? usernames[0] ?? '';
      let path = paths.get(name);
      if (path === undefined) {
        tempDir ??= mkdtempSync(join(tmpdir(), 'kube-double-'));
        path = join(tempDir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.kubeconfig`);
        writeFileSync(path, kubeconfig(name), { mode: 0o600 });
        paths.set(name, path);
      }
      return path;
    },
    writeKubeconfig(path, username) {
      writeFileSync(path, kubeconfig(username), { mode: 0o600 });
    },
    tokenFor,
    mapService(service, target: Partial<ServiceTarget> & { port: number }) {
      services.set(serviceKey(service), { host: target.host ?? '127.0.0.1', port: target.port });
    },
    unmapService(service) {
      services.delete(serviceKey(service));
    },
    compactHistory() {
      objectStore.compact();
    },
    closeWatches,
    async suspend() {
      collector.pause();
      await server.suspend();
    },
    async resume() {
      await server.resume();
      collector.resume();
    },
    async close() {
      collector.stop();
      closeWatches();
      await server.close();
      if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
    },
  };
}
