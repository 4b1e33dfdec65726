/**
 * The project's kernel VM as part of the product: where this kernel has no ESP or AES-GCM (many
 * CI and cloud kernels), `lab demo` runs itself inside a throw-away QEMU guest that boots a
 * stock Debian kernel with the host's root file system shared read-only (vm/kernel-vm.sh and
 * vm/README.md), so the installed package, node and iproute2 are the host's own.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VM_SCRIPT = fileURLToPath(new URL('../../vm/kernel-vm.sh', import.meta.url));

export interface VmRun {
  /** Shared read-write with the guest at the same path (e.g. for a report file). */
  readonly outDir?: string;
  readonly memMb?: number;
  readonly timeoutSeconds?: number;
  /** The guest command's output (stdout and stderr together) and the harness's progress. */
  readonly output: (chunk: Buffer) => void;
}

/** Runs `argv` as root in the kernel VM; resolves with its exit status (124 timeout, 125 no boot). */
export function runInVm(argv: readonly string[], options: VmRun): Promise<number> {
  const args = [
    ...(options.outDir === undefined ? [] : ['--out', options.outDir]),
    '--mem', String(options.memMb ?? 3072),
    '--timeout', String(options.timeoutSeconds ?? 3600),
    '--', ...argv,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(VM_SCRIPT, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', options.output);
    child.stderr.on('data', options.output);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

/** The report file a VM run writes into its shared directory. */
export function vmReportFile(outDir: string): string {
  return join(outDir, 'report.json');
}
