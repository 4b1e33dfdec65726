/** The compiled `kmesh-ipsec` CLI in a child process, with a kubeconfig (from the kube double or a path). */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LocalApi } from '../../localapi/index.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const run = promisify(execFile);

export interface CliResult { code: number; stdout: string; stderr: string }

export async function cli(double: LocalApi | string, ...args: string[]): Promise<CliResult> {
  const kubeconfig = typeof double === 'string' ? double : double.kubeconfigPath();
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, '--kubeconfig', kubeconfig, ...args], { env: { ...process.env, KUBECONFIG: '' } });
    return { code: 0, stdout, stderr };
  } catch (err: unknown) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
