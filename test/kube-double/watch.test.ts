// WATCH semantics through client-node's Watch and informer against the double.
import test from 'ava';
import { CoreV1Api, makeInformer, Watch, type V1Secret } from '@kubernetes/client-node';
import { eventually } from '../helpers/eventually.js';
import { kubeConfigFor } from './clients.js';
import { startKubeDouble, type KubeDouble } from './index.js';

let double: KubeDouble;
let core: CoreV1Api;
let watcher: Watch;

test.before(async () => {
  double = await startKubeDouble({ namespaces: ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'], bookmarkIntervalMs: 150 });
  const kc = kubeConfigFor(double);
  core = kc.makeApiClient(CoreV1Api);
  watcher = new Watch(kc);
});

test.after.always(async () => {
  await double.close();
});

interface Seen {
  type: string;
  name: string;
  rv: string;
  object: Record<string, unknown> & { metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> } };
}

/** Watches `path` until `until` holds for the events so far (or the stream ends), then aborts. */
async function collect(path: string, params: Record<string, string | boolean>, until: (seen: Seen[]) => boolean, act: () => Promise<void> = () => Promise.resolve()): Promise<{ seen: Seen[]; ended: boolean }> {
  const seen: Seen[] = [];
  let ended = false;
  let resolveDone = (): void => undefined;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const controller = await watcher.watch(path, params, (type, obj: Seen['object']) => {
    seen.push({ type, name: obj.metadata?.name ?? '', rv: obj.metadata?.resourceVersion ?? '', object: obj });
    if (until(seen)) resolveDone();
  }, () => {
    ended = true;
    resolveDone();
  });
  await act();
  const timeout = setTimeout(resolveDone, 5000);
  await done;
  clearTimeout(timeout);
  controller.abort();
  return { seen, ended };
}

const secret = (name: string, labels: Record<string, string> = {}): V1Secret => ({ metadata: { name, labels }, stringData: { v: '1' } });

test('Watch resumes after a resourceVersion with ADDED, MODIFIED, DELETED', async (t) => {
  const start = (await core.listNamespacedSecret({ namespace: 'w1' })).metadata?.resourceVersion ?? '';
  await core.createNamespacedSecret({ namespace: 'w1', body: secret('a') });
  const { seen } = await collect('/api/v1/namespaces/w1/secrets', { resourceVersion: start }, (s) => s.some((e) => e.type === 'DELETED'), async () => {
    await core.patchNamespacedSecret({ name: 'a', namespace: 'w1', body: [{ op: 'add', path: '/metadata/labels', value: { x: 'y' } }] });
    await core.deleteNamespacedSecret({ name: 'a', namespace: 'w1' });
  });
  t.deepEqual(seen.map((e) => `${e.type} ${e.name}`), ['ADDED a', 'MODIFIED a', 'DELETED a']);
  const rvs = seen.map((e) => Number(e.rv));
  t.true(rvs.every((rv, i) => i === 0 || rv > (rvs[i - 1] ?? 0)), 'each event carries a newer resourceVersion, deletion included');
  t.is(seen[0]?.object.kind, 'Secret', 'watch events carry apiVersion/kind');
});

test('Watch without resourceVersion starts with synthetic ADDED for existing objects', async (t) => {
  await core.createNamespacedSecret({ namespace: 'w2', body: secret('existing') });
  const { seen } = await collect('/api/v1/namespaces/w2/secrets', {}, (s) => s.length >= 2, async () => {
    await core.createNamespacedSecret({ namespace: 'w2', body: secret('later') });
  });
  t.deepEqual(seen.map((e) => `${e.type} ${e.name}`), ['ADDED existing', 'ADDED later']);
});

test('label-selected watch turns label changes into ADDED/DELETED', async (t) => {
  await core.createNamespacedSecret({ namespace: 'w3', body: secret('flip', { on: 'no' }) });
  const start = double.store.resourceVersion();
  const relabel = (value: string) => core.patchNamespacedSecret({ name: 'flip', namespace: 'w3', body: [{ op: 'replace', path: '/metadata/labels/on', value }] });
  const { seen } = await collect('/api/v1/namespaces/w3/secrets', { resourceVersion: start, labelSelector: 'on=yes' }, (s) => s.length >= 3, async () => {
    await relabel('yes');
    await core.patchNamespacedSecret({ name: 'flip', namespace: 'w3', body: [{ op: 'add', path: '/metadata/annotations', value: { a: 'b' } }] });
    await relabel('no');
  });
  t.deepEqual(seen.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);
});

test.serial('a compacted resourceVersion answers with an ERROR event carrying 410', async (t) => {
  const start = double.store.resourceVersion();
  await core.createNamespacedSecret({ namespace: 'w4', body: secret('compacted') });
  double.compactHistory();
  const { seen, ended } = await collect('/api/v1/namespaces/w4/secrets', { resourceVersion: start }, () => false);
  t.true(ended, 'the server ends the stream after the error');
  t.is(seen.length, 1);
  t.is(seen[0]?.type, 'ERROR');
  t.like(seen[0]?.object, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 });
  t.regex(String(seen[0]?.object.message), /^too old resource version: \d+ \(\d+\)$/);
});

