#!/usr/bin/env node
/**
 * `kmesh-ipsec` command line. Each command group lives in its own module and registers itself
 * here; this file only wires them up and turns failures into one-line errors.
 *
 * One convention for every usage error, whether commander or a command found it: exit status
 * 2 and one line on stderr ending with a hint to the command's --help.
 */
import { Command, CommanderError } from 'commander';
import { registerSecretCommands } from './secret-command.js';
import { registerWebhookCommands } from './webhook-command.js';
import { registerCertsCommands } from './certs-command.js';
import { registerNodeCommands } from './node-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerLabCommands } from './lab-command.js';
import { CliError, USAGE_EXIT } from './errors.js';

const program = new Command('kmesh-ipsec')
  .description('Transparent IPsec between Kubernetes nodes (Kmesh-compatible)')
  .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)')
  .option('--context <name>', 'kubeconfig context to use')
  // Errors are printed below, as one line; help asked for still goes to stdout. Subcommands
  // inherit both settings, so they are set before any is added.
  .configureOutput({ writeErr: () => undefined, outputError: () => undefined })
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
  if (err instanceof CommanderError) {
    if (err.exitCode === 0) return 0; // --help, --version
    const at = commandAt(process.argv.slice(2));
    const message = err.code === 'commander.help'
      ? `${at.name()} needs a command: ${at.commands.map((c) => c.name()).join(', ')}`
      : err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    return usage(message, at);
  }
  if (err instanceof CliError) {
    if (err.exitCode === USAGE_EXIT) return usage(err.message, commandAt(process.argv.slice(2)));
    process.stderr.write(`kmesh-ipsec: ${err.message}\n`);
    return err.exitCode;
  }
  // Unexpected: still one line for the user, the stack only when asked for.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`kmesh-ipsec: unexpected error: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (process.env.KMESH_IPSEC_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  return 1;
}

function usage(message: string, at: Command): number {
  process.stderr.write(`kmesh-ipsec: ${message} (see ${commandPath(at)} --help)\n`);
  return USAGE_EXIT;
}

/** The deepest command the arguments name (options and their values are skipped over by name). */
function commandAt(args: readonly string[]): Command {
  let at: Command = program;
  for (const arg of args) {
    const sub = at.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (sub) at = sub;
  }
  return at;
}

function commandPath(at: Command): string {
  const names: string[] = [];
  for (let c: Command | null = at; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
