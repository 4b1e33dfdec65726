/**
 * `kmesh-ipsec webhook`: run the admission webhook; `kmesh-ipsec webhook keygen`: create a stamp
 * signing key. Flag parsing and process lifecycle only; everything else is in webhook/.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_STAMP_TTL_SECONDS, StampAlgorithm } from '../core/stamp.js';
import { DEFAULT_AGENT_USERNAMES, identityPolicy } from '../webhook/identity.js';
import { CliError, USAGE_EXIT } from './errors.js';
import { parseDuration } from './durations.js';
import { outputDirectory, readInputFile } from './files.js';
import { writeFileAtomic } from '../lib/atomic-write.js';

/** A JWKS holds a few public keys; a ConfigMap at most 1 MiB. */
const MAX_JWKS_BYTES = 1024 * 1024;

/** Port the webhook listens on in its pod; the Service maps 443 to it. */
export const DEFAULT_WEBHOOK_PORT = 9443;

interface ServeOptions {
  host: string;
  port: string;
  tlsCert: string;
  tlsKey: string;
  stampKey: string;
  stampJwks?: string;
  clientCa?: string;
  clientName: string[];
  stampTtl: string;
  clockSkew: string;
  agentUser: string[];
  privilegedUser: string[];
  privilegedGroup: string[];
  nodeUser: string[];
  nodeFacts: boolean;
  filePollInterval: string;
  shutdownDelay: string;
  logLevel: string;
}

interface KeygenOptions {
  out: string;
  jwks?: string;
  alg: string;
}

export function registerWebhookCommands(program: Command): void {
  const webhook = program
    .command('webhook')
    .description('run the admission webhook for the IPsec Secret and KmeshNodeInfos (HTTPS)')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--port <n>', 'port to listen on', String(DEFAULT_WEBHOOK_PORT))
    .option('--tls-cert <file>', 'serving certificate chain (PEM); re-read when it changes')
    .option('--tls-key <file>', 'serving key (PEM); re-read when it changes')
    .option('--stamp-key <file>', 'private stamp signing key (JWK, from `webhook keygen`); re-read when it changes')
    .option('--stamp-jwks <file>', 'public JWKS of stamp keys still accepted (the published one, during rotations)')
    .option('--client-ca <file>', 'CA bundle (PEM) of the API server\'s client certificate (AdmissionConfiguration kubeConfigFile); admission calls without a certificate it verifies get 401; re-read when it changes')
    .option('--client-name <name>', 'with --client-ca: the certificate\'s CN or a DNS SAN must be this (repeatable; default: any name the CA vouches for)', collect, [])
    .option('--stamp-ttl <duration>', 'lifetime of a validity stamp', `${DEFAULT_STAMP_TTL_SECONDS / 3600}h`)
    .option('--clock-skew <duration>', 'clock difference tolerated when checking stamps', `${DEFAULT_CLOCK_SKEW_SECONDS}s`)
    .option('--agent-user <username>', `node plugin service account, whose node-bound tokens may write their node's KmeshNodeInfo (repeatable; default: ${DEFAULT_AGENT_USERNAMES.join(', ')})`, collect, [])
    .option('--privileged-user <username>', 'may write any KmeshNodeInfo (repeatable)', collect, [])
    .option('--privileged-group <group>', 'members may write any KmeshNodeInfo (repeatable)', collect, [])
    .option('--node-user <user=node>', 'treat this username as the plugin of that node, for tokens without a node name (repeatable)', collect, [])
    .option('--no-node-facts', "do not compare KmeshNodeInfo addresses and pod CIDRs with the Node object (needs no get on nodes; weaker)")
    .option('--file-poll-interval <duration>', 'how often TLS and key files are re-read besides file events', '10s')
    .option('--shutdown-delay <duration>', 'on SIGTERM, keep serving this long while not ready, so endpoints drop the pod first', '5s')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .action(async (options: ServeOptions, command: Command) => {
      await serve(options, command.optsWithGlobals<{ kubeconfig?: string; context?: string }>());
    });

  webhook
    .command('keygen')
    .description('create a stamp signing key (private JWK, mode 0600) and add its public key to a JWKS')
    .requiredOption('--out <dir>', 'directory for stamp-key.jwk and stamp-jwks.json')
    .option('--jwks <file>', 'existing public JWKS to extend (keeps old keys valid during a rotation)')
    .option('--alg <alg>', 'EdDSA (Ed25519) or ES256 (P-256)', StampAlgorithm.EdDSA)
    .action(async (options: KeygenOptions) => {
      await keygen(options);
    });
}

