/**
 * `kubectl apply --dry-run=client -k` on every install shape, with the real kubectl. A client
 * dry run still needs an API server: kubectl maps each kind through discovery (a kind the
 * server does not serve is an error), downloads OpenAPI to validate, and GETs each object to
 * choose between create and patch. The local API serves all of that for the kinds a cluster
 * with cert-manager has.
 */
import test from 'ava';
import { join } from 'node:path';
import { type LocalApi, defineResource, startLocalApi } from '../../localapi/index.js';
import { kubectl } from '../localapi/kubectl.js';
import { type KubeObject, type Renders, renderAll } from './render.js';

const kind = (group: string, version: string, k: string, plural: string, namespaced = true) => defineResource({ group, version, kind: k, plural, namespaced });
// ServiceAccounts and RBAC are served by the local API itself.
const CLUSTER_KINDS = [
  kind('', 'v1', 'Service', 'services'),
  kind('apps', 'v1', 'Deployment', 'deployments'),
  kind('apps', 'v1', 'DaemonSet', 'daemonsets'),
  kind('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets'),
  kind('batch', 'v1', 'CronJob', 'cronjobs'),
  kind('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies'),
  kind('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false),
];
const CERT_MANAGER_KINDS = [kind('cert-manager.io', 'v1', 'Issuer', 'issuers'), kind('cert-manager.io', 'v1', 'Certificate', 'certificates')];

let r: Renders;
let withCertManager: LocalApi;
let withoutCertManager: LocalApi;
test.before(async () => {
  r = await renderAll();
  withCertManager = await startLocalApi({ extraResources: [...CLUSTER_KINDS, ...CERT_MANAGER_KINDS], namespaces: [] });
  withoutCertManager = await startLocalApi({ extraResources: CLUSTER_KINDS, namespaces: [] });
});
test.after.always(async () => {
  await Promise.all([withCertManager.close(), withoutCertManager.close(), r.cleanup()]);
});

/** What kubectl prints per object: `<resource>[.<group>]/<name> created (dry run)`. */
const expectedLines = (objects: readonly KubeObject[]) => objects.map((o) => `${o.metadata.name} created (dry run)`).sort();
const printedLines = (stdout: string) => stdout.trim().split('\n').map((line) => line.slice(line.indexOf('/') + 1)).sort();

for (const [name, dir, objects] of [
  ['manifests/ (cert-manager)', (x: Renders) => x.copy, (x: Renders) => x.default],
  ['overlays/without-cert-manager', (x: Renders) => join(x.copy, 'overlays', 'without-cert-manager'), (x: Renders) => x.withoutCertManager],
  ['manifests/ with the optional components', (x: Renders) => x.componentsOverlay, (x: Renders) => x.withComponents],
  ['uninstall', (x: Renders) => join(x.copy, 'uninstall'), (x: Renders) => x.uninstall],
] as const) {
  test(`kubectl apply --dry-run=client -k ${name} succeeds and would create every object`, async (t) => {
    const res = await kubectl(withCertManager, ['apply', '--dry-run=client', '-k', dir(r)], { timeoutMs: 60_000 });
    t.is(res.code, 0, res.stderr);
    t.is(res.stderr, '');
    t.deepEqual(printedLines(res.stdout), expectedLines(objects(r)));
  });
}

test('without cert-manager in the cluster, the default install says what is missing and the overlay still works', async (t) => {
  const res = await kubectl(withoutCertManager, ['apply', '--dry-run=client', '-k', r.copy], { timeoutMs: 60_000 });
  t.not(res.code, 0, 'validation fails first: the server has no OpenAPI for cert-manager.io');
  // Past validation, the mapping of the kind itself fails, naming it.
  const mapping = await kubectl(withoutCertManager, ['apply', '--dry-run=client', '--validate=false', '-k', r.copy], { timeoutMs: 60_000 });
  t.not(mapping.code, 0);
  t.regex(mapping.stderr, /no matches for kind "Certificate" in version "cert-manager\.io\/v1"[\s\S]*ensure CRDs are installed first/);
  const overlay = await kubectl(withoutCertManager, ['apply', '--dry-run=client', '-k', join(r.copy, 'overlays', 'without-cert-manager')], { timeoutMs: 60_000 });
  t.is(overlay.code, 0, overlay.stderr);
});
