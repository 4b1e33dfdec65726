/**
 * Runs the real kubectl against a double. Each double gets its own discovery cache (inside its
 * temp dir) so runs never touch ~/.kube and never see another server's cached discovery.
 */

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import type { LocalApi } from '../../localapi/index.js';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

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

export function kubectl(double: Pick<LocalApi, 'kubeconfigPath'>, args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  const kubeconfig = double.kubeconfigPath(options.user);
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dirname(kubeconfig), 'kubectl-cache') };
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlBinary(), args, { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 15_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ code: code ?? (signal === null ? -1 : 128), stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
