// core/v1 Events about a Node (what the node plugin reports) and ConfigMaps, through
// client-node and kubectl (field selectors, tables, describe).
import test from 'ava';
import { CoreV1Api, type CoreV1Event } from '@kubernetes/client-node';
import { apiFailure } from './api-failure.js';
import { kubeConfigFor } from './clients.js';
import { startLocalApi, type LocalApi } from '../../localapi/index.js';
import { kubectl } from './kubectl.js';

let double: LocalApi;
let core: CoreV1Api;

test.before(async () => {
  double = await startLocalApi({ objects: [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a' } }, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-b' } }] });
  core = kubeConfigFor(double).makeApiClient(CoreV1Api);
});

test.after.always(async () => {
  await double.close();
});

/** An event as client-go's recorder writes it for a cluster-scoped object: in "default". */
function nodeEvent(node: string, reason: string, type: 'Normal' | 'Warning', message: string): CoreV1Event {
  const uid = double.store.get('nodes', undefined, node)?.metadata.uid ?? '';
  const now = new Date();
  return {
    metadata: { name: `${node}.${reason.toLowerCase()}-${Math.random().toString(16).slice(2, 10)}` },
    involvedObject: { apiVersion: 'v1', kind: 'Node', name: node, uid },
    reason,
    type,
    message,
    source: { component: 'kmesh-ipsec-node', host: node },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

test.serial('events about a Node: created in default, selected by involvedObject, printed by kubectl', async (t) => {
  await core.createNamespacedEvent({ namespace: 'default', body: nodeEvent('node-a', 'KeyRotated', 'Normal', 'outbound SPI 3 -> 4') });
  await core.createNamespacedEvent({ namespace: 'default', body: nodeEvent('node-a', 'ReconcileFailed', 'Warning', 'xfrm: EEXIST') });
  await core.createNamespacedEvent({ namespace: 'default', body: nodeEvent('node-b', 'KeyRotated', 'Normal', 'outbound SPI 3 -> 4') });

  const warnings = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.kind=Node,involvedObject.name=node-a,type=Warning' });
  t.deepEqual(warnings.items.map((e) => e.reason), ['ReconcileFailed']);
  const uid = double.store.get('nodes', undefined, 'node-b')?.metadata.uid ?? '';
  // What kubectl describe node asks for.
  const forNodeB = await core.listEventForAllNamespaces({ fieldSelector: `involvedObject.name=node-b,involvedObject.namespace=,involvedObject.kind=Node,involvedObject.uid=${uid}` });
  t.deepEqual(forNodeB.items.map((e) => e.involvedObject.name), ['node-b']);

  const printed = await kubectl(double, ['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=node-a,reason=KeyRotated']);
  t.is(printed.code, 0, printed.stderr);
  t.regex(printed.stdout, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n\d+s\s+Normal\s+KeyRotated\s+node\/node-a\s+outbound SPI 3 -> 4\n$/);
  const wide = await kubectl(double, ['get', 'events', '-A', '-o', 'wide', '--field-selector', 'involvedObject.name=node-b']);
  t.regex(wide.stdout, /^NAMESPACE\s+LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+SUBOBJECT\s+SOURCE\s+MESSAGE\s+FIRST SEEN\s+COUNT\s+NAME\ndefault\s.*kmesh-ipsec-node, node-b\s.*\s1\s+node-b\.keyrotated-[0-9a-f]+\n$/);
  const described = await kubectl(double, ['describe', 'node', 'node-a']);
  t.is(described.code, 0, described.stderr);
  t.regex(described.stdout.split('\nEvents:')[1] ?? '', /\n\s+Normal\s+KeyRotated\s+\d+s\s+kmesh-ipsec-node\s+outbound SPI 3 -> 4\n\s+Warning\s+ReconcileFailed\s/);
  const unsupported = await kubectl(double, ['get', 'events', '-A', '--field-selector', 'involvedObject.bogus=x']);
  t.is(unsupported.code, 1);
  t.is(unsupported.stderr.trim(), 'Error from server (BadRequest): Unable to find "/v1, Resource=events" that match label selector "", field selector "involvedObject.bogus=x": field label not supported: involvedObject.bogus');
});

test('events about a cluster-scoped object must live in default; new-style events need their reporter', async (t) => {
  const misplaced = await apiFailure(core.createNamespacedEvent({ namespace: 'kmesh-system', body: nodeEvent('node-a', 'KeyRotated', 'Normal', 'x') }));
  t.is(misplaced.code, 422);
  t.regex(misplaced.status.message ?? '', /^Event "node-a\.keyrotated-[0-9a-f]+" is invalid: involvedObject\.namespace: Invalid value: "": does not match event\.namespace$/);
  // A new-style event (eventTime set) as an events.k8s.io-minded client would write it.
  const modern = nodeEvent('node-a', 'KeyRotated', 'Normal', 'x');
  modern.eventTime = new Date();
  delete modern.firstTimestamp;
  delete modern.lastTimestamp;
  delete modern.count;
  const unreported = await apiFailure(core.createNamespacedEvent({ namespace: 'default', body: modern }));
  t.regex(unreported.status.message ?? '', /is invalid: \[reportingComponent: Required value, reportingInstance: Required value, action: Required value\]$/);
  Object.assign(modern, { reportingComponent: 'kmesh-ipsec-node', reportingInstance: 'node-a', action: 'Rotate' });
  const reported = await core.createNamespacedEvent({ namespace: 'default', body: modern });
  t.is(reported.reportingComponent, 'kmesh-ipsec-node');
});

test('configmaps: kubectl apply and get, data keys validated, immutable honoured', async (t) => {
  const manifest = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kmesh-ipsec-stamp-jwks\n  namespace: kmesh-system\ndata:\n  jwks.json: \'{"keys":[]}\'\n';
  const created = await kubectl(double, ['apply', '-f', '-'], { input: manifest });
  t.is(created.code, 0, created.stderr);
  t.is(created.stdout.trim(), 'configmap/kmesh-ipsec-stamp-jwks created');
  const table = await kubectl(double, ['get', 'cm', '-n', 'kmesh-system']);
  t.regex(table.stdout, /^NAME\s+DATA\s+AGE\nkmesh-ipsec-stamp-jwks\s+1\s+\d+s\n$/);
  const badKey = await apiFailure(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'bad' }, data: { 'a b': 'x' } } }));
  t.is(badKey.code, 422);
  t.regex(badKey.status.message ?? '', /^ConfigMap "bad" is invalid: data\[a b\]: Invalid value: "a b": a valid config key must consist of/);
  await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'frozen' }, data: { a: '1' }, immutable: true } });
  const frozen = await apiFailure(core.replaceNamespacedConfigMap({ name: 'frozen', namespace: 'default', body: { metadata: { name: 'frozen' }, data: { a: '2' }, immutable: true } }));
  t.is(frozen.status.message, 'ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set');
});
