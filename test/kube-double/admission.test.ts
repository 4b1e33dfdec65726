// Admission webhooks as kube-apiserver calls them, observed from a real HTTPS webhook server.
import test from 'ava';
import { ApiException, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { kubeConfigFor } from './clients.js';
import { createCertificateAuthority } from '../../certs/dev-pki.js';
import { freePort } from '../helpers/free-port.js';
import { startKubeDouble, type KubeDouble, type KubeObject } from './index.js';
import { kubectl } from './kubectl.js';
import { startWebhookServer, type AdmissionRequest, type TestWebhookServer, type WebhookVerdict } from './webhook-server.js';

const SERVICE = { namespace: 'kmesh-system', name: 'kmesh-webhook' };
const SERVICE_HOST = 'kmesh-webhook.kmesh-system.svc';

let double: KubeDouble;
let hook: TestWebhookServer;
let core: CoreV1Api;

test.before(async () => {
  double = await startKubeDouble({ namespaces: ['kmesh-system', 'adm'] });
  hook = await startWebhookServer({ dnsNames: [SERVICE_HOST], handler: () => ({ allowed: true }) });
  double.mapService(SERVICE, { port: hook.port });
  core = kubeConfigFor(double).makeApiClient(CoreV1Api);
});

test.after.always(async () => {
  await hook.close();
  await double.close();
});

test.afterEach.always(async () => {
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    for (const cfg of double.store.list(kind)) await double.store.delete(kind, undefined, cfg.metadata.name ?? '');
  }
  for (const s of double.store.list('secrets', 'adm')) await double.store.delete('secrets', 'adm', s.metadata.name ?? '');
  hook.received.length = 0;
  hook.setHandler(() => ({ allowed: true }));
});

interface HookSpec {
  name: string;
  path?: string;
  url?: string;
  caBundle?: string;
  operations?: string[];
  failurePolicy?: 'Fail' | 'Ignore';
  timeoutSeconds?: number;
  objectSelector?: Record<string, unknown>;
  resources?: string[];
  apiGroups?: string[];
}

function webhook(spec: HookSpec): Record<string, unknown> {
  return {
    name: spec.name,
    clientConfig: {
      ...(spec.url === undefined ? { service: { ...SERVICE, path: spec.path ?? '/' } } : { url: spec.url }),
      caBundle: spec.caBundle ?? hook.caBundle,
    },
    rules: [{
      operations: spec.operations ?? ['CREATE', 'UPDATE'],
      apiGroups: spec.apiGroups ?? [''],
      apiVersions: ['v1'],
      resources: spec.resources ?? ['secrets'],
    }],
    // Only the test namespace, so stray writes elsewhere never reach the test server.
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'adm' } },
    ...(spec.objectSelector === undefined ? {} : { objectSelector: spec.objectSelector }),
    ...(spec.failurePolicy === undefined ? {} : { failurePolicy: spec.failurePolicy }),
    ...(spec.timeoutSeconds === undefined ? {} : { timeoutSeconds: spec.timeoutSeconds }),
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
  };
}

async function configure(kind: 'Mutating' | 'Validating', name: string, hooks: HookSpec[]): Promise<void> {
  await double.store.put({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: `${kind}WebhookConfiguration`,
    metadata: { name },
    webhooks: hooks.map(webhook),
  });
}

const secretYaml = (name: string, spi: number): string => `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
  namespace: adm
stringData:
  ipSec: '{"spi":${spi}}'
`;

const spiOf = (obj: KubeObject | null): number => {
  const data = obj?.data as Record<string, string> | undefined;
  return (JSON.parse(Buffer.from(data?.ipSec ?? 'e30=', 'base64').toString()) as { spi?: number }).spi ?? 0;
};

async function failure(p: Promise<unknown>): Promise<{ code: number; message: string; reason?: string }> {
  const err: unknown = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ApiException)) throw new Error(`expected ApiException, got ${String(err)}`);
  const status = JSON.parse(String((err as ApiException<unknown>).body)) as { message: string; reason?: string };
  return { code: err.code, ...status };
}

