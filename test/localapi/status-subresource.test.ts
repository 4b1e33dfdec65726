// The status subresource of KmeshNodeInfo through client-node and kubectl: what each endpoint
// may change, generation, conflicts, admission rules and authorization on "kmeshnodeinfos/status".
import test from 'ava';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { KNI_GROUP, KNI_KIND, KNI_PLURAL, KNI_VERSION } from '../../core/constants.js';
import { apiFailure } from './api-failure.js';
import { kubeConfigFor, rawRequest } from './clients.js';
import { startLocalApi, type AuthorizationRequest, type LocalApi, type KubeObject } from '../../localapi/index.js';
import { kubectl } from './kubectl.js';
import { startWebhookServer, type TestWebhookServer } from './webhook-server.js';

const NS = 'kmesh-system';
const STATUS_WRITER = 'system:serviceaccount:kmesh-system:status-writer';
const SPEC_WRITER = 'spec-writer';
const asked: AuthorizationRequest[] = [];
let double: LocalApi;
let hook: TestWebhookServer;
let admin: CustomObjectsApi;

const kniRule = (resources: string[]) => [{ operations: ['CREATE', 'UPDATE'], apiGroups: [KNI_GROUP], apiVersions: [KNI_VERSION], resources }];
const webhookConfig = (kind: 'Mutating' | 'Validating', path: string, resources: string[]): KubeObject => ({
  apiVersion: 'admissionregistration.k8s.io/v1',
  kind: `${kind}WebhookConfiguration`,
  metadata: { name: `${kind.toLowerCase()}-${path.slice(1)}` },
  webhooks: [{
    name: `${path.slice(1)}.kmesh.net`,
    clientConfig: { url: hook.url(path), caBundle: hook.caBundle },
    rules: kniRule(resources),
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
  }],
});

test.before(async () => {
  double = await startLocalApi({
    users: {
      'admin-token': { username: 'admin', groups: ['system:masters', 'system:authenticated'] },
      'status-token': { username: STATUS_WRITER, groups: ['system:serviceaccounts', 'system:authenticated'] },
      'spec-token': { username: SPEC_WRITER, groups: ['system:authenticated'] },
    },
    authorizer: (r) => {
      if (r.resource === KNI_PLURAL) asked.push(r);
      if (r.user.username === STATUS_WRITER) return r.verb === 'get' || r.subresource === 'status';
      if (r.user.username === SPEC_WRITER) return r.subresource === '';
      return true;
    },
  });
  hook = await startWebhookServer({ handler: () => ({ allowed: true }) });
  // Like the KmeshNodeInfo webhook: a mutating rule on the main resource only, and a
  // validating rule that also lists the status subresource.
  await double.store.put(webhookConfig('Mutating', '/mutate', [KNI_PLURAL]));
  await double.store.put(webhookConfig('Validating', '/validate', [KNI_PLURAL, `${KNI_PLURAL}/status`]));
  admin = kubeConfigFor(double).makeApiClient(CustomObjectsApi);
});

test.after.always(async () => {
  await hook.close();
  await double.close();
});

interface Kni extends KubeObject {
  spec?: { spi?: number; addresses?: string[] };
  status?: { conditions?: Array<{ type: string; status: string; reason?: string }> };
}

const kni = (name: string, spi: number, extra: Partial<Kni> = {}): Kni => ({
  apiVersion: `${KNI_GROUP}/${KNI_VERSION}`,
  kind: KNI_KIND,
  metadata: { name, namespace: NS },
  spec: { spi, addresses: ['10.0.0.1'] },
  ...extra,
});
const ready = (status: string, reason: string) => ({ conditions: [{ type: 'Ready', status, reason }] });
const coords = (name: string) => ({ group: KNI_GROUP, version: KNI_VERSION, namespace: NS, plural: KNI_PLURAL, name });
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

