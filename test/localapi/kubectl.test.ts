// The real kubectl binary against the double, with validation on (no --validate=false).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startLocalApi, type LocalApi } from '../../localapi/index.js';
import { kubectl } from './kubectl.js';

let double: LocalApi;
let dir: string;

test.before(async () => {
  double = await startLocalApi({ namespaces: ['kmesh-system', 'k1', 'k2', 'k3'] });
  dir = mkdtempSync(join(tmpdir(), 'local-api-kubectl-'));
});

test.after.always(async () => {
  await double.close();
  rmSync(dir, { recursive: true, force: true });
});

const secretYaml = (spi: number): string => `apiVersion: v1
kind: Secret
metadata:
  name: kmesh-ipsec
  namespace: kmesh-system
type: Opaque
stringData:
  ipSec: '{"spi":${spi},"aeadKeyName":"rfc4106(gcm(aes))"}'
`;

test('kubectl apply creates then updates a Secret, get -o yaml shows it', async (t) => {
  const file = join(dir, 'secret.yaml');
  writeFileSync(file, secretYaml(1));
  const created = await kubectl(double, ['apply', '-f', file]);
  t.is(created.code, 0, created.stderr);
  t.is(created.stdout.trim(), 'secret/kmesh-ipsec created');
  const rv1 = double.store.get('secrets', 'kmesh-system', 'kmesh-ipsec')?.metadata.resourceVersion;

  writeFileSync(file, secretYaml(2));
  const updated = await kubectl(double, ['apply', '-f', file]);
  t.is(updated.code, 0, updated.stderr);
  t.is(updated.stdout.trim(), 'secret/kmesh-ipsec configured');
  t.is(updated.stderr, '', 'no warnings: no openapi/validation complaints');

  const got = await kubectl(double, ['get', 'secret', '-n', 'kmesh-system', 'kmesh-ipsec', '-o', 'yaml']);
  t.is(got.code, 0, got.stderr);
  const obj = parse(got.stdout) as { kind: string; type: string; data: { ipSec: string }; metadata: { resourceVersion: string; annotations: Record<string, string> } };
  t.is(obj.kind, 'Secret');
  t.is(obj.type, 'Opaque');
  t.is((JSON.parse(Buffer.from(obj.data.ipSec, 'base64').toString()) as { spi: number }).spi, 2);
  t.not(obj.metadata.resourceVersion, rv1);
  t.truthy(obj.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);

  const table = await kubectl(double, ['get', 'secrets', '-n', 'kmesh-system']);
  t.regex(table.stdout, /^NAME\s+TYPE\s+DATA\s+AGE\nkmesh-ipsec\s+Opaque\s+1\s+\d+s\n$/);
});

test('kubectl create -f, get -A, delete for kmeshnodeinfos', async (t) => {
  const file = join(dir, 'kni.yaml');
  writeFileSync(file, ['k1', 'k2'].map((ns) => `apiVersion: kmesh.net/v1alpha1
kind: KmeshNodeInfo
metadata:
  name: node-${ns}
  namespace: ${ns}
spec:
  spi: 1
  nicIPs: ["10.0.0.1"]
  bootID: boot
  podCIDRs: ["10.244.1.0/24"]
`).join('---\n'));
  const created = await kubectl(double, ['create', '-f', file]);
  t.is(created.code, 0, created.stderr);
  t.deepEqual(created.stdout.trim().split('\n'), ['kmeshnodeinfo.kmesh.net/node-k1 created', 'kmeshnodeinfo.kmesh.net/node-k2 created']);

  const again = await kubectl(double, ['create', '-f', file]);
  t.not(again.code, 0);
  t.regex(again.stderr, /Error from server \(AlreadyExists\): error when creating ".*kni\.yaml": kmeshnodeinfos\.kmesh\.net "node-k1" already exists/);

  const all = await kubectl(double, ['get', 'kmeshnodeinfos', '-A']);
  t.is(all.code, 0, all.stderr);
  const lines = all.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' '));
  t.deepEqual(lines, ['NAMESPACE NAME', 'k1 node-k1', 'k2 node-k2']);

  const deleted = await kubectl(double, ['delete', '-f', file]);
  t.is(deleted.code, 0, deleted.stderr);
  t.deepEqual(deleted.stdout.trim().split('\n'), ['kmeshnodeinfo.kmesh.net "node-k1" deleted', 'kmeshnodeinfo.kmesh.net "node-k2" deleted']);
  const none = await kubectl(double, ['get', 'kmeshnodeinfos', '-A']);
  t.is(none.stderr.trim(), 'No resources found');
});

test('kubectl delete by name and NotFound errors', async (t) => {
  await double.store.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'doomed', namespace: 'k3' } });
  const deleted = await kubectl(double, ['delete', 'secret', 'doomed', '-n', 'k3']);
  t.is(deleted.code, 0, deleted.stderr);
  t.is(deleted.stdout.trim(), 'secret "doomed" deleted');
  const missing = await kubectl(double, ['get', 'secret', 'doomed', '-n', 'k3']);
  t.is(missing.code, 1);
  t.is(missing.stderr.trim(), 'Error from server (NotFound): secrets "doomed" not found');
});

test('kubectl re-apply of a webhook configuration merges webhooks by name', async (t) => {
  const config = (timeout: number): string => `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: kubectl-vwc
webhooks:
- name: a.kmesh.net
  clientConfig:
    url: https://127.0.0.1:1/never
  rules:
  - operations: ["CREATE"]
    apiGroups: ["nothing.example.com"]
    apiVersions: ["v1"]
    resources: ["nothings"]
  sideEffects: None
  admissionReviewVersions: ["v1"]
  timeoutSeconds: ${timeout}
`;
  const first = await kubectl(double, ['apply', '-f', '-'], { input: config(5) });
  t.is(first.code, 0, first.stderr);
  const second = await kubectl(double, ['apply', '-f', '-'], { input: config(7) });
  t.is(second.code, 0, second.stderr);
  const stored = double.store.get('validatingwebhookconfigurations', undefined, 'kubectl-vwc');
  t.like(stored, {
    metadata: { generation: 2 },
    webhooks: [{ name: 'a.kmesh.net', timeoutSeconds: 7, failurePolicy: 'Fail', matchPolicy: 'Equivalent', rules: [{ scope: '*' }] }],
  });
  const invalid = await kubectl(double, ['apply', '-f', '-'], { input: config(40) });
  t.is(invalid.code, 1);
  // kubectl rewrites 422s from their causes, so this also checks details.causes.
  t.is(invalid.stderr.trim(), 'The ValidatingWebhookConfiguration "kubectl-vwc" is invalid: webhooks[0].timeoutSeconds: Invalid value: 40: the timeout value must be between 1 and 30 seconds');
});

test('kubectl with an unknown token is told it is unauthorized', async (t) => {
  const path = join(dir, 'bad.kubeconfig');
  writeFileSync(path, double.kubeconfig().replace(double.tokenFor(), 'bogus-token'));
  const result = await kubectl({ kubeconfigPath: () => path }, ['get', 'secrets', '-n', 'default']);
  t.is(result.code, 1);
  t.regex(result.stderr, /error: You must be logged in to the server \(the server has asked for the client to provide credentials\)/);
});
