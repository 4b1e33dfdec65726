/**
 * Shared fixtures for the webhook tests: a real webhook over real HTTPS (certificates from our
 * own dev PKI, a generated stamp key, a fixed cluster view standing in for the API server), an
 * HTTPS client that trusts only that CA, and builders for AdmissionReviews and objects.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { type DevPki, createCertificateAuthority, issueServingCertificate, serviceDnsNames, writeDevPki } from '../../certs/dev-pki.js';
import { generateStampKey } from '../../certs/stamp-keygen.js';
import type { KmeshNodeInfoSpec } from '../../core/nodeinfo.js';
import type { NodeFacts } from '../../core/nodeinfo-claims.js';
import { type AdvertisedNodeInfo, StaticClusterView } from '../../webhook/cluster-view.js';
import { type IdentityPolicy, identityPolicy } from '../../webhook/identity.js';
import { type RunningWebhook, runWebhook } from '../../webhook/runtime.js';

export const AGENT = 'system:serviceaccount:kmesh-system:kmesh-ipsec-node';

/** One CA + leaf per test file is plenty; RSA generation is the slow part. */
export function makePki(): DevPki {
  const ca = createCertificateAuthority({ days: 30 });
  const serving = issueServingCertificate(ca, { dnsNames: serviceDnsNames('kmesh-ipsec-webhook', 'kmesh-system'), ipAddresses: ['127.0.0.1'], days: 30 });
  return { ca, serving };
}

export interface TestWebhook {
  readonly url: string;
  readonly port: number;
  readonly running: RunningWebhook;
  readonly view: StaticClusterView;
  readonly dir: string;
  readonly pki: DevPki;
  readonly agent: Agent;
  post(path: string, body: unknown, options?: PostOptions): Promise<HttpResult>;
  close(): Promise<void>;
}

export interface PostOptions {
  readonly contentType?: string | null;
  readonly raw?: string | Buffer;
  readonly method?: string;
  readonly headers?: Record<string, string>;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: unknown;
}

export interface StartOptions {
  readonly pki?: DevPki;
  readonly view?: StaticClusterView;
  readonly identity?: IdentityPolicy;
  readonly checkNodeFacts?: boolean;
  readonly stampTtlSeconds?: number;
  readonly filePollIntervalMs?: number;
  readonly bodyLimitBytes?: number;
  /** Files in a Secret-volume layout (`..data` symlink) instead of plain files. */
  readonly secretVolume?: boolean;
  /** Default: silent. */
  readonly logger?: Logger;
  /** Require client certificates from this CA (written to `client-ca.crt` in `dir`). */
  readonly clientCaPem?: string;
  readonly clientNames?: readonly string[];
}

