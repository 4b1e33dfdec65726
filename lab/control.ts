/**
 * Small JSON-over-HTTP control channels on unix sockets, for the lab's own processes (the API
 * process, pod agents). A unix socket in the lab directory (mode 0600, root's) is reachable from
 * every network namespace and only by whoever may read the lab directory; nothing listens on
 * the network.
 */
import { chmodSync, rmSync } from 'node:fs';
import { type IncomingMessage, type Server, createServer, request } from 'node:http';

/** Answers a request: a JSON-serializable value, or throw ControlError for a client error. */
export type ControlHandler = (body: unknown, params: readonly string[]) => unknown;

export class ControlError extends Error {
  override readonly name = 'ControlError';
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

/** Routes: "METHOD /path/:param/..." -> handler. */
export type ControlRoutes = Readonly<Record<string, ControlHandler>>;

const MAX_BODY = 1 << 20;

export async function serveControl(socketPath: string, routes: ControlRoutes): Promise<Server> {
  const table = Object.entries(routes).map(([route, handler]) => {
    const [method = '', path = ''] = route.split(' ');
    return { method, parts: path.split('/'), handler };
  });
  const server = createServer((req, res) => {
    const reply = (status: number, value: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(`${JSON.stringify(value)}\n`);
    };
    void (async () => {
      try {
        const parts = (req.url ?? '').split('?')[0]?.split('/') ?? [];
        const params: string[] = [];
        const route = table.find((r) => r.method === req.method && r.parts.length === parts.length && r.parts.every((p, i) => {
          if (!p.startsWith(':')) return p === parts[i];
          params.push(decodeURIComponent(parts[i] ?? ''));
          return true;
        }));
        if (route === undefined) throw new ControlError(`no such control call: ${req.method ?? ''} ${req.url ?? ''}`, 404);
        reply(200, (await route.handler(await readJson(req), params)) ?? {});
      } catch (err: unknown) {
        reply(err instanceof ControlError ? err.status : 500, { error: err instanceof Error ? err.message : String(err) });
      }
    })();
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  return server;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ControlError(`request body over ${MAX_BODY} bytes`, 413);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ControlError('request body: not JSON');
  }
}

/** Calls a control channel; resolves with the answer, rejects with the server's error text. */
export function callControl<T>(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: timeoutMs, headers: { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let value: unknown;
        try {
          value = JSON.parse(text) as unknown;
        } catch {
          reject(new Error(`${method} ${path}: not JSON (HTTP ${String(res.statusCode)})`));
          return;
        }
        if (res.statusCode === 200) resolve(value as T);
        else reject(new Error((value as { error?: string }).error ?? `${method} ${path}: HTTP ${String(res.statusCode)}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
