/**
 * The node plugin's local HTTP endpoint: GET /metrics (Prometheus), /healthz (the reconcile
 * loop is alive), /readyz (the first reconcile succeeded), /status (JSON for
 * `kmesh-ipsec status`). Read-only and bounded: fixed paths, no request bodies, short
 * timeouts. It carries no key material, but it does describe the node's peers, so bind it to
 * what needs to reach it (the DaemonSet's probes and Prometheus).
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { closeSilentConnections } from '../../lib/silent-connections.js';

export interface HttpSources {
  readonly registry: Registry;
  healthy(): { ok: boolean; reason?: string };
  ready(): { ok: boolean; reason?: string };
  status(): Promise<unknown>;
}

export interface ListeningEndpoint {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

/** Deadlines for the whole request and for its headers (also for a connection that sends nothing). */
export const REQUEST_TIMEOUT_MS = 10_000;
export const HEADERS_TIMEOUT_MS = 5_000;
/** How often Node checks them (its default, 30 s, would let a slow client stay 35 s). */
const DEADLINE_CHECK_INTERVAL_MS = 1_000;

export async function listenEndpoint(host: string, port: number, sources: HttpSources): Promise<ListeningEndpoint> {
  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS }, (req, res) => {
    void handle(req, res, sources).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  });
  closeSilentConnections(server, 'connection', HEADERS_TIMEOUT_MS);
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  server.maxRequestsPerSocket = 100;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, sources: HttpSources): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, 405, 'text/plain', 'only GET and HEAD\n');
    return;
  }
  if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') {
    send(res, 413, 'text/plain', 'no request body expected\n');
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/metrics':
      send(res, 200, sources.registry.contentType, await sources.registry.metrics());
      return;
    case '/healthz':
    case '/readyz': {
      const r = path === '/healthz' ? sources.healthy() : sources.ready();
      send(res, r.ok ? 200 : 503, 'text/plain', r.ok ? 'ok\n' : `${r.reason ?? 'not ready'}\n`);
      return;
    }
    case '/status':
      send(res, 200, 'application/json', `${JSON.stringify(await sources.status(), null, 2)}\n`);
      return;
    default:
      send(res, 404, 'text/plain', 'not found: try /metrics, /healthz, /readyz or /status\n');
  }
}

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
