/**
 * End to end: the real kubectl binary against the Kubernetes API test double, which calls our
 * webhook exactly as kube-apiserver does (service → caBundle TLS check, mutating before
 * validating, failurePolicy). The webhook runs as the `kmesh-ipsec webhook` binary with its
 * own kubeconfig, so its KmeshNodeInfo informer and Node reads go through the double too.
 *
 * The double ignores matchConditions, so every Secret in kmesh-system reaches the webhook,
 * which must pass the others through.
 */
import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { caBundle, generateDevPki, writeDevPki } from '../../certs/dev-pki.js';
import { generateStampKey } from '../../certs/stamp-keygen.js';
import type { KmeshNodeInfoSpec } from '../../core/nodeinfo.js';
import { importStampJwks, verifyStamp } from '../../core/stamp.js';
import { WebhookNames, loadWebhookConfigurations } from '../../webhook/configurations.js';
import { type KubeDouble, startKubeDouble } from '../kube-double/index.js';
import { kubectl } from '../kube-double/kubectl.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { httpsCall } from './helpers.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'main.js');
const ADMIN = 'cluster-admin';
const WEBHOOK_SA = 'system:serviceaccount:kmesh-system:kmesh-ipsec-webhook';
const NODE_A_PLUGIN = 'system:serviceaccount:kmesh-system:kmesh-ipsec-node';
const KEY1 = randomBytes(36).toString('hex');
const KEY2 = randomBytes(36).toString('hex');
const BOOT = '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b';

const node = (name: string, ip: string, cidr: string) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  spec: { podCIDR: cidr, podCIDRs: [cidr] },
  status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }] },
});

let double: KubeDouble;
let dir: string;
let webhook: ChildProcess;
let webhookExit: Promise<number | null>;
let webhookPort: number;
let jwksPath: string;
let logs = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kmesh-e2e-'));
  double = await startKubeDouble({
    users: {
      'admin-token': { username: ADMIN, groups: ['system:masters', 'system:authenticated'] },
      'webhook-token': { username: WEBHOOK_SA, groups: ['system:serviceaccounts', 'system:authenticated'] },
      'node-a-token': { username: NODE_A_PLUGIN, groups: ['system:serviceaccounts', 'system:authenticated'], extra: { 'authentication.kubernetes.io/node-name': ['node-a'] } },
    },
    namespaces: ['kmesh-system'],
    objects: [
      node('node-a', '10.0.0.1', '10.244.1.0/24'),
      node('node-b', '10.0.0.2', '10.244.2.0/24'),
      // node-b's plugin published SPI 3 before the secret was deleted (Kmesh leaves states installed).
      { apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'node-b', namespace: 'kmesh-system' }, spec: { spi: 3, addresses: ['10.0.0.2'], bootID: BOOT, podCIDRS: ['10.244.2.0/24'] } },
    ],
  });

  const pki = generateDevPki({ service: WebhookNames.service, namespace: 'kmesh-system' });
  const tls = await writeDevPki(join(dir, 'tls'), pki);
  const stamp = await generateStampKey();
  await writeFile(join(dir, 'stamp-key.jwk'), JSON.stringify(stamp.privateJwk), { mode: 0o600 });
  jwksPath = join(dir, 'stamp-jwks.json');
  await writeFile(jwksPath, JSON.stringify({ keys: [stamp.publicJwk] }));

  webhookPort = await freePort();
  webhook = spawn(process.execPath, [
    CLI, '--kubeconfig', double.kubeconfigPath(WEBHOOK_SA), 'webhook',
    '--host', '127.0.0.1', '--port', String(webhookPort), '--tls-cert', tls.tlsCert, '--tls-key', tls.tlsKey,
    '--stamp-key', join(dir, 'stamp-key.jwk'), '--stamp-jwks', jwksPath, '--privileged-group', 'system:masters', '--shutdown-delay', '0s',
  ]);
  webhook.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  webhook.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  webhookExit = new Promise((resolve) => webhook.on('exit', resolve));
  double.mapService({ namespace: 'kmesh-system', name: WebhookNames.service }, { port: webhookPort });

  // Ready = serving and the KmeshNodeInfo informer has listed (through the double).
  const agent = new Agent({ ca: pki.ca.certPem, servername: 'kmesh-ipsec-webhook.kmesh-system.svc' });
  const ready = await eventually(async () => {
    const r = await httpsCall(`https://127.0.0.1:${webhookPort}`, '/readyz', undefined, agent, { method: 'GET' }).catch(() => undefined);
    return r?.status === 200;
  }, { timeoutMs: 15_000, intervalMs: 100 });
  agent.destroy();
  if (!ready) throw new Error(`the webhook did not become ready within 15 s; its log:\n${logs}`);

  // The configurations exactly as manifests/ ships them, with the dev CA as caBundle.
  const configs = (await loadWebhookConfigurations({ caBundle: caBundle(pki.ca) })).map((c) => stringify(c)).join('---\n');
  await writeFile(join(dir, 'webhooks.yaml'), configs);
  const applied = await kubectl(double, ['apply', '-f', join(dir, 'webhooks.yaml')], { user: ADMIN });
  if (applied.code !== 0) throw new Error(`applying the webhook configurations failed: ${applied.stderr}`);
});

