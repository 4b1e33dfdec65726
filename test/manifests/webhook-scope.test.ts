/**
 * Which writes the webhook configurations operators apply (manifests/base/webhook-configurations.yaml,
 * loaded with loadWebhookConfigurations) make an API server call the webhook for. The local API
 * matches rules, namespaceSelector and matchConditions (CEL) as kube-apiserver does; a real
 * HTTPS webhook server counts the calls. The same scoping check runs on deliberately wrong
 * copies of the configurations, to show that it catches them: a matchCondition that does not
 * compile is refused when it is written, and wrong but valid ones change the counted scope.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { ApiException, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { KMESH_NAMESPACE, KNI_GROUP, KNI_KIND, KNI_PLURAL, KNI_VERSION, SECRET_NAME } from '../../core/constants.js';
import { type KubeObject, type LocalApi, startLocalApi } from '../../localapi/index.js';
import { WEBHOOK_CONFIGURATIONS_FILE, WebhookNames, loadWebhookConfigurations, type WebhookConfigurations } from '../../webhook/configurations.js';
import { kubeConfigFor } from '../localapi/clients.js';
import { kubectl } from '../localapi/kubectl.js';
import { startWebhookServer, type TestWebhookServer, type WebhookVerdict } from '../localapi/webhook-server.js';

const MANIFEST_CONDITION = "request.name == 'kmesh-ipsec'";
const OTHER_SECRET = 'kmesh-ipsec-webhook-tls';

let double: LocalApi;
let hook: TestWebhookServer;
let core: CoreV1Api;
let custom: CustomObjectsApi;

test.before(async () => {
  double = await startLocalApi();
  hook = await startWebhookServer({ dnsNames: [`${WebhookNames.service}.${WebhookNames.serviceNamespace}.svc`], handler: () => ({ allowed: true }) });
  double.mapService({ namespace: WebhookNames.serviceNamespace, name: WebhookNames.service }, { port: hook.port });
  const kc = kubeConfigFor(double);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
});

test.after.always(async () => {
  await hook.close();
  await double.close();
});

const manifests = (): Promise<WebhookConfigurations> => loadWebhookConfigurations({ caBundle: hook.caBundle });

const kni = { group: KNI_GROUP, version: KNI_VERSION, plural: KNI_PLURAL, namespace: KMESH_NAMESPACE };
const secret = (namespace: string, name: string, spi: number) => ({ metadata: { name, namespace }, stringData: { ipSec: JSON.stringify({ spi }) } });
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The writes the check makes, in order, each with the webhook paths the manifests must call for it. */
const WRITES: { what: string; expected: string[]; run: () => Promise<unknown> }[] = [
  { what: 'create Secret kmesh-system/kmesh-ipsec', expected: ['/mutate', '/validate'], run: () => core.createNamespacedSecret({ namespace: KMESH_NAMESPACE, body: secret(KMESH_NAMESPACE, SECRET_NAME, 1) }) },
  { what: 'update Secret kmesh-system/kmesh-ipsec', expected: ['/mutate', '/validate'], run: () => core.patchNamespacedSecret({ namespace: KMESH_NAMESPACE, name: SECRET_NAME, body: { stringData: { ipSec: '{"spi":2}' } } }, mergePatch) },
  { what: 'create Secret kmesh-system/other', expected: [], run: () => core.createNamespacedSecret({ namespace: KMESH_NAMESPACE, body: secret(KMESH_NAMESPACE, OTHER_SECRET, 1) }) },
  { what: 'update Secret kmesh-system/other', expected: [], run: () => core.patchNamespacedSecret({ namespace: KMESH_NAMESPACE, name: OTHER_SECRET, body: { metadata: { labels: { x: 'y' } } } }, mergePatch) },
  { what: 'create Secret default/kmesh-ipsec', expected: [], run: () => core.createNamespacedSecret({ namespace: 'default', body: secret('default', SECRET_NAME, 1) }) },
  { what: 'create ConfigMap kmesh-system/kmesh-ipsec', expected: [], run: () => core.createNamespacedConfigMap({ namespace: KMESH_NAMESPACE, body: { metadata: { name: SECRET_NAME } } }) },
  {
    what: 'create KmeshNodeInfo kmesh-system/node-a',
    expected: ['/mutate', '/validate'],
    run: () => custom.createNamespacedCustomObject({ ...kni, body: { apiVersion: `${KNI_GROUP}/${KNI_VERSION}`, kind: KNI_KIND, metadata: { name: 'node-a' }, spec: { spi: 1, addresses: ['10.0.0.1'], bootID: 'b', podCIDRS: ['10.244.1.0/24'] } } }),
  },
  { what: 'update KmeshNodeInfo node-a status', expected: ['/validate'], run: () => custom.patchNamespacedCustomObjectStatus({ ...kni, name: 'node-a', body: { status: { conditions: [] } } }, mergePatch) },
  { what: 'delete Secret kmesh-system/other', expected: [], run: () => core.deleteNamespacedSecret({ namespace: KMESH_NAMESPACE, name: OTHER_SECRET }) },
  { what: 'delete Secret default/kmesh-ipsec', expected: [], run: () => core.deleteNamespacedSecret({ namespace: 'default', name: SECRET_NAME }) },
  { what: 'delete Secret kmesh-system/kmesh-ipsec', expected: ['/validate'], run: () => core.deleteNamespacedSecret({ namespace: KMESH_NAMESPACE, name: SECRET_NAME }) },
  { what: 'delete KmeshNodeInfo node-a', expected: ['/validate'], run: () => custom.deleteNamespacedCustomObject({ ...kni, name: 'node-a' }) },
];
const EXPECTED = Object.fromEntries(WRITES.map((w) => [w.what, w.expected]));

