/**
 * manifests/ rendered by the real `kubectl kustomize` in every supported shape, each object
 * validated against the Kubernetes and cert-manager schemas, and the wiring between objects
 * (names that must agree across files) checked.
 */
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadWebhookConfigurations, MANIFESTS_DIR, WebhookNames } from '../../webhook/configurations.js';
import { type KubeObject, type Renders, byKind, find, renderAll } from './render.js';
import { unknownFields, validateAgainstSchema } from './schemas.js';

let r: Renders;
test.before(async () => {
  r = await renderAll();
});
test.after.always(async () => {
  await r.cleanup();
});

const variants = (): [string, KubeObject[]][] => [
  ['manifests/', r.default],
  ['overlays/without-cert-manager', r.withoutCertManager],
  ['manifests/ + components', r.withComponents],
  ['uninstall', r.uninstall],
];

test('every rendered object is valid against its Kubernetes or cert-manager schema, with no unknown fields', (t) => {
  for (const [variant, objects] of variants()) {
    t.true(objects.length > 0, variant);
    for (const obj of objects) {
      const what = `${variant}: ${obj.kind} ${obj.metadata.name}`;
      t.notThrows(() => {
        validateAgainstSchema(obj);
      }, what);
      t.deepEqual(unknownFields(obj), [], what);
    }
  }
});

test('the schema checks can fail: a wrong type and a misspelt field are caught', (t) => {
  const deployment = structuredClone(find(r.default, 'Deployment', 'kmesh-ipsec-webhook')) as KubeObject & { spec: Record<string, unknown> };
  deployment.spec.replicas = 'two';
  t.throws(() => {
    validateAgainstSchema(deployment);
  }, { message: /replicas must be integer/ });
  const daemonSet = structuredClone(find(r.default, 'DaemonSet', 'kmesh-ipsec-node')) as KubeObject & { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
  const container = daemonSet.spec.template.spec.containers[0] ?? {};
  container.securityContext = { readOnlyRootFileSystem: true };
  t.deepEqual(unknownFields(daemonSet), ['DaemonSet.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem']);
  const certificate = structuredClone(find(r.default, 'Certificate', 'kmesh-ipsec-webhook')) as KubeObject & { spec: Record<string, unknown> };
  certificate.spec.dnsNames = 'kmesh-ipsec-webhook';
  t.throws(() => {
    validateAgainstSchema(certificate);
  }, { message: /dnsNames must be array/ });
});

test('the default install is the base plus cert-manager; the overlay is the base plus a TLS Secret', (t) => {
  const names = (objects: KubeObject[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  const base = names(r.withoutCertManager).filter((n) => n !== 'Secret/kmesh-ipsec-webhook-tls');
  t.deepEqual(names(r.default), [...base, 'Certificate/kmesh-ipsec-webhook', 'Certificate/kmesh-ipsec-webhook-ca', 'Issuer/kmesh-ipsec-selfsigned', 'Issuer/kmesh-ipsec-webhook-ca'].sort());
  // Keys made per install are never shipped.
  t.deepEqual(byKind(r.default, 'Secret'), []);
  t.deepEqual(byKind(r.default, 'ConfigMap'), []);
});

test('the webhook configurations operators apply are what loadWebhookConfigurations() gives the tests', async (t) => {
  const annotation = { 'cert-manager.io/inject-ca-from': 'kmesh-system/kmesh-ipsec-webhook' };
  const loaded = await loadWebhookConfigurations();
  for (const config of loaded) {
    const expected = structuredClone(config) as unknown as KubeObject;
    expected.metadata.annotations = annotation;
    t.deepEqual(find(r.default, expected.kind, expected.metadata.name), expected);
  }
  // Without cert-manager the caBundle is the one `kmesh-ipsec certs` printed (kustomize wraps it).
  const withCa = await loadWebhookConfigurations({ caBundle: r.caBundle });
  for (const config of withCa) {
    const applied = structuredClone(find(r.withoutCertManager, config.kind ?? '', config.metadata?.name ?? '')) as unknown as { webhooks: { clientConfig: { caBundle: string } }[] };
    for (const w of applied.webhooks) w.clientConfig.caBundle = w.clientConfig.caBundle.replaceAll('\n', '');
    t.deepEqual(applied, structuredClone(config) as unknown);
  }
});

test('loadWebhookConfigurations() can point every webhook at another Service and keeps the paths', async (t) => {
  const [mutating, validating] = await loadWebhookConfigurations({ service: { name: 'lab', namespace: 'lab-ns', port: 8443 } });
  const services = [...(mutating.webhooks ?? []), ...(validating.webhooks ?? [])].map((w) => w.clientConfig.service);
  t.is(services.length, 5);
  for (const s of services) t.like(s, { name: 'lab', namespace: 'lab-ns', port: 8443 });
  t.deepEqual(services.map((s) => s?.path), ['/mutate', '/mutate', '/validate', '/validate', '/validate']);
  t.deepEqual((mutating.webhooks ?? []).map((w) => w.name), [WebhookNames.secrets, WebhookNames.nodeInfos]);
  t.deepEqual((validating.webhooks ?? []).map((w) => w.name), [WebhookNames.secrets, WebhookNames.secretDeletions, WebhookNames.nodeInfos]);
});

test('loadWebhookConfigurations() names the file and field when the manifest is not what it expects', async (t) => {
  const file = join(r.copy, 'broken-webhook-configurations.yaml');
  await writeFile(file, 'apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: x}\nwebhooks: [{name: a}]\n---\napiVersion: v1\nkind: ConfigMap\n');
  await t.throwsAsync(loadWebhookConfigurations({}, file), { message: `${file}: document 1: webhooks[0].clientConfig.service: required (the webhook is reached through its Service)` });
  await writeFile(file, 'a: [\n');
  await t.throwsAsync(loadWebhookConfigurations({}, file), { message: new RegExp(`^${file}: document 1: `) });
});

test('cert-manager chain: self-signed CA, CA issuer, and a serving certificate for the Service the webhook is called through', (t) => {
  const ca = find(r.default, 'Certificate', 'kmesh-ipsec-webhook-ca') as KubeObject & { spec: { secretName: string } };
  const caIssuer = find(r.default, 'Issuer', 'kmesh-ipsec-webhook-ca') as KubeObject & { spec: { ca?: { secretName: string } } };
  const serving = find(r.default, 'Certificate', 'kmesh-ipsec-webhook') as KubeObject & { spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string } } };
  t.like(ca.spec, { isCA: true, issuerRef: { kind: 'Issuer', name: 'kmesh-ipsec-selfsigned' } });
  t.truthy(find(r.default, 'Issuer', 'kmesh-ipsec-selfsigned'));
  t.is(caIssuer.spec.ca?.secretName, ca.spec.secretName);
  t.is(serving.spec.issuerRef.name, caIssuer.metadata.name);
  t.true(serving.spec.dnsNames.includes(`${WebhookNames.service}.${WebhookNames.serviceNamespace}.svc`));
  // The webhook mounts the Secret cert-manager writes, and cainjector reads that Certificate.
  const deployment = find(r.default, 'Deployment', 'kmesh-ipsec-webhook') as KubeObject & { spec: { template: { spec: { volumes: { name: string; secret?: { secretName: string } }[] } } } };
  t.is(deployment.spec.template.spec.volumes.find((v) => v.name === 'tls')?.secret?.secretName, serving.spec.secretName);
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    t.is(find(r.default, kind, 'kmesh-ipsec').metadata.annotations?.['cert-manager.io/inject-ca-from'], `${serving.metadata.namespace ?? ''}/${serving.metadata.name}`);
  }
});

