/** Running tc and bpftool, optionally inside another network namespace. */
import { runCommand } from '../command.js';

export interface Tools {
  /** Paths or names (looked up in PATH) of the binaries we run. */
  readonly tc: string;
  readonly bpftool: string;
  readonly nsenter: string;
}

export const DEFAULT_TOOLS: Tools = { tc: 'tc', bpftool: 'bpftool', nsenter: 'nsenter' };

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
export async function run(argv: readonly string[], opts: { netns?: string | undefined; tools: Tools }): Promise<string> {
  const full = opts.netns === undefined ? argv : [opts.tools.nsenter, `--net=${netnsPath(opts.netns)}`, '--', ...argv];
  return (await runCommand(full)).stdout;
}