test.serial('a validating denial reaches kubectl verbatim, with the AdmissionReview the apiserver sends', async (t) => {
  await configure('Validating', 'deny-config', [{ name: 'spi.kmesh.net', path: '/validate' }]);
  hook.setHandler((req): WebhookVerdict => (spiOf(req.object) > 0
    ? { allowed: true }
    : { allowed: false, status: { code: 403, reason: 'Forbidden', message: 'spi must be positive' } }));

  const denied = await kubectl(double, ['apply', '-f', '-'], { input: secretYaml('denied', 0) });
  t.is(denied.code, 1);
  t.is(denied.stderr.trim(), 'Error from server (Forbidden): error when creating "STDIN": admission webhook "spi.kmesh.net" denied the request: spi must be positive');
  t.is(double.store.get('secrets', 'adm', 'denied'), undefined);

  const [call] = hook.received;
  t.truthy(call);
  t.is(call?.url, '/validate?timeout=10s');
  t.is(call?.host, `${SERVICE_HOST}:443`);
  t.is(call?.review.apiVersion, 'admission.k8s.io/v1');
  t.is(call?.review.kind, 'AdmissionReview');
  const req = call?.review.request;
  t.regex(req?.uid ?? '', /^[0-9a-f-]{36}$/);
  t.like(req, {
    kind: { group: '', version: 'v1', kind: 'Secret' },
    resource: { group: '', version: 'v1', resource: 'secrets' },
    requestKind: { group: '', version: 'v1', kind: 'Secret' },
    requestResource: { group: '', version: 'v1', resource: 'secrets' },
    name: 'denied',
    namespace: 'adm',
    operation: 'CREATE',
    userInfo: { username: 'kube-double-admin', uid: 'kube-double-admin-uid', groups: ['system:masters', 'system:authenticated'] },
    oldObject: null,
    dryRun: false,
    options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl-client-side-apply', fieldValidation: 'Strict' },
  });
  // The webhook sees the object after decoding: stringData folded into data, type defaulted.
  t.like(req?.object, { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 'denied', namespace: 'adm' } });
  t.is(req?.object?.stringData, undefined);

  const allowed = await kubectl(double, ['apply', '-f', '-'], { input: secretYaml('allowed', 7) });
  t.is(allowed.code, 0, allowed.stderr);
  t.is(spiOf(double.store.get('secrets', 'adm', 'allowed') ?? null), 7);
});

test.serial('mutating patches apply in order before validation; warnings reach kubectl', async (t) => {
  const seenByValidator: AdmissionRequest[] = [];
  hook.setHandler((req, path): WebhookVerdict => {
    if (path === '/first') {
      return { allowed: true, patch: [{ op: 'add', path: '/metadata/labels', value: { stamped: 'first' } }], warnings: ['spi 1 is deprecated'] };
    }
    if (path === '/second') {
      // Sees the first webhook's patch: configurations run in name order, one at a time.
      const from = req.object?.metadata.labels?.stamped ?? 'none';
      return { allowed: true, patch: [{ op: 'add', path: '/metadata/annotations', value: { 'kmesh.net/after': from } }] };
    }
    seenByValidator.push(req);
    return { allowed: true };
  });
  await configure('Mutating', 'b-second', [{ name: 'second.kmesh.net', url: hook.url('/second') }]);
  await configure('Mutating', 'a-first', [{ name: 'first.kmesh.net', path: '/first' }]);
  await configure('Validating', 'check', [{ name: 'check.kmesh.net', path: '/check' }]);

  const result = await kubectl(double, ['apply', '-f', '-'], { input: secretYaml('mutated', 1) });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /^Warning: spi 1 is deprecated$/m);
  const stored = double.store.get('secrets', 'adm', 'mutated');
  t.is(stored?.metadata.labels?.stamped, 'first');
  t.is(stored?.metadata.annotations?.['kmesh.net/after'], 'first');
  t.is(seenByValidator[0]?.object?.metadata.annotations?.['kmesh.net/after'], 'first', 'validation sees the mutated object');
  t.deepEqual(hook.received.map((r) => r.path), ['/first', '/second', '/check']);
});

