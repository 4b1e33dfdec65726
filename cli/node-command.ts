/**
 * `kmesh-ipsec node`: run the node plugin daemon (one per node, host network);
 * `kmesh-ipsec node cleanup`: remove everything it installed on this node (uninstall path).
 * Flag parsing and process lifecycle only; the daemon is nodeplugin/daemon/.
 */
import type { Command } from 'commander';
import { CliError, USAGE_EXIT } from './errors.js';
import { parseDuration } from './durations.js';
import { DEFAULT_BPFFS_ROOT } from '../nodeplugin/bpf/layout.js';

export const DEFAULT_NODE_LISTEN = '0.0.0.0:9478';
export const DEFAULT_SECRET_DIR = '/etc/kmesh-ipsec/secret';
export const DEFAULT_STAMP_JWKS = '/etc/kmesh-ipsec/stamp-jwks/jwks.json';
export const DEFAULT_BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

interface NodeOptions {
  nodeName?: string;
  secretDir: string;
  stampJwks: string;
  bpffsRoot: string;
  nodeInterface: string[];
  gracePeriod: string;
  publishJitter: string;
  resyncInterval: string;
  strict: boolean;
  bootIdFile: string;
  listen: string;
  logLevel: string;
}

interface CleanupOptions {
  nodeName?: string;
  bpffsRoot: string;
  keepNodeInfo: boolean;
  logLevel: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export function registerNodeCommands(program: Command): void {
  const node = program
    .command('node')
    .description('run the node plugin: program this node\'s kernel (xfrm, tc, BPF) from the cluster and publish its KmeshNodeInfo')
    .option('--node-name <name>', 'this node\'s name (default: $NODE_NAME, as the downward API sets it from spec.nodeName)')
    .option('--secret-dir <dir>', 'directory of the mounted kmesh-ipsec Secret; the key is read from its ipSec file and re-read when kubelet updates it', DEFAULT_SECRET_DIR)
    .option('--stamp-jwks <file>', 'public JWKS of the webhook\'s stamp keys; only peers whose stamp verifies against it are used', DEFAULT_STAMP_JWKS)
    .option('--bpffs-root <dir>', 'bpffs directory under which this node\'s maps and programs are pinned (in <dir>/<node-name>)', DEFAULT_BPFFS_ROOT)
    .option('--node-interface <name>', 'interface where ESP from peers arrives, for the node program (repeatable; default: every non-loopback interface carrying one of the Node\'s InternalIPs)', collect, [])
    .option('--grace-period <duration>', 'how long an old inbound SPI is kept after every peer moved to the new one', '5m')
    .option('--publish-jitter <duration>', 'at most this random delay before publishing a new SPI, so nodes do not all write at once (0 disables)', '10s')
    .option('--resync-interval <duration>', 'full re-check of the kernel and the cluster at this interval', '5m')
    .option('--strict', 'drop managed pod traffic to a peer pod CIDR that cannot be encrypted (refused peer, no key yet, no common address family) instead of sending it in clear', false)
    .option('--boot-id-file <file>', 'the kernel\'s boot ID, cross-checked with Node.status.nodeInfo.bootID', DEFAULT_BOOT_ID_FILE)
    .option('--listen <host:port>', 'HTTP endpoint for /metrics, /healthz, /readyz and /status', DEFAULT_NODE_LISTEN)
    .option('--log-level <level>', LOG_LEVELS.join(', '), 'info')
    .action(async (options: NodeOptions, command: Command) => {
      await runNode(options, command.optsWithGlobals<{ kubeconfig?: string; context?: string }>());
    });

  node
    .command('cleanup')
    .description('remove what the node plugin installed on this node: our xfrm policies and states, tc filters, pins, and this node\'s KmeshNodeInfo (uninstall only: pod traffic is in clear afterwards)')
    .option('--node-name <name>', 'this node\'s name (default: $NODE_NAME)')
    .option('--bpffs-root <dir>', 'bpffs directory the plugin pinned under', DEFAULT_BPFFS_ROOT)
    .option('--keep-node-info', 'leave this node\'s KmeshNodeInfo in the cluster (no API access needed)', false)
    .option('--log-level <level>', LOG_LEVELS.join(', '), 'info')
    .action(async (_options: CleanupOptions, command: Command) => {
      await runCleanup(explicitFirst(command) as unknown as CleanupOptions, command.optsWithGlobals<{ kubeconfig?: string; context?: string }>());
    });
}

function nodeName(flag: string | undefined): string {
  const name = flag ?? process.env.NODE_NAME;
  if (!name) throw new CliError('--node-name is required (or set $NODE_NAME, as the DaemonSet does from spec.nodeName)', USAGE_EXIT);
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) throw new CliError(`--node-name: ${JSON.stringify(name)} is not a Kubernetes node name`, USAGE_EXIT);
  return name;
}

