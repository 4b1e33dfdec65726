/** Running tc and bpftool, optionally inside another network namespace. */
import { execFile } from 'node:child_process';

export interface Tools {
  /** Paths or names (looked up in PATH) of the binaries we run. */
  readonly tc: string;
  readonly bpftool: string;
  readonly nsenter: string;
}

export const DEFAULT_TOOLS: Tools = { tc: 'tc', bpftool: 'bpftool', nsenter: 'nsenter' };

export class CommandError extends Error {
  readonly argv: readonly string[];
  readonly stderr: string;
  readonly code: number | string | undefined;
  constructor(argv: readonly string[], stderr: string, code: number | string | undefined) {
    super(`${argv.join(' ')} failed (${String(code)}): ${stderr.trim() || '(no output)'}`);
    this.name = 'CommandError';
    this.argv = argv;
    this.stderr = stderr;
    this.code = code;
  }
}

/** `/run/netns/NAME` for a bare name (what `ip netns add` creates), else the path as given. */
export function netnsPath(netns: string): string {
  if (netns.includes('/')) return netns;
  if (netns === '' || netns === '.' || netns === '..') throw new TypeError(`netns: invalid name ${JSON.stringify(netns)}`);
  return `/run/netns/${netns}`;
}

/**
 * Run argv, inside `netns` if given. We switch only the network namespace with nsenter:
 * `ip netns exec` / `tc -n` also remount /sys, hiding the host bpffs where our programs are
 * pinned.
 */
export function run(argv: readonly string[], opts: { netns?: string | undefined; tools: Tools }): Promise<string> {
  const full = opts.netns === undefined ? argv : [opts.tools.nsenter, `--net=${netnsPath(opts.netns)}`, '--', ...argv];
  const [file, ...args] = full;
  if (file === undefined) throw new TypeError('run: empty argv');
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException & { code?: number | string }).code;
        // bpftool -j reports errors as JSON on stdout.
        reject(new CommandError(full, stderr.trim() || stdout.trim() || err.message, code));
      } else {
        resolve(stdout);
      }
    });
  });
}