export async function startWebhook(options: StartOptions = {}): Promise<TestWebhook> {
  const pki = options.pki ?? makePki();
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-webhook-test-'));
  await writeDevPki(join(dir, 'tls'), pki);
  const stamp = await generateStampKey();
  await writeFile(join(dir, 'stamp-key.jwk'), JSON.stringify(stamp.privateJwk), { mode: 0o600 });
  if (options.clientCaPem !== undefined) await writeFile(join(dir, 'client-ca.crt'), options.clientCaPem);
  const view = options.view ?? defaultView();
  const running = await runWebhook(
    {
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls', 'tls.crt'),
      keyFile: join(dir, 'tls', 'tls.key'),
      stampKeyFile: join(dir, 'stamp-key.jwk'),
      identity: options.identity ?? identityPolicy({ privilegedGroups: ['system:masters'], userNodes: [['mapped-user', 'node-b']] }),
      checkNodeFacts: options.checkNodeFacts ?? true,
      ...(options.stampTtlSeconds !== undefined ? { stampTtlSeconds: options.stampTtlSeconds } : {}),
      ...(options.filePollIntervalMs !== undefined ? { filePollIntervalMs: options.filePollIntervalMs } : {}),
      ...(options.bodyLimitBytes !== undefined ? { bodyLimitBytes: options.bodyLimitBytes } : {}),
      ...(options.clientCaPem !== undefined ? { clientCaFile: join(dir, 'client-ca.crt') } : {}),
      ...(options.clientNames !== undefined ? { clientNames: options.clientNames } : {}),
    },
    { view },
    options.logger ?? pino({ level: 'silent' }),
    { processMetrics: false },
  );
  const agent = new Agent({ ca: pki.ca.certPem, keepAlive: true, maxSockets: 16 });
  const url = running.server.url;
  return {
    url,
    port: running.server.port,
    running,
    view,
    dir,
    pki,
    agent,
    post: (path, body, postOptions) => httpsCall(url, path, body, agent, postOptions),
    close: async () => {
      agent.destroy();
      await running.close(1000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function httpsCall(base: string, path: string, body: unknown, agent: Agent, options: PostOptions = {}): Promise<HttpResult> {
  const payload = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const headers: Record<string, string> = { ...options.headers };
  const contentType = options.contentType === undefined ? 'application/json' : options.contentType;
  if (contentType !== null && payload !== undefined) headers['content-type'] = contentType;
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method: options.method ?? 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

// ---- objects -------------------------------------------------------------------------------

export const NODE_A: NodeFacts = { name: 'node-a', internalIPs: ['10.0.0.1'], podCIDRs: ['10.244.1.0/24'] };
export const NODE_B: NodeFacts = { name: 'node-b', internalIPs: ['10.0.0.2', 'fd00::2'], podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'] };
export const NODE_C: NodeFacts = { name: 'node-c', internalIPs: ['10.0.0.3'], podCIDRs: ['10.244.3.0/24'] };

/** Nodes a, b, c exist; node-c already advertises SPI 3. */
export function defaultView(): StaticClusterView {
  return new StaticClusterView({
    nodes: [NODE_A, NODE_B, NODE_C],
    nodeInfos: [{ name: 'node-c', spi: 3, addresses: ['10.0.0.3'], podCIDRS: ['10.244.3.0/24'] }],
  });
}

export function advertised(name: string, spi: number, addresses: string[] = [], podCIDRS: string[] = []): AdvertisedNodeInfo {
  return { name, spi, addresses, podCIDRS };
}

export const KEY1 = Buffer.from(randomBytes(36));
export const KEY2 = Buffer.from(randomBytes(36));

export interface IpsecValue {
  spi?: unknown;
  aeadKeyName?: unknown;
  aeadKey?: unknown;
  length?: unknown;
  [extra: string]: unknown;
}

export function ipsecValue(spi: number, key: Buffer = KEY1, extra: Partial<IpsecValue> = {}): IpsecValue {
  return { spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: key.toString('base64'), length: 128, ...extra };
}

/** The Secret the API server would send: `value` (object or raw JSON text) base64 under data.ipSec. */
export function ipsecSecret(value: IpsecValue | string, meta: { name?: string; namespace?: string } = {}): Record<string, unknown> {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: meta.name ?? 'kmesh-ipsec', namespace: meta.namespace ?? 'kmesh-system' },
    type: 'Opaque',
    data: { ipSec: Buffer.from(text).toString('base64') },
  };
}

export function decodeIpsec(secret: unknown): Record<string, unknown> {
  const data = (secret as { data: { ipSec: string } }).data.ipSec;
  return JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as Record<string, unknown>;
}

export function kniSpec(node: NodeFacts, spi = 1, bootID = '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b'): KmeshNodeInfoSpec {
  return { spi, addresses: [...node.internalIPs], bootID, podCIDRS: [...node.podCIDRs] };
}

export function kni(name: string, spec: KmeshNodeInfoSpec | Record<string, unknown>, annotations?: Record<string, string>): Record<string, unknown> {
  return {
    apiVersion: 'kmesh.net/v1alpha1',
    kind: 'KmeshNodeInfo',
    metadata: { name, namespace: 'kmesh-system', ...(annotations ? { annotations } : {}) },
    spec,
  };
}

// ---- reviews -------------------------------------------------------------------------------

export interface UserInfoInput {
  username: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export function nodeAgent(node: string): UserInfoInput {
  return { username: AGENT, groups: ['system:serviceaccounts', 'system:authenticated'], extra: { 'authentication.kubernetes.io/node-name': [node] } };
}

export const ADMIN: UserInfoInput = { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };

export interface ReviewInput {
  operation?: string;
  object?: unknown;
  oldObject?: unknown;
  user?: UserInfoInput;
  dryRun?: boolean;
  name?: string;
  namespace?: string;
  subResource?: string;
  uid?: string;
}

function review(kind: { group: string; version: string; kind: string }, resource: string, input: ReviewInput, defaultName: string): Record<string, unknown> {
  const object = input.object === undefined ? null : input.object;
  const meta = (object ?? input.oldObject) as { metadata?: { name?: string; namespace?: string } } | null;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: input.uid ?? randomUUID(),
      kind,
      resource: { group: kind.group, version: kind.version, resource },
      requestKind: kind,
      requestResource: { group: kind.group, version: kind.version, resource },
      ...(input.subResource ? { subResource: input.subResource } : {}),
      name: input.name ?? meta?.metadata?.name ?? defaultName,
      namespace: input.namespace ?? meta?.metadata?.namespace ?? 'kmesh-system',
      operation: input.operation ?? 'CREATE',
      userInfo: input.user ?? ADMIN,
      object,
      oldObject: input.oldObject ?? null,
      dryRun: input.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: input.operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions' },
    },
  };
}

export function secretReview(input: ReviewInput): Record<string, unknown> {
  return review({ group: '', version: 'v1', kind: 'Secret' }, 'secrets', input, 'kmesh-ipsec');
}

export function kniReview(input: ReviewInput): Record<string, unknown> {
  return review({ group: 'kmesh.net', version: 'v1alpha1', kind: 'KmeshNodeInfo' }, 'kmeshnodeinfos', input, 'node-a');
}

export interface ReviewResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  patch?: string;
  patchType?: string;
  warnings?: string[];
}

/** The response of a 200 AdmissionReview answer (fails loudly otherwise). */
export function responseOf(result: HttpResult): ReviewResponse {
  if (result.status !== 200) throw new Error(`expected HTTP 200, got ${result.status}: ${result.text}`);
  const body = result.json as { apiVersion: string; kind: string; response: ReviewResponse };
  if (body.apiVersion !== 'admission.k8s.io/v1' || body.kind !== 'AdmissionReview') throw new Error(`bad envelope: ${result.text}`);
  return body.response;
}

export function decodePatch(response: ReviewResponse): { op: string; path: string; value?: unknown }[] {
  if (response.patch === undefined) return [];
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as { op: string; path: string; value?: unknown }[];
}
