/**
 * Kubernetes access for the CLI: kubeconfig resolution the way kubectl does it, and failures
 * turned into one line a person can act on (client-node's raw errors carry whole bodies, and
 * its YAML errors quote the lines around the fault: a token, a password).
 */
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { safeText } from '../core/safe-text.js';
import { CliError } from './errors.js';

export interface KubeOptions {
  readonly kubeconfig?: string;
  readonly context?: string;
}

/** Where the API server mounts a pod's service-account token (client-node's in-cluster test). */
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** Far above any real kubeconfig (they embed a few certificates). */
const MAX_KUBECONFIG_BYTES = 16 * 1024 * 1024;

/**
 * Load --kubeconfig, else every file in $KUBECONFIG (merged, the first one's context winning),
 * else ~/.kube/config, else the in-cluster service account; then apply --context. Never falls
 * back to client-node's http://localhost:8080: no kubeconfig is an error that says where it looked.
 */
export function loadKubeConfig(opts: KubeOptions): KubeConfig {
  const kc = new KubeConfig();
  const fromEnv = (process.env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  const home = join(homedir(), '.kube', 'config');
  if (opts.kubeconfig) loadFile(kc, opts.kubeconfig, '');
  else if (fromEnv.length > 0) {
    fromEnv.forEach((file, i) => {
      if (i === 0) loadFile(kc, file, ' (from $KUBECONFIG)');
      else {
        const more = new KubeConfig();
        loadFile(more, file, ' (from $KUBECONFIG)');
        kc.mergeConfig(more);
      }
    });
  } else if (exists(home)) loadFile(kc, home, '');
  else if (exists(IN_CLUSTER_TOKEN)) {
    try {
      kc.loadFromCluster();
    } catch (err: unknown) {
      throw new CliError(`cannot use the in-cluster service account: ${safeText(err instanceof Error ? err.message : String(err))}`);
    }
  } else {
    throw new CliError(`no kubeconfig found: --kubeconfig not given, $KUBECONFIG not set, ${home} does not exist, and not in a pod (no ${IN_CLUSTER_TOKEN})`);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      throw new CliError(`context "${safeText(opts.context, 100)}" is not in the kubeconfig (known: ${safeText(kc.getContexts().map((c) => c.name).join(', '), 300) || 'none'})`);
    }
    kc.setCurrentContext(opts.context);
  }
  return kc;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** kc.loadFromFile(file), with every failure as one line that names the file and never quotes it. */
function loadFile(kc: KubeConfig, file: string, origin: string): void {
  const fail = (why: string): never => {
    throw new CliError(`cannot load kubeconfig ${file}${origin}: ${why}`);
  };
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) fail('not a regular file');
    size = st.size;
  } catch (err: unknown) {
    if (err instanceof CliError) throw err;
    return fail((err as NodeJS.ErrnoException).code ?? 'cannot read it');
  }
  if (size > MAX_KUBECONFIG_BYTES) fail(`larger than ${MAX_KUBECONFIG_BYTES} bytes`);
  try {
    kc.loadFromFile(file);
  } catch (err: unknown) {
    fail(kubeconfigProblem(err));
  }
}

/** A YAML error's position and reason (js-yaml's message would add the surrounding lines), or the loader's complaint. */
function kubeconfigProblem(err: unknown): string {
  const e = err as { name?: unknown; reason?: unknown; mark?: { line?: unknown; column?: unknown }; code?: unknown; message?: unknown };
  if (e.name === 'YAMLException' && typeof e.mark?.line === 'number' && typeof e.mark.column === 'number') {
    const reason = typeof e.reason === 'string' ? ` (${safeText(e.reason, 120)})` : '';
    return `not valid YAML at line ${e.mark.line + 1}, column ${e.mark.column + 1}${reason}`;
  }
  if (typeof e.code === 'string') return e.code;
  // client-node's own checks ("clusters[0].name is missing") name fields, not values; keep them short anyway.
  return `not a usable kubeconfig: ${safeText(typeof e.message === 'string' ? e.message.split('\n')[0] ?? '' : String(err), 160)}`;
}

/** HTTP status of a failed API call, or undefined when the server was not reached. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** One line describing a failed API call: the server's Status message, or why it was not reached. */
export function describeKubeError(err: unknown, kc: KubeConfig): string {
  if (err instanceof ApiException) {
    const message = statusMessage(err.body);
    return `the Kubernetes API answered ${err.code}${message ? `: ${safeText(message, 500)}` : ''}`;
  }
  const server = safeText(kc.getCurrentCluster()?.server ?? '(no cluster configured)', 200);
  const plugin = credentialPluginFailure(err, kc);
  if (plugin !== undefined) return `cannot authenticate to the Kubernetes API at ${server}: ${plugin}`;
  const reason = err instanceof Error ? err.message.replace(/^request to \S+ failed, reason: /, '') : String(err);
  return `cannot reach the Kubernetes API at ${server}: ${safeText(reason.split('\n')[0] ?? '', 300) || 'no reason given'}`;
}

/**
 * When the current user gets its token from an exec plugin and the call failed before any
 * request was sent, what the plugin did: client-node rejects with the plugin's stderr as the
 * message (empty when it printed nothing), a spawn error, or a JSON error for its output.
 */
function credentialPluginFailure(err: unknown, kc: KubeConfig): string | undefined {
  const command = (kc.getCurrentUser()?.exec as { command?: unknown } | undefined)?.command;
  if (typeof command !== 'string' || !(err instanceof Error) || err.name === 'FetchError' || err.name === 'AbortError') return undefined;
  const name = safeText(command, 200);
  const e = err as NodeJS.ErrnoException;
  if (typeof e.syscall === 'string' && e.syscall.startsWith('spawn')) return `the credential plugin ${name} cannot be run (${e.code ?? 'error'})`;
  if (err instanceof SyntaxError) return `the credential plugin ${name} printed something that is not an ExecCredential (JSON)`;
  const said = err.message.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return said === undefined ? `the credential plugin ${name} failed and printed no error` : `the credential plugin ${name} failed: ${safeText(said, 300)}`;
}

function statusMessage(body: unknown): string | undefined {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.split('\n')[0]?.slice(0, 300);
    }
  }
  if (typeof parsed === 'object' && parsed !== null && 'message' in parsed && typeof parsed.message === 'string') return parsed.message;
  return undefined;
}