test.serial('failurePolicy: Fail rejects and Ignore proceeds when the webhook is down', async (t) => {
  const deadUrl = `https://127.0.0.1:${await freePort()}/gone`;
  await configure('Validating', 'down', [{ name: 'down.kmesh.net', url: deadUrl, timeoutSeconds: 2 }]);
  const rejected = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'fail-closed' } } }));
  t.is(rejected.code, 500);
  t.is(rejected.reason, 'InternalError');
  t.is(rejected.message, `Internal error occurred: failed calling webhook "down.kmesh.net": failed to call webhook: Post "${deadUrl}?timeout=2s": dial tcp 127.0.0.1:${new URL(deadUrl).port}: connect: connection refused`);

  await configure('Validating', 'down', [{ name: 'down.kmesh.net', url: deadUrl, failurePolicy: 'Ignore' }]);
  await core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'fail-open' } } });
  t.truthy(double.store.get('secrets', 'adm', 'fail-open'));

  double.unmapService(SERVICE);
  try {
    await configure('Mutating', 'unmapped', [{ name: 'unmapped.kmesh.net', path: '/x' }]);
    const unmapped = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'no-endpoint' } } }));
    t.is(unmapped.message, `Internal error occurred: failed calling webhook "unmapped.kmesh.net": failed to call webhook: Post "https://${SERVICE_HOST}:443/x?timeout=10s": service "kmesh-webhook" not found`);
  } finally {
    double.mapService(SERVICE, { port: hook.port });
  }
});

test.serial('timeoutSeconds bounds the call', async (t) => {
  hook.setHandler(async () => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return { allowed: true };
  });
  await configure('Validating', 'slow', [{ name: 'slow.kmesh.net', path: '/slow', timeoutSeconds: 1 }]);
  const started = Date.now();
  const slow = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'slow' } } }));
  t.true(Date.now() - started < 1400);
  t.is(slow.message, `Internal error occurred: failed calling webhook "slow.kmesh.net": failed to call webhook: Post "https://${SERVICE_HOST}:443/slow?timeout=1s": context deadline exceeded`);
});

test.serial('the serving certificate must chain to caBundle and name <svc>.<ns>.svc', async (t) => {
  const otherCa = Buffer.from(createCertificateAuthority({ commonName: 'other' }).certPem).toString('base64');
  await configure('Validating', 'tls', [{ name: 'tls.kmesh.net', path: '/tls', caBundle: otherCa }]);
  const untrusted = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'tls-1' } } }));
  t.regex(untrusted.message, /tls: failed to verify certificate: x509: certificate signed by unknown authority$/);

  // Same server, reached through a service whose name its certificate does not carry.
  double.mapService({ namespace: 'adm', name: 'impostor' }, { port: hook.port });
  await double.store.put({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'tls' },
    webhooks: [{ ...webhook({ name: 'tls.kmesh.net' }), clientConfig: { service: { namespace: 'adm', name: 'impostor' }, caBundle: hook.caBundle } }],
  });
  const misnamed = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'tls-2' } } }));
  t.regex(misnamed.message, /x509: certificate is valid for kmesh-webhook\.kmesh-system\.svc, 127\.0\.0\.1, not impostor\.adm\.svc$/);
  t.is(hook.received.length, 0);
});

test.serial('invalid webhook responses are call errors subject to failurePolicy', async (t) => {
  await configure('Validating', 'liar', [{ name: 'liar.kmesh.net', path: '/liar' }]);
  hook.setHandler(() => ({ raw: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'not-the-uid', allowed: true } } }));
  const wrongUid = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'liar-1' } } }));
  t.regex(wrongUid.message, /^Internal error occurred: failed calling webhook "liar\.kmesh\.net": received invalid webhook response: expected response\.uid="[0-9a-f-]{36}", got "not-the-uid"$/);

  hook.setHandler((req) => ({ raw: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: req.uid, allowed: true, patchType: 'JSONPatch', patch: 'W10=' } } }));
  const patching = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'liar-2' } } }));
  t.regex(patching.message, /received invalid webhook response: validating webhook may not return response\.patch$/);

  hook.setHandler((req) => ({ raw: { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', response: { uid: req.uid, allowed: true } } }));
  const wrongVersion = await failure(core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'liar-3' } } }));
  t.regex(wrongVersion.message, /expected webhook response of admission\.k8s\.io\/v1, Kind=AdmissionReview, got admission\.k8s\.io\/v1beta1, Kind=AdmissionReview$/);

  await configure('Validating', 'liar', [{ name: 'liar.kmesh.net', path: '/liar', failurePolicy: 'Ignore' }]);
  await core.createNamespacedSecret({ namespace: 'adm', body: { metadata: { name: 'liar-4' } } });
  t.truthy(double.store.get('secrets', 'adm', 'liar-4'));
});

