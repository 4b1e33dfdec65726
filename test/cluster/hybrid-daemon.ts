/**
 * The node plugin daemon for host tests on kernels without ESP: exactly what `kmesh-ipsec node`
 * runs (NodePlugin), with SAs kept in a file (hybrid-xfrm.ts) and everything else real: netlink
 * policies, BPF maps and tc programs, the API through the relay, the mounted-file Secret.
 *
 * Usage (inside a node's network namespace): node hybrid-daemon.js '<json HybridDaemonConfig>'
 */
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { NodePlugin, type NodePluginOptions } from '../../nodeplugin/daemon/node-plugin.js';
import { XfrmSocket } from '../../nodeplugin/xfrm/index.js';
import { HybridXfrmPort } from './hybrid-xfrm.js';

export interface HybridDaemonConfig {
  readonly options: NodePluginOptions;
  readonly kubeconfigPath: string;
  readonly stateFile: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as HybridDaemonConfig;
const kc = new KubeConfig();
kc.loadFromFile(config.kubeconfigPath);
const logger = pino({ level: process.env.KMESH_TEST_LOG_LEVEL ?? 'info', base: { component: 'kmesh-ipsec-node', node: config.options.nodeName } });
const socket = XfrmSocket.open();
const plugin = new NodePlugin(config.options, { kubeConfig: kc, logger, xfrm: new HybridXfrmPort(socket, config.stateFile) });
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void plugin.stop().finally(() => {
    socket.close();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
try {
  await plugin.start();
} catch (err: unknown) {
  logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'cannot start');
  process.exit(1);
}
