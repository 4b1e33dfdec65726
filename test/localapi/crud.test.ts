// CRUD, errors and auth through the real @kubernetes/client-node against the double.
import test from 'ava';
import {
  ApiException, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Secret,
} from '@kubernetes/client-node';
import { KNI_GROUP, KNI_PLURAL, KNI_VERSION } from '../../core/constants.js';
import { kubeConfigFor, rawRequest } from './clients.js';
import { startLocalApi, type LocalApi } from '../../localapi/index.js';
import type { Status } from '../../localapi/status.js';

const NS = 'kmesh-system';
let double: LocalApi;
let core: CoreV1Api;
let custom: CustomObjectsApi;

test.before(async () => {
  double = await startLocalApi({
    users: {
      'admin-token': { username: 'admin', uid: 'u-admin', groups: ['system:masters', 'system:authenticated'] },
      'viewer-token': { username: 'viewer', groups: ['system:authenticated'] },
    },
    authorizer: (r) => r.user.username !== 'viewer' || ['get', 'list', 'watch'].includes(r.verb),
  });
  const kc = kubeConfigFor(double);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
});

test.after.always(async () => {
  await double.close();
});

/** The decoded metav1.Status of a failed client-node call. */
async function failure(p: Promise<unknown>): Promise<{ code: number; status: Status }> {
  const err: unknown = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ApiException)) throw new Error(`expected ApiException, got ${String(err)}`);
  // client-node drops the body of responses its spec declares (401), hence the fallback.
  const body = (err as ApiException<unknown>).body;
  return { code: err.code, status: (typeof body === 'string' ? JSON.parse(body) : { kind: 'Status' }) as Status };
}

const secret = (name: string, extra: Partial<V1Secret> = {}): V1Secret => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: NS, labels: { app: 'kmesh' } },
  data: { ipSec: Buffer.from('{"spi":1}').toString('base64') },
  ...extra,
});

test('secrets: create, read, list, replace, delete', async (t) => {
  const created = await core.createNamespacedSecret({ namespace: NS, body: secret('crud-a') });
  t.truthy(created.metadata?.uid);
  t.truthy(created.metadata?.creationTimestamp);
  t.regex(created.metadata?.resourceVersion ?? '', /^\d+$/);
  t.is(created.type, 'Opaque');

  const read = await core.readNamespacedSecret({ name: 'crud-a', namespace: NS });
  t.is(read.metadata?.uid, created.metadata?.uid);

  const list = await core.listNamespacedSecret({ namespace: NS, labelSelector: 'app=kmesh' });
  t.true(list.items.some((s) => s.metadata?.name === 'crud-a'));
  t.regex(list.metadata?.resourceVersion ?? '', /^\d+$/);

  read.data = { ipSec: Buffer.from('{"spi":2}').toString('base64') };
  const replaced = await core.replaceNamespacedSecret({ name: 'crud-a', namespace: NS, body: read });
  t.not(replaced.metadata?.resourceVersion, created.metadata?.resourceVersion);
  t.is(replaced.metadata?.creationTimestamp?.toISOString(), created.metadata?.creationTimestamp?.toISOString());

  // Deleting a Secret answers with a Success Status (not the object), like the real registry.
  const status = await core.deleteNamespacedSecret({ name: 'crud-a', namespace: NS });
  t.is(status.status, 'Success');
  t.is(status.details?.name, 'crud-a');
  t.is(status.details?.kind, 'secrets');
  const gone = await failure(core.readNamespacedSecret({ name: 'crud-a', namespace: NS }));
  t.is(gone.code, 404);
  t.like(gone.status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'secrets "crud-a" not found', details: { name: 'crud-a', kind: 'secrets' } });
});

test('secrets: stringData is folded into base64 data before storage', async (t) => {
  const created = await core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: 'string-data' }, stringData: { ipSec: 'plain text', extra: 'x' }, data: { extra: 'eQ==' } },
  });
  t.is(created.stringData, undefined);
  t.is(Buffer.from(created.data?.ipSec ?? '', 'base64').toString(), 'plain text');
  t.is(created.data?.extra, 'eA==', 'stringData wins over data for the same key');
  t.is(created.type, 'Opaque');
});

test('secrets: non-base64 data is refused by the decoder with 400', async (t) => {
  const { code, status } = await failure(core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: 'bad-b64' }, data: { k: 'not base64!' } },
  }));
  t.is(code, 400);
  t.is(status.reason, 'BadRequest');
  t.is(status.message, 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3');
});