test.after.always(async () => {
  if (webhook.exitCode === null) webhook.kill('SIGTERM');
  await webhookExit;
  await double.close();
  await rm(dir, { recursive: true, force: true });
});

const secretYaml = (ipSec: Record<string, unknown>, name = 'kmesh-ipsec', namespace = 'kmesh-system') =>
  stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData: { ipSec: JSON.stringify(ipSec) } });
const kniYaml = (name: string, spec: KmeshNodeInfoSpec) => stringify({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name, namespace: 'kmesh-system' }, spec });
const apply = (yaml: string, user = ADMIN, extra: string[] = []) => kubectl(double, ['apply', '-f', '-', ...extra], { input: yaml, user });
const storedIpsec = () => {
  const s = double.store.get('secrets', 'kmesh-system', 'kmesh-ipsec') as { data?: { ipSec?: string } } | undefined;
  return s?.data?.ipSec === undefined ? undefined : Buffer.from(s.data.ipSec, 'base64').toString('utf8');
};
const canonical = (spi: number, hex: string) => `{"spi":${spi},"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${Buffer.from(hex, 'hex').toString('base64')}","length":128}`;

test.serial('kubectl apply of a malformed secret is denied with our message', async (t) => {
  const r = await apply(secretYaml({ spi: 4, aeadKey: KEY1.slice(1) }));
  t.is(r.code, 1);
  // kubectl renders a 422 without field causes as "The request is invalid: ...".
  t.is(r.stderr.trim(), 'The request is invalid: error when creating "STDIN": admission webhook "secrets.ipsec.kmesh.net" denied the request: Secret kmesh-system/kmesh-ipsec: data.ipSec.aeadKey: must be 72 hex characters (36 bytes); got 71 hex characters');
  t.is(storedIpsec(), undefined);
});

test.serial('kubectl apply of a secret re-using an advertised SPI is denied (kmeshctl would write SPI 1)', async (t) => {
  const r = await apply(secretYaml({ spi: 1, aeadKey: KEY1 }));
  t.is(r.code, 1);
  t.regex(r.stderr, /admission webhook "secrets\.ipsec\.kmesh\.net" denied the request: Secret kmesh-system\/kmesh-ipsec: data\.ipSec\.spi: must be above 3, the highest SPI nodes still advertise \(their states hold the previous key\); use 4/);
});

