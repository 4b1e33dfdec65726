/** `kmesh-ipsec secret create|get|delete|render`. */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { AEAD_ALGORITHM, DEFAULT_ICV_BITS, KMESH_NAMESPACE, SECRET_NAME } from '../core/constants.js';
import { keyFingerprint } from '../core/fingerprint.js';
import { type IpsecKey, renderIpsecSecret } from '../core/secret.js';
import { CliError, USAGE_EXIT } from './errors.js';
import { parseKeyFlag, parseSpiFlag } from './key-flag.js';
import { type KubeOptions, loadKubeConfig } from './kube.js';
import { SecretStore } from './secret-store.js';

const SECRET_REF = `${KMESH_NAMESPACE}/${SECRET_NAME}`;

export function registerSecretCommands(program: Command): void {
  const secret = program.command('secret').description(`manage the IPsec pre-shared key (Secret ${SECRET_REF})`);
  const store = (): SecretStore => new SecretStore(loadKubeConfig(program.opts<KubeOptions>()));

  secret
    .command('create')
    .description('create the key (SPI 1 on a fresh cluster) or rotate it to the next SPI')
    .option('--key <hex>', `72 hex characters (36 bytes); default: 36 random bytes from the OS CSPRNG`)
    .action(async (opts: { key?: string }) => {
      const keyBytes = opts.key === undefined ? undefined : parseKeyFlag(opts.key);
      const outcome = await store().createOrRotate(keyBytes);
      const fp = keyFingerprint(outcome.key.aeadKey);
      if (outcome.action === 'created') {
        if (outcome.advertisedWarning) process.stderr.write(`warning: ${outcome.advertisedWarning}\n`);
        process.stdout.write(`secret ${SECRET_REF} created: SPI ${outcome.key.spi}, key fingerprint ${fp}\n`);
      } else {
        process.stdout.write(`secret ${SECRET_REF} rotated: SPI ${outcome.from} -> ${outcome.key.spi}, key fingerprint ${fp}\n`);
        process.stdout.write(`nodes move to SPI ${outcome.key.spi} as each one loads the new key; SPI ${outcome.from} keeps working meanwhile\n`);
      }
    });

  secret
    .command('get')
    .description('show the key configuration (the key itself stays hidden unless --show-key)')
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .option('--show-key', 'print the key material too', false)
    .action(async (opts: { output: string; showKey: boolean }) => {
      const format = outputFormat(opts.output, ['text', 'json', 'yaml']);
      const stored = await store().read();
      if (!stored) throw new CliError(`secret ${SECRET_REF} not found; create it with: kmesh-ipsec secret create`);
      process.stdout.write(renderGet(stored.key, stored.object.metadata?.creationTimestamp, format, opts.showKey));
    });

  secret
    .command('delete')
    .description('delete the key; nodes keep their current states until a new key arrives')
    .option('-y, --yes', 'do not ask for confirmation', false)
    .action(async (opts: { yes: boolean }) => {
      if (!opts.yes) await confirm(`Delete secret ${SECRET_REF}? Encryption keeps its current keys but can no longer rotate.`);
      const deleted = await store().delete();
      if (!deleted) throw new CliError(`secret ${SECRET_REF} not found`);
      const spi = deleted.key?.spi;
      process.stdout.write(`secret ${SECRET_REF} deleted${spi === undefined ? '' : ` (was SPI ${spi})`}\n`);
      process.stderr.write(
        `warning: nodes still hold states for SPI ${spi ?? 'n'}. A re-created secret must NOT restart at SPI 1, or it would reuse SPIs bound to the old key:\n` +
          `         'kmesh-ipsec secret create' continues above the highest SPI nodes advertise, and the admission webhook refuses lower SPIs.\n`,
      );
    });

  secret
    .command('render')
    .description('print the Secret manifest offline (for GitOps); nothing is sent to a cluster')
    .requiredOption('--key <hex>', '72 hex characters (36 bytes)')
    .requiredOption('--spi <n>', 'key version, 1 to 2147483647; must be above the SPI in use')
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .action((opts: { key: string; spi: string; output: string }) => {
      const format = outputFormat(opts.output, ['yaml', 'json']);
      const key: IpsecKey = { spi: parseSpiFlag(opts.spi), aeadKeyName: AEAD_ALGORITHM, aeadKey: parseKeyFlag(opts.key), icvBits: DEFAULT_ICV_BITS };
      const manifest = renderIpsecSecret(key);
      process.stdout.write(format === 'json' ? `${JSON.stringify(manifest, null, 2)}\n` : toYaml(manifest));
    });
}

function outputFormat<T extends string>(value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (!found) throw new CliError(`--output: must be one of ${allowed.join(', ')}, got "${value}"`, USAGE_EXIT);
  return found;
}

/** The `get` view. JSON/YAML mirror the stored fields; the key appears only with --show-key. */
export function renderGet(key: IpsecKey, created: Date | string | undefined, format: 'text' | 'json' | 'yaml', showKey: boolean): string {
  const fingerprint = keyFingerprint(key.aeadKey);
  if (format === 'text') {
    const createdText = created === undefined ? 'unknown' : new Date(created).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    return [
      `Secret:       ${SECRET_REF}`,
      `Created:      ${createdText}`,
      `SPI:          ${key.spi}`,
      `Algorithm:    ${key.aeadKeyName}`,
      `ICV:          ${key.icvBits} bits`,
      `Fingerprint:  ${fingerprint}`,
      `Key:          ${showKey ? Buffer.from(key.aeadKey).toString('hex') : 'hidden (use --show-key to print it)'}`,
      '',
    ].join('\n');
  }
  const view = {
    spi: key.spi,
    aeadKeyName: key.aeadKeyName,
    ...(showKey ? { aeadKey: Buffer.from(key.aeadKey).toString('base64') } : {}),
    length: key.icvBits,
    keyFingerprint: fingerprint,
  };
  return format === 'json' ? `${JSON.stringify(view, null, 2)}\n` : toYaml(view);
}

async function confirm(question: string): Promise<void> {
  if (!process.stdin.isTTY) throw new CliError('refusing to delete without confirmation: pass --yes', USAGE_EXIT);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('not deleted');
  } finally {
    rl.close();
  }
}
