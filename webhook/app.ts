/**
 * The HTTP surface of the webhook (express 5): the two admission endpoints, health, readiness
 * and metrics. Transport concerns only: the envelope is checked by admission-review.ts and the
 * decisions are made in dispatch.ts.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { MAX_LISTED_ERRORS } from '../core/result.js';
import { safeText } from '../core/safe-text.js';
import { type AdmissionRequest, allowResponse, denialMessage, denyResponse, parseAdmissionReview, peekUid } from './admission-review.js';
import { type Decision, DenyCause } from './decision.js';
import { type AdmissionDeps, Endpoint, Subject, decide, subjectOf } from './dispatch.js';
import type { WebhookMetrics } from './metrics.js';

/**
 * Two objects at etcd's 1.5 MiB limit (object and oldObject) plus the envelope. Our objects are
 * a few hundred bytes, but a mis-scoped rule may send us anything, and 413 lets failurePolicy
 * decide rather than crashing or buffering without bound.
 */
export const DEFAULT_BODY_LIMIT_BYTES = 4 * 1024 * 1024;
/** Used when the API server sends no `timeout` query parameter (its own default is 10 s). */
const DEFAULT_BUDGET_MS = 10_000;

export interface AppContext {
  readonly deps: AdmissionDeps;
  readonly metrics: WebhookMetrics;
  readonly logger: Logger;
  readonly bodyLimitBytes?: number;
  /** Named readiness checks; /readyz is 200 only when all pass. */
  readonly readiness: () => Readonly<Record<string, boolean>>;
  /** Admission calls must come with a client certificate the TLS layer verified (--client-ca). */
  readonly requireClientCertificate?: boolean;
  /** With requireClientCertificate: its CN or a DNS SAN must be one of these (none: any). */
  readonly clientNames?: readonly string[];
}

export function createWebhookApp(ctx: AppContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const json = express.json({ limit: ctx.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES, strict: false, type: () => true });

  for (const endpoint of [Endpoint.Mutate, Endpoint.Validate]) {
    app.post(`/${endpoint}`, authenticateCaller(ctx), requireJsonContentType(ctx), json, (req: Request, res: Response) => admissionHandler(ctx, endpoint, req, res));
    app.all(`/${endpoint}`, methodNotAllowed('POST'));
  }
  app.get('/healthz', (_req: Request, res: Response) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req: Request, res: Response) => {
    const checks = ctx.readiness();
    const failing = Object.entries(checks).filter(([, ready]) => !ready).map(([name]) => name);
    res.status(failing.length === 0 ? 200 : 503).type('text/plain').send(failing.length === 0 ? 'ok\n' : `not ready: ${failing.join(', ')}\n`);
  });
  app.get('/metrics', async (_req: Request, res: Response) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
  for (const path of ['/healthz', '/readyz', '/metrics']) app.all(path, methodNotAllowed('GET, HEAD'));
  app.use((req: Request, res: Response) => {
    sendStatus(res, 404, 'NotFound', `no route ${req.method} ${safeText(req.path, 128)}; the admission endpoints are POST /mutate and POST /validate`);
  });
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    bodyErrorHandler(ctx, err, req, res, next);
  });
  return app;
}

