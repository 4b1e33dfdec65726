// Pods and Nodes as the node plugin sees them: an informer on its node's pods (field selector
// spec.nodeName), selector transitions, the status subresource, immutability, kubectl tables.
import test from 'ava';
import { CoreV1Api, ListWatch, PatchStrategy, Watch, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { eventually } from '../helpers/eventually.js';
import { apiFailure } from './api-failure.js';
import { kubeConfigFor } from './clients.js';
import { startKubeDouble, type KubeDouble } from './index.js';
import { kubectl } from './kubectl.js';

let double: KubeDouble;
let core: CoreV1Api;

test.before(async () => {
  double = await startKubeDouble({
    namespaces: ['apps', 'other'],
    objects: [
      {
        apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', labels: { 'node-role.kubernetes.io/control-plane': '' } },
        spec: { podCIDRs: ['10.244.1.0/24'] },
        status: {
          conditions: [{ type: 'Ready', status: 'True' }],
          addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
          nodeInfo: { kubeletVersion: 'v1.32.0' },
        },
      },
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-b' }, spec: { unschedulable: true }, status: { conditions: [{ type: 'Ready', status: 'False' }] } },
    ],
  });
  core = kubeConfigFor(double).makeApiClient(CoreV1Api);
});

test.after.always(async () => {
  await double.close();
});

const pod = (name: string, nodeName: string, namespace = 'apps'): V1Pod => ({
  metadata: { name, namespace, labels: { app: name } },
  spec: { nodeName, containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.10' }] },
});
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const setPhase = (name: string, phase: string, namespace = 'apps') =>
  core.patchNamespacedPodStatus({ name, namespace, body: { status: { phase, podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }] } } }, merge);

async function until(what: () => boolean, label: () => string): Promise<void> {
  if (!(await eventually(what, { intervalMs: 10 }))) throw new Error(`timed out: ${label()}`);
}

test.serial('an informer on spec.nodeName sees its node\'s pods come, change and go, and nothing else', async (t) => {
  await core.createNamespacedPod({ namespace: 'apps', body: pod('here-1', 'node-a') });
  await core.createNamespacedPod({ namespace: 'other', body: pod('there-1', 'node-b', 'other') });
  const selector = 'spec.nodeName=node-a';
  const kc = kubeConfigFor(double);
  const informer = new ListWatch<V1Pod>('/api/v1/pods', new Watch(kc), () => core.listPodForAllNamespaces({ fieldSelector: selector }), false, undefined, selector);
  const events: string[] = [];
  const record = (what: string) => (p: V1Pod) => events.push(`${what} ${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''} ${p.status?.phase ?? ''}`);
  informer.on('add', record('add'));
  informer.on('update', record('update'));
  informer.on('delete', record('delete'));
  await informer.start();
  await until(() => events.length === 1, () => events.join(', '));

  await core.createNamespacedPod({ namespace: 'other', body: pod('here-2', 'node-a', 'other') });
  await core.createNamespacedPod({ namespace: 'apps', body: pod('there-2', 'node-b') });
  await setPhase('here-2', 'Running', 'other');
  await setPhase('there-2', 'Running');
  await core.deleteNamespacedPod({ name: 'here-1', namespace: 'apps' });
  await core.deleteNamespacedPod({ name: 'there-1', namespace: 'other' });
  await until(() => events.length === 4, () => events.join(', '));
  t.deepEqual(events, ['add apps/here-1 Pending', 'add other/here-2 Pending', 'update other/here-2 Running', 'delete apps/here-1 Pending']);
  t.deepEqual(informer.list().map((p) => p.metadata?.name), ['here-2']);
  await informer.stop();
});

test.serial('a watch selecting Running pods on a node reports pods entering and leaving the selection', async (t) => {
  await core.createNamespacedPod({ namespace: 'apps', body: pod('phases', 'node-a') });
  const from = double.store.resourceVersion();
  const seen: string[] = [];
  const controller = await new Watch(kubeConfigFor(double)).watch('/api/v1/pods', { resourceVersion: from, fieldSelector: 'spec.nodeName=node-a,status.phase=Running' }, (type, obj: V1Pod) => {
    seen.push(`${type} ${obj.status?.phase ?? ''}`);
  }, () => undefined);
  await setPhase('phases', 'Running');
  await core.patchNamespacedPod({ name: 'phases', namespace: 'apps', body: { metadata: { labels: { touched: 'yes' } } } }, merge);
  await setPhase('phases', 'Succeeded');
  await until(() => seen.length === 3, () => seen.join(', '));
  controller.abort();
  // Leaving the selection is a DELETED event carrying the last state that matched.
  t.deepEqual(seen, ['ADDED Running', 'MODIFIED Running', 'DELETED Running']);
});

