/**
 * KubeClusterView against the Kubernetes API test double: the KmeshNodeInfo informer syncs,
 * follows changes, survives dropped watches and compacted history, fails closed while the API
 * refuses it and recovers afterwards; Node facts come from GETs.
 */
import test from 'ava';
import { pino } from 'pino';
import { KubeClusterView } from '../../webhook/kube-cluster-view.js';
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
const access = { allowed: true };

test.before(async () => {
  double = await startLocalApi({
    authorizer: () => access.allowed || 'the test revoked access',
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
  const facts = await view.nodeFacts('node-a', AbortSignal.timeout(2000));
  t.false(facts.synced);
  access.allowed = true;
  t.true(await eventually(() => view.ready()), 'recovered');
  t.deepEqual(spis(), [2]);
});

test.serial('Node facts come from a GET: InternalIPs and pod CIDRs only; a missing Node is undefined', async (t) => {
  const facts = await view.nodeFacts('node-a', AbortSignal.timeout(2000));
  t.deepEqual(facts, { synced: true, value: { name: 'node-a', internalIPs: ['10.0.0.1'], podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } });
  t.deepEqual(await view.nodeFacts('ghost', AbortSignal.timeout(2000)), { synced: true, value: undefined });
});