async function admissionHandler(ctx: AppContext, endpoint: Endpoint, req: Request, res: Response): Promise<void> {
  const started = process.hrtime.bigint();
  const parsed = parseAdmissionReview(req.body);
  if (!parsed.ok) {
    ctx.metrics.badRequests.inc({ reason: 'not-admission-review' });
    const uid = peekUid(req.body);
    ctx.logger.warn({ endpoint, uid: uid === undefined ? undefined : safeText(uid, LOGGED_CHARS), fields: loggedFields(parsed.errors.map((e) => e.field)) }, 'rejected a body that is not an AdmissionReview v1 request');
    sendStatus(res, 400, 'BadRequest', denialMessage('not an AdmissionReview v1 request', parsed.errors));
    return;
  }
  const review = parsed.value;
  let decision: Decision;
  try {
    decision = await decide(endpoint, review, ctx.deps, budgetMs(req.query.timeout));
    // The API server rejects a validating response that carries a patch; catch our own bug here with a clear message.
    if (decision.allowed && decision.patch.length > 0 && endpoint !== Endpoint.Mutate) throw new Error('a validating decision carried a patch');
  } catch (err: unknown) {
    ctx.logger.error({ uid: safeText(review.uid, LOGGED_CHARS), endpoint, err: errorSummary(err) }, 'admission handler failed');
    decision = {
      allowed: false,
      cause: DenyCause.Internal,
      code: 500,
      reason: 'InternalError',
      message: `internal error in the kmesh-ipsec webhook; see its logs for uid ${safeText(review.uid, LOGGED_CHARS)}`,
      fields: [],
      warnings: [],
    };
  }
  const body = decision.allowed
    ? allowResponse(review.uid, decision.patch, decision.warnings)
    : denyResponse(review.uid, { code: decision.code, reason: decision.reason, message: decision.message }, decision.warnings);
  sendJson(res, 200, body);
  record(ctx, endpoint, review, subjectOf(review), decision, Number(process.hrtime.bigint() - started) / 1e9);
}

function record(ctx: AppContext, endpoint: Endpoint, review: AdmissionRequest, subject: Subject, decision: Decision, seconds: number): void {
  const outcome = decision.allowed ? (decision.patch.length > 0 ? 'patched' : 'allowed') : `denied:${decision.cause}`;
  const labels = { endpoint, subject, operation: review.operation };
  ctx.metrics.admissionDuration.observe({ ...labels, allowed: String(decision.allowed) }, seconds);
  ctx.metrics.admissions.inc({ ...labels, outcome, dry_run: String(review.dryRun) });
  if (subject === Subject.NodeInfo && endpoint === Endpoint.Mutate && outcome === 'patched') ctx.metrics.stampsSigned.inc();
  if (subject === Subject.Other) return;
  // Identities and field names only: object contents (keys!) are never logged. All of it is
  // the caller's text, so it is bounded and escaped.
  ctx.logger.info({
    uid: safeText(review.uid, LOGGED_CHARS),
    endpoint,
    subject,
    operation: review.operation,
    namespace: safeText(review.namespace, LOGGED_CHARS),
    name: safeText(review.name, LOGGED_CHARS),
    user: safeText(review.userInfo.username, LOGGED_CHARS),
    dryRun: review.dryRun,
    outcome,
    ...(decision.allowed ? {} : { fields: loggedFields(decision.fields) }),
    ms: Math.round(seconds * 1e5) / 100,
  }, 'admission');
}

/** Longest piece of request text (a name, a user, a field path) in a log line. */
const LOGGED_CHARS = 256;

function loggedFields(fields: readonly string[]): string[] {
  return fields.slice(0, MAX_LISTED_ERRORS).map((f) => safeText(f, LOGGED_CHARS));
}

/** The API server appends `?timeout=<n>s`; keep 20 % for the trip back. */
export function budgetMs(timeout: unknown): number {
  const m = typeof timeout === 'string' ? /^(\d{1,3})s$/.exec(timeout) : null;
  const seconds = m?.[1] !== undefined ? Number(m[1]) : undefined;
  return seconds !== undefined && seconds > 0 ? Math.min(seconds, 30) * 800 : DEFAULT_BUDGET_MS;
}

/**
 * With --client-ca, only a caller whose certificate the TLS layer verified against it (the API
 * server, per its AdmissionConfiguration) may ask for a decision; checked before the body is
 * read, so an unauthenticated caller costs nothing but the handshake.
 */
function authenticateCaller(ctx: AppContext) {
  const names = new Set(ctx.clientNames ?? []);
  const required = 'a client certificate signed by the --client-ca is required (the API server\'s AdmissionConfiguration kubeConfigFile)';
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!ctx.requireClientCertificate) {
      next();
      return;
    }
    const socket = req.socket as TLSSocket;
    const cert = socket.getPeerCertificate();
    if (!socket.authorized) {
      ctx.metrics.badRequests.inc({ reason: 'unauthenticated' });
      const why = Object.keys(cert).length === 0
        ? 'none was presented'
        : `the client certificate does not verify against the --client-ca (${safeText(String(socket.authorizationError), 80)})`;
      sendStatus(res, 401, 'Unauthorized', `${required}; ${why}`);
      return;
    }
    const presented = certificateNames(cert);
    if (names.size > 0 && !presented.some((n) => names.has(n))) {
      ctx.metrics.badRequests.inc({ reason: 'unauthorized-client' });
      sendStatus(res, 403, 'Forbidden', `the client certificate is for "${safeText(presented[0] ?? '', 128)}", not one of --client-name ${[...names].join(', ')}`);
      return;
    }
    next();
  };
}