async function serve(options: ServeOptions, globals: { kubeconfig?: string; context?: string }): Promise<void> {
  for (const [flag, value] of [['--tls-cert', options.tlsCert], ['--tls-key', options.tlsKey], ['--stamp-key', options.stampKey]] as const) {
    if (!value) throw new CliError(`${flag} is required`, USAGE_EXIT);
  }
  const port = Number(options.port);
  if (!/^\d+$/.test(options.port) || port > 65535) throw new CliError(`--port: must be 0-65535, got ${JSON.stringify(options.port)}`, USAGE_EXIT);
  const userNodes = options.nodeUser.map((pair) => {
    const at = pair.lastIndexOf('=');
    if (at <= 0 || at === pair.length - 1) throw new CliError(`--node-user: must be user=node, got ${JSON.stringify(pair)}`, USAGE_EXIT);
    return [pair.slice(0, at), pair.slice(at + 1)] as const;
  });
  if (options.clientName.length > 0 && !options.clientCa) throw new CliError('--client-name needs --client-ca', USAGE_EXIT);
  // Below an hour, every node re-publishes every half hour; above a week, a stolen stamp is good for too long.
  const stampTtlSeconds = parseDuration(options.stampTtl, '--stamp-ttl', { min: 3600, max: 7 * 24 * 3600 });
  const clockSkewSeconds = parseDuration(options.clockSkew, '--clock-skew', { min: 0, max: 600 });
  const filePollIntervalMs = parseDuration(options.filePollInterval, '--file-poll-interval', { min: 1, max: 600 }) * 1000;
  const shutdownDelayMs = parseDuration(options.shutdownDelay, '--shutdown-delay', { min: 0, max: 600 }) * 1000;
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
  if (!levels.includes(options.logLevel)) throw new CliError(`--log-level: must be one of ${levels.join(', ')}`, USAGE_EXIT);

  // Loaded here, not at the top: every other kmesh-ipsec command would pay for the server stack.
  const [{ pino }, { loadKubeConfig }, { runWebhook }] = await Promise.all([import('pino'), import('./kube.js'), import('../webhook/runtime.js')]);
  const logger = pino({ level: options.logLevel, base: { component: 'kmesh-ipsec-webhook' } });
  const kubeConfig = loadKubeConfig(globals);

  const running = await runWebhook(
    {
      host: options.host,
      port,
      certFile: options.tlsCert,
      keyFile: options.tlsKey,
      stampKeyFile: options.stampKey,
      ...(options.stampJwks ? { stampJwksFile: options.stampJwks } : {}),
      ...(options.clientCa ? { clientCaFile: options.clientCa } : {}),
      ...(options.clientName.length > 0 ? { clientNames: options.clientName } : {}),
      stampTtlSeconds,
      clockSkewSeconds,
      identity: identityPolicy({
        ...(options.agentUser.length > 0 ? { agentUsernames: options.agentUser } : {}),
        privilegedUsernames: options.privilegedUser,
        privilegedGroups: options.privilegedGroup,
        userNodes,
      }),
      checkNodeFacts: options.nodeFacts,
      filePollIntervalMs,
    },
    { kubeConfig },
    logger,
  ).catch((err: unknown) => {
    throw new CliError(err instanceof Error ? err.message : String(err));
  });

  // Keep running until told to stop; then drain (the API server retries on another replica).
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      // A second signal must not cut the drain short (the kubelet's SIGKILL does that if needed).
      if (stopping) return;
      stopping = true;
      logger.info({ signal, delayMs: shutdownDelayMs }, 'shutting down');
      running.server.beginShutdown();
      setTimeout(() => {
        void running.close(20_000).finally(resolve);
      }, shutdownDelayMs);
    };
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.on('SIGINT', () => {
      stop('SIGINT');
    });
  });
}

async function keygen(options: KeygenOptions): Promise<void> {
  const alg = Object.values(StampAlgorithm).find((a) => a === options.alg);
  if (!alg) throw new CliError(`--alg: must be ${Object.values(StampAlgorithm).join(' or ')}, got ${JSON.stringify(options.alg)}`, USAGE_EXIT);
  let existing: unknown;
  if (options.jwks !== undefined) {
    const text = await readInputFile(options.jwks, '--jwks', MAX_JWKS_BYTES);
    try {
      existing = JSON.parse(text) as unknown;
    } catch {
      throw new CliError(`--jwks: ${options.jwks} is not JSON`);
    }
  }
  const { addToJwks, generateStampKey } = await import('../certs/stamp-keygen.js');
  const key = await generateStampKey(alg);
  const jwks = await addToJwks(existing, key.publicJwk);
  if (!jwks.ok) throw new CliError(`--jwks: ${jwks.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
  await outputDirectory(options.out);
  const keyFile = join(options.out, 'stamp-key.jwk');
  const jwksFile = join(options.out, 'stamp-jwks.json');
  await writeFileAtomic(keyFile, `${JSON.stringify(key.privateJwk)}\n`, 0o600);
  await writeFileAtomic(jwksFile, `${JSON.stringify(jwks.value, null, 2)}\n`, 0o644);
  process.stderr.write(`wrote ${keyFile} (private, mode 0600) and ${jwksFile} (${jwks.value.keys.length} public key(s))\n`);
  process.stdout.write(`${key.kid}\n`);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
