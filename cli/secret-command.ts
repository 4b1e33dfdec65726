/** `kmesh-ipsec secret create|get|delete|render`. */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { nameList } from '../core/cluster-keys.js';
import { AEAD_ALGORITHM, DEFAULT_ICV_BITS, KMESH_NAMESPACE, SECRET_NAME } from '../core/constants.js';
import { keyFingerprint } from '../core/fingerprint.js';
import { type IpsecKey, renderIpsecSecret } from '../core/secret.js';
import { CliError, ROTATING_EXIT, USAGE_EXIT } from './errors.js';
import { KEY_FILE_OPTION_HELP, KEY_OPTION_HELP, type KeyOptions, parseSpiFlag, readKeyOption } from './key-flag.js';
import { type KubeOptions, loadKubeConfig } from './kube.js';
import { SecretStore, type WriteOutcome } from './secret-store.js';
import { describeHoldout } from './cluster-view-render.js';

const SECRET_REF = `${KMESH_NAMESPACE}/${SECRET_NAME}`;

export function registerSecretCommands(program: Command): void {
  const secret = program.command('secret').description(`manage the IPsec pre-shared key (Secret ${SECRET_REF})`);
  const store = (): SecretStore => new SecretStore(loadKubeConfig(program.opts<KubeOptions>()));

  secret
    .command('create')
    .description('create the key (SPI 1 on a fresh cluster) or rotate it to the next SPI once every node is on the current one')
    .option('--key <hex>', `${KEY_OPTION_HELP}; default: 36 random bytes from the OS CSPRNG`)
    .option('--key-file <file>', KEY_FILE_OPTION_HELP)
    .option('--force', 'rotate even while nodes are not all on the current SPI', false)
    .option('--dry-run', 'show the current SPI, the next SPI and the nodes behind; write nothing', false)
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
A rotation waits until every KmeshNodeInfo advertises the current SPI (see
'kmesh-ipsec status --cluster'); otherwise it is refused with exit status ${ROTATING_EXIT}, naming
the nodes behind. --force rotates anyway. --dry-run exits as the real run would.`,
    )
    .action(async (opts: KeyOptions & { force: boolean; dryRun: boolean; output: string }) => {
      const format = outputFormat(opts.output, ['text', 'json']);
      const keyBytes = await readKeyOption(opts);
      const outcome = await store().createOrRotate(keyBytes, { force: opts.force, dryRun: opts.dryRun });
      const report = writeReport(outcome, keyBytes !== undefined);
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : writeText(report));
      if (outcome.action === 'refused') {
        throw new CliError(
          `refusing to rotate: not every node is on SPI ${outcome.from} yet (${nameList(outcome.holdouts, describeHoldout)}); ` +
            `wait until 'kmesh-ipsec status --cluster' says in-sync, or pass --force`,
          ROTATING_EXIT,
        );
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
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { yes: boolean; output: string }) => {
      const format = outputFormat(opts.output, ['text', 'json']);
      if (!opts.yes) await confirm(`Delete secret ${SECRET_REF}? Encryption keeps its current keys but can no longer rotate.`);
      const deleted = await store().delete();
      if (!deleted) throw new CliError(`secret ${SECRET_REF} not found`);
      const spi = deleted.key?.spi;
      process.stdout.write(
        format === 'json'
          ? `${JSON.stringify({ action: 'delete', result: 'deleted', secret: SECRET_REF, spi: spi ?? null }, null, 2)}\n`
          : `secret ${SECRET_REF} deleted${spi === undefined ? '' : ` (was SPI ${spi})`}\n`,
      );
      process.stderr.write(
        `warning: nodes still hold states for SPI ${spi ?? 'n'}. A re-created secret must NOT restart at SPI 1, or it would reuse SPIs bound to the old key:\n` +
          `         'kmesh-ipsec secret create' continues above the highest SPI nodes advertise, and the admission webhook refuses lower SPIs.\n`,
      );
    });

  secret
    .command('render')
    .description('print the Secret manifest offline (for GitOps); nothing is sent to a cluster')
    .option('--key <hex>', KEY_OPTION_HELP)
    .option('--key-file <file>', KEY_FILE_OPTION_HELP)
    .requiredOption('--spi <n>', 'key version, 1 to 2147483647; must be above the SPI in use')
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .action(async (opts: KeyOptions & { spi: string; output: string }) => {
      const format = outputFormat(opts.output, ['yaml', 'json']);
      const spi = parseSpiFlag(opts.spi);
      const aeadKey = await readKeyOption(opts);
      if (!aeadKey) throw new CliError('the key is required: --key-file FILE, --key - (standard input) or --key HEX', USAGE_EXIT);
      const key: IpsecKey = { spi, aeadKeyName: AEAD_ALGORITHM, aeadKey, icvBits: DEFAULT_ICV_BITS };
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

/** What `secret create` did or would do, as data: the `-o json` output, and the source of the text. */
export interface WriteReport {
  readonly action: 'create' | 'rotate';
  /** `refused`: nodes are not all on currentSpi; nothing was (or, in a dry run, would be) written. */
  readonly result: 'written' | 'would-write' | 'refused';
  readonly dryRun: boolean;
  readonly secret: string;
  readonly currentSpi: number | null;
  readonly nextSpi: number;
  /** Of the key written, or of --key in a dry run; absent when no key was chosen. */
  readonly keyFingerprint?: string;
  /** Nodes not advertising currentSpi (a rotation waits for them; with --force it goes ahead). */
  readonly nodesBehind: readonly { readonly name: string; readonly spi: number | null }[];
  readonly warnings: readonly string[];
}

function writeReport(outcome: WriteOutcome, keyGiven: boolean): WriteReport {
  const { dryRun } = outcome;
  const result = outcome.action === 'refused' ? 'refused' : dryRun ? 'would-write' : 'written';
  const fingerprint = outcome.action !== 'refused' && (result === 'written' || keyGiven) ? { keyFingerprint: keyFingerprint(outcome.key.aeadKey) } : {};
  if (outcome.action === 'created') {
    return { action: 'create', result, dryRun, secret: SECRET_REF, currentSpi: null, nextSpi: outcome.key.spi, ...fingerprint, nodesBehind: [], warnings: outcome.advertisedWarning === undefined ? [] : [outcome.advertisedWarning] };
  }
  const nodesBehind = outcome.holdouts.map((n) => ({ name: n.name, spi: n.spi ?? null }));
  const warnings: string[] = [];
  if (outcome.action === 'rotated') {
    if (outcome.nodesWarning !== undefined) warnings.push(outcome.nodesWarning);
    if (outcome.holdouts.length > 0) warnings.push(`--force: rotating although not every node is on SPI ${outcome.from} (${nameList(outcome.holdouts, describeHoldout)})`);
  }
  const nextSpi = outcome.action === 'refused' ? outcome.to : outcome.key.spi;
  return { action: 'rotate', result, dryRun, secret: SECRET_REF, currentSpi: outcome.from, nextSpi, ...fingerprint, nodesBehind, warnings };
}

/** Written: what changed. Dry run (also one that would be refused): the preview. Refused for real: nothing; the error says it. */
function writeText(r: WriteReport): string {
  if (r.result === 'written') {
    const fp = r.keyFingerprint ?? '';
    if (r.action === 'create') return `secret ${SECRET_REF} created: SPI ${r.nextSpi}, key fingerprint ${fp}\n`;
    return (
      `secret ${SECRET_REF} rotated: SPI ${r.currentSpi ?? 0} -> ${r.nextSpi}, key fingerprint ${fp}\n` +
      `nodes move to SPI ${r.nextSpi} as each one loads the new key; SPI ${r.currentSpi ?? 0} keeps working meanwhile\n`
    );
  }
  const lines = [
    'dry run: nothing written',
    `current SPI:      ${r.currentSpi ?? `none (secret ${SECRET_REF} does not exist)`}`,
    `next SPI:         ${r.nextSpi}`,
    ...(r.keyFingerprint === undefined ? [] : [`key fingerprint:  ${r.keyFingerprint}`]),
    ...(r.action === 'rotate' ? [`nodes behind:     ${r.nodesBehind.length === 0 ? 'none' : nameList(r.nodesBehind, describeHoldout)}`] : []),
  ];
  return r.dryRun ? `${lines.join('\n')}\n` : '';
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