test('the Service reaches the webhook container on 9443, and every container runs the package version', async (t) => {
  const service = find(r.default, 'Service', WebhookNames.service) as KubeObject & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] } };
  const deployment = find(r.default, 'Deployment', 'kmesh-ipsec-webhook') as KubeObject & { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } } };
  t.like(deployment.spec.template.metadata.labels, service.spec.selector);
  t.deepEqual(service.spec.ports.map((p) => p.port), [443]);
  const port = deployment.spec.template.spec.containers[0]?.ports.find((p) => p.name === service.spec.ports[0]?.targetPort);
  t.is(port?.containerPort, 9443);
  const { version } = JSON.parse(await readFile(join(MANIFESTS_DIR, '..', 'package.json'), 'utf8')) as { version: string };
  for (const [variant, objects] of variants()) {
    for (const c of containersOf(objects)) t.is(c.image, `kmesh-ipsec:${version}`, `${variant}: ${c.name}`);
  }
});

test('the CRD is the one Kmesh defines (group, version, names, scope) plus the status subresource', async (t) => {
  const crd = find(r.default, 'CustomResourceDefinition', 'kmeshnodeinfos.kmesh.net') as KubeObject & { spec: { group: string; scope: string; names: Record<string, unknown>; versions: { name: string; served: boolean; storage: boolean; subresources?: unknown }[] } };
  t.like(crd.spec, { group: 'kmesh.net', scope: 'Namespaced', names: { kind: 'KmeshNodeInfo', listKind: 'KmeshNodeInfoList', plural: 'kmeshnodeinfos', singular: 'kmeshnodeinfo' } });
  t.deepEqual(crd.spec.versions.map((v) => [v.name, v.served, v.storage, v.subresources]), [['v1alpha1', true, true, { status: {} }]]);
  // The file kubectl applies is the file the CRD schema test reads.
  const file = parse(await readFile(join(MANIFESTS_DIR, 'base', 'crd-kmeshnodeinfos.yaml'), 'utf8'), { version: '1.1' }) as unknown;
  t.deepEqual(crd, file as KubeObject);
});

interface Container {
  name: string;
  image?: string;
}
function containersOf(objects: readonly KubeObject[]): Container[] {
  return objects.flatMap((o) => {
    const spec = podSpecOf(o);
    return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
  });
}
function podSpecOf(o: KubeObject): { containers: Container[]; initContainers?: Container[] } | undefined {
  type Template = { spec: { containers: Container[]; initContainers?: Container[] } };
  const spec = o.spec as { template?: Template; jobTemplate?: { spec: { template: Template } } } | undefined;
  return (spec?.template ?? spec?.jobTemplate?.spec.template)?.spec;
}
