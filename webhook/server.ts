/**
 * The HTTPS server: TLS from files that are re-read when they change, connection timeouts
 * chosen for the API server as a client, and a graceful stop.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { formatErrors } from '../core/result.js';
import { type AppContext, createWebhookApp } from './app.js';
import type { WebhookMetrics } from './metrics.js';
import { type ServingPair, checkClientCa, checkServingPair, installServingPair, secureContextOptions } from './serving-cert.js';
import { WatchedFiles } from '../lib/watched-files.js';
import { readProblem } from '../lib/bounded-read.js';
import { closeSilentConnections } from '../lib/silent-connections.js';

/**
 * Go's http.Transport (the API server's client) closes idle connections after 90 s. If we closed
 * first, a request sent on a socket we are closing would fail with a reset: stay open longer.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;
/** Whole-request and header deadlines: the API server gives up after at most 30 s anyway. */
export const REQUEST_TIMEOUT_MS = 30_000;
export const HEADERS_TIMEOUT_MS = 30_000;
/** The TLS handshake deadline: Go's (the API server's) own; Node's default would be 120 s. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * How often Node checks the header and request deadlines (its default, 30 s, lets a slow
 * client stay almost twice as long as the deadline says).
 */
const DEADLINE_CHECK_INTERVAL_MS = 1_000;

export interface WebhookServerOptions extends Omit<AppContext, 'readiness' | 'requireClientCertificate'> {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPollIntervalMs?: number;
  /**
   * PEM bundle of the CA that signs the API server's client certificate; re-read with the
   * serving pair. Set, admission calls without a certificate it verifies get 401.
   */
  readonly clientCaFile?: string;
  /** Readiness checks besides the serving certificate (cache synced, stamp keys loaded…). */
  readonly readiness?: () => Readonly<Record<string, boolean>>;
}

export class WebhookServer {
  readonly #options: WebhookServerOptions;
  readonly #logger: Logger;
  readonly #metrics: WebhookMetrics;
  readonly #files: WatchedFiles;
  #server: Server | undefined;
  #pair: ServingPair | undefined;
  #clientCa: Buffer | undefined;
  #lastError = '';
  #stopping = false;

  private constructor(options: WebhookServerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#files = new WatchedFiles({
      files: options.clientCaFile === undefined ? [options.certFile, options.keyFile] : [options.certFile, options.keyFile, options.clientCaFile],
      pollIntervalMs: options.certPollIntervalMs ?? 10_000,
      onChange: ([cert, key, clientCa]) => this.#offer(cert, key, clientCa),
      onError: (err) => {
        this.#lastError = readProblem(err);
        this.#logger.warn({ problem: this.#lastError }, 'cannot read the TLS files; still serving the previous certificate');
      },
    });
  }

  /** Load the pair, listen, and return once the port is bound. */
  static async start(options: WebhookServerOptions): Promise<WebhookServer> {
    const s = new WebhookServer(options);
    await s.#listen();
    return s;
  }

  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    return `https://${this.#options.host.includes(':') ? `[${this.#options.host}]` : this.#options.host}:${this.port}`;
  }

  /** The certificate now offered to new connections. */
  get servingPair(): ServingPair | undefined {
    return this.#pair;
  }

  /** The underlying server (tests inspect connections). */
  get server(): Server | undefined {
    return this.#server;
  }

  /** Re-read the TLS files now instead of waiting for an event or the poll. */
  reloadTls(): Promise<void> {
    return this.#files.check();
  }

  /**
   * First step of a shutdown: /readyz starts failing so the Service's endpoints drop this pod,
   * while requests are still served (the API server may route to us until it notices).
   */
  beginShutdown(): void {
    this.#stopping = true;
  }

  /**
   * Stop: readiness fails, new connections are refused, idle keep-alive sockets close, and
   * in-flight requests get `graceMs` to finish.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    this.#files.stop();
    const server = this.#server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => {
      resolve();
    }));
    // Keep-alive sockets become idle as their last response ends; close them as they do.
    server.closeIdleConnections();
    const sweeper = setInterval(() => {
      server.closeIdleConnections();
    }, 50);
    const timer = setTimeout(() => {
      server.closeAllConnections();
    }, graceMs);
    timer.unref();
    await closed;
    clearInterval(sweeper);
    clearTimeout(timer);
  }

  async #listen(): Promise<void> {
    await this.#files.start();
    const pair = this.#pair;
    if (!pair) {
      const files = [this.#options.certFile, this.#options.keyFile, ...(this.#options.clientCaFile === undefined ? [] : [this.#options.clientCaFile])];
      throw new Error(`cannot serve HTTPS: ${this.#lastError || 'no usable certificate'} (${files.join(', ')})`);
    }
    const app = createWebhookApp({
      ...this.#options,
      requireClientCertificate: this.#options.clientCaFile !== undefined,
      readiness: () => ({
        'serving-certificate': this.#pair !== undefined,
        draining: !this.#stopping,
        ...this.#options.readiness?.(),
      }),
    });
    const server = createServer({
      ...secureContextOptions(pair, this.#clientCa),
      // Asked for, not demanded in the handshake: kubelet probes of /healthz and /readyz carry no
      // certificate. The admission endpoints refuse callers that are not authorized (app.ts).
      requestCert: this.#options.clientCaFile !== undefined,
      rejectUnauthorized: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS,
    }, app);
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    closeSilentConnections(server, 'secureConnection', HEADERS_TIMEOUT_MS);
    server.on('tlsClientError', (err) => {
      this.#logger.debug({ code: (err as NodeJS.ErrnoException).code }, 'TLS handshake failed');
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#logger.info({ url: this.url, certificate: pair.fingerprint256, notAfter: pair.notAfter.toISOString() }, 'webhook listening');
  }

  #offer(cert: Buffer | undefined, key: Buffer | undefined, clientCa: Buffer | undefined): boolean {
    if (!cert || !key) return false;
    const wantsCa = this.#options.clientCaFile !== undefined;
    const checked = checkServingPair(cert, key);
    const ca = wantsCa ? checkClientCa(clientCa ?? Buffer.alloc(0)) : undefined;
    if (!checked.ok || (ca && !ca.ok)) {
      this.#lastError = formatErrors([...(checked.ok ? [] : checked.errors), ...(ca && !ca.ok ? ca.errors : [])]);
      this.#metrics.reloads.inc({ what: 'tls', result: 'failure' });
      this.#logger.error({ problem: this.#lastError }, 'refusing the new TLS files; still serving the previous certificate and client CA');
      return false;
    }
    const pair = checked.value;
    this.#clientCa = ca?.ok ? ca.value : undefined;
    if (this.#server) installServingPair(this.#server, pair, this.#clientCa);
    const previous = this.#pair;
    this.#pair = pair;
    this.#metrics.reloads.inc({ what: 'tls', result: 'success' });
    this.#metrics.certificateExpiry.set(pair.notAfter.getTime() / 1000);
    if (previous) this.#logger.info({ from: previous.fingerprint256, to: pair.fingerprint256, notAfter: pair.notAfter.toISOString() }, 'serving certificate rotated');
    return true;
  }
}
