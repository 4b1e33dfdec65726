/**
 * KubeClusterView against the Kubernetes API test double: the KmeshNodeInfo informer syncs,
 * follows changes, survives dropped watches and compacted history, fails closed while the API
 * refuses it and recovers afterwards; Node facts come from a Node cache that keeps only them,
 * with a GET for a Node the cache does not hold (and for every Node when it may not list them).
 */
import test from 'ava';
import { pino } from 'pino';
import { KubeClusterView, nodeFactsOnly } from '../../webhook/kube-cluster-view.js';
import { eventually } from '../helpers/eventually.js';
import { kubeConfigFor } from '../localapi/clients.js';
import { type LocalApi, startLocalApi } from '../../localapi/index.js';

const BOOT = '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b';
const kni = (name: string, spi: number, ip: string) => ({
  apiVersion: 'kmesh.net/v1alpha1',
  kind: 'KmeshNodeInfo',
  metadata: { name, namespace: 'kmesh-system' },
  spec: { spi, addresses: [ip], bootID: BOOT, podCIDRS: [] },
});

let double: LocalApi;
let view: KubeClusterView;
const access = { allowed: true, listNodes: true };
/** Node GETs the API answered or refused, by name. */
const nodeGets: string[] = [];

test.before(async () => {
  double = await startLocalApi({
    authorizer: (r) => {
      if (r.resource === 'nodes' && r.verb === 'get') nodeGets.push(r.name);
      if (r.resource === 'nodes' && r.verb !== 'get' && !access.listNodes) return 'the test allows get on nodes only';
      return access.allowed || 'the test revoked access';
    },
    objects: [
      kni('node-a', 2, '10.0.0.1'),
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }, { type: 'ExternalIP', address: '203.0.113.1' }] } },
    ],
  });
  view = new KubeClusterView(kubeConfigFor(double), { logger: pino({ level: 'silent' }), minBackoffMs: 50, maxBackoffMs: 200, relistIntervalMs: 400 });
  view.start();
});

test.after.always(async () => {
  await view.stop();
  await double.close();
});

const spis = (): number[] => {
  const n = view.nodeInfos();
  return n.synced ? n.value.map((i) => i.spi ?? -1).sort((a, b) => a - b) : [];
};

test.serial('syncs from a list, then follows the watch', async (t) => {
  t.true(await eventually(() => view.ready()));
  t.deepEqual(spis(), [2]);
  await double.store.put(kni('node-b', 5, '10.0.0.2'));
  t.true(await eventually(() => spis().join() === '2,5'), `saw ${spis().join()}`);
  await double.store.delete('kmeshnodeinfos.kmesh.net', 'kmesh-system', 'node-b');
  t.true(await eventually(() => spis().join() === '2'));
});

test.serial('dropped watches and compacted history (410 → relist) lose nothing', async (t) => {
  double.closeWatches();
  await double.store.put(kni('node-c', 7, '10.0.0.3'));
  t.true(await eventually(() => spis().join() === '2,7'));
  double.compactHistory();
  await double.store.delete('kmeshnodeinfos.kmesh.net', 'kmesh-system', 'node-c');
  double.closeWatches();
  t.true(await eventually(() => spis().join() === '2'), `saw ${spis().join()}`);
});

test.serial('stays synced across periodic relists', async (t) => {
  let flips = 0;
  const end = Date.now() + 1500;
  while (Date.now() < end) {
    if (!view.ready()) flips++;
    await new Promise((r) => setTimeout(r, 10));
  }
  t.is(flips, 0, 'a relist swaps informers without an unsynced gap');
  t.deepEqual(spis(), [2]);
});

test.serial('while the API refuses the informer, it reports not synced (fail closed), then recovers', async (t) => {
  access.allowed = false;
  double.closeWatches();
  t.true(await eventually(() => !view.ready()), 'lost sync');
  const state = view.nodeInfos();
  t.false(state.synced);
  if (!state.synced) t.regex(state.reason, /the KmeshNodeInfo watch failed \(HTTP 403\); reconnecting/);
  const facts = await view.nodeFacts('node-z', 2000);
  t.false(facts.synced, 'a Node the cache does not hold is read with a GET, which the API refuses');
  access.allowed = true;
  t.true(await eventually(() => view.ready()), 'recovered');
  t.deepEqual(spis(), [2]);
});

const nodeObject = (name: string, ip: string) => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name },
  spec: { podCIDRs: ['10.244.9.0/24'] },
  status: { addresses: [{ type: 'InternalIP', address: ip }], images: [{ names: ['registry.example/big@sha256:00'], sizeBytes: 1 }] },
});

test.serial('Node facts come from the Node cache, InternalIPs and pod CIDRs only, without a request; it follows changes', async (t) => {
  t.true(await eventually(() => view.ready()));
  t.true(await eventually(() => view.nodeFactsCached('node-a') !== undefined), 'the Node cache synced');
  const gets = nodeGets.length;
  for (let i = 0; i < 20; i++) {
    const facts = await view.nodeFacts('node-a', 2000);
    t.deepEqual(facts, { synced: true, value: { name: 'node-a', internalIPs: ['10.0.0.1'], podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } });
  }
  t.is(nodeGets.length, gets, '20 admissions, no Node GET');
  await double.store.put(nodeObject('node-n', '10.0.0.9'));
  t.true(await eventually(() => nodeGets.length === gets && JSON.stringify(view.nodeFactsCached('node-n')) === JSON.stringify({ name: 'node-n', internalIPs: ['10.0.0.9'], podCIDRs: ['10.244.9.0/24'] })), 'a new Node arrives through the watch');
  await double.store.put(nodeObject('node-n', '10.0.0.10'));
  t.true(await eventually(() => view.nodeFactsCached('node-n')?.internalIPs[0] === '10.0.0.10'), 'and so do its changes');
});

test.serial('a Node the cache does not hold is read with a GET; a missing Node is undefined', async (t) => {
  const gets = nodeGets.length;
  t.deepEqual(await view.nodeFacts('ghost', 2000), { synced: true, value: undefined });
  t.deepEqual(nodeGets.slice(gets), ['ghost']);
});

test.serial('with get but no list on nodes, every Node is read with a GET', async (t) => {
  access.listNodes = false;
  const getOnly = new KubeClusterView(kubeConfigFor(double), { logger: pino({ level: 'silent' }), minBackoffMs: 50, maxBackoffMs: 200 });
  getOnly.start();
  try {
    t.true(await eventually(() => getOnly.ready()));
    const gets = nodeGets.length;
    t.deepEqual(await getOnly.nodeFacts('node-a', 2000), { synced: true, value: { name: 'node-a', internalIPs: ['10.0.0.1'], podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } });
    t.deepEqual(nodeGets.slice(gets), ['node-a']);
  } finally {
    access.listNodes = true;
    await getOnly.stop();
  }
});

test('nodeFactsOnly keeps identity, InternalIPs and pod CIDRs of a Node', (t) => {
  const big = { ...nodeObject('n', '10.1.1.1'), metadata: { name: 'n', resourceVersion: '7', uid: 'u', labels: { a: 'b' } } };
  big.status.addresses.push({ type: 'Hostname', address: 'n' });
  t.deepEqual(nodeFactsOnly(big as never), {
    metadata: { name: 'n', namespace: undefined, resourceVersion: '7', uid: 'u' },
    spec: { podCIDR: undefined, podCIDRs: ['10.244.9.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '10.1.1.1' }] },
  });
});
