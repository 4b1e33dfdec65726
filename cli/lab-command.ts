/**
 * `kmesh-ipsec lab`: the whole system on one machine (lab/). Flag parsing, progress lines and
 * exit codes only; everything else is in lab/.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { CliError, USAGE_EXIT } from './errors.js';

interface UpOptions {
  nodes: string;
  podsPerNode: string;
  dualStack: boolean;
  dir: string;
  json: boolean;
}

interface DemoOptions {
  nodes: string;
  dir: string;
  json: boolean;
  vm: boolean;
  reportFile?: string;
}

/** Exit status of a demo whose report says a check failed. */
export const DEMO_FAILED_EXIT = 4;

const progress = (line: string): void => {
  process.stderr.write(`lab: ${line}\n`);
};

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('the whole system on this machine: nodes as network namespaces, pods, a local Kubernetes API, the webhook and a node plugin per node (root; a kernel with ESP and AES-GCM)');
  const dirOption = ['--dir <dir>', 'the lab\'s directory (its state, kubeconfig, logs, sockets)', '/run/kmesh-ipsec-lab'] as const;

  lab
    .command('up')
    .description('build a lab and leave it running; returns once every node advertises the SPI and every pair is programmed')
    .option('--nodes <n>', 'number of nodes', '3')
    .option('--pods-per-node <m>', 'pods per node in the Kmesh-managed namespace "demo" (node1 also gets one in the unlabelled namespace "plain")', '1')
    .option('--dual-stack', 'IPv6 node addresses and pod CIDRs as well as IPv4', false)
    .option(...dirOption)
    .option('--json', 'print the topology (kubeconfig, wire, nodes, pods) as JSON on stdout', false)
    .action(async (o: UpOptions) => {
      const { Lab, NoEspError } = await import('../lab/lab.js');
      const options = { nodes: count(o.nodes, '--nodes'), podsPerNode: count(o.podsPerNode, '--pods-per-node'), dualStack: o.dualStack, dir: resolve(o.dir) };
      await checkLabOptions(options);
      try {
        const up = await Lab.up({ ...options, progress });
        const topology = up.topology();
        if (o.json) process.stdout.write(`${JSON.stringify(topology, null, 2)}\n`);
        else process.stdout.write(`lab ${up.state.id} is up: ${topology.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')}\n  export KUBECONFIG=${topology.kubeconfig}\n  kubectl get kmeshnodeinfos -n kmesh-system\n  kmesh-ipsec lab down${o.dir === dirOption[2] ? '' : ` --dir ${o.dir}`}   # removes everything\n`);
      } catch (err: unknown) {
        if (err instanceof NoEspError) {
          throw new CliError(`lab up: ${err.message}. A lab that stays up needs a kernel with ESP; here, \`kmesh-ipsec lab demo\` runs itself in the kernel VM, and \`kmesh-ipsec lab vm -- sh -c 'kmesh-ipsec lab up && ...'\` runs your own commands against a lab there`);
        }
        throw labError(err);
      }
    });

  lab
    .command('down')
    .description('remove everything a lab made: processes, namespaces, links, pins, files (also after a failed or killed up)')
    .option(...dirOption)
    .action(async (o: { dir: string }) => {
      const { Lab } = await import('../lab/lab.js');
      const found = await Lab.down(resolve(o.dir), progress).catch((err: unknown) => {
        throw labError(err);
      });
      if (!found) progress(`no lab in ${resolve(o.dir)}; nothing to remove`);
    });

  lab
    .command('demo')
    .description('up (3 nodes), TCP between every pod pair with a capture on the wire, a key rotation under traffic, a malformed secret refused, a node reboot and a node removal, then down; ends with a report')
    .option('--nodes <n>', 'number of nodes (at least 2)', '3')
    .option(...dirOption)
    .option('--json', 'print the report as JSON on stdout', false)
    .option('--no-vm', 'fail instead of running in the kernel VM where this kernel lacks ESP or AES-GCM')
    // Internal: how a demo run inside the kernel VM hands its report back.
    .addOption(new Option('--report-file <file>', 'write the report as JSON here instead of printing it').hideHelp())
    .action(async (o: DemoOptions) => {
      const nodes = count(o.nodes, '--nodes');
      if (nodes < 2) throw new CliError('--nodes: the demo needs at least 2 nodes', USAGE_EXIT);
      await checkLabOptions({ nodes, podsPerNode: 1, dualStack: false });
      const report = await demo(nodes, resolve(o.dir), o.vm);
      if (!report.ok) process.exitCode = DEMO_FAILED_EXIT;
      if (o.reportFile !== undefined) {
        writeFileSync(o.reportFile, JSON.stringify(report));
        return;
      }
      const { renderDemoReport } = await import('../lab/demo-report.js');
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderDemoReport(report));
    });

  lab
    .command('join')
    .description('a new machine joins: the next node, with its pods and plugin; prints its name once its plugin is ready')
    .option(...dirOption)
    .action(async (o: { dir: string }) => {
      const { Lab } = await import('../lab/lab.js');
      try {
        const name = await Lab.open(resolve(o.dir)).join();
        process.stdout.write(`${name}\n`);
      } catch (err: unknown) {
        throw labError(err);
      }
    });

  for (const [name, description] of [
    ['stop', 'stop a node\'s plugin daemon (SIGTERM, as a rolling update does; --kill: SIGKILL, a crash)'],
    ['start', 'start a node\'s plugin daemon again; returns once it reports ready'],
    ['reboot', 'power-cycle a node: its processes, namespaces, pins and Secret volume are gone, it comes back with a new boot ID'],
    ['remove', 'a node leaves for good: its machine is gone and its Node object deleted'],
  ] as const) {
    const sub = lab.command(`${name} <node>`).description(description).option(...dirOption);
    if (name === 'stop') sub.option('--kill', 'SIGKILL instead of SIGTERM', false);
    sub.action(async (node: string, o: { dir: string; kill?: boolean }) => {
      const { Lab } = await import('../lab/lab.js');
      try {
        const lab = Lab.open(resolve(o.dir));
        if (name === 'stop') await lab.stopNode(node, o.kill === true ? 'SIGKILL' : 'SIGTERM');
        else if (name === 'start') await lab.startNode(node);
        else if (name === 'reboot') await lab.reboot(node);
        else await lab.remove(node);
      } catch (err: unknown) {
        throw labError(err);
      }
      progress(`${node}: ${name === 'stop' ? 'stopped' : name === 'start' ? 'started and ready' : name === 'reboot' ? 'rebooted, its plugin ready' : 'removed'}`);
    });
  }

  lab
    .command('vm')
    .description('run a command as root in the kernel VM (a stock Debian kernel with ESP and AES-GCM under QEMU, this machine\'s files read-only): for kernels that cannot run a lab')
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (argv: string[]) => {
      const { runInVm } = await import('../lab/vm.js');
      process.exitCode = await runInVm(argv, { output: (c) => process.stdout.write(c) });
    });
}

