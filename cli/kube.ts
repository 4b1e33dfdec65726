/**
 * Kubernetes access for the CLI: kubeconfig resolution the way kubectl does it, and failures
 * turned into one line a person can act on (client-node's raw errors carry whole bodies).
 */
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { CliError } from './errors.js';

export interface KubeOptions {
  readonly kubeconfig?: string;
  readonly context?: string;
}

/** Load --kubeconfig, else $KUBECONFIG / ~/.kube/config / in-cluster, then apply --context. */
export function loadKubeConfig(opts: KubeOptions): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
  } catch (err: unknown) {
    throw new CliError(`cannot load kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      throw new CliError(`context "${opts.context}" is not in the kubeconfig (known: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    }
    kc.setCurrentContext(opts.context);
  }
  return kc;
}

/** HTTP status of a failed API call, or undefined when the server was not reached. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** One line describing a failed API call: the server's Status message, or why it was not reached. */
export function describeKubeError(err: unknown, kc: KubeConfig): string {
  if (err instanceof ApiException) {
    const message = statusMessage(err.body);
    return `the Kubernetes API answered ${err.code}${message ? `: ${message}` : ''}`;
  }
  const server = kc.getCurrentCluster()?.server ?? '(no cluster configured)';
  const reason = err instanceof Error ? err.message.replace(/^request to \S+ failed, reason: /, '') : String(err);
  return `cannot reach the Kubernetes API at ${server}: ${reason}`;
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
