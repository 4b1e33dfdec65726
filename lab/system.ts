/**
 * The lab's hands on the machine: network namespaces, `ip` inside them, detached processes
 * that outlive `lab up`, and the bpffs mount. Thin wrappers around iproute2, nsenter, mount and
 * /proc; everything the lab decides lives elsewhere.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { runCommand, type CommandOptions, type CommandResult } from '../nodeplugin/command.js';

export const NETNS_DIR = '/run/netns';

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** argv that runs `argv` inside namespace `name` (nsenter, which unlike `ip netns exec` keeps /sys and bpffs as they are). */
export function inNetns(name: string, argv: readonly string[]): string[] {
  return ['nsenter', `--net=${netnsPath(name)}`, '--', ...argv];
}

export function run(argv: readonly string[], options?: CommandOptions): Promise<CommandResult> {
  return runCommand(argv, { timeoutMs: 60_000, ...options });
}

/** `ip ARGS` inside namespace `netns`. */
export async function ipIn(netns: string, ...args: string[]): Promise<string> {
  return (await run(['ip', '-n', netns, ...args])).stdout;
}

export async function sysctlIn(netns: string, key: string, value: string, optional = false): Promise<void> {
  await run(inNetns(netns, ['sysctl', '-q', '-w', `${key}=${value}`]), { allowFailure: optional });
}

/** A namespace with lo up and IPv6 duplicate address detection off (addresses usable at once). */
export async function addNetns(name: string): Promise<void> {
  await run(['ip', 'netns', 'add', name]);
  await ipIn(name, 'link', 'set', 'lo', 'up');
  await sysctlIn(name, 'net.ipv6.conf.all.accept_dad', '0', true);
  await sysctlIn(name, 'net.ipv6.conf.default.accept_dad', '0', true);
}

export async function listNetns(): Promise<string[]> {
  const out = await run(['ip', 'netns', 'list'], { allowFailure: true });
  return out.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

/** Pids of the processes inside namespace `name` ([] when it does not exist). */
export async function netnsPids(name: string): Promise<number[]> {
  const out = await run(['ip', 'netns', 'pids', name], { allowFailure: true });
  return out.stdout.split('\n').map(Number).filter((p) => Number.isInteger(p) && p > 0);
}

/** Deletes the namespace (and every interface in it); fine when it is already gone. */
export async function deleteNetns(name: string): Promise<void> {
  await run(['ip', 'netns', 'del', name], { allowFailure: true });
}

/** A process the lab started and must be able to find again: its pid and when it started. */
export interface ProcessId {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): tells a reused pid apart. */
  readonly startTime: string;
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the recorded process still runs (the same one, not a reused pid). */
export function isRunning(proc: ProcessId): boolean {
  const start = processStartTime(proc.pid);
  if (start !== proc.startTime) return false;
  // A zombie has exited; it only waits for its parent to reap it.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Starts `argv` in a new session, detached from this process (it outlives `lab up`), with
 * stdout and stderr appended to `logFile`.
 */
export function spawnDetached(argv: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ProcessId {
  const [file, ...args] = argv;
  if (file === undefined) throw new TypeError('spawnDetached: empty argv');
  const log = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', log, log], env });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`cannot start ${file}`);
    child.unref();
    return { pid, startTime: processStartTime(pid) ?? '' };
  } finally {
    closeSync(log);
  }
}

/** Signals the recorded process if it is still the same one; true when it was signalled. */
export function signalProcess(proc: ProcessId, signal: NodeJS.Signals): boolean {
  if (!isRunning(proc)) return false;
  try {
    process.kill(proc.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Signals the process, then waits until it is gone (SIGKILL after `graceMs`). */
export async function stopProcess(proc: ProcessId, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (!signalProcess(proc, signal)) return;
  const deadline = Date.now() + graceMs;
  while (isRunning(proc)) {
    if (Date.now() > deadline) {
      signalProcess(proc, 'SIGKILL');
      if (Date.now() > deadline + 5000) throw new Error(`process ${proc.pid} does not stop`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether `dir` is a mount point (per /proc/self/mountinfo). */
export function isMountPoint(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

/** A private bpffs instance at `dir`: the node plugins' pins live there and vanish with it. */
export async function mountBpffs(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!isMountPoint(dir)) await run(['mount', '-t', 'bpf', 'bpf', dir]);
}

/** Unmounts `dir` if something is mounted there (lazily: a pinned program in use does not block it). */
export async function unmountIfMounted(dir: string): Promise<void> {
  if (isMountPoint(dir)) await run(['umount', '-l', dir], { allowFailure: true });
}

/**
 * Pids of the Node processes (this one excepted) with an argument inside `dir`: what a lab
 * spawns always names a file in its directory (config, kubeconfig, socket). A shell or editor
 * that merely mentions the directory is not one of them.
 */
export function nodeProcessesUsing(dir: string): number[] {
  let entries: string[];
  try {
    entries = readdirNumeric('/proc');
  } catch {
    return [];
  }
  const inside = `${dir.replace(/\/+$/, '')}/`;
  const found: number[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const program = args[0] ?? '';
    if ((program === process.execPath || basename(program) === 'node') && args.slice(1).some((a) => a.includes(inside))) found.push(pid);
  }
  return found;
}

function readdirNumeric(dir: string): string[] {
  return readdirSync(dir).filter((e) => /^\d+$/.test(e));
}

const commands = new Map<string, Promise<boolean>>();

/** Whether `name` is on PATH (asked once per process). */
export function commandExists(name: string): Promise<boolean> {
  let known = commands.get(name);
  if (known === undefined) {
    known = run(['sh', '-c', 'command -v "$1"', 'sh', name], { allowFailure: true }).then((r) => r.code === 0);
    commands.set(name, known);
  }
  return known;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a server started in another process). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether https://127.0.0.1:<port><path> answers 200, checked against `caPem` as `servername`. */
export function httpsAnswers(target: { readonly port: number; readonly path: string; readonly caPem: string; readonly servername: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet({ host: '127.0.0.1', port: target.port, path: target.path, ca: target.caPem, servername: target.servername, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      resolve(false);
    });
  });
}