function logLevel(level: string): string {
  if (!LOG_LEVELS.includes(level)) throw new CliError(`--log-level: must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`, USAGE_EXIT);
  return level;
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new CliError(`--listen: must be host:port (e.g. 0.0.0.0:9478 or [::1]:9478), got ${JSON.stringify(text)}`, USAGE_EXIT);
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] ?? '0.0.0.0')), port };
}

async function runNode(options: NodeOptions, globals: { kubeconfig?: string; context?: string }): Promise<void> {
  const name = nodeName(options.nodeName);
  const level = logLevel(options.logLevel);
  const graceMs = parseDuration(options.gracePeriod, '--grace-period', { min: 1, max: 7 * 24 * 3600 }) * 1000;
  const publishJitterMs = parseDuration(options.publishJitter, '--publish-jitter', { min: 0, max: 3600 }) * 1000;
  const resyncIntervalMs = parseDuration(options.resyncInterval, '--resync-interval', { min: 1, max: 24 * 3600 }) * 1000;
  const listen = parseListen(options.listen);
  const [{ pino }, { loadKubeConfig }, { NodePlugin }, { nodePinDir }] = await Promise.all([
    import('pino'), import('./kube.js'), import('../nodeplugin/daemon/node-plugin.js'), import('../nodeplugin/bpf/index.js'),
  ]);
  let pinDir: string;
  try {
    pinDir = nodePinDir(name, options.bpffsRoot);
  } catch (err: unknown) {
    throw new CliError(`--bpffs-root: ${err instanceof Error ? err.message : String(err)}`, USAGE_EXIT);
  }
  const logger = pino({ level, base: { component: 'kmesh-ipsec-node', node: name } });
  const plugin = new NodePlugin(
    {
      nodeName: name,
      secretDir: options.secretDir,
      stampJwksFile: options.stampJwks,
      pinDir,
      ...(options.nodeInterface.length > 0 ? { nodeInterfaces: options.nodeInterface } : {}),
      graceMs,
      publishJitterMs,
      resyncIntervalMs,
      strict: options.strict,
      bootIdFile: options.bootIdFile,
      listen,
    },
    { kubeConfig: loadKubeConfig(globals), logger },
  );
  try {
    await plugin.start();
  } catch (err: unknown) {
    await plugin.stop().catch(() => undefined);
    throw new CliError(`cannot start the node plugin: ${err instanceof Error ? err.message : String(err)}`);
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping; kernel state stays for the next instance');
      void plugin.stop().finally(resolve);
    };
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.on('SIGINT', () => {
      stop('SIGINT');
    });
  });
}

async function runCleanup(options: CleanupOptions, globals: { kubeconfig?: string; context?: string }): Promise<void> {
  const name = nodeName(options.nodeName);
  const level = logLevel(options.logLevel);
  const [{ pino }, { loadKubeConfig }, { cleanupNode }, { nodePinDir }, { NetlinkXfrmPort }, { XfrmSocket }, { NodePluginApi }] = await Promise.all([
    import('pino'), import('./kube.js'), import('../nodeplugin/daemon/cleanup.js'), import('../nodeplugin/bpf/index.js'),
    import('../nodeplugin/kernel-ports.js'), import('../nodeplugin/xfrm/index.js'), import('../nodeplugin/daemon/kube-api.js'),
  ]);
  // stdout carries the one-line summary; the log goes to stderr.
  const logger = pino({ level, base: { component: 'kmesh-ipsec-node-cleanup', node: name } }, pino.destination(2));
  const api = options.keepNodeInfo ? undefined : new NodePluginApi(loadKubeConfig(globals), logger);
  const socket = XfrmSocket.open();
  try {
    const report = await cleanupNode(nodePinDir(name, options.bpffsRoot), {
      xfrm: new NetlinkXfrmPort(socket),
      logger,
      ...(api ? { deleteNodeInfo: () => api.deleteNodeInfo(name) } : {}),
    });
    process.stdout.write(
      `removed ${report.policies} xfrm policies, ${report.states} xfrm states, ${report.filters.length} tc filters, ` +
        `${report.pins.length} pins${api ? `, KmeshNodeInfo ${report.nodeInfoDeleted ? 'deleted' : 'not found'}` : ''}\n`,
    );
    if (report.errors.length > 0) throw new CliError(`cleanup incomplete: ${report.errors.join('; ')}`);
  } finally {
    socket.close();
  }
}

/**
 * The subcommand's options where `node cleanup --node-name x` let the parent `node` command
 * take a flag both define: a value given on the command line wins wherever commander put it.
 */
function explicitFirst(command: Command): Record<string, unknown> {
  const own = command.opts<Record<string, unknown>>();
  const parent = command.parent;
  const merged: Record<string, unknown> = { ...own };
  if (parent) {
    for (const key of command.options.map((o) => o.attributeName())) {
      if (command.getOptionValueSource(key) !== 'cli' && parent.getOptionValueSource(key) === 'cli') merged[key] = parent.getOptionValue(key);
    }
  }
  return merged;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