test.serial('a good secret is stored in canonical form, with warnings saying what changed', async (t) => {
  const r = await apply(secretYaml({ spi: 4, aeadKey: KEY1 }));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /secret\/kmesh-ipsec created/);
  t.regex(r.stderr, /Warning: data\.ipSec\.aeadKey: stored as base64 \(the form Kmesh reads\) instead of the 72 hex characters given/);
  t.regex(r.stderr, /Warning: data\.ipSec: defaulted aeadKeyName=rfc4106\(gcm\(aes\)\), length=128/);
  t.is(storedIpsec(), canonical(4, KEY1));
  t.regex(r.stderr, /Warning: removed kubectl's last-applied-configuration annotation: it held a plain copy of the key/);
  const stored = double.store.get('secrets', 'kmesh-system', 'kmesh-ipsec') as { metadata: { annotations?: Record<string, string> } };
  t.false(JSON.stringify(stored.metadata).includes(KEY1), 'no plain copy of the key left in annotations');
  const got = await kubectl(double, ['get', 'secret', '-n', 'kmesh-system', 'kmesh-ipsec', '-o', 'jsonpath={.data.ipSec}'], { user: ADMIN });
  t.is(Buffer.from(got.stdout, 'base64').toString(), canonical(4, KEY1));
});

test.serial('rotating the key without touching spi: mutation (first) bumps it, validation (second) accepts', async (t) => {
  const r = await apply(secretYaml({ spi: 4, aeadKey: KEY2 }));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /Warning: data\.ipSec\.spi: the key changed but spi stayed 4; raised to 5 so nodes can tell the keys apart/);
  t.is(storedIpsec(), canonical(5, KEY2));
});

test.serial('kubectl apply lowering the SPI is denied', async (t) => {
  const r = await apply(secretYaml({ spi: 2, aeadKey: KEY1 }));
  t.is(r.code, 1);
  t.regex(r.stderr, /The request is invalid: error when applying patch:[\s\S]*denied the request: Secret kmesh-system\/kmesh-ipsec: data\.ipSec\.spi: must not go down: the current SPI is 5, this sets 2; use 6 with a new key/);
  t.is(storedIpsec(), canonical(5, KEY2));
});

test.serial('server-side dry run shows the canonical object and stores nothing', async (t) => {
  const r = await apply(secretYaml({ spi: 6, aeadKey: KEY1 }), ADMIN, ['--dry-run=server', '-o', 'json']);
  t.is(r.code, 0, r.stderr);
  const shown = JSON.parse(r.stdout) as { data: { ipSec: string } };
  t.is(Buffer.from(shown.data.ipSec, 'base64').toString(), canonical(6, KEY1));
  t.is(storedIpsec(), canonical(5, KEY2));
});

test.serial('other Secrets in kmesh-system pass through untouched', async (t) => {
  const r = await apply(secretYaml({ whatever: true }, 'unrelated'));
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
});

test.serial('a node plugin publishes its KmeshNodeInfo: stored with a stamp peers can verify', async (t) => {
  const spec: KmeshNodeInfoSpec = { spi: 5, addresses: ['10.0.0.1'], bootID: BOOT, podCIDRS: ['10.244.1.0/24'] };
  const r = await apply(kniYaml('node-a', spec), NODE_A_PLUGIN);
  t.is(r.code, 0, r.stderr);
  const stored = double.store.get('kmeshnodeinfos.kmesh.net', 'kmesh-system', 'node-a') as { metadata: { annotations?: Record<string, string> }; spec: KmeshNodeInfoSpec } | undefined;
  const token = stored?.metadata.annotations?.['kmesh.net/validity'];
  t.truthy(token);
  const ring = await importStampJwks(JSON.parse(await readFile(jwksPath, 'utf8')));
  if (!ring.ok || !stored) return t.fail('jwks');
  const v = await verifyStamp(token, { nodeName: 'node-a', spec: stored.spec }, ring.value);
  t.true(v.ok, v.ok ? '' : v.message);
});

