// Where the double listens and how it goes away: a chosen address and port with matching IP
// SANs (node plugins in other network namespaces), and suspend/resume as an API outage.
import test from 'ava';
import { connect, checkServerIdentity, type PeerCertificate } from 'node:tls';
import { CoreV1Api, CustomObjectsApi, makeInformer, type KubernetesObject, type KubernetesListObject } from '@kubernetes/client-node';
import { KNI_GROUP, KNI_KIND, KNI_PLURAL, KNI_VERSION } from '../../core/constants.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/free-port.js';
import { kubeConfigFor, rawRequest } from './clients.js';
import { startKubeDouble, type KubeObject } from './index.js';
import { kubectl } from './kubectl.js';

const NS = 'kmesh-system';

function peerCertificate(host: string, port: number, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    // Verification on: the connection only succeeds if the certificate names `host`.
    const socket = connect({ host, port, ca }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on('error', reject);
  });
}

test('listens on a given address and port, with the extra IP SANs in its certificate', async (t) => {
  const port = await freePort('127.0.0.2');
  const double = await startKubeDouble({ host: '127.0.0.2', port, ipAddresses: ['192.168.0.254'] });
  try {
    t.is(double.url, `https://127.0.0.2:${port}`);
    t.true(double.kubeconfig().includes(`server: https://127.0.0.2:${port}`));
    const ns = await kubeConfigFor(double).makeApiClient(CoreV1Api).readNamespace({ name: 'kmesh-system' });
    t.is(ns.metadata?.name, 'kmesh-system');
    const listed = await kubectl(double, ['get', 'namespace', 'kmesh-system', '-o', 'name']);
    t.is(listed.code, 0, listed.stderr);
    t.is(listed.stdout.trim(), 'namespace/kmesh-system');

    const cert = await peerCertificate('127.0.0.2', port, double.caPem);
    t.is(checkServerIdentity('192.168.0.254', cert), undefined, 'a client dialling the bridge address accepts it');
    t.truthy(checkServerIdentity('192.168.0.253', cert), 'and only the addresses asked for');
    await t.throwsAsync(rawRequest({ ...double, url: `https://127.0.0.1:${port}` }, 'GET', '/version'), { code: 'ECONNREFUSED' });
  } finally {
    await double.close();
  }
});

interface Kni extends KubernetesObject {
  spec: { spi: number };
}

test('suspend drops and refuses connections; after resume an informer catches up from its resourceVersion, or relists after 410', async (t) => {
  const double = await startKubeDouble();
  const kni = (name: string, spi: number): KubeObject => ({ apiVersion: `${KNI_GROUP}/${KNI_VERSION}`, kind: KNI_KIND, metadata: { name, namespace: NS }, spec: { spi } });
  await double.store.put(kni('before', 1));
  const kc = kubeConfigFor(double);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const path = `/apis/${KNI_GROUP}/${KNI_VERSION}/namespaces/${NS}/${KNI_PLURAL}`;
  let lists = 0;
  const informer = makeInformer<Kni>(kc, path, async () => {
    lists++;
    return await custom.listNamespacedCustomObject({ group: KNI_GROUP, version: KNI_VERSION, namespace: NS, plural: KNI_PLURAL }) as KubernetesListObject<Kni>;
  });
  const events: string[] = [];
  let errors = 0;
  informer.on('add', (o) => events.push(`add ${o.metadata?.name ?? ''} ${o.spec.spi}`));
  informer.on('update', (o) => events.push(`update ${o.metadata?.name ?? ''} ${o.spec.spi}`));
  informer.on('delete', (o) => events.push(`delete ${o.metadata?.name ?? ''}`));
  // What client-node's documentation asks of its users: restart after an error.
  let stopped = false;
  informer.on('error', () => {
    errors++;
    setTimeout(() => {
      if (!stopped) void informer.start();
    }, 50);
  });
  const until = async (what: () => boolean): Promise<void> => {
    if (!(await eventually(what, { intervalMs: 10 }))) throw new Error(`timed out; events: ${events.join(', ')}; errors: ${errors}`);
  };
  try {
    await informer.start();
    await until(() => events.length === 1);

    await double.suspend();
    await t.throwsAsync(rawRequest(double, 'GET', '/version'), { code: 'ECONNREFUSED' });
    await double.store.put(kni('during', 2));
    await double.store.put(kni('before', 3));
    await until(() => errors >= 2); // the broken watch, then at least one refused reconnect
    t.deepEqual(events, ['add before 1'], 'nothing arrives while the API is away');
    await double.resume();
    await until(() => events.length === 3);
    t.deepEqual(events, ['add before 1', 'add during 2', 'update before 3']);
    t.is(lists, 1, 'the watch resumed from its resourceVersion, without a relist');
    t.is((await rawRequest(double, 'GET', '/version')).status, 200, 'same address and port');

    await double.suspend();
    await double.store.delete(KNI_PLURAL, NS, 'during');
    double.compactHistory();
    await double.resume();
    await until(() => events.length === 4);
    t.is(events[3], 'delete during');
    t.is(lists, 2, 'the compacted resourceVersion answered 410 and the informer relisted');
  } finally {
    stopped = true;
    await informer.stop();
    await double.close();
  }
});