async function reset(): Promise<void> {
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    for (const cfg of double.store.list(kind)) await double.store.delete(kind, undefined, cfg.metadata.name ?? '');
  }
  for (const kind of ['secrets', 'configmaps', 'kmeshnodeinfos.kmesh.net']) {
    for (const obj of double.store.list(kind)) {
      if ([SECRET_NAME, OTHER_SECRET, 'node-a'].includes(obj.metadata.name ?? '')) await double.store.delete(kind, obj.metadata.namespace, obj.metadata.name ?? '');
    }
  }
  hook.received.length = 0;
  hook.setHandler(() => ({ allowed: true }));
}

/** The scoping check: for every write, the webhook paths called, then `HTTP <code>` if the write failed. */
async function scopeOf(configurations: readonly object[]): Promise<Record<string, string[]>> {
  await reset();
  for (const configuration of configurations) await double.store.put(configuration as KubeObject);
  const scope: Record<string, string[]> = {};
  for (const write of WRITES) {
    const before = hook.received.length;
    let failure: string[] = [];
    try {
      await write.run();
    } catch (err) {
      failure = [err instanceof ApiException ? `HTTP ${err.code}` : String(err)];
    }
    scope[write.what] = [...hook.received.slice(before).map((r) => r.path), ...failure];
  }
  return scope;
}

/** A copy of the manifests' configurations with every matchCondition expression replaced. */
async function withCondition(expression: string, only?: string): Promise<WebhookConfigurations> {
  const copy = await manifests();
  for (const webhook of [...(copy[0].webhooks ?? []), ...(copy[1].webhooks ?? [])]) {
    if (only !== undefined && webhook.name !== only) continue;
    for (const condition of webhook.matchConditions ?? []) condition.expression = expression;
  }
  return copy;
}

test.serial('the manifests send the kmesh-ipsec Secret in kmesh-system and KmeshNodeInfo writes to the webhook, and nothing else', async (t) => {
  t.deepEqual(await scopeOf(await manifests()), EXPECTED);
  // The handler saw the requests it is meant for (the deletion is the advisory webhook's).
  t.deepEqual(
    hook.received.map((r) => `${r.path} ${r.review.request.operation} ${r.review.request.kind.kind} ${r.review.request.namespace ?? ''}/${r.review.request.name ?? ''}`),
    [
      '/mutate CREATE Secret kmesh-system/kmesh-ipsec', '/validate CREATE Secret kmesh-system/kmesh-ipsec',
      '/mutate UPDATE Secret kmesh-system/kmesh-ipsec', '/validate UPDATE Secret kmesh-system/kmesh-ipsec',
      '/mutate CREATE KmeshNodeInfo kmesh-system/node-a', '/validate CREATE KmeshNodeInfo kmesh-system/node-a',
      '/validate UPDATE KmeshNodeInfo kmesh-system/node-a',
      '/validate DELETE Secret kmesh-system/kmesh-ipsec',
      '/validate DELETE KmeshNodeInfo kmesh-system/node-a',
    ],
  );
});