test.serial('status writes change only .status, main writes keep it, generation follows the spec, no mutating webhook for status', async (t) => {
  hook.received.length = 0;
  const created = await admin.createNamespacedCustomObject({ ...coords('a'), body: kni('a', 1, { status: ready('True', 'Ignored') }) }) as Kni;
  t.is(created.status, undefined, 'create cannot set status');
  t.is(created.metadata.generation, 1);

  // PUT /status with a different spec and new labels: only the status lands.
  const body = { ...created, metadata: { ...created.metadata, labels: { sneaky: 'yes' } }, spec: { spi: 99 }, status: ready('False', 'Starting') };
  const statusPut = await admin.replaceNamespacedCustomObjectStatus({ ...coords('a'), body }) as Kni;
  t.deepEqual(statusPut.status, ready('False', 'Starting'));
  t.is(statusPut.spec?.spi, 1);
  t.is(statusPut.metadata.labels, undefined);
  t.is(statusPut.metadata.generation, 1);
  t.true(Number(statusPut.metadata.resourceVersion) > Number(created.metadata.resourceVersion));

  const statusPatch = await admin.patchNamespacedCustomObjectStatus({ ...coords('a'), body: { status: ready('True', 'Programmed'), spec: { spi: 98 } } }, merge) as Kni;
  t.deepEqual(statusPatch.status, ready('True', 'Programmed'));
  t.is(statusPatch.spec?.spi, 1);

  // Main resource: status changes are ignored, spec changes bump the generation.
  const mainPut = await admin.replaceNamespacedCustomObject({ ...coords('a'), body: { ...statusPatch, spec: { spi: 2, addresses: ['10.0.0.1'] }, status: ready('Unknown', 'Lost') } }) as Kni;
  t.is(mainPut.spec?.spi, 2);
  t.deepEqual(mainPut.status, ready('True', 'Programmed'));
  t.is(mainPut.metadata.generation, 2);
  const statusOnly = await admin.patchNamespacedCustomObject({ ...coords('a'), body: { status: null } }, merge) as Kni;
  t.deepEqual(statusOnly.status, ready('True', 'Programmed'));
  t.is(statusOnly.metadata.resourceVersion, mainPut.metadata.resourceVersion, 'nothing changed, nothing written');

  const stale = await apiFailure(admin.replaceNamespacedCustomObjectStatus({ ...coords('a'), body: { ...statusPatch, status: ready('False', 'Late') } }));
  t.is(stale.code, 409);
  t.is(stale.status.message, `Operation cannot be fulfilled on ${KNI_PLURAL}.${KNI_GROUP} "a": the object has been modified; please apply your changes to the latest version and try again`);

  const calls = hook.received.map((r) => `${r.path} ${r.review.request.operation}${r.review.request.subResource === undefined ? '' : ` /${r.review.request.subResource}`}`);
  t.deepEqual(calls, [
    '/mutate CREATE', '/validate CREATE',
    '/validate UPDATE /status', '/validate UPDATE /status',
    '/mutate UPDATE', '/validate UPDATE',
    '/mutate UPDATE', '/validate UPDATE',
  ]);
  const statusReview = hook.received[2]?.review.request;
  t.like(statusReview, { requestSubResource: 'status', resource: { resource: KNI_PLURAL }, name: 'a', namespace: NS });
  t.deepEqual((statusReview?.object as Kni | null)?.spec?.spi, 1, 'the webhook sees the spec the server keeps');
});

test.serial('a PUT without resourceVersion is refused for custom resources', async (t) => {
  await admin.createNamespacedCustomObject({ ...coords('b'), body: kni('b', 1) });
  for (const write of [
    admin.replaceNamespacedCustomObject({ ...coords('b'), body: kni('b', 2) }),
    admin.replaceNamespacedCustomObjectStatus({ ...coords('b'), body: kni('b', 2, { status: ready('True', 'Programmed') }) }),
  ]) {
    const refused = await apiFailure(write);
    t.is(refused.code, 422);
    t.is(refused.status.message, `${KNI_PLURAL}.${KNI_GROUP} "b" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`);
  }
});

