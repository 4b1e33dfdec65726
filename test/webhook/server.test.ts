/**
 * The HTTPS server around the handlers: health, readiness and metrics endpoints, connection
 * handling tuned for the API server as a client, TLS versions, and hot reload of the stamp keys.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { pino } from 'pino';
import { writeDevPki } from '../../certs/dev-pki.js';
import { addToJwks, generateStampKey } from '../../certs/stamp-keygen.js';
import { StaticClusterView } from '../../webhook/cluster-view.js';
import { MAX_WARNING_CHARS, clampWarning } from '../../webhook/admission-review.js';
import { budgetMs } from '../../webhook/app.js';
import { identityPolicy } from '../../webhook/identity.js';
import { APISERVER_WEBHOOK_BUCKETS } from '../../webhook/metrics.js';
import { runWebhook } from '../../webhook/runtime.js';
import { KEEP_ALIVE_TIMEOUT_MS } from '../../webhook/server.js';
import {
  NODE_A,
  type TestWebhook,
  httpsCall,
  ipsecSecret,
  ipsecValue,
  kni,
  kniReview,
  kniSpec,
  makePki,
  nodeAgent,
  responseOf,
  secretReview,
  startWebhook,
} from './helpers.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../helpers/eventually.js';

const pki = makePki();
let hook: TestWebhook;
test.before(async () => {
  hook = await startWebhook({ pki });
});
test.after.always(async () => {
  await hook.close();
});

const get = (path: string, target = hook) => target.post(path, undefined, { method: 'GET' });

test('healthz and readyz', async (t) => {
  const health = await get('/healthz');
  t.is(health.status, 200);
  t.is(health.text, 'ok\n');
  const ready = await get('/readyz');
  t.is(ready.status, 200);
  t.is((await hook.post('/healthz', {})).status, 405);
});

test('metrics: latency histogram on every API server bucket, plus finer ones', async (t) => {
  responseOf(await hook.post('/validate', secretReview({ object: ipsecSecret(ipsecValue(4)) })));
  const m = await get('/metrics');
  t.is(m.status, 200);
  t.regex(String(m.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  for (const le of [...APISERVER_WEBHOOK_BUCKETS, 0.001, 0.0025, 0.01, 0.05]) {
    t.regex(m.text, new RegExp(`kmesh_ipsec_webhook_admission_duration_seconds_bucket\\{le="${String(le).replace('.', '\\.')}",endpoint="validate",subject="ipsec-secret",operation="CREATE",allowed="true"\\} \\d+`));
  }
  t.regex(m.text, /kmesh_ipsec_webhook_admission_duration_seconds_count\{endpoint="validate",subject="ipsec-secret",operation="CREATE",allowed="true"\} [1-9]/);
  t.regex(m.text, /kmesh_ipsec_webhook_tls_certificate_expiry_timestamp_seconds \d{10}/);
  t.notRegex(m.text, /aeadKey|ipSec/, 'no object content in metrics');
});

test('responses are application/json and do not advertise the framework', async (t) => {
  const r = await hook.post('/validate', secretReview({ object: ipsecSecret(ipsecValue(4)) }));
  t.regex(String(r.headers['content-type']), /^application\/json/);
  t.is(r.headers['x-powered-by'], undefined);
});

test('keep-alive outlives Go\'s 90 s idle timeout, and idle sockets are reused', async (t) => {
  t.true(KEEP_ALIVE_TIMEOUT_MS >= 90_000 + 30_000, 'well past Go\'s IdleConnTimeout');
  t.is(hook.running.server.server?.keepAliveTimeout, KEEP_ALIVE_TIMEOUT_MS);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.certPem });
  try {
    const first = await httpsCall(hook.url, '/healthz', undefined, agent, { method: 'GET' });
    t.is(first.headers['keep-alive'], 'timeout=120');
    const sockets = new Set<unknown>();
    agent.on('free', (socket) => sockets.add(socket));
    // Node's default keep-alive timeout is 5 s: a socket idle for 6 s would be gone.
    await sleep(6000);
    await httpsCall(hook.url, '/healthz', undefined, agent, { method: 'GET' });
    t.is(sockets.size, 1, 'the same socket served the request after 6 s idle');
  } finally {
    agent.destroy();
  }
});

test('TLS 1.2 and 1.3 are accepted, TLS 1.1 is not', async (t) => {
  const handshake = (maxVersion: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'): Promise<string> =>
    new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port: hook.port, ca: pki.ca.certPem, minVersion: 'TLSv1', maxVersion }, () => {
        resolve(s.getProtocol() ?? 'none');
        s.end();
      });
      s.on('error', () => {
        resolve('refused');
      });
    });
  t.is(await handshake('TLSv1.3'), 'TLSv1.3');
  t.is(await handshake('TLSv1.2'), 'TLSv1.2');
  t.is(await handshake('TLSv1.1'), 'refused');
});

test('the apiserver timeout query parameter bounds the work budget', (t) => {
  t.is(budgetMs('10s'), 8000);
  t.is(budgetMs('1s'), 800);
  t.is(budgetMs('300s'), 24_000, 'capped at the 30 s maximum webhook timeout');
  t.is(budgetMs('abc'), 10_000);
  t.is(budgetMs(['1s', '2s']), 10_000);
});

test('warnings are clamped to 120 printable characters', (t) => {
  t.is(clampWarning('a'.repeat(200)).length, MAX_WARNING_CHARS);
  t.true(clampWarning('a'.repeat(200)).endsWith('...'));
  t.is(clampWarning('line\nbreak\u0007é'), 'line?break??');
});

test('uids are echoed for concurrent requests (no cross-talk)', async (t) => {
  const uids = Array.from({ length: 50 }, () => randomUUID());
  const answers = await Promise.all(uids.map((uid) => hook.post('/validate', secretReview({ uid, object: ipsecSecret(ipsecValue(4)) }))));
  t.deepEqual(answers.map((a) => responseOf(a).uid), uids);
});

test('stamp keys rotate on file change: new kid signs, old kid verifies during the overlap, then is gone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-stampkeys-'));
  const tls = await writeDevPki(join(dir, 'tls'), pki);
  const k1 = await generateStampKey();
  const k2 = await generateStampKey();
  const put = async (name: string, value: unknown) => {
    await writeFile(join(dir, `${name}.tmp`), JSON.stringify(value));
    await rename(join(dir, `${name}.tmp`), join(dir, name));
  };
  await put('key.jwk', k1.privateJwk);
  await put('jwks.json', { keys: [k1.publicJwk] });
  const running = await runWebhook(
    { host: '127.0.0.1', port: 0, certFile: tls.tlsCert, keyFile: tls.tlsKey, stampKeyFile: join(dir, 'key.jwk'), stampJwksFile: join(dir, 'jwks.json'), identity: identityPolicy(), checkNodeFacts: true, filePollIntervalMs: 200 },
    { view: new StaticClusterView({ nodes: [NODE_A] }) },
    pino({ level: 'silent' }),
    { processMetrics: false },
  );
  const agent = new Agent({ ca: pki.ca.certPem });
  const call = (path: string, body: unknown) => httpsCall(running.server.url, path, body, agent);
  const stampWith = async () => {
    const r = responseOf(await call('/mutate', kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a') })));
    const ops = JSON.parse(Buffer.from(r.patch ?? '', 'base64').toString()) as { value: Record<string, string> }[];
    return ops[0]?.value['kmesh.net/validity'] ?? '';
  };
  const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
  const validates = async (token: string) => responseOf(await call('/validate', kniReview({ object: kni('node-a', kniSpec(NODE_A), { 'kmesh.net/validity': token }), user: nodeAgent('node-a') }))).allowed;
  try {
    const old = await stampWith();
    t.is(kidOf(old), k1.kid);
    // Step 1-2 of docs/trust-chain.md: publish the new public key next to the old, then sign with the new.
    const overlap = await addToJwks({ keys: [k1.publicJwk] }, k2.publicJwk);
    if (!overlap.ok) return t.fail('jwks');
    await put('jwks.json', overlap.value);
    await put('key.jwk', k2.privateJwk);
    t.true(await eventually(() => running.stamps.current()?.signer.kid === k2.kid, { intervalMs: 100 }), 'the new signing key was loaded');
    t.is(kidOf(await stampWith()), k2.kid);
    t.true(await validates(old), 'a stamp of the old key still validates during the overlap');
    // A broken key file is refused; the current keys stay.
    await writeFile(join(dir, 'key.jwk'), '{"kty":"OKP"');
    await sleep(600);
    t.is(running.stamps.current()?.signer.kid, k2.kid);
    // Step 4: drop the old public key.
    await put('key.jwk', k2.privateJwk);
    await put('jwks.json', { keys: [k2.publicJwk] });
    t.true(await eventually(() => running.stamps.current()?.ring.has(k1.kid) === false, { intervalMs: 100 }), 'the old public key was dropped');
    t.false(await validates(old), 'after the overlap the old key is no longer trusted');
    const metrics = await httpsCall(running.server.url, '/metrics', undefined, agent, { method: 'GET' });
    t.regex(metrics.text, /kmesh_ipsec_webhook_file_reloads_total\{what="stamp-keys",result="failure"\} [1-9]/);
    t.false(metrics.text.includes(String(k2.privateJwk.d)));
  } finally {
    agent.destroy();
    await running.close(500);
    await rm(dir, { recursive: true, force: true });
  }
});

test('close lets an in-flight request finish and then refuses connections', async (t) => {
  const own = await startWebhook({ pki });
  const body = JSON.stringify(secretReview({ object: ipsecSecret(ipsecValue(4)) }));
  const { request } = await import('node:https');
  const answer = new Promise<number>((resolve, reject) => {
    const req = request(new URL('/validate', own.url), { method: 'POST', agent: own.agent, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => {
        resolve(res.statusCode ?? 0);
      });
    });
    req.on('error', reject);
    // Half the body now, the rest after close() has begun: the request is truly in flight.
    req.write(body.slice(0, 100));
    setTimeout(() => {
      closing = own.running.close(2000);
      setTimeout(() => req.end(body.slice(100)), 100);
    }, 200);
  });
  let closing: Promise<void> | undefined;
  t.is(await answer, 200);
  await closing;
  await t.throwsAsync(httpsCall(own.url, '/healthz', undefined, new Agent({ ca: pki.ca.certPem }), { method: 'GET' }));
  own.agent.destroy();
  await rm(own.dir, { recursive: true, force: true });
});

test('the stamp key file is never readable by others', async (t) => {
  const mode = (await import('node:fs/promises')).stat;
  const st = await mode(join(hook.dir, 'stamp-key.jwk'));
  t.is(st.mode & 0o077, 0);
  t.truthy(await readFile(join(hook.dir, 'stamp-key.jwk'), 'utf8'));
});
