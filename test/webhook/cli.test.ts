/**
 * The CLI pieces of the webhook, run as a user runs them (the built binary in a child process):
 * `certs`, `webhook keygen`, and `webhook` itself. Serial: each child is a full Node start-up,
 * and a dozen at once on a small machine only measures the scheduler.
 */
import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importStampJwks, importStampSigningKey } from '../../core/stamp.js';
import { runCommand, type CommandResult } from '../../nodeplugin/command.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { type HttpResult, httpsCall } from './helpers.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'main.js');
function cli(args: string[]): Promise<CommandResult> {
  return runCommand([process.execPath, CLI, ...args], { allowFailure: true });
}

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kmesh-cli-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test.serial('certs: CA + serving certificate with the Service names; caBundle alone on stdout', async (t) => {
  const out = join(dir, 'pki');
  const r = await cli(['certs', '--out', out, '--service', 'kmesh-ipsec-webhook', '--namespace', 'kmesh-system']);
  t.is(r.code, 0, r.stderr);
  const caPem = await readFile(join(out, 'ca.crt'), 'utf8');
  t.is(r.stdout, `${Buffer.from(caPem).toString('base64')}\n`, 'stdout is exactly the caBundle');
  t.regex(r.stderr, /caBundle/);

  const leaf = new X509Certificate(await readFile(join(out, 'tls.crt')));
  const ca = new X509Certificate(caPem);
  t.true(leaf.verify(ca.publicKey), 'signed by the CA');
  t.true(ca.ca);
  t.false(leaf.ca);
  t.is(leaf.subjectAltName, 'DNS:kmesh-ipsec-webhook, DNS:kmesh-ipsec-webhook.kmesh-system, DNS:kmesh-ipsec-webhook.kmesh-system.svc, DNS:kmesh-ipsec-webhook.kmesh-system.svc.cluster.local');
  t.is(leaf.checkHost('kmesh-ipsec-webhook.kmesh-system.svc'), 'kmesh-ipsec-webhook.kmesh-system.svc');
  t.regex(leaf.subject, /CN=kmesh-ipsec-webhook\.kmesh-system\.svc/);
  t.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only');
  t.true(new Date(leaf.validTo).getTime() - Date.now() > 89 * 86_400_000);
  t.is((await stat(join(out, 'tls.key'))).mode & 0o777, 0o600);
  t.is((await stat(join(out, 'ca.crt'))).mode & 0o777, 0o644);
  await t.throwsAsync(stat(join(out, 'ca.key')), undefined, 'the CA key is not kept unless asked');
  t.false(r.stdout.includes('PRIVATE') || r.stderr.includes('PRIVATE'));
});