function count(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new CliError(`${flag}: must be a whole number, got ${JSON.stringify(text)}`, USAGE_EXIT);
  return Number(text);
}

async function checkLabOptions(options: { nodes: number; podsPerNode: number; dualStack: boolean }): Promise<void> {
  const { checkLabOptions: check } = await import('../lab/topology.js');
  const problems = check(options);
  if (problems.length > 0) throw new CliError(problems.join('; '), USAGE_EXIT);
}

function labError(err: unknown): unknown {
  return err instanceof Error && err.name === 'LabError' ? new CliError(err.message) : err;
}

/** Runs the demo here, or in the kernel VM where this kernel cannot run a lab. */
async function demo(nodes: number, dir: string, allowVm: boolean): Promise<import('../lab/demo-report.js').DemoReport> {
  const [{ hostProblem, NoEspError }, { probeEsp }] = await Promise.all([import('../lab/lab.js'), import('../lab/kernel.js')]);
  const problem = await hostProblem(['tcpdump']);
  if (problem !== undefined) throw new CliError(`lab demo: ${problem}`);
  const esp = await probeEsp();
  if (esp.ok) {
    const { runDemo } = await import('../lab/demo.js');
    return runDemo({ dir, nodes, progress }).catch((err: unknown) => {
      throw labError(err);
    });
  }
  if (!allowVm) throw new CliError(`lab demo: ${new NoEspError(esp.reason).message}`);
  progress(`this kernel has ${esp.reason}: running the demo in the project's kernel VM (QEMU; without KVM a few minutes)`);
  const { runInVm, vmReportFile } = await import('../lab/vm.js');
  const out = mkdtempSync(join(tmpdir(), 'kmesh-lab-demo-'));
  try {
    const rc = await runInVm([process.execPath, process.argv[1] ?? '', 'lab', 'demo', '--no-vm', '--nodes', String(nodes), '--report-file', vmReportFile(out)], {
      outDir: out,
      output: (c) => process.stderr.write(c),
    });
    let text: string;
    try {
      text = readFileSync(vmReportFile(out), 'utf8');
    } catch {
      throw new CliError(`lab demo: the run in the kernel VM ended (exit ${rc}) without a report; its output is above`);
    }
    return JSON.parse(text) as import('../lab/demo-report.js').DemoReport;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
