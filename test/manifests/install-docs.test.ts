/**
 * docs/install.md and the manifests must agree: every path it names exists, and the stamp keys
 * it tells operators to create are the Secret, ConfigMap and file names the pods mount.
 */
import test from 'ava';
import type { V1DaemonSet, V1Deployment } from '@kubernetes/client-node';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFESTS_DIR } from '../../webhook/configurations.js';
import { find, kustomize } from './render.js';

const ROOT = join(MANIFESTS_DIR, '..');
const doc = await readFile(join(ROOT, 'docs', 'install.md'), 'utf8');

test('every manifests/ path in docs/install.md exists (but tls/, which `kmesh-ipsec certs` writes)', async (t) => {
  const paths = [...new Set([...doc.matchAll(/manifests\/[\w./-]*/g)].map((m) => m[0].replace(/[.)]+$/, '')))].filter((p) => !p.endsWith('/tls'));
  t.true(paths.length >= 6);
  for (const path of paths) t.true(await access(join(ROOT, path)).then(() => true, () => false), path);
});

test('the stamp keys docs/install.md creates are the ones the webhook and node plugins mount', async (t) => {
  const objects = await kustomize(join(MANIFESTS_DIR, 'base'));
  const webhook = (find(objects, 'Deployment', 'kmesh-ipsec-webhook') as unknown as V1Deployment).spec?.template.spec;
  const node = (find(objects, 'DaemonSet', 'kmesh-ipsec-node') as unknown as V1DaemonSet).spec?.template.spec;
  const secret = webhook?.volumes?.find((v) => v.name === 'stamp-key')?.secret?.secretName ?? '';
  const configMap = node?.volumes?.find((v) => v.name === 'stamp-jwks')?.configMap?.name ?? '';
  t.is(webhook?.volumes?.find((v) => v.name === 'stamp-jwks')?.configMap?.name, configMap);
  const args = [...(webhook?.containers[0]?.args ?? []), ...(node?.containers[0]?.args ?? [])];
  t.true(args.includes('--stamp-key=/etc/kmesh-ipsec/stamp-key/stamp-key.jwk'));
  t.true(args.includes('--stamp-jwks=/etc/kmesh-ipsec/stamp-jwks/jwks.json'));
  t.true(doc.includes(`kubectl create secret generic ${secret} -n kmesh-system --from-file=stamp-key.jwk=`));
  t.true(doc.includes(`kubectl create configmap ${configMap} -n kmesh-system --from-file=jwks.json=`));
});