test('create of an existing name is 409 AlreadyExists', async (t) => {
  await core.createNamespacedSecret({ namespace: NS, body: secret('dup') });
  const { code, status } = await failure(core.createNamespacedSecret({ namespace: NS, body: secret('dup') }));
  t.is(code, 409);
  t.like(status, { reason: 'AlreadyExists', message: 'secrets "dup" already exists', details: { name: 'dup', kind: 'secrets' } });
});

test('update with a stale resourceVersion is 409 Conflict; without one it is unconditional', async (t) => {
  const v1 = await core.createNamespacedSecret({ namespace: NS, body: secret('occ') });
  const v2 = await core.replaceNamespacedSecret({ name: 'occ', namespace: NS, body: { metadata: v1.metadata, data: { a: 'YQ==' } } });
  const { code, status } = await failure(core.replaceNamespacedSecret({ name: 'occ', namespace: NS, body: { metadata: v1.metadata, data: { b: 'Yg==' } } }));
  t.is(code, 409);
  t.like(status, {
    reason: 'Conflict',
    message: 'Operation cannot be fulfilled on secrets "occ": the object has been modified; please apply your changes to the latest version and try again',
    details: { name: 'occ', kind: 'secrets' },
  });
  const blind = await core.replaceNamespacedSecret({
    name: 'occ',
    namespace: NS,
    body: { metadata: { name: 'occ', namespace: NS }, data: { c: 'Yw==' } },
  });
  t.true(Number(blind.metadata?.resourceVersion) > Number(v2.metadata?.resourceVersion));
  t.deepEqual(blind.data, { c: 'Yw==' });
  t.is(blind.metadata?.uid, v1.metadata?.uid);
});

test('an update that changes nothing keeps the resourceVersion', async (t) => {
  const created = await core.createNamespacedSecret({ namespace: NS, body: secret('noop') });
  const again = await core.replaceNamespacedSecret({ name: 'noop', namespace: NS, body: created });
  t.is(again.metadata?.resourceVersion, created.metadata?.resourceVersion);
});

