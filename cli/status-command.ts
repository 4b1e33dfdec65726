/**
 * `kmesh-ipsec status`: where the key rollout stands. `--cluster` reads every KmeshNodeInfo
 * through the API; without it the command will read the local node plugin's endpoint (not
 * implemented yet). The exit status is the verdict, so scripts can wait on it.
 */
import type { Command } from 'commander';
import { ClusterVerdict, clusterKeyView, observeNodeInfo } from '../core/cluster-keys.js';
import { CliError, ROTATING_EXIT, USAGE_EXIT } from './errors.js';
import { type KubeOptions, loadKubeConfig } from './kube.js';
import { clusterJson, renderClusterText } from './cluster-view-render.js';
import { listNodeInfos } from './node-infos.js';
import { SecretStore } from './secret-store.js';

/** Exit status per verdict; 1 stays "could not find out" (API unreachable, forbidden), 2 bad usage. */
export const VERDICT_EXIT: Readonly<Record<ClusterVerdict, number>> = {
  [ClusterVerdict.InSync]: 0,
  [ClusterVerdict.Rotating]: ROTATING_EXIT,
  [ClusterVerdict.Degraded]: 4,
  [ClusterVerdict.NoNodes]: 5,
};

interface StatusOptions {
  readonly cluster: boolean;
  readonly json: boolean;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show where the key rollout stands')
    .option('--cluster', 'read every KmeshNodeInfo through the Kubernetes API: per node SPI, stamp expiry, conditions; then a verdict', false)
    .option('--json', 'print the same as JSON', false)
    .addHelpText(
      'after',
      `
Verdicts and exit status (--cluster):
  0  in-sync    every node advertises the Secret's SPI and none reports a failure
  3  rotating   some nodes are still on an older SPI, or wait for their peers
  4  degraded   a node fails: Ready=False, KeyInSync=False (other than PeersBehind), SPI 0,
                an SPI above the Secret's, an invalid spec, or a missing/expired/mismatched stamp
  5  no-nodes   no KmeshNodeInfo exists yet
  1  the state could not be read (API unreachable, forbidden); 2 bad usage
Example, wait for a rotation to finish:
  until kmesh-ipsec status --cluster >/dev/null; do sleep 10; done`,
    )
    .action(async (opts: StatusOptions) => {
      process.exitCode = opts.cluster ? await clusterStatus(program.opts<KubeOptions>(), opts.json) : localStatus();
    });
}

async function clusterStatus(kube: KubeOptions, json: boolean): Promise<number> {
  const kc = loadKubeConfig(kube);
  const [secret, objects] = await Promise.all([new SecretStore(kc).peek(), listNodeInfos(kc)]);
  const now = Date.now() / 1000;
  const view = clusterKeyView({ ...(secret.state === 'present' ? { secretSpi: secret.spi } : {}), nodes: objects.map(observeNodeInfo), now });
  if (secret.state === 'unreadable') process.stderr.write(`warning: ${secret.reason}; comparing nodes with each other only\n`);
  if (secret.state === 'absent' && view.nodes.length > 0) process.stderr.write('warning: the Secret does not exist; nodes keep their keys but cannot rotate\n');
  process.stdout.write(json ? `${JSON.stringify(clusterJson(view, secret), null, 2)}\n` : renderClusterText(view, now));
  return VERDICT_EXIT[view.verdict];
}

function localStatus(): number {
  // The node plugin's local endpoint is not served yet; --cluster is the mode that exists.
  throw new CliError('status of the local node plugin is not implemented yet; use --cluster', USAGE_EXIT);
}
