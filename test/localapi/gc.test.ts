// Garbage collection of ownerReferences: what a Node's deletion does to the KmeshNodeInfo it
// owns, with background propagation (the default), Orphan, and a second owner.
import test from 'ava';
import { CoreV1Api, CustomObjectsApi, type V1Node } from '@kubernetes/client-node';
import { KNI_GROUP, KNI_KIND, KNI_PLURAL, KNI_VERSION } from '../../core/constants.js';
import { apiFailure } from './api-failure.js';
import { kubeConfigFor, rawRequest } from './clients.js';
import { startLocalApi, type LocalApi, type KubeObject } from '../../localapi/index.js';
import { kubectl } from './kubectl.js';
import { startWebhookServer, type TestWebhookServer } from './webhook-server.js';

const NS = 'kmesh-system';
const KNI = 'kmeshnodeinfos.kmesh.net';
let double: LocalApi;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let hook: TestWebhookServer;

test.before(async () => {
  double = await startLocalApi();
  const kc = kubeConfigFor(double);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  hook = await startWebhookServer({ handler: () => ({ allowed: true }) });
  await double.store.put({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'kni-deletions' },
    webhooks: [{
      name: 'kni-deletions.kmesh.net',
      clientConfig: { url: hook.url('/delete'), caBundle: hook.caBundle },
      rules: [{ operations: ['DELETE'], apiGroups: [KNI_GROUP], apiVersions: [KNI_VERSION], resources: [KNI_PLURAL] }],
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
    }],
  });
});

test.after.always(async () => {
  await hook.close();
  await double.close();
});

async function node(name: string): Promise<V1Node> {
  return core.createNode({ body: { metadata: { name } } });
}

const ownedBy = (...owners: V1Node[]) => owners.map((n) => ({ apiVersion: 'v1', kind: 'Node', name: n.metadata?.name ?? '', uid: n.metadata?.uid ?? '' }));

async function nodeInfo(name: string, ownerReferences: ReturnType<typeof ownedBy>): Promise<KubeObject> {
  return await custom.createNamespacedCustomObject({
    group: KNI_GROUP, version: KNI_VERSION, namespace: NS, plural: KNI_PLURAL,
    body: { apiVersion: `${KNI_GROUP}/${KNI_VERSION}`, kind: KNI_KIND, metadata: { name, ownerReferences }, spec: { spi: 1 } },
  }) as KubeObject;
}

test.serial('deleting a Node deletes the KmeshNodeInfo it owns, through the API as the garbage collector', async (t) => {
  const a = await node('gc-a');
  const b = await node('gc-b');
  await nodeInfo('gc-a', ownedBy(a));
  await nodeInfo('gc-b', ownedBy(b));
  hook.received.length = 0;
  await core.deleteNode({ name: 'gc-a' });
  await double.store.waitForGone(KNI, NS, 'gc-a');
  t.truthy(double.store.get(KNI, NS, 'gc-b'), 'objects of other owners stay');
  const review = hook.received[0]?.review.request;
  t.like(review, { operation: 'DELETE', name: 'gc-a', userInfo: { username: 'system:serviceaccount:kube-system:generic-garbage-collector' } });
  t.like(review?.options, { kind: 'DeleteOptions', propagationPolicy: 'Background' });
});

test.serial('propagationPolicy Orphan keeps dependents and only drops their reference', async (t) => {
  const c = await node('gc-c');
  await nodeInfo('gc-c', ownedBy(c));
  // client-node types this answer as a Status, so read the wire: it is the terminating Node.
  const body = JSON.stringify({ propagationPolicy: 'Orphan' });
  const answer = await rawRequest(double, 'DELETE', '/api/v1/nodes/gc-c', { body, headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } });
  t.is(answer.status, 200);
  t.like(answer.json(), { kind: 'Node', metadata: { name: 'gc-c', finalizers: ['orphan'] } }, 'the owner waits for the collector');
  await double.store.waitForGone('nodes', undefined, 'gc-c');
  const orphan = double.store.get(KNI, NS, 'gc-c');
  t.truthy(orphan);
  t.is(orphan?.metadata.ownerReferences, undefined);
});

test.serial('a dependent with another live owner loses only the dangling reference', async (t) => {
  const d = await node('gc-d');
  const e = await node('gc-e');
  await nodeInfo('gc-shared', ownedBy(d, e));
  const result = await kubectl(double, ['delete', 'node', 'gc-d']);
  t.is(result.code, 0, result.stderr);
  const kept = await double.store.waitFor(KNI, (o) => o.metadata.name === 'gc-shared' && (o.metadata.ownerReferences as unknown[] | undefined)?.length === 1);
  t.deepEqual(kept.metadata.ownerReferences, ownedBy(e));
  // An owner re-created under the same name is another object (new uid): no resurrection.
  await node('gc-d');
  await core.deleteNode({ name: 'gc-e' });
  await double.store.waitForGone(KNI, NS, 'gc-shared');
  t.pass();
});

test('references are validated, and so is the propagation policy', async (t) => {
  const bad = await apiFailure(nodeInfo('gc-bad', [{ apiVersion: 'v1', kind: 'Node', name: 'x', uid: '' }]));
  t.is(bad.code, 422);
  t.is(bad.status.message, `${KNI_KIND}.${KNI_GROUP} "gc-bad" is invalid: metadata.ownerReferences.uid: Invalid value: "": uid must not be empty`);
  await node('gc-f');
  const policy = await apiFailure(core.deleteNode({ name: 'gc-f', propagationPolicy: 'Sometimes' }));
  t.is(policy.code, 422);
  t.is(policy.status.message, 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sometimes": supported values: "Foreground", "Background", "Orphan", "nil"');
  t.truthy(double.store.get('nodes', undefined, 'gc-f'));
});
