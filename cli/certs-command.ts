/**
 * `kmesh-ipsec certs`: a development CA and webhook serving certificate. Prints the caBundle
 * (and only that) on stdout so it can be captured with $(...); the summary goes to stderr.
 */
import type { Command } from 'commander';
import type { CertificateAuthority } from '../certs/dev-pki.js';
import { KMESH_NAMESPACE } from '../core/constants.js';
import { parseIp } from '../core/ip.js';
import { CliError, USAGE_EXIT } from './errors.js';
import { outputDirectory, readInputFile } from './files.js';

/** A PEM certificate or key is a few KB. */
const MAX_PEM_BYTES = 1024 * 1024;

/** The Service in front of the webhook (docs/webhook.md). */
export const WEBHOOK_SERVICE = 'kmesh-ipsec-webhook';

interface CertsOptions {
  out: string;
  service: string;
  namespace: string;
  days: string;
  caDays: string;
  ip: string[];
  caCert?: string;
  caKey?: string;
  writeCaKey?: boolean;
}

export function registerCertsCommands(program: Command): void {
  program
    .command('certs')
    .description('generate a development CA and a serving certificate for the admission webhook; prints the caBundle')
    .requiredOption('--out <dir>', 'directory for ca.crt, tls.crt and tls.key (keys are written mode 0600)')
    .option('--service <name>', 'Service name of the webhook', WEBHOOK_SERVICE)
    .option('--namespace <ns>', 'namespace of that Service', KMESH_NAMESPACE)
    .option('--days <n>', 'lifetime of the serving certificate in days', '90')
    .option('--ca-days <n>', 'lifetime of the CA in days', '365')
    .option('--ip <address>', 'also valid for this IP address (repeatable; for local testing)', collect, [])
    .option('--ca-cert <file>', 're-issue the serving certificate from this existing CA (caBundle unchanged)')
    .option('--ca-key <file>', 'private key of --ca-cert')
    .option('--write-ca-key', 'also write ca.key, needed to re-issue the serving certificate later without changing caBundle')
    .action(async (options: CertsOptions) => {
      const days = positiveInt(options.days, '--days');
      const caDays = positiveInt(options.caDays, '--ca-days');
      for (const ip of options.ip) if (!parseIp(ip)) throw new CliError(`--ip: ${JSON.stringify(ip)} is not an IP address`, USAGE_EXIT);
      if ((options.caCert === undefined) !== (options.caKey === undefined)) throw new CliError('--ca-cert and --ca-key go together', USAGE_EXIT);

      await outputDirectory(options.out);
      // node-forge is loaded only when this command runs.
      const { caBundle, createCertificateAuthority, issueServingCertificate, serviceDnsNames, writeDevPki } = await import('../certs/dev-pki.js');
      const ca: CertificateAuthority = options.caCert !== undefined && options.caKey !== undefined
        ? { certPem: await readInputFile(options.caCert, '--ca-cert', MAX_PEM_BYTES), keyPem: await readInputFile(options.caKey, '--ca-key', MAX_PEM_BYTES) }
        : createCertificateAuthority({ days: caDays });
      let serving;
      try {
        serving = issueServingCertificate(ca, {
          dnsNames: serviceDnsNames(options.service, options.namespace),
          commonName: `${options.service}.${options.namespace}.svc`,
          ipAddresses: options.ip,
          days,
        });
      } catch {
        throw new CliError('cannot issue the serving certificate: --ca-cert/--ca-key are not a matching PEM certificate and RSA key');
      }
      const written = await writeDevPki(options.out, { ca, serving }, { writeCaKey: options.writeCaKey === true });
      process.stderr.write(
        `wrote ${[written.caCert, written.tlsCert, written.tlsKey, written.caKey].filter(Boolean).join(', ')}\n` +
          `serving certificate for ${[...serving.dnsNames, ...options.ip].join(', ')}, valid ${days} days\n` +
          'caBundle (base64 PEM of ca.crt) follows on stdout\n',
      );
      process.stdout.write(`${caBundle(ca)}\n`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0) throw new CliError(`${flag}: must be a positive whole number, got ${JSON.stringify(text)}`, USAGE_EXIT);
  return n;
}