/** The subject CN, then the DNS names, of a verified peer certificate. */
function certificateNames(cert: PeerCertificate): string[] {
  const cn = (cert.subject as Record<string, string | string[] | undefined> | undefined)?.CN;
  const dns = (cert.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4));
  return [...(Array.isArray(cn) ? cn : cn === undefined ? [] : [cn]), ...dns];
}

/**
 * application/json, in UTF-8 (RFC 8259 §8.1). The body parser alone would also decode other
 * charsets (utf-16, utf-7): a body that means something else to another reader is refused.
 */
function requireJsonContentType(ctx: AppContext) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const [media, ...params] = (req.headers['content-type'] ?? '').split(';');
    const type = media?.trim().toLowerCase();
    const charset = params.map((p) => /^\s*charset\s*=\s*"?([^"]*)"?\s*$/i.exec(p)?.[1]).find((c) => c !== undefined)?.toLowerCase();
    if (type === 'application/json' && (charset === undefined || charset === 'utf-8')) {
      next();
      return;
    }
    ctx.metrics.badRequests.inc({ reason: type === 'application/json' ? 'charset' : 'content-type' });
    sendStatus(res, 415, 'UnsupportedMediaType', type === 'application/json'
      ? `charset must be utf-8, got "${safeText(charset ?? '', 64)}"`
      : `Content-Type must be application/json, got ${type ? `"${safeText(type, 64)}"` : 'none'}`);
  };
}

function methodNotAllowed(allowed: string) {
  return (req: Request, res: Response): void => {
    res.setHeader('Allow', allowed);
    sendStatus(res, 405, 'MethodNotAllowed', `${req.method} is not allowed on ${safeText(req.path, 128)}; use ${allowed}`);
  };
}

function bodyErrorHandler(ctx: AppContext, err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(err);
    return;
  }
  const type = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
  const known: Record<string, [number, string, string]> = {
    'entity.too.large': [413, 'RequestEntityTooLarge', `body exceeds ${ctx.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES} bytes`],
    'entity.parse.failed': [400, 'BadRequest', 'body is not valid JSON'],
    'encoding.unsupported': [415, 'UnsupportedMediaType', 'unsupported Content-Encoding'],
    'charset.unsupported': [415, 'UnsupportedMediaType', 'charset must be utf-8'],
    'request.aborted': [400, 'BadRequest', 'request aborted'],
    'request.size.invalid': [400, 'BadRequest', 'body length does not match Content-Length'],
  };
  const hit = typeof type === 'string' ? known[type] : undefined;
  if (hit) {
    ctx.metrics.badRequests.inc({ reason: type as string });
    sendStatus(res, hit[0], hit[1], hit[2]);
    return;
  }
  ctx.logger.error({ err: errorSummary(err) }, 'unexpected error serving a request');
  sendStatus(res, 500, 'InternalError', 'internal error in the kmesh-ipsec webhook');
}

/** A metav1.Status, the error shape every Kubernetes client understands. */
function sendStatus(res: Response, code: number, reason: string, message: string): void {
  sendJson(res, code, { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message });
}

/**
 * The answer as one string, with its length: cheaper than express's res.json, which builds a
 * Buffer and its own headers first (bench:webhook, CPU per request). No ETag, as before.
 */
function sendJson(res: Response, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
}

function errorSummary(err: unknown): { name: string; message: string; stack?: string } {
  if (err instanceof Error) return { name: safeText(err.name, 64), message: safeText(err.message, 500), ...(err.stack ? { stack: safeText(err.stack, 4000) } : {}) };
  return { name: 'NonError', message: safeText(String(err), 500) };
}
