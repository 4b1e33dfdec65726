/**
 * A tiny HTTPS admission webhook for tests: it answers AdmissionReview v1 with whatever the
 * test's handler decides, records every request it got, and serves a certificate from its own
 * CA so the double's caBundle/server-name checks are exercised for real.
 */

import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority, issueServingCertificate, type CertificateAuthority } from '../../certs/dev-pki.js';
import type { JsonObject, KubeObject } from './types.js';

/** The `request` of an AdmissionReview as the double (or a real apiserver) sends it. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  requestKind?: { group: string; version: string; kind: string };
  requestResource?: { group: string; version: string; resource: string };
  /** Set for subresource requests, e.g. "status". */
  subResource?: string;
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  object: KubeObject | null;
  oldObject: KubeObject | null;
  dryRun?: boolean;
  options?: JsonObject;
}

export interface WebhookVerdict {
  allowed: boolean;
  status?: { code?: number; message?: string; reason?: string };
  /** JSONPatch operations, sent base64-encoded with patchType JSONPatch. */
  patch?: unknown[];
  warnings?: string[];
}

/** Return `{ raw }` to send an arbitrary body (for testing how malformed answers are treated). */
export type WebhookHandler = (request: AdmissionRequest, path: string) => WebhookVerdict | { raw: unknown } | Promise<WebhookVerdict | { raw: unknown }>;

export interface ReceivedReview {
  path: string;
  /** Full request URL path with query, e.g. "/validate?timeout=10s". */
  url: string;
  host: string | undefined;
  review: { apiVersion: string; kind: string; request: AdmissionRequest };
}

export interface TestWebhookServer {
  port: number;
  /** https://127.0.0.1:<port><path> */
  url(path: string): string;
  /** base64 PEM of the CA, ready for clientConfig.caBundle. */
  caBundle: string;
  received: ReceivedReview[];
  setHandler(handler: WebhookHandler): void;
  close(): Promise<void>;
}

export interface WebhookServerOptions {
  handler: WebhookHandler;
  /** DNS SANs of the serving certificate, e.g. "kmesh-webhook.kmesh-system.svc". 127.0.0.1 is always included. */
  dnsNames?: string[];
  ca?: CertificateAuthority;
}

function reviewResponse(uid: string, verdict: WebhookVerdict): JsonObject {
  const response: JsonObject = { uid, allowed: verdict.allowed };
  if (verdict.status !== undefined) response.status = verdict.status;
  if (verdict.patch !== undefined) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
  }
  if (verdict.warnings !== undefined) response.warnings = verdict.warnings;
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<TestWebhookServer> {
  const ca = options.ca ?? createCertificateAuthority({ commonName: 'test-webhook-ca', days: 30 });
  const serving = issueServingCertificate(ca, { commonName: 'test-webhook', dnsNames: options.dnsNames ?? [], ipAddresses: ['127.0.0.1'], days: 30 });
  let handler = options.handler;
  const received: ReceivedReview[] = [];
  const server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedReview['review'];
        const url = req.url ?? '/';
        const path = url.split('?')[0] ?? '/';
        received.push({ path, url, host: req.headers.host, review });
        const answer = await handler(review.request, path);
        const body = 'raw' in answer ? answer.raw : reviewResponse(review.request.uid, answer);
        const payload = JSON.stringify(body);
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
        res.end(payload);
      })().catch((err: unknown) => {
        res.writeHead(500);
        res.end(err instanceof Error ? err.message : String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path) => `https://127.0.0.1:${port}${path}`,
    caBundle: Buffer.from(ca.certPem).toString('base64'),
    received,
    setHandler(h) {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
