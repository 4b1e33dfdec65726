/**
 * Admission latency of the webhook, as a ratio to a baseline measured in the same run: an HTTPS
 * echo endpoint on the same stack (Node https, the same TLS options, express, express.json,
 * the same keep-alive settings) that does nothing with the body. The ratio is what our code
 * costs on top of the transport; absolute numbers depend on the machine.
 *
 *   node dist/bench/webhook-latency.js [requests=2000]
 *
 * Requests go one at a time over one keep-alive connection (latency, not throughput). The
 * cluster view is in memory: in a cluster, KmeshNodeInfo writes add one Node GET.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, type Server, createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { pino } from 'pino';
import { generateDevPki, writeDevPki } from '../certs/dev-pki.js';
import { generateStampKey } from '../certs/stamp-keygen.js';
import { StaticClusterView } from '../webhook/cluster-view.js';
import { identityPolicy } from '../webhook/identity.js';
import { runWebhook } from '../webhook/runtime.js';
import { KEEP_ALIVE_TIMEOUT_MS } from '../webhook/server.js';
import { secureContextOptions } from '../webhook/serving-cert.js';

const N = Number(process.argv[2] ?? 2000);
const WARMUP = 300;

const key = randomBytes(36);
const ipsec = (spi: number, aeadKey: string): string =>
  Buffer.from(JSON.stringify({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey, length: 128 })).toString('base64');
const secret = (data: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kmesh-ipsec', namespace: 'kmesh-system' }, type: 'Opaque', data: { ipSec: data } });
const spec = { spi: 4, addresses: ['10.0.0.1'], bootID: '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b', podCIDRS: ['10.244.1.0/24'] };
const kni = (annotations?: Record<string, string>) => ({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'node-a', namespace: 'kmesh-system', ...(annotations ? { annotations } : {}) }, spec });

function review(kind: object, object: object, userInfo: object, name: string): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: '00000000-0000-0000-0000-000000000000', kind, name, namespace: 'kmesh-system', operation: 'CREATE', userInfo, object, oldObject: null, dryRun: false },
  });
}

const admin = { username: 'bench', groups: ['system:masters'] };
const agentUser = { username: 'system:serviceaccount:kmesh-system:kmesh-ipsec-node', extra: { 'authentication.kubernetes.io/node-name': ['node-a'] } };
const secretKind = { group: '', version: 'v1', kind: 'Secret' };
const kniKind = { group: 'kmesh.net', version: 'v1alpha1', kind: 'KmeshNodeInfo' };

function post(base: string, path: string, body: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
        else resolve(Buffer.concat(chunks).toString());
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function measure(base: string, path: string, body: string, agent: Agent, check: (text: string) => boolean): Promise<{ sorted: number[]; responseBytes: number }> {
  for (let i = 0; i < WARMUP; i++) await post(base, path, body, agent);
  const samples: number[] = [];
  let responseBytes = 0;
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    const text = await post(base, path, body, agent);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (i === 0 && !check(text)) throw new Error(`unexpected answer on ${path}: ${text.slice(0, 200)}`);
    responseBytes = text.length;
  }
  return { sorted: samples.sort((a, b) => a - b), responseBytes };
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-bench-'));
  const pki = generateDevPki({ service: 'kmesh-ipsec-webhook', namespace: 'kmesh-system', ipAddresses: ['127.0.0.1'] });
  const tls = await writeDevPki(join(dir, 'tls'), pki);
  const stamp = await generateStampKey();
  await writeFile(join(dir, 'stamp.jwk'), JSON.stringify(stamp.privateJwk));
  const view = new StaticClusterView({ nodes: [{ name: 'node-a', internalIPs: ['10.0.0.1'], podCIDRs: ['10.244.1.0/24'] }], nodeInfos: [{ name: 'node-b', spi: 3, addresses: ['10.0.0.2'], podCIDRS: ['10.244.2.0/24'] }] });
  const webhook = await runWebhook(
    { host: '127.0.0.1', port: 0, certFile: tls.tlsCert, keyFile: tls.tlsKey, stampKeyFile: join(dir, 'stamp.jwk'), identity: identityPolicy(), checkNodeFacts: true },
    { view },
    pino({ level: 'silent' }),
    { processMetrics: false },
  );

  // The baseline: same TLS options, same framework and body parser, same keep-alive; echoes.
  const app = express();
  app.post('/echo', express.json({ limit: 4 * 1024 * 1024, type: () => true }), (req, res) => {
    res.json(req.body);
  });
  const baseline: Server = createServer(secureContextOptions({ cert: Buffer.from(pki.serving.certPem), key: Buffer.from(pki.serving.keyPem) }), app);
  baseline.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  await new Promise<void>((r) => baseline.listen(0, '127.0.0.1', r));
  const baselineUrl = `https://127.0.0.1:${(baseline.address() as AddressInfo).port}`;

  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.certPem });
  const hexSecret = review(secretKind, secret(ipsec(4, key.toString('hex'))), admin, 'kmesh-ipsec');
  const canonicalSecret = review(secretKind, secret(ipsec(4, key.toString('base64'))), admin, 'kmesh-ipsec');
  const allowed = (text: string): boolean => (JSON.parse(text) as { response: { allowed: boolean } }).response.allowed;
  const patched = (text: string): boolean => typeof (JSON.parse(text) as { response: { patch?: string } }).response.patch === 'string';

  // A stamped object for the KNI validate case.
  const stampedOnce = JSON.parse(await post(webhook.server.url, '/mutate', review(kniKind, kni(), agentUser, 'node-a'), agent)) as { response: { patch: string } };
  const [op] = JSON.parse(Buffer.from(stampedOnce.response.patch, 'base64').toString()) as { value: Record<string, string> }[];
  const stamped = review(kniKind, kni(op?.value), agentUser, 'node-a');

  const cases: [string, string, string, string, (t: string) => boolean][] = [
    ['baseline: HTTPS echo, same stack', baselineUrl, '/echo', canonicalSecret, () => true],
    ['Secret validate (CREATE, SPI check)', webhook.server.url, '/validate', canonicalSecret, allowed],
    ['Secret mutate (hex key -> patch)', webhook.server.url, '/mutate', hexSecret, patched],
    ['KmeshNodeInfo mutate (sign Ed25519 stamp)', webhook.server.url, '/mutate', review(kniKind, kni(), agentUser, 'node-a'), patched],
    ['KmeshNodeInfo validate (verify stamp)', webhook.server.url, '/validate', stamped, allowed],
  ];
  const rows: { name: string; p50: number; p99: number; bytes: string }[] = [];
  for (const [name, base, path, body, check] of cases) {
    const { sorted, responseBytes } = await measure(base, path, body, agent, check);
    rows.push({ name, p50: pct(sorted, 50), p99: pct(sorted, 99), bytes: `${body.length}/${responseBytes}` });
  }
  const [base] = rows;
  if (!base) throw new Error('no baseline');
  console.log(`webhook latency, ${N} sequential requests per case over one keep-alive TLS connection (after ${WARMUP} warm-up)`);
  console.log(`${'case'.padEnd(44)} ${'req/resp B'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'p50 ratio'.padStart(10)} ${'p99 ratio'.padStart(10)}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(44)} ${r.bytes.padStart(10)} ${r.p50.toFixed(3).padStart(8)} ${r.p99.toFixed(3).padStart(8)} ${(r.p50 / base.p50).toFixed(2).padStart(10)} ${(r.p99 / base.p99).toFixed(2).padStart(10)}`);
  }
  console.log('(the echo sends the whole request back, so a cheap handler with a short answer can beat it)');

  agent.destroy();
  await new Promise<void>((r) => {
    baseline.close(() => {
      r();
    });
    baseline.closeAllConnections();
  });
  await webhook.close(500);
  await rm(dir, { recursive: true, force: true });
}

await main();
