/**
 * `kmesh-ipsec status`: where the key rollout stands. Without flags it reads the local node
 * plugin's endpoint (on a node, or inside its network namespace); `--cluster` reads every
 * KmeshNodeInfo through the API. The exit status is the verdict, so scripts can wait on it.
 */
import { get as httpGet } from 'node:http';
import type { Command } from 'commander';
import { ClusterVerdict, clusterKeyView, observeNodeInfo } from '../core/cluster-keys.js';
import { CliError, ROTATING_EXIT, USAGE_EXIT } from './errors.js';
import { type KubeOptions, loadKubeConfig } from './kube.js';
import { clusterJson, renderClusterText } from './cluster-view-render.js';
import { listNodeInfos } from './node-infos.js';
import { SecretStore } from './secret-store.js';
import { DEFAULT_NODE_LISTEN } from './node-command.js';
import { renderNodeStatus } from './node-status-render.js';
import type { NodeStatus } from '../nodeplugin/daemon/status.js';

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
  readonly endpoint: string;
}

/** Local status exit codes besides 0 (ready, last reconcile ok): the plugin is not healthy. */
export const NODE_NOT_OK_EXIT = 4;

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show where the key rollout stands')
    .option('--cluster', 'read every KmeshNodeInfo through the Kubernetes API: per node SPI, stamp expiry, conditions; then a verdict', false)
    .option('--json', 'print the same as JSON', false)
    .option('--endpoint <url>', 'the node plugin\'s local endpoint (its --listen address)', `http://127.0.0.1:${DEFAULT_NODE_LISTEN.split(':')[1] ?? '9478'}`)
    .addHelpText(
      'after',
      `
Without --cluster: this node's plugin: peers with the SPI used each way and their stamp,
object counts, xfrm error counters, whether a rotation is in progress, the last reconcile.
Exit status 0 when it is ready and its last reconcile succeeded, 4 otherwise, 1 when the
endpoint cannot be reached.

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
      process.exitCode = opts.cluster ? await clusterStatus(program.opts<KubeOptions>(), opts.json) : await localStatus(opts.endpoint, opts.json);
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

async function localStatus(endpoint: string, json: boolean): Promise<number> {
  let url: URL;
  try {
    url = new URL('/status', endpoint);
  } catch {
    throw new CliError(`--endpoint: must be a URL like http://127.0.0.1:9478, got ${JSON.stringify(endpoint)}`, USAGE_EXIT);
  }
  let status: NodeStatus;
  try {
    status = JSON.parse(await getText(url, 10_000, 4 << 20)) as NodeStatus;
  } catch (err: unknown) {
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new CliError(`cannot read the node plugin at ${url.href} (${why}): is kmesh-ipsec node running here? (--endpoint, or --cluster for the whole cluster)`);
  }
  process.stdout.write(json ? `${JSON.stringify(status, null, 2)}\n` : renderNodeStatus(status));
  return status.ready && status.lastRun?.ok === true ? 0 : NODE_NOT_OK_EXIT;
}

/** GET `url` over plain HTTP (the plugin's endpoint is local): bounded in time and size. */
function getText(url: URL, timeoutMs: number, maxBytes: number): Promise<string> {
  if (url.protocol !== 'http:') return Promise.reject(new Error(`only http:// endpoints, got ${url.protocol}`));
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${String(res.statusCode)}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) req.destroy(new Error(`answer larger than ${maxBytes} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
