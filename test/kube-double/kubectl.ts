/**
 * Runs the real kubectl against a double. Each double gets its own discovery cache (inside its
 * temp dir) so runs never touch ~/.kube and never see another server's cached discovery.
 */

import { dirname, join } from 'node:path';
import { runCommand } from '../../nodeplugin/command.js';
import type { CommandResult } from '../../nodeplugin/command.js';
import type { KubeDouble } from './index.js';

/** kubectl's exit status and output; a failed run resolves too (tests assert on the code). */
export type KubectlResult = CommandResult;

export interface KubectlOptions {
  /** Username whose kubeconfig to use (default: the double's first user). */
  user?: string;
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  timeoutMs?: number;
}

/** $KUBECTL, else /usr/bin/kubectl. */
export function kubectlBinary(): string {
  return process.env.KUBECTL ?? '/usr/bin/kubectl';
}

export function kubectl(double: Pick<KubeDouble, 'kubeconfigPath'>, args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  const kubeconfig = double.kubeconfigPath(options.user);
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dirname(kubeconfig), 'kubectl-cache') };
  return runCommand([kubectlBinary(), ...args], {
    env,
    allowFailure: true,
    timeoutMs: options.timeoutMs ?? 15_000,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}
