// Kinds beyond the core ones: KmeshNodeInfo defined by the CRD in manifests/, RBAC stored only.
import test from 'ava';
import { join } from 'node:path';
import { startLocalApi, type LocalApi } from '../../localapi/index.js';
import { kubectl } from './kubectl.js';

let double: LocalApi;

test.before(async () => {
  double = await startLocalApi({ namespaces: ['kmesh-system', 'k3'] });
});

test.after.always(async () => {
  await double.close();
});

test('kmeshnodeinfos come from the CRD in manifests/: its printer columns, -o wide, empty cells for what is missing', async (t) => {
  await double.store.put({
    apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'cols', namespace: 'k3' },
    spec: { spi: 7, addresses: ['10.0.0.1', 'fd00::1'], bootID: 'b', podCIDRS: ['10.244.1.0/24'] },
    status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'KeyInSync', status: 'False' }] },
  });
  await double.store.put({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'bare', namespace: 'k3' }, spec: { spi: 0 } });
  const table = await kubectl(double, ['get', 'kmeshnodeinfos', '-n', 'k3']);
  t.is(table.code, 0, table.stderr);
  const [header, bare, cols] = table.stdout.trim().split('\n');
  t.regex(header ?? '', /^NAME\s+SPI\s+ADDRESSES\s+READY\s+KEYINSYNC\s+AGE$/);
  // A JSONPath that finds nothing is a null cell, which kubectl prints blank.
  t.regex(bare ?? '', /^bare\s+0\s+\d+s$/);
  t.regex(cols ?? '', /^cols\s+7\s+\["10\.0\.0\.1","fd00::1"\]\s+True\s+False\s+\d+s$/);
  const wide = await kubectl(double, ['get', 'kmeshnodeinfo', 'cols', '-n', 'k3', '-o', 'wide']);
  t.regex(wide.stdout, /POD CIDRS\s+BOOT ID\n.*\["10\.244\.1\.0\/24"\]\s+b\n$/);
});

test('RBAC objects and service accounts of the manifests apply (stored, not enforced)', async (t) => {
  const applied = await kubectl(double, ['apply', '-f', join('manifests', 'base', 'node-plugin-rbac.yaml'), '-f', join('manifests', 'base', 'webhook-rbac.yaml')]);
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, /clusterrole\.rbac\.authorization\.k8s\.io\/kmesh-ipsec-node created/);
  t.truthy(double.store.get('rolebindings.rbac.authorization.k8s.io', 'kmesh-system', 'kmesh-ipsec-webhook'));
  const sa = await kubectl(double, ['apply', '-f', '-', '-o', 'name'], { input: 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, namespace: k3}\n' });
  t.is(sa.code, 0, sa.stderr);
  t.is(sa.stdout.trim(), 'serviceaccount/x');
});
