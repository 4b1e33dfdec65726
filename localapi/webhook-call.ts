/**
 * One HTTPS POST to an admission webhook, with the TLS checks kube-apiserver applies (caBundle
 * as the only trust root, server name <svc>.<ns>.svc for service references) and failures
 * rendered the way Go's HTTP client words them, since they end up in user-visible messages.
 */

import https from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity } from 'node:tls';

export interface WebhookEndpoint {
  /**
   * The URL as Go renders it in errors (explicit ports such as :443 are kept, unlike WHATWG
   * URL serialisation).
   */
  href: string;
  /** Host header value (host[:port] exactly as in `href`). */
  host: string;
  /** Path plus query string. */
  path: string;
  /** Where the TCP connection really goes (services are mapped to 127.0.0.1 ports in tests). */
  connectHost: string;
  connectPort: number;
  /** Name the serving certificate must carry. */
  serverName: string;
  /** PEM trust roots from caBundle; undefined means the system roots, as on a real apiserver. */
  caPem: string | undefined;
}

/** A failure to obtain a usable answer; the caller applies failurePolicy to it. */
export class WebhookCallError extends Error {}

interface NodeTlsError extends Error {
  code?: string;
  cert?: { subjectaltname?: string };
}

const UNKNOWN_AUTHORITY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
]);

function describeTransportError(err: NodeTlsError, endpoint: WebhookEndpoint, timedOut: boolean): string {
  if (timedOut) return 'context deadline exceeded';
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return `dial tcp ${endpoint.connectHost}:${endpoint.connectPort}: connect: connection refused`;
  if (code === 'ECONNRESET') return 'EOF';
  if (UNKNOWN_AUTHORITY.has(code)) return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return 'tls: failed to verify certificate: x509: certificate has expired or is not yet valid';
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = (err.cert?.subjectaltname ?? '').split(',').map((s) => s.trim().replace(/^(DNS|IP Address):/, ''));
    return `tls: failed to verify certificate: x509: certificate is valid for ${names.join(', ')}, not ${endpoint.serverName}`;
  }
  return err.message;
}

function describeHttpStatus(status: number, body: string): string {
  const text = body.trim();
  if (text === '') return `the server responded with the status code ${status} but did not return more information`;
  return `an error on the server ("${text.length > 200 ? `${text.slice(0, 200)}...` : text}") has prevented the request from succeeding`;
}

/** POSTs `body` as JSON and resolves with the parsed JSON answer, or rejects with WebhookCallError. */
export function postAdmissionReview(endpoint: WebhookEndpoint, body: unknown, timeoutMs: number): Promise<unknown> {
  const payload = Buffer.from(JSON.stringify(body));
  const target = `Post "${endpoint.href}"`;
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const req = https.request({
      host: endpoint.connectHost,
      port: endpoint.connectPort,
      method: 'POST',
      path: endpoint.path,
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, */*',
        'Content-Length': payload.length,
        Host: endpoint.host,
      },
      ...(isIP(endpoint.serverName) === 0 ? { servername: endpoint.serverName } : {}),
      ...(endpoint.caPem === undefined ? {} : { ca: endpoint.caPem }),
      // Verify against the name the apiserver would dial, not the 127.0.0.1 we really dial.
      checkServerIdentity: (_host, cert) => checkServerIdentity(endpoint.serverName, cert),
      agent: false,
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new Error('timeout'));
    }, timeoutMs);
    req.on('error', (err: NodeTlsError) => {
      clearTimeout(timer);
      reject(new WebhookCallError(`${target}: ${describeTransportError(err, endpoint, timedOut)}`));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err: NodeTlsError) => {
        clearTimeout(timer);
        reject(new WebhookCallError(`${target}: ${describeTransportError(err, endpoint, timedOut)}`));
      });
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          reject(new WebhookCallError(describeHttpStatus(status, text)));
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(new WebhookCallError(`couldn't get version/kind; json parse error: ${err instanceof Error ? err.message : String(err)}`));
        }
      });
    });
    req.end(payload);
  });
}