test.serial('UPDATE via patch is admitted on the patched result, with oldObject and UpdateOptions', async (t) => {
  await double.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'upd', namespace: 'adm' }, stringData: { ipSec: '{"spi":1}' } });
  await configure('Validating', 'upd', [{ name: 'upd.kmesh.net', path: '/upd' }]);
  hook.setHandler((req) => (spiOf(req.object) < spiOf(req.oldObject)
    ? { allowed: false, status: { message: 'spi may not go backwards' } }
    : { allowed: true }));
  const newData = (spi: number) => ({ data: { ipSec: Buffer.from(`{"spi":${spi}}`).toString('base64') } });
  await core.patchNamespacedSecret({ name: 'upd', namespace: 'adm', body: newData(2) }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const back = await failure(core.patchNamespacedSecret({ name: 'upd', namespace: 'adm', body: newData(1) }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
  t.is(back.code, 400, 'a denial without a code is forced to 400');
  t.is(back.message, 'admission webhook "upd.kmesh.net" denied the request: spi may not go backwards');
  const req = hook.received[0]?.review.request;
  t.is(req?.operation, 'UPDATE');
  t.is(spiOf(req?.oldObject ?? null), 1);
  t.is(spiOf(req?.object ?? null), 2);
  t.like(req?.options, { kind: 'UpdateOptions', apiVersion: 'meta.k8s.io/v1' });
});

test.serial('DELETE is sent with oldObject and no object, and can be denied', async (t) => {
  await double.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'keep', namespace: 'adm', labels: { protect: 'yes' } } });
  await configure('Validating', 'protect', [{ name: 'protect.kmesh.net', path: '/protect', operations: ['DELETE'], objectSelector: { matchLabels: { protect: 'yes' } } }]);
  hook.setHandler(() => ({ allowed: false, status: { code: 403, reason: 'Forbidden', message: 'protected' } }));
  const denied = await kubectl(double, ['delete', 'secret', 'keep', '-n', 'adm']);
  t.is(denied.code, 1);
  t.is(denied.stderr.trim(), 'Error from server (Forbidden): admission webhook "protect.kmesh.net" denied the request: protected');
  const req = hook.received[0]?.review.request;
  t.like(req, { operation: 'DELETE', name: 'keep', namespace: 'adm', object: null, options: { kind: 'DeleteOptions', apiVersion: 'meta.k8s.io/v1' } });
  t.is(req?.oldObject?.metadata.name, 'keep');

  // objectSelector: objects without the label never reach the webhook.
  await double.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'unprotected', namespace: 'adm' } });
  await core.deleteNamespacedSecret({ name: 'unprotected', namespace: 'adm' });
  t.is(hook.received.length, 1);
});

test.serial('dryRun requests reach webhooks with dryRun: true and persist nothing', async (t) => {
  await configure('Mutating', 'dry', [{ name: 'dry.kmesh.net', path: '/dry' }]);
  hook.setHandler(() => ({ allowed: true, patch: [{ op: 'add', path: '/metadata/labels', value: { seen: 'yes' } }] }));
  const dry = await kubectl(double, ['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: secretYaml('dry', 3) });
  t.is(dry.code, 0, dry.stderr);
  t.is((JSON.parse(dry.stdout) as KubeObject).metadata.labels?.seen, 'yes', 'the dry-run answer shows the mutation');
  t.is(double.store.get('secrets', 'adm', 'dry'), undefined);
  t.is(hook.received[0]?.review.request.dryRun, true);
  t.deepEqual(hook.received[0]?.review.request.options?.dryRun, ['All']);
});

test.serial('webhook configurations are never sent to webhooks; namespaceSelector scopes the rest', async (t) => {
  hook.setHandler(() => ({ allowed: false, status: { message: 'no' } }));
  await configure('Validating', 'deny-all', [{ name: 'all.kmesh.net', path: '/all', apiGroups: ['*'], resources: ['*'], operations: ['*'] }]);
  await core.createNamespacedSecret({ namespace: 'kmesh-system', body: { metadata: { name: 'outside-selector' } } });
  const result = await kubectl(double, ['delete', 'validatingwebhookconfiguration', 'deny-all']);
  t.is(result.code, 0, result.stderr);
  t.is(hook.received.length, 0);
});
