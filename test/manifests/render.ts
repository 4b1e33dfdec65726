/**
 * Renders manifests/ the way operators install it: the real `kubectl kustomize`, on the
 * package's own manifests/ directory, parsed as YAML 1.1 like the API server reads it.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { runCommand } from '../../nodeplugin/command.js';
import { MANIFESTS_DIR } from '../../webhook/configurations.js';
import { kubectlBinary } from '../kube-double/kubectl.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export async function kustomize(dir: string): Promise<KubeObject[]> {
  const { stdout } = await runCommand([kubectlBinary(), 'kustomize', dir]);
  return parseAllDocuments(stdout, { version: '1.1' }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as KubeObject;
  });
}

/** Every way the package is meant to be installed, rendered, plus the temp files behind them. */
export interface Renders {
  /** `kubectl apply -k manifests/` (with cert-manager). */
  readonly default: KubeObject[];
  /** manifests/overlays/without-cert-manager, with `kmesh-ipsec certs` output in its tls/. */
  readonly withoutCertManager: KubeObject[];
  /** manifests/ plus the optional components (key rotation, legacy kernel, API server client auth), as an operator's overlay. */
  readonly withComponents: KubeObject[];
  /** manifests/uninstall. */
  readonly uninstall: KubeObject[];
  /** What `kmesh-ipsec certs` printed (the caBundle). */
  readonly caBundle: string;
  /** A copy of manifests/ whose without-cert-manager overlay has tls/ filled in. */
  readonly copy: string;
  /** A directory holding an operator's overlay of `copy` with the optional components. */
  readonly componentsOverlay: string;
  cleanup(): Promise<void>;
}

export async function renderAll(): Promise<Renders> {
  const tmp = await mkdtemp(join(tmpdir(), 'kmesh-manifests-'));
  try {
    // The overlay reads tls/ next to itself, so it runs on a copy (keys never land in the package).
    const copy = join(tmp, 'manifests');
    await cp(MANIFESTS_DIR, copy, { recursive: true });
    const tlsDir = join(copy, 'overlays', 'without-cert-manager', 'tls');
    const { stdout } = await runCommand([process.execPath, CLI, 'certs', '--out', tlsDir, '--write-ca-key']);
    const componentsOverlay = join(tmp, 'operator');
    await writeOverlay(componentsOverlay, copy);
    const [dflt, withoutCertManager, withComponents, uninstall] = await Promise.all([
      kustomize(copy),
      kustomize(join(copy, 'overlays', 'without-cert-manager')),
      kustomize(componentsOverlay),
      kustomize(join(copy, 'uninstall')),
    ]);
    return {
      default: dflt, withoutCertManager, withComponents, uninstall, caBundle: stdout.trim(), copy, componentsOverlay,
      cleanup: () => rm(tmp, { recursive: true, force: true }),
    };
  } catch (err: unknown) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function writeOverlay(dir: string, manifests: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const rel = relative(dir, manifests);
  await writeFile(join(dir, 'kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    `resources: [${rel}]`,
    `components: [${rel}/components/key-rotation, ${rel}/components/legacy-kernel, ${rel}/components/apiserver-client-auth]`,
    '',
  ].join('\n'));
}

export const byKind = (objects: readonly KubeObject[], kind: string): KubeObject[] => objects.filter((o) => o.kind === kind);

export function find(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const hit = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!hit) throw new Error(`no ${kind} ${name} in the rendered manifests`);
  return hit;
}
