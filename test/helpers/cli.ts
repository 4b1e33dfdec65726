/** The compiled `kmesh-ipsec` CLI in a child process, with a kubeconfig (from the kube double or a path). */
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../nodeplugin/command.js';
import type { CommandResult } from '../../nodeplugin/command.js';
import type { KubeDouble } from '../kube-double/index.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

export type CliResult = CommandResult;

export function cli(double: KubeDouble | string, ...args: string[]): Promise<CliResult> {
  const kubeconfig = typeof double === 'string' ? double : double.kubeconfigPath();
  return runCommand([process.execPath, CLI, '--kubeconfig', kubeconfig, ...args], { allowFailure: true, env: { ...process.env, KUBECONFIG: '' } });
}
