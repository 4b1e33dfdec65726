#!/usr/bin/env node
/**
 * `kmesh-ipsec` command line. Each command group lives in its own module and registers itself
 * here; this file only wires them up and turns failures into one-line errors.
 */
import { Command, CommanderError } from 'commander';
import { registerSecretCommands } from './secret-command.js';
import { registerWebhookCommands } from './webhook-command.js';
import { registerCertsCommands } from './certs-command.js';
import { registerNodeCommands } from './node-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerLabCommands } from './lab-command.js';
import { CliError } from './errors.js';

const program = new Command('kmesh-ipsec')
  .description('Transparent IPsec between Kubernetes nodes (Kmesh-compatible)')
  .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)')
  .option('--context <name>', 'kubeconfig context to use')
  .showHelpAfterError()
  .exitOverride();

// Command groups; add a line per group.
registerSecretCommands(program);
registerWebhookCommands(program);
registerCertsCommands(program);
registerNodeCommands(program);
registerStatusCommand(program);
registerLabCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err: unknown) {
  process.exitCode = exitCodeFor(err);
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  if (err instanceof CliError) {
    process.stderr.write(`kmesh-ipsec: ${err.message}\n`);
    return err.exitCode;
  }
  // Unexpected: still one line for the user, the stack only when asked for.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`kmesh-ipsec: unexpected error: ${message}\n`);
  if (process.env.KMESH_IPSEC_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  return 1;
}