test.serial("a node plugin cannot write another node's KmeshNodeInfo, nor claim its pod CIDR", async (t) => {
  const other = await apply(kniYaml('node-b', { spi: 5, addresses: ['10.0.0.2'], bootID: BOOT, podCIDRS: ['10.244.2.0/24'] }), NODE_A_PLUGIN);
  t.is(other.code, 1);
  t.regex(other.stderr, /Error from server \(Forbidden\):[\s\S]*admission webhook "kmeshnodeinfos\.ipsec\.kmesh\.net" denied the request: KmeshNodeInfo kmesh-system\/node-b: metadata\.name: system:serviceaccount:kmesh-system:kmesh-ipsec-node is on node node-a \(by its token\) and may write only KmeshNodeInfo node-a/);
  const hijack = await apply(kniYaml('node-a', { spi: 5, addresses: ['10.0.0.1'], bootID: BOOT, podCIDRS: ['10.244.1.0/24', '10.244.2.0/24'] }), NODE_A_PLUGIN);
  t.is(hijack.code, 1);
  t.regex(hijack.stderr, /spec\.podCIDRS\[1\]: 10\.244\.2\.0\/24 overlaps 10\.244\.2\.0\/24 advertised by KmeshNodeInfo node-b; spec\.podCIDRS\[1\]: 10\.244\.2\.0\/24 is not within the pod CIDRs of node node-a \(it has 10\.244\.1\.0\/24\)/);
});

test.serial('the informer sees new KmeshNodeInfos: after a delete, a re-created secret must clear their SPIs', async (t) => {
  const del = await kubectl(double, ['delete', 'secret', '-n', 'kmesh-system', 'kmesh-ipsec'], { user: ADMIN });
  t.is(del.code, 0, del.stderr);
  t.regex(del.stderr, /Warning: Secret kmesh-system\/kmesh-ipsec deleted: nodes keep their states; a new secret needs spi > 5/);
  // node-a advertises 5 (published through the API a moment ago, known only via the watch).
  const stale = await apply(secretYaml({ spi: 5, aeadKey: KEY1 }));
  t.is(stale.code, 1);
  t.regex(stale.stderr, /must be above 5, the highest SPI nodes still advertise/);
  const fresh = await apply(secretYaml({ spi: 6, aeadKey: KEY1 }));
  t.is(fresh.code, 0, fresh.stderr);
});

test.serial('the caBundle is what the API server trusts: a wrong one fails the call, closed', async (t) => {
  const other = generateDevPki({ service: WebhookNames.service, namespace: 'kmesh-system' });
  const patch = JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: caBundle(other.ca) }]);
  const original = double.store.get('validatingwebhookconfigurations', undefined, 'kmesh-ipsec') as unknown as { webhooks: { clientConfig: { caBundle: string } }[] };
  const good = original.webhooks[0]?.clientConfig.caBundle ?? '';
  t.is((await kubectl(double, ['patch', 'validatingwebhookconfiguration', 'kmesh-ipsec', '--type=json', '-p', patch], { user: ADMIN })).code, 0);
  const r = await apply(secretYaml({ spi: 7, aeadKey: KEY2 }));
  t.is(r.code, 1);
  t.regex(r.stderr, /failed calling webhook "secrets\.ipsec\.kmesh\.net": .*x509: certificate signed by unknown authority/);
  const restore = JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: good }]);
  t.is((await kubectl(double, ['patch', 'validatingwebhookconfiguration', 'kmesh-ipsec', '--type=json', '-p', restore], { user: ADMIN })).code, 0);
  t.is(storedIpsec(), canonical(6, KEY1));
});

test.serial('failurePolicy: with the webhook down, the key is fail-closed, deletion fails open, and nothing else is blocked', async (t) => {
  webhook.kill('SIGTERM');
  t.is(await webhookExit, 0, logs);
  const blocked = await apply(secretYaml({ spi: 7, aeadKey: KEY2 }));
  t.is(blocked.code, 1);
  t.regex(blocked.stderr, /Internal error occurred: failed calling webhook "secrets\.ipsec\.kmesh\.net"/);
  t.is(storedIpsec(), canonical(6, KEY1));
  const elsewhere = await apply(secretYaml({ any: 1 }, 'app-secret', 'default'));
  t.is(elsewhere.code, 0, elsewhere.stderr);
  const del = await kubectl(double, ['delete', 'secret', '-n', 'kmesh-system', 'kmesh-ipsec'], { user: ADMIN });
  t.is(del.code, 0, del.stderr);
  t.false(logs.includes(KEY1) || logs.includes(Buffer.from(KEY1, 'hex').toString('base64')), 'no key material in the webhook logs');
});