test.serial('the scoping check catches wrong but valid matchConditions', async (t) => {
  // Too broad: every Secret in kmesh-system (cert-manager's writes of the webhook's own TLS secret included).
  const broad = await scopeOf(await withCondition("request.namespace == 'kmesh-system'"));
  t.notDeepEqual(broad, EXPECTED);
  t.deepEqual(broad['create Secret kmesh-system/other'], ['/mutate', '/validate']);
  t.deepEqual(broad['delete Secret kmesh-system/other'], ['/validate']);

  // Silently skipped: `object` is null on DELETE, the evaluation error meets failurePolicy Ignore.
  const objectName = await scopeOf(await withCondition("object.metadata.name == 'kmesh-ipsec'"));
  t.notDeepEqual(objectName, EXPECTED);
  t.deepEqual(objectName['delete Secret kmesh-system/kmesh-ipsec'], []);
  t.deepEqual(objectName['create Secret kmesh-system/kmesh-ipsec'], ['/mutate', '/validate']);

  // Fails closed for everything: `oldObject` is null on CREATE, the error meets failurePolicy Fail.
  const oldObject = await scopeOf(await withCondition("oldObject.metadata.name == 'kmesh-ipsec'", WebhookNames.secrets));
  t.notDeepEqual(oldObject, EXPECTED);
  t.deepEqual(oldObject['create Secret kmesh-system/other'], ['HTTP 403']);
  t.deepEqual(oldObject['create Secret default/kmesh-ipsec'], [], 'the namespaceSelector still keeps other namespaces out');
});

test.serial('a matchCondition that does not compile is refused when the configuration is applied, as a real API server does', async (t) => {
  await reset();
  const text = await readFile(WEBHOOK_CONFIGURATIONS_FILE, 'utf8');
  t.true(text.includes(MANIFEST_CONDITION), 'the manifest still holds the expression this test breaks');
  const broken = text.replaceAll(MANIFEST_CONDITION, "request.nam == 'kmesh-ipsec'");
  const r = await kubectl(double, ['apply', '-f', '-'], { input: broken });
  t.is(r.code, 1);
  // What the operator sees, field by field, for each configuration.
  const issue = (i: number) => `webhooks[${i}].matchConditions[0].expression: Invalid value: "request.nam == 'kmesh-ipsec'": compilation failed: ERROR: <input>:1:9: No such key: nam\n | request.nam == 'kmesh-ipsec'\n | ........^`;
  const invalid = (kind: string) => `Error from server (Invalid): error when creating "STDIN": ${kind}.admissionregistration.k8s.io "kmesh-ipsec" is invalid: `;
  t.is(r.stderr.trim(), [
    `${invalid('MutatingWebhookConfiguration')}${issue(0)}`,
    `${invalid('ValidatingWebhookConfiguration')}[${issue(0)}, ${issue(1)}]`,
  ].join('\n'));
  t.is(double.store.list('mutatingwebhookconfigurations').length, 0);
  t.is(double.store.list('validatingwebhookconfigurations').length, 0);

  const fine = await kubectl(double, ['apply', '-f', '-'], { input: text });
  t.is(fine.code, 0, fine.stderr);
});

test.serial('reinvocation: a later mutating webhook that changes a KmeshNodeInfo makes the API server call ours again', async (t) => {
  await reset();
  const [mutating, validating] = await manifests();
  for (const configuration of [mutating, validating]) await double.store.put(configuration as unknown as KubeObject);
  // Sorts after "kmesh-ipsec", so it runs after our webhook, as another vendor's might.
  await double.store.put({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'zz-labeller' },
    webhooks: [{
      name: 'labeller.example.com',
      clientConfig: { url: hook.url('/label'), caBundle: hook.caBundle },
      rules: [{ apiGroups: [KNI_GROUP], apiVersions: [KNI_VERSION], resources: [KNI_PLURAL], operations: ['CREATE'] }],
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
    }],
  });
  hook.setHandler((_req, path): WebhookVerdict =>
    path === '/label' ? { allowed: true, patch: [{ op: 'add', path: '/metadata/labels', value: { team: 'net' } }] } : { allowed: true });
  await WRITES.find((w) => w.what === 'create KmeshNodeInfo kmesh-system/node-a')?.run();
  t.deepEqual(hook.received.map((r) => r.path), ['/mutate', '/label', '/mutate', '/validate']);
  t.is(hook.received[2]?.review.request.object?.metadata.labels?.team, 'net', 'the second call sees the later change');
});
