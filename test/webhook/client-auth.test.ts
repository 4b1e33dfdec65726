/**
 * Authenticating the API server, as Kubernetes documents it for webhooks: the API server
 * presents a client certificate (AdmissionConfiguration kubeConfigFile), the webhook is given
 * the CA (--client-ca) and refuses admission calls without a valid one. Over real TLS, with and
 * without a certificate, from the right CA and another, before and after the CA file changes.
 */
import test from 'ava';
import { rename, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertificateAuthority, issueClientCertificate } from '../../certs/dev-pki.js';
import { type TestWebhook, httpsCall, ipsecSecret, ipsecValue, kni, kniReview, kniSpec, NODE_A, responseOf, secretReview, startWebhook } from './helpers.js';

const apiServerCa = createCertificateAuthority({ commonName: 'kmesh-ipsec-apiserver-client-ca' });
const apiServer = issueClientCertificate(apiServerCa, { commonName: 'kmesh-ipsec-apiserver' });
const otherCa = createCertificateAuthority({ commonName: 'someone-else' });
const stranger = issueClientCertificate(otherCa, { commonName: 'kmesh-ipsec-apiserver' });
const wrongName = issueClientCertificate(apiServerCa, { commonName: 'system:node:node-a' });

let open: TestWebhook;
let guarded: TestWebhook;
let named: TestWebhook;
let reloading: TestWebhook;
test.before(async () => {
  [open, guarded, named, reloading] = await Promise.all([
    startWebhook(),
    startWebhook({ clientCaPem: apiServerCa.certPem }),
    startWebhook({ clientCaPem: apiServerCa.certPem, clientNames: ['kmesh-ipsec-apiserver'] }),
    startWebhook({ clientCaPem: apiServerCa.certPem, filePollIntervalMs: 200 }),
  ]);
});
test.after.always(async () => {
  await Promise.all([open.close(), guarded.close(), named.close(), reloading.close()]);
});

/** A fresh connection each call, presenting `client` (or nothing). */
function call(hook: TestWebhook, path: string, body: unknown, client?: { certPem: string; keyPem: string }, method = 'POST', raw?: string) {
  const agent = new Agent({ ca: hook.pki.ca.certPem, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) });
  return httpsCall(hook.url, path, body, agent, { method, ...(raw === undefined ? {} : { raw }) }).finally(() => {
    agent.destroy();
  });
}

const review = () => secretReview({ object: ipsecSecret(ipsecValue(4)) });
const forged = () => kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: { username: 'system:serviceaccount:kmesh-system:kmesh-ipsec-node', extra: { 'authentication.kubernetes.io/node-name': ['node-a'] } } });

test('without --client-ca anyone who reaches the port gets a stamp for the user it claims to be', async (t) => {
  const r = responseOf(await call(open, '/mutate', forged()));
  t.true(r.allowed);
  t.truthy(r.patch, 'stamped: this is what --client-ca closes');
});

test('with --client-ca, an admission call without a client certificate is refused with 401, before its body is read', async (t) => {
  for (const path of ['/mutate', '/validate']) {
    const r = await call(guarded, path, forged());
    t.is(r.status, 401, path);
    t.like(r.json, { kind: 'Status', code: 401, reason: 'Unauthorized' });
    t.regex((r.json as { message: string }).message, /a client certificate signed by the --client-ca is required \(the API server's AdmissionConfiguration kubeConfigFile\); none was presented/);
  }
  t.is((await call(guarded, '/validate', undefined, undefined, 'POST', '{not JSON')).status, 401, 'not 400: the body was never parsed');
  const metrics = await call(guarded, '/metrics', undefined, undefined, 'GET');
  t.regex(metrics.text, /kmesh_ipsec_webhook_bad_requests_total\{reason="unauthenticated"\} [1-9]/);
});

test('with --client-ca, the API server\'s certificate is accepted', async (t) => {
  t.true(responseOf(await call(guarded, '/validate', review(), apiServer)).allowed);
  t.truthy(responseOf(await call(guarded, '/mutate', forged(), apiServer)).patch);
});

test('with --client-ca, a certificate from another CA is refused, saying why', async (t) => {
  const r = await call(guarded, '/validate', review(), stranger);
  t.is(r.status, 401);
  t.regex((r.json as { message: string }).message, /the client certificate does not verify against the --client-ca \([A-Z_]+\)$/);
});

test('health and readiness stay reachable without a certificate (kubelet probes present none)', async (t) => {
  t.is((await call(guarded, '/healthz', undefined, undefined, 'GET')).status, 200);
  t.is((await call(guarded, '/readyz', undefined, undefined, 'GET')).status, 200);
});

test('--client-name: a certificate of the right CA but for another name is refused with 403', async (t) => {
  t.true(responseOf(await call(named, '/validate', review(), apiServer)).allowed);
  const r = await call(named, '/validate', review(), wrongName);
  t.is(r.status, 403);
  t.regex((r.json as { message: string }).message, /the client certificate is for "system:node:node-a", not one of --client-name kmesh-ipsec-apiserver/);
});

test('the client CA file is re-read when it changes: a new CA replaces the old one for new connections', async (t) => {
  const nextCa = createCertificateAuthority({ commonName: 'kmesh-ipsec-apiserver-client-ca-2' });
  const nextClient = issueClientCertificate(nextCa, { commonName: 'kmesh-ipsec-apiserver' });
  t.is((await call(reloading, '/validate', review(), nextClient)).status, 401);
  const file = join(reloading.dir, 'client-ca.crt');
  await writeFile(`${file}.tmp`, 'not a certificate');
  await rename(`${file}.tmp`, file);
  await sleep(600);
  t.true(responseOf(await call(reloading, '/validate', review(), apiServer)).allowed, 'a broken CA file is refused; the old CA stays');
  await writeFile(`${file}.tmp`, nextCa.certPem);
  await rename(`${file}.tmp`, file);
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    await sleep(100);
    status = (await call(reloading, '/validate', review(), nextClient)).status;
  }
  t.is(status, 200);
  t.is((await call(reloading, '/validate', review(), apiServer)).status, 401, 'the old CA no longer vouches');
});
