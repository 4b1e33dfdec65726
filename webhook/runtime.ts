/**
 * Compose a running webhook from its configuration: stamp keys (hot-reloaded), the cluster view,
 * metrics and the HTTPS server. The CLI calls this; tests call it too, with their own view.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { formatErrors } from '../core/result.js';
import { parseStampKeyFiles, StampKeyStore } from './stamp-keys.js';
import type { ClusterView } from './cluster-view.js';
import type { IdentityPolicy } from './identity.js';
import { KubeClusterView } from './kube-cluster-view.js';
import { WebhookMetrics } from './metrics.js';
import { WebhookServer } from './server.js';
import { WatchedFiles } from '../lib/watched-files.js';
import { readProblem } from '../lib/bounded-read.js';

export interface WebhookConfig {
  readonly host: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  /** Private stamp signing key (JWK). */
  readonly stampKeyFile: string;
  /** Public JWKS of keys still accepted (old keys during a rotation); the signer's own key is always accepted. */
  readonly stampJwksFile?: string;
  readonly stampTtlSeconds?: number;
  readonly clockSkewSeconds?: number;
  readonly identity: IdentityPolicy;
  readonly checkNodeFacts: boolean;
  readonly filePollIntervalMs?: number;
  readonly bodyLimitBytes?: number;
  /** CA (PEM) whose client certificates may call the admission endpoints; unset: anyone may. */
  readonly clientCaFile?: string;
  /** With clientCaFile: the certificate's CN or a DNS SAN must be one of these (empty: any). */
  readonly clientNames?: readonly string[];
}

export interface ClusterSource {
  /** A KubeConfig for the real API server, or a ready-made view (tests, benchmarks). */
  readonly kubeConfig?: KubeConfig;
  readonly view?: ClusterView;
}

export interface RunningWebhook {
  readonly server: WebhookServer;
  readonly metrics: WebhookMetrics;
  readonly stamps: StampKeyStore;
  close(graceMs?: number): Promise<void>;
}

export async function runWebhook(config: WebhookConfig, source: ClusterSource, logger: Logger, options: { processMetrics?: boolean } = {}): Promise<RunningWebhook> {
  const metrics = new WebhookMetrics({ processMetrics: options.processMetrics ?? true });
  const stamps = new StampKeyStore({
    ...(config.stampTtlSeconds !== undefined ? { ttlSeconds: config.stampTtlSeconds } : {}),
    ...(config.clockSkewSeconds !== undefined ? { clockSkewSeconds: config.clockSkewSeconds } : {}),
  });
  const keyFiles = new WatchedFiles({
    files: config.stampJwksFile === undefined ? [config.stampKeyFile] : [config.stampKeyFile, config.stampJwksFile],
    pollIntervalMs: config.filePollIntervalMs ?? 10_000,
    onChange: async ([key, jwks]) => {
      if (!key) return false;
      const loaded = await parseStampKeyFiles(key, jwks);
      if (!loaded.ok) {
        metrics.reloads.inc({ what: 'stamp-keys', result: 'failure' });
        logger.error({ problem: formatErrors(loaded.errors) }, 'refusing the stamp keys; keeping the previous ones');
        return false;
      }
      const previous = stamps.current();
      stamps.set(loaded.value);
      metrics.reloads.inc({ what: 'stamp-keys', result: 'success' });
      logger.info({ signingKid: loaded.value.signer.kid, accepted: [...loaded.value.ring.keys()], previousKid: previous?.signer.kid }, 'stamp keys loaded');
      return true;
    },
    onError: (err) => {
      logger.warn({ problem: readProblem(err) }, 'cannot read the stamp key files; keeping the previous keys');
    },
  });
  if (!(await keyFiles.start()) || !stamps.current()) {
    keyFiles.stop();
    throw new Error(`cannot load the stamp signing key from ${config.stampKeyFile}${config.stampJwksFile ? ` and ${config.stampJwksFile}` : ''} (see the log for why)`);
  }

  let kubeView: KubeClusterView | undefined;
  let view = source.view;
  if (!view) {
    if (!source.kubeConfig) throw new Error('runWebhook: give a kubeConfig or a view');
    kubeView = new KubeClusterView(source.kubeConfig, { logger, watchNodes: config.checkNodeFacts });
    kubeView.start();
    view = kubeView;
  }
  const cluster = view;
  metrics.watchCacheSynced(() => cluster.ready());

  let server: WebhookServer;
  try {
    server = await WebhookServer.start({
      host: config.host,
      port: config.port,
      certFile: config.certFile,
      keyFile: config.keyFile,
      ...(config.filePollIntervalMs !== undefined ? { certPollIntervalMs: config.filePollIntervalMs } : {}),
      ...(config.bodyLimitBytes !== undefined ? { bodyLimitBytes: config.bodyLimitBytes } : {}),
      ...(config.clientCaFile !== undefined ? { clientCaFile: config.clientCaFile } : {}),
      ...(config.clientNames !== undefined ? { clientNames: config.clientNames } : {}),
      metrics,
      logger,
      deps: {
        cluster,
        identity: config.identity,
        stamps,
        checkNodeFacts: config.checkNodeFacts,
        now: () => Date.now() / 1000,
      },
      readiness: () => ({ 'stamp-keys': stamps.current() !== undefined, 'kmeshnodeinfo-cache': cluster.ready() }),
    });
  } catch (err: unknown) {
    keyFiles.stop();
    await kubeView?.stop();
    throw err;
  }
  return {
    server,
    metrics,
    stamps,
    close: async (graceMs?: number) => {
      keyFiles.stop();
      await server.close(graceMs);
      await kubeView?.stop();
    },
  };
}
