/**
 * The node plugin's endpoint on a real HTTP server (port 0 on loopback), driven with node:http
 * so methods, bodies and HEAD are sent exactly as written.
 */
import test from 'ava';
import { request } from 'node:http';
import { Counter, Registry } from 'prom-client';
import { type HttpSources, type ListeningEndpoint, listenEndpoint } from '../../../nodeplugin/daemon/http.js';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function call(url: string, method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers: { connection: 'close', ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }); });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function sources(overrides: Partial<HttpSources> = {}): HttpSources {
  const registry = new Registry();
  new Counter({ name: 'kmesh_ipsec_node_test_total', help: 'test', registers: [registry] }).inc(3);
  return {
    registry,
    healthy: () => ({ ok: true }),
    ready: () => ({ ok: true }),
    status: () => Promise.resolve({ node: 'node-1', peers: [] }),
    ...overrides,
  };
}

async function withEndpoint(s: HttpSources, fn: (e: ListeningEndpoint) => Promise<void> | void, host = '127.0.0.1'): Promise<void> {
  const endpoint = await listenEndpoint(host, 0, s);
  try {
    await fn(endpoint);
  } finally {
    await endpoint.close();
  }
}

test('GET /metrics, /healthz, /readyz and /status answer 200 with no-store', async (t) => {
  const s = sources();
  await withEndpoint(s, async ({ url }) => {
    t.regex(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const metrics = await call(url, 'GET', '/metrics');
    t.is(metrics.status, 200);
    t.is(metrics.headers['content-type'], s.registry.contentType);
    t.regex(metrics.body, /^kmesh_ipsec_node_test_total 3$/m);
    for (const path of ['/healthz', '/readyz']) t.like(await call(url, 'GET', path), { status: 200, body: 'ok\n' });
    const status = await call(url, 'GET', '/status?verbose=1');
    t.is(status.status, 200);
    t.is(status.headers['content-type'], 'application/json');
    t.deepEqual(JSON.parse(status.body), { node: 'node-1', peers: [] });
    t.is(status.headers['cache-control'], 'no-store');
    t.is(status.headers['content-length'], String(Buffer.byteLength(status.body)));
  });
});

test('/readyz and /healthz answer 503 with the reason, or a default', async (t) => {
  await withEndpoint(sources({ ready: () => ({ ok: false, reason: 'waiting for the KmeshNodeInfo cache' }), healthy: () => ({ ok: false }) }), async ({ url }) => {
    t.like(await call(url, 'GET', '/readyz'), { status: 503, body: 'waiting for the KmeshNodeInfo cache\n' });
    t.like(await call(url, 'GET', '/healthz'), { status: 503, body: 'not ready\n' });
  });
});

test('HEAD answers the headers of GET without a body', async (t) => {
  await withEndpoint(sources(), async ({ url }) => {
    const head = await call(url, 'HEAD', '/status');
    t.is(head.status, 200);
    t.is(head.body, '');
    t.true(Number(head.headers['content-length']) > 0);
    t.like(await call(url, 'HEAD', '/nope'), { status: 404, body: '' });
  });
});

test('other methods are 405 with Allow, request bodies 413, other paths 404', async (t) => {
  let statusCalls = 0;
  await withEndpoint(sources({ status: () => { statusCalls++; return Promise.resolve({}); } }), async ({ url }) => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await call(url, method, '/status', { body: '{}' });
      t.is(r.status, 405, method);
      t.is(r.headers.allow, 'GET, HEAD');
    }
    t.like(await call(url, 'GET', '/status', { body: 'hello', headers: { 'content-length': '5' } }), { status: 413, body: 'no request body expected\n' });
    t.like(await call(url, 'GET', '/status', { headers: { 'content-length': '0' } }), { status: 200 });
    const missing = await call(url, 'GET', '/status/../secret');
    t.is(missing.status, 404);
    t.regex(missing.body, /try \/metrics, \/healthz, \/readyz or \/status/);
    t.is((await call(url, 'GET', '/')).status, 404);
  });
  t.is(statusCalls, 1, 'only the one accepted GET /status reached the source');
});

test('a failing source is a 500 without details', async (t) => {
  await withEndpoint(sources({ status: () => Promise.reject(new Error('secret detail')) }), async ({ url }) => {
    t.like(await call(url, 'GET', '/status'), { status: 500, body: 'internal error\n' });
    t.like(await call(url, 'GET', '/healthz'), { status: 200 }, 'the server keeps serving');
  });
});

test('the server bounds request time, headers and keep-alive', async (t) => {
  await withEndpoint(sources(), ({ server }) => {
    t.is(server.requestTimeout, 10_000);
    t.is(server.headersTimeout, 5_000);
    t.is(server.keepAliveTimeout, 5_000);
    t.is(server.maxHeadersCount, 50);
    t.is(server.maxRequestsPerSocket, 100);
  });
});

test('an IPv6 listener shows its address in brackets', async (t) => {
  await withEndpoint(sources(), async ({ url }) => {
    t.regex(url, /^http:\/\/\[::1\]:\d+$/);
    t.is((await call(url, 'GET', '/healthz')).status, 200);
  }, '::1');
});

test('a port in use is an error from listenEndpoint; close() frees the port', async (t) => {
  const first = await listenEndpoint('127.0.0.1', 0, sources());
  const port = Number(new URL(first.url).port);
  await t.throwsAsync(listenEndpoint('127.0.0.1', port, sources()), { code: 'EADDRINUSE' });
  await first.close();
  await t.throwsAsync(call(first.url, 'GET', '/healthz'), { code: 'ECONNREFUSED' });
  const again = await listenEndpoint('127.0.0.1', port, sources());
  t.is(again.url, first.url);
  await again.close();
});