test('pod status is written through pods/status only; the spec cannot move a pod', async (t) => {
  const body = pod('fixed', 'node-a');
  body.status = { phase: 'Running' };
  const created = await core.createNamespacedPod({ namespace: 'apps', body });
  t.is(created.status?.phase, 'Pending', 'create resets the status');
  const viaMain = await core.patchNamespacedPod({ name: 'fixed', namespace: 'apps', body: { status: { phase: 'Failed' } } }, merge);
  t.is(viaMain.status?.phase, 'Pending');
  t.is(viaMain.metadata?.resourceVersion, created.metadata?.resourceVersion);
  const viaStatus = await core.patchNamespacedPodStatus({
    name: 'fixed', namespace: 'apps',
    body: { metadata: { labels: { via: 'status' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: 'u' }] }, spec: { nodeName: 'node-b' }, status: { phase: 'Running' } },
  }, merge);
  t.is(viaStatus.status?.phase, 'Running');
  t.is(viaStatus.spec?.nodeName, 'node-a');
  t.is(viaStatus.metadata?.labels?.via, 'status', 'built-in status endpoints take metadata changes');
  t.is(viaStatus.metadata?.ownerReferences, undefined, 'but never ownerReferences');

  const moved = await apiFailure(core.patchNamespacedPod({ name: 'fixed', namespace: 'apps', body: { spec: { nodeName: 'node-b' } } }, merge));
  t.is(moved.code, 422);
  t.regex(moved.status.message ?? '', /^Pod "fixed" is invalid: spec: Forbidden: pod updates may not change fields other than `spec\.containers\[\*\]\.image`/);
  const image = await core.patchNamespacedPod({ name: 'fixed', namespace: 'apps', body: { spec: { containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9' }] } } }, strategic);
  t.is(image.spec?.containers[0]?.image, 'registry.k8s.io/pause:3.9');
  const empty = await apiFailure(core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'empty' }, spec: { containers: [] } } }));
  t.is(empty.status.message, 'Pod "empty" is invalid: spec.containers: Required value');
});

test('node status: kept on create and main writes, written by nodes/status', async (t) => {
  const node = await core.readNode({ name: 'node-a' });
  t.is(node.status?.addresses?.[0]?.address, '10.0.0.1', 'a kubelet creates its Node with status');
  await core.patchNode({ name: 'node-a', body: { status: { addresses: [] } } }, merge);
  t.is((await core.readNode({ name: 'node-a' })).status?.addresses?.length, 1);
  const written = await core.patchNodeStatus({ name: 'node-a', body: { spec: { podCIDRs: ['10.9.0.0/16'] }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.9' }] } } }, merge);
  t.is(written.status?.addresses?.[0]?.address, '10.0.0.9');
  t.deepEqual(written.spec?.podCIDRs, ['10.244.1.0/24']);
  await core.patchNodeStatus({ name: 'node-a', body: { status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] } } }, merge);
});

test('field selectors: supported ones filter, others are a 400 naming the field', async (t) => {
  await core.createNamespacedPod({ namespace: 'other', body: pod('sel', 'node-b', 'other') });
  const byName = await core.listPodForAllNamespaces({ fieldSelector: 'metadata.namespace=other,metadata.name=sel,status.phase=Pending' });
  t.deepEqual(byName.items.map((p) => p.metadata?.name), ['sel']);
  const nodes = await core.listNode({ fieldSelector: 'metadata.name=node-b' });
  t.deepEqual(nodes.items.map((n) => n.metadata?.name), ['node-b']);
  for (const [list, field] of [
    [core.listPodForAllNamespaces({ fieldSelector: 'spec.containers=x' }), 'spec.containers'],
    [core.listNode({ fieldSelector: 'metadata.namespace=default' }), 'metadata.namespace'],
  ] as const) {
    const bad = await apiFailure(list);
    t.is(bad.code, 400);
    t.is(bad.status.message, `field label not supported: ${field}`);
  }
});

test('kubectl get nodes and pods prints the server\'s columns', async (t) => {
  const nodes = await kubectl(double, ['get', 'nodes']);
  t.is(nodes.code, 0, nodes.stderr);
  t.regex(nodes.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nnode-a\s+Ready\s+control-plane\s+\d+s\s+v1\.32\.0\nnode-b\s+NotReady,SchedulingDisabled\s+<none>\s+\d+s\s+\n$/);
  const wide = await kubectl(double, ['get', 'nodes', 'node-a', '-o', 'wide']);
  t.regex(wide.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME\nnode-a\s.*\s10\.0\.0\.1\s+<none>\s+<unknown>/);
  await core.createNamespacedPod({ namespace: 'apps', body: pod('shown', 'node-a') });
  const pods = await kubectl(double, ['get', 'pods', '-n', 'apps', 'shown', '-o', 'wide']);
  t.is(pods.code, 0, pods.stderr);
  t.regex(pods.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\nshown\s+0\/1\s+Pending\s+0\s+\d+s\s+<none>\s+node-a\s+<none>\s+<none>\n$/);
  const selected = await kubectl(double, ['get', 'pods', '-A', '--field-selector', 'spec.nodeName=node-b', '-o', 'name']);
  t.is(selected.code, 0, selected.stderr);
  t.true(selected.stdout.split('\n').every((l) => l === '' || !l.includes('shown')));
});