test.serial('certs: re-issuing from a kept CA leaves caBundle unchanged', async (t) => {
  const first = join(dir, 'pki-a');
  const a = await cli(['certs', '--out', first, '--write-ca-key', '--ip', '127.0.0.1']);
  t.is(a.code, 0, a.stderr);
  t.is((await stat(join(first, 'ca.key'))).mode & 0o777, 0o600);
  const second = join(dir, 'pki-b');
  const b = await cli(['certs', '--out', second, '--ca-cert', join(first, 'ca.crt'), '--ca-key', join(first, 'ca.key'), '--days', '7']);
  t.is(b.code, 0, b.stderr);
  t.is(b.stdout, a.stdout, 'same caBundle');
  t.not(await readFile(join(second, 'tls.crt'), 'utf8'), await readFile(join(first, 'tls.crt'), 'utf8'));
  t.regex(new X509Certificate(await readFile(join(first, 'tls.crt'))).subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
});

test.serial('certs: bad flags are usage errors with one clear line', async (t) => {
  const r1 = await cli(['certs', '--out', join(dir, 'x'), '--days', 'ten']);
  t.is(r1.code, 2);
  t.is(r1.stderr, 'kmesh-ipsec: --days: must be a positive whole number, got "ten" (see kmesh-ipsec certs --help)\n');
  const r2 = await cli(['certs', '--out', join(dir, 'x'), '--ip', 'localhost']);
  t.is(r2.code, 2);
  t.regex(r2.stderr, /--ip: "localhost" is not an IP address/);
  const r3 = await cli(['certs', '--out', join(dir, 'x'), '--ca-cert', 'a.crt']);
  t.regex(r3.stderr, /--ca-cert and --ca-key go together/);
});

test.serial('webhook keygen: private JWK 0600, public JWKS, kid on stdout; extending keeps old keys', async (t) => {
  const out = join(dir, 'keys');
  const a = await cli(['webhook', 'keygen', '--out', out]);
  t.is(a.code, 0, a.stderr);
  const kid1 = a.stdout.trim();
  t.regex(kid1, /^[A-Za-z0-9_-]{43}$/);
  t.is((await stat(join(out, 'stamp-key.jwk'))).mode & 0o777, 0o600);
  const key = await importStampSigningKey(JSON.parse(await readFile(join(out, 'stamp-key.jwk'), 'utf8')));
  t.true(key.ok);
  if (key.ok) t.is(key.value.kid, kid1);
  t.false(a.stdout.includes('"d"') || a.stderr.includes('"d"'), 'no private key on the terminal');

  const out2 = join(dir, 'keys2');
  const b = await cli(['webhook', 'keygen', '--out', out2, '--jwks', join(out, 'stamp-jwks.json'), '--alg', 'ES256']);
  t.is(b.code, 0, b.stderr);
  const jwks = JSON.parse(await readFile(join(out2, 'stamp-jwks.json'), 'utf8')) as { keys: { kid: string; alg: string }[] };
  t.deepEqual(jwks.keys.map((k) => k.kid), [b.stdout.trim(), kid1]);
  t.deepEqual(jwks.keys.map((k) => k.alg), ['ES256', 'EdDSA']);
  t.true((await importStampJwks(jwks)).ok);

  await writeFile(join(dir, 'broken.json'), JSON.stringify({ keys: [JSON.parse(await readFile(join(out, 'stamp-key.jwk'), 'utf8')) as unknown] }));
  const c = await cli(['webhook', 'keygen', '--out', join(dir, 'keys3'), '--jwks', join(dir, 'broken.json')]);
  t.is(c.code, 1);
  t.regex(c.stderr, /contains private key material/);
  t.is((await cli(['webhook', 'keygen', '--out', out, '--alg', 'RS256'])).code, 2);
});

test.serial('webhook: serves, is live but not ready without an API server, and drains on SIGTERM', async (t) => {
  const pki = join(dir, 'serve-pki');
  const keys = join(dir, 'serve-keys');
  t.is((await cli(['certs', '--out', pki, '--ip', '127.0.0.1'])).code, 0);
  t.is((await cli(['webhook', 'keygen', '--out', keys])).code, 0);
  // A kubeconfig whose API server is not there: the cache can never sync.
  const dead = await freePort();
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${dead}"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`);
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [CLI, '--kubeconfig', kubeconfig, 'webhook', '--host', '127.0.0.1', '--port', String(port), '--tls-cert', join(pki, 'tls.crt'), '--tls-key', join(pki, 'tls.key'), '--stamp-key', join(keys, 'stamp-key.jwk'), '--stamp-jwks', join(keys, 'stamp-jwks.json'), '--log-level', 'trace', '--shutdown-delay', '1s']);
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const agent = new Agent({ ca: await readFile(join(pki, 'ca.crt')) });
  try {
    let health: HttpResult | undefined;
    await eventually(async () => {
      health = await httpsCall(`https://127.0.0.1:${port}`, '/healthz', undefined, agent, { method: 'GET' }).catch(() => undefined);
      return health !== undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    t.is(health?.status, 200);
    const ready = await httpsCall(`https://127.0.0.1:${port}`, '/readyz', undefined, agent, { method: 'GET' });
    t.is(ready.status, 503);
    t.is(ready.text, 'not ready: kmeshnodeinfo-cache\n');
    // SIGTERM: readiness drops at once, but requests are still served during --shutdown-delay.
    child.kill('SIGTERM');
    let draining: HttpResult | undefined;
    await eventually(async () => {
      draining = await httpsCall(`https://127.0.0.1:${port}`, '/readyz', undefined, agent, { method: 'GET' });
      return draining.text.includes('draining');
    }, { timeoutMs: 1000, intervalMs: 25 });
    t.is(draining?.text, 'not ready: draining, kmeshnodeinfo-cache\n');
    t.is((await httpsCall(`https://127.0.0.1:${port}`, '/healthz', undefined, agent, { method: 'GET' })).status, 200);
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
  }
  t.is(await exited, 0);
  // Run at the most verbose level, so that any log line that would carry a key is printed;
  // the info line about the loaded stamp keys shows that lines below warn did reach stdout.
  t.regex(stdout, /"msg":"stamp keys loaded"/);
  const stampKey = JSON.parse(await readFile(join(keys, 'stamp-key.jwk'), 'utf8')) as { d: string };
  t.false(stdout.includes(stampKey.d), 'the private stamp key is not in the logs');
  t.false(stdout.includes('"d":'), 'no private JWK member in the logs');
  t.false(stdout.includes('PRIVATE KEY'), 'no PEM private key in the logs');
});

test.serial('webhook: missing flags are usage errors', async (t) => {
  const r = await cli(['webhook', '--port', '1']);
  t.is(r.code, 2);
  t.is(r.stderr, 'kmesh-ipsec: --tls-cert is required (see kmesh-ipsec webhook --help)\n');
  const d = await cli(['webhook', '--tls-cert', 'a', '--tls-key', 'b', '--stamp-key', 'c', '--stamp-ttl', '1d']);
  t.regex(d.stderr, /--stamp-ttl: must be a duration like 90s, 10m or 24h, got "1d"/);
});