test.serial('authorization checks "kmeshnodeinfos/status" separately from the main resource', async (t) => {
  await admin.createNamespacedCustomObject({ ...coords('c'), body: kni('c', 1) });
  asked.length = 0;
  const statusOnly = kubeConfigFor(double, STATUS_WRITER).makeApiClient(CustomObjectsApi);
  const patched = await statusOnly.patchNamespacedCustomObjectStatus({ ...coords('c'), body: { status: ready('True', 'Programmed') } }, merge) as Kni;
  t.deepEqual(patched.status, ready('True', 'Programmed'));
  const denied = await apiFailure(statusOnly.patchNamespacedCustomObject({ ...coords('c'), body: { spec: { spi: 5 } } }, merge));
  t.is(denied.code, 403);
  t.is(denied.status.message, `${KNI_PLURAL}.${KNI_GROUP} "c" is forbidden: User "${STATUS_WRITER}" cannot patch resource "${KNI_PLURAL}" in API group "${KNI_GROUP}" in the namespace "${NS}"`);

  const specOnly = kubeConfigFor(double, SPEC_WRITER).makeApiClient(CustomObjectsApi);
  const deniedStatus = await apiFailure(specOnly.patchNamespacedCustomObjectStatus({ ...coords('c'), body: { status: ready('False', 'Nope') } }, merge));
  t.is(deniedStatus.status.message, `${KNI_PLURAL}.${KNI_GROUP} "c" is forbidden: User "${SPEC_WRITER}" cannot patch resource "${KNI_PLURAL}/status" in API group "${KNI_GROUP}" in the namespace "${NS}"`);
  t.deepEqual(asked.map((r) => `${r.user.username} ${r.verb} ${r.subresource}`), [
    `${STATUS_WRITER} patch status`, `${STATUS_WRITER} patch `, `${SPEC_WRITER} patch status`,
  ]);
});

test('discovery advertises the status subresource; other paths are 404/405 as on a real server', async (t) => {
  const legacy = (await rawRequest(double, 'GET', `/apis/${KNI_GROUP}/${KNI_VERSION}`)).json() as { resources: Array<{ name: string; verbs: string[] }> };
  t.deepEqual(legacy.resources.find((r) => r.name === `${KNI_PLURAL}/status`)?.verbs, ['get', 'patch', 'update']);
  const aggregated = (await rawRequest(double, 'GET', '/api', { headers: { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } })).json() as {
    items: Array<{ versions: Array<{ resources: Array<{ resource: string; subresources?: Array<{ subresource: string }> }> }> }>;
  };
  const core = aggregated.items[0]?.versions[0]?.resources ?? [];
  t.deepEqual(core.filter((r) => r.subresources !== undefined).map((r) => `${r.resource}/${r.subresources?.[0]?.subresource ?? ''}`), ['nodes/status', 'pods/status']);
  t.is((await rawRequest(double, 'GET', '/api/v1/namespaces/default/secrets/x/status')).status, 404);
  t.is((await rawRequest(double, 'POST', `/apis/${KNI_GROUP}/${KNI_VERSION}/namespaces/${NS}/${KNI_PLURAL}/a/status`, { body: '{}' })).status, 405);
});

test.serial('kubectl patch and get --subresource=status', async (t) => {
  await admin.createNamespacedCustomObject({ ...coords('d'), body: kni('d', 1) });
  const patched = await kubectl(double, ['patch', 'kmeshnodeinfo', 'd', '-n', NS, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: ready('True', 'Programmed') })], { user: 'admin' });
  t.is(patched.code, 0, patched.stderr);
  t.is(patched.stdout.trim(), `${KNI_KIND.toLowerCase()}.${KNI_GROUP}/d patched`);
  const got = await kubectl(double, ['get', 'kmeshnodeinfo', 'd', '-n', NS, '--subresource=status', '-o', 'jsonpath={.status.conditions[0].reason}'], { user: 'admin' });
  t.is(got.code, 0, got.stderr);
  t.is(got.stdout, 'Programmed');
});