test('patch: merge, JSON patch and strategic merge with kubectl directives', async (t) => {
  await core.createNamespacedSecret({ namespace: NS, body: secret('patched', { metadata: { name: 'patched', finalizers: ['a/one', 'a/two'] } }) });
  const merged = await core.patchNamespacedSecret(
    { name: 'patched', namespace: NS, body: { metadata: { labels: { tier: 'x', app: null } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  t.deepEqual(merged.metadata?.labels, { tier: 'x' });

  const jsonPatched = await core.patchNamespacedSecret(
    { name: 'patched', namespace: NS, body: [{ op: 'add', path: '/data/k2', value: 'djI=' }] },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
  );
  t.is(jsonPatched.data?.k2, 'djI=');

  const failed = await failure(core.patchNamespacedSecret(
    { name: 'patched', namespace: NS, body: [{ op: 'test', path: '/type', value: 'Other' }] },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
  ));
  t.is(failed.code, 422);

  const strategic = await core.patchNamespacedSecret(
    {
      name: 'patched',
      namespace: NS,
      body: {
        $setElementOrder: 'ignored',
        metadata: { '$deleteFromPrimitiveList/finalizers': ['a/one'], finalizers: ['a/three'] },
        data: { k2: null },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  t.deepEqual(strategic.metadata?.finalizers, ['a/two', 'a/three']);
  t.is(strategic.data?.k2, undefined);
  await core.patchNamespacedSecret(
    { name: 'patched', namespace: NS, body: { metadata: { finalizers: null } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
});

test('server-side apply creates, then merges', async (t) => {
  const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ssa', namespace: NS }, stringData: { a: '1' } };
  const missingManager = await failure(core.patchNamespacedSecret({ name: 'ssa', namespace: NS, body }, apply));
  t.is(missingManager.code, 400);
  const created = await core.patchNamespacedSecret({ name: 'ssa', namespace: NS, body, fieldManager: 'test' }, apply);
  t.is(created.data?.a, 'MQ==');
  const merged = await core.patchNamespacedSecret(
    { name: 'ssa', namespace: NS, body: { ...body, stringData: { b: '2' } }, fieldManager: 'test' },
    apply,
  );
  t.deepEqual(merged.data, { a: 'MQ==', b: 'Mg==' });
});

test('list: selectors, all namespaces and paging', async (t) => {
  for (const [name, tier] of [['sel-1', 'a'], ['sel-2', 'b'], ['sel-3', 'b']] as const) {
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name, labels: { sel: 'yes', tier } }, type: tier === 'a' ? 'kmesh/a' : 'Opaque' } });
  }
  const names = (l: { items: V1Secret[] }): string[] => l.items.map((s) => s.metadata?.name ?? '');
  t.deepEqual(names(await core.listNamespacedSecret({ namespace: 'default', labelSelector: 'sel=yes,tier in (b)' })), ['sel-2', 'sel-3']);
  t.deepEqual(names(await core.listNamespacedSecret({ namespace: 'default', labelSelector: 'sel,tier!=b' })), ['sel-1']);
  t.deepEqual(names(await core.listSecretForAllNamespaces({ fieldSelector: 'metadata.name=sel-3,metadata.namespace=default' })), ['sel-3']);
  t.deepEqual(names(await core.listNamespacedSecret({ namespace: 'default', fieldSelector: 'type=kmesh/a' })), ['sel-1']);
  const bad = await failure(core.listNamespacedSecret({ namespace: 'default', fieldSelector: 'spec.x=1' }));
  t.is(bad.code, 400);
  t.is(bad.status.message, 'field label not supported: spec.x');

  const page1 = await core.listNamespacedSecret({ namespace: 'default', labelSelector: 'sel=yes', limit: 2 });
  t.deepEqual(names(page1), ['sel-1', 'sel-2']);
  t.is(page1.metadata?.remainingItemCount, 1);
  const page2 = await core.listNamespacedSecret({ namespace: 'default', labelSelector: 'sel=yes', limit: 2, _continue: page1.metadata?._continue ?? '' });
  t.deepEqual(names(page2), ['sel-3']);
  t.is(page2.metadata?._continue, undefined);
});

test('typed lists carry no apiVersion/kind on items, custom resource lists do', async (t) => {
  await core.createNamespacedSecret({ namespace: NS, body: secret('typed-list') });
  await double.store.put({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'typed-list', namespace: NS } });
  const secrets = (await rawRequest(double, 'GET', `/api/v1/namespaces/${NS}/secrets`)).json() as { kind: string; items: Array<Record<string, unknown>> };
  t.is(secrets.kind, 'SecretList');
  t.false(secrets.items.some((i) => 'kind' in i || 'apiVersion' in i));
  const knis = (await rawRequest(double, 'GET', `/apis/${KNI_GROUP}/${KNI_VERSION}/${KNI_PLURAL}`)).json() as { kind: string; items: Array<Record<string, unknown>> };
  t.is(knis.kind, 'KmeshNodeInfoList');
  t.true(knis.items.every((i) => i.kind === 'KmeshNodeInfo' && i.apiVersion === 'kmesh.net/v1alpha1'));
});

test('discovery, version and OpenAPI documents', async (t) => {
  const get = async (path: string, accept?: string) => rawRequest(double, 'GET', path, accept === undefined ? {} : { headers: { Accept: accept } });
  t.like((await get('/version')).json(), { major: '1', minor: '32' });
  t.like((await get('/api')).json(), { kind: 'APIVersions', versions: ['v1'] });
  const core1 = (await get('/api/v1')).json() as { resources: Array<{ name: string; namespaced: boolean }> };
  t.true(core1.resources.some((r) => r.name === 'secrets' && r.namespaced));
  const groups = (await get('/apis')).json() as { groups: Array<{ name: string }> };
  t.deepEqual(groups.groups.map((g) => g.name).sort(), ['admissionregistration.k8s.io', 'kmesh.net', 'rbac.authorization.k8s.io']);
  t.like((await get(`/apis/${KNI_GROUP}/${KNI_VERSION}`)).json(), { groupVersion: 'kmesh.net/v1alpha1', resources: [{ name: 'kmeshnodeinfos', kind: 'KmeshNodeInfo', namespaced: true }] });
  const aggregated = await get('/apis', 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json');
  t.is(aggregated.headers['content-type'], 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
  t.like(aggregated.json(), { kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2' });
  const index = (await get('/openapi/v3')).json() as { paths: Record<string, { serverRelativeURL: string }> };
  const kniDoc = (await get(index.paths['apis/kmesh.net/v1alpha1']?.serverRelativeURL ?? '/missing')).json() as { paths: Record<string, { patch?: { parameters: Array<{ name: string }> } }> };
  const patchOp = kniDoc.paths['/apis/kmesh.net/v1alpha1/namespaces/{namespace}/kmeshnodeinfos/{name}']?.patch;
  t.true(patchOp?.parameters.some((p) => p.name === 'fieldValidation'));
  const unknown = await get('/apis/kmesh.net/v1alpha1/namespaces/default/nothings');
  t.is(unknown.status, 404);
  t.like(unknown.json(), { kind: 'Status', reason: 'NotFound', message: 'the server could not find the requested resource' });
});

test('kmeshnodeinfos through CustomObjectsApi: CRUD, generation, cluster-wide list', async (t) => {
  const body = {
    apiVersion: `${KNI_GROUP}/${KNI_VERSION}`,
    kind: 'KmeshNodeInfo',
    metadata: { name: 'node-a' },
    spec: { spi: 1, nicIPs: ['10.0.0.1'], bootID: 'b1', podCIDRs: ['10.244.0.0/24'] },
  };
  const coords = { group: KNI_GROUP, version: KNI_VERSION, plural: KNI_PLURAL, namespace: NS };
  const created = await custom.createNamespacedCustomObject({ ...coords, body }) as typeof body & { metadata: { generation: number; resourceVersion: string } };
  t.is(created.metadata.generation, 1);
  const labelled = await custom.patchNamespacedCustomObject(
    { ...coords, name: 'node-a', body: { metadata: { labels: { a: 'b' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  ) as typeof created;
  t.is(labelled.metadata.generation, 1, 'metadata-only changes do not bump generation');
  const bumped = await custom.patchNamespacedCustomObject(
    { ...coords, name: 'node-a', body: { spec: { spi: 2 } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  ) as typeof created;
  t.is(bumped.metadata.generation, 2);
  t.is(bumped.spec.spi, 2);

  const all = await custom.listClusterCustomObject({ group: KNI_GROUP, version: KNI_VERSION, plural: KNI_PLURAL }) as { items: Array<typeof body> };
  t.true(all.items.some((i) => i.metadata.name === 'node-a' && i.kind === 'KmeshNodeInfo'));

  const deleted = await custom.deleteNamespacedCustomObject({ ...coords, name: 'node-a' }) as Status;
  t.like(deleted, { kind: 'Status', status: 'Success', details: { name: 'node-a', group: KNI_GROUP, kind: KNI_PLURAL } });
  const missing = await failure(custom.getNamespacedCustomObject({ ...coords, name: 'node-a' }));
  t.is(missing.status.message, 'kmeshnodeinfos.kmesh.net "node-a" not found');
});

test('dryRun=All validates but stores nothing', async (t) => {
  const dry = await core.createNamespacedSecret({ namespace: NS, body: secret('dry'), dryRun: 'All' });
  t.truthy(dry.metadata?.uid);
  t.is(dry.metadata?.resourceVersion, undefined);
  t.is(double.store.get('secrets', NS, 'dry'), undefined);
  await core.createNamespacedSecret({ namespace: NS, body: secret('dry') });
  await core.deleteNamespacedSecret({ name: 'dry', namespace: NS, dryRun: 'All' });
  t.truthy(double.store.get('secrets', NS, 'dry'));
});

test('writes into a missing namespace are 404; invalid names are 422 with causes', async (t) => {
  const noNs = await failure(core.createNamespacedSecret({ namespace: 'nope', body: secret('x') }));
  t.like(noNs, { code: 404, status: { reason: 'NotFound', message: 'namespaces "nope" not found' } });
  const invalid = await failure(core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'Bad_Name' }, data: { 'a b': 'YQ==' } } }));
  t.is(invalid.code, 422);
  t.is(invalid.status.reason, 'Invalid');
  t.regex(invalid.status.message ?? '', /^Secret "Bad_Name" is invalid: \[metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
  t.deepEqual(invalid.status.details?.causes?.map((c) => c.field), ['metadata.name', 'data[a b]']);
  t.is(invalid.status.details?.kind, 'Secret');
});

test('generateName and finalizers behave like the registry', async (t) => {
  const generated = await core.createNamespacedSecret({ namespace: NS, body: { metadata: { generateName: 'gen-', finalizers: ['test/hold'] } } });
  const name = generated.metadata?.name ?? '';
  t.regex(name, /^gen-[a-z0-9]{5}$/);
  // client-node would read the answer as a V1Status, so look at the wire.
  const held = await rawRequest(double, 'DELETE', `/api/v1/namespaces/${NS}/secrets/${name}`);
  t.is(held.status, 200);
  t.like(held.json(), { kind: 'Secret', metadata: { name, finalizers: ['test/hold'] } });
  t.truthy(double.store.get('secrets', NS, name)?.metadata.deletionTimestamp, 'finalizers hold the object');
  await core.patchNamespacedSecret(
    { name, namespace: NS, body: { metadata: { finalizers: null } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  t.is(double.store.get('secrets', NS, name), undefined, 'removing the last finalizer completes deletion');
});

test('authentication: missing or unknown token is 401, authorizer denials are 403', async (t) => {
  const noToken = kubeConfigFor(double);
  const user = noToken.getCurrentUser();
  if (user !== null) Object.assign(user, { token: undefined });
  const anonymous = await failure(noToken.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: NS }));
  t.is(anonymous.code, 401);
  const wrong = kubeConfigFor(double);
  const wrongUser = wrong.getCurrentUser();
  if (wrongUser !== null) Object.assign(wrongUser, { token: 'not-a-token' });
  const unknown = await failure(wrong.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: NS }));
  t.is(unknown.code, 401);

  const raw = await rawRequest(double, 'GET', '/api/v1/namespaces', { token: null });
  t.is(raw.status, 401);
  t.deepEqual(raw.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });

  const viewer = kubeConfigFor(double, 'viewer').makeApiClient(CoreV1Api);
  await viewer.listNamespacedSecret({ namespace: NS });
  const denied = await failure(viewer.createNamespacedSecret({ namespace: NS, body: secret('viewer') }));
  t.is(denied.code, 403);
  t.is(denied.status.message, 'secrets is forbidden: User "viewer" cannot create resource "secrets" in API group "" in the namespace "kmesh-system"');
});

test('namespaces: labelled with their name, deletion takes their contents along', async (t) => {
  const ns = await core.createNamespace({ body: { metadata: { name: 'doomed-ns' } } });
  t.is(ns.metadata?.labels?.['kubernetes.io/metadata.name'], 'doomed-ns');
  t.is(ns.status?.phase, 'Active');
  await core.createNamespacedSecret({ namespace: 'doomed-ns', body: { metadata: { name: 'inside' } } });
  const deleted = await rawRequest(double, 'DELETE', '/api/v1/namespaces/doomed-ns');
  t.like(deleted.json(), { kind: 'Namespace', metadata: { name: 'doomed-ns' } });
  t.is(double.store.get('secrets', 'doomed-ns', 'inside'), undefined);
});

test('strategic merge patch is refused for custom resources with 415', async (t) => {
  await double.store.put({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'smp', namespace: NS } });
  const refused = await failure(custom.patchNamespacedCustomObject(
    { group: KNI_GROUP, version: KNI_VERSION, plural: KNI_PLURAL, namespace: NS, name: 'smp', body: { spec: { spi: 1 } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  ));
  t.is(refused.code, 415);
  t.is(refused.status.reason, 'UnsupportedMediaType');
});

test('store API: put without admission, onChange and waitFor', async (t) => {
  const seen: string[] = [];
  const off = double.store.onChange((e) => seen.push(`${e.type} ${e.resource} ${e.object.metadata.name ?? ''}`));
  const waiting = double.store.waitFor('kmeshnodeinfos.kmesh.net', (o) => o.metadata.name === 'from-store');
  await double.store.put({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'from-store', namespace: NS }, spec: { spi: 3 } });
  const found = await waiting;
  t.is(found.metadata.generation, 1);
  await double.store.delete('kmeshnodeinfos.kmesh.net', NS, 'from-store');
  off();
  t.deepEqual(seen.filter((s) => s.endsWith('from-store')), [
    'ADDED kmeshnodeinfos.kmesh.net from-store',
    'DELETED kmeshnodeinfos.kmesh.net from-store',
  ]);
  const viaHttp = await failure(custom.getNamespacedCustomObject({ group: KNI_GROUP, version: KNI_VERSION, plural: KNI_PLURAL, namespace: NS, name: 'from-store' }));
  t.is(viaHttp.code, 404);
});