test('timeoutSeconds ends the stream server-side', async (t) => {
  const started = Date.now();
  const { ended } = await collect('/api/v1/namespaces/w5/secrets', { timeoutSeconds: '1' }, () => false);
  t.true(ended);
  t.true(Date.now() - started < 2500);
});

test('bookmarks and sendInitialEvents', async (t) => {
  await core.createNamespacedSecret({ namespace: 'w5', body: secret('one') });
  const { seen } = await collect(
    '/api/v1/namespaces/w5/secrets',
    { allowWatchBookmarks: true, sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' },
    (s) => s.filter((e) => e.type === 'BOOKMARK').length >= 2,
  );
  t.is(seen[0]?.type, 'ADDED');
  t.is(seen[1]?.type, 'BOOKMARK');
  t.is(seen[1]?.object.metadata?.annotations?.['k8s.io/initial-events-end'], 'true');
  t.is(seen[2]?.type, 'BOOKMARK', 'periodic bookmark');
  t.regex(seen[2]?.rv ?? '', /^\d+$/);
});

test.serial('informer sees add, update and delete, and relists after 410', async (t) => {
  const kc = kubeConfigFor(double);
  const informer = makeInformer(kc, '/api/v1/namespaces/w6/secrets', () => core.listNamespacedSecret({ namespace: 'w6' }));
  const events: string[] = [];
  const waitFor = async (entry: string): Promise<void> => {
    if (!(await eventually(() => events.includes(entry), { intervalMs: 10 }))) throw new Error(`timed out waiting for ${entry}; saw ${events.join(', ')}`);
  };
  informer.on('add', (s) => events.push(`add ${s.metadata?.name ?? ''}`));
  informer.on('update', (s) => events.push(`update ${s.metadata?.name ?? ''} ${Object.keys(s.data ?? {}).join(',')}`));
  informer.on('delete', (s) => events.push(`delete ${s.metadata?.name ?? ''}`));
  informer.on('error', (err) => events.push(`error ${String(err)}`));
  await core.createNamespacedSecret({ namespace: 'w6', body: secret('pre') });
  await informer.start();
  await waitFor('add pre');

  await core.createNamespacedSecret({ namespace: 'w6', body: secret('live') });
  await waitFor('add live');
  await core.patchNamespacedSecret({ name: 'live', namespace: 'w6', body: [{ op: 'add', path: '/data/w', value: 'dw==' }] });
  await waitFor('update live v,w');
  await core.deleteNamespacedSecret({ name: 'live', namespace: 'w6' });
  await waitFor('delete live');

  // Drop the stream, change state while the informer is away, and compact that change: the
  // reconnecting watch gets 410 and the informer must relist to catch up.
  double.closeWatches();
  await double.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'missed', namespace: 'w6' } });
  double.compactHistory();
  await waitFor('add missed');
  t.deepEqual(events, ['add pre', 'add live', 'update live v,w', 'delete live', 'add missed']);
  t.truthy(informer.get('missed', 'w6'));
  await informer.stop();
});
