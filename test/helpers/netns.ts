/**
 * Network-namespace fixtures for tests that touch kernel networking state (xfrm, tc, routes).
 * Everything a test creates lives in a throw-away namespace, so the host's own configuration is
 * never read or changed, and test files can run in parallel.
 *
 * - `useNetns(test)` gives a factory whose namespaces are all deleted in `test.after.always`
 *   (and, as a last resort, when the process exits).
 * - Names are unique per process and carry the creating pid, so `Netns.create` also deletes
 *   namespaces left behind by test processes that no longer exist (crashes, SIGKILL).
 * - Commands run inside a namespace with `nsenter --net=/run/netns/NAME`, which, unlike
 *   `ip netns exec`, does not remount /sys (pinned BPF objects stay visible).
 * - Node code that must open sockets inside a namespace (netlink sockets bind to the netns of
 *   the process that creates them) runs in a child process started the same way; `NetnsWorker`
 *   calls its exported functions over the IPC channel (see `serveRpc`).
 *
 * Requires root (CAP_SYS_ADMIN + CAP_NET_ADMIN), `ip` (iproute2) and `nsenter` (util-linux).
 */
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { TestFn } from 'ava';
import { runCommand } from '../../nodeplugin/command.js';
import type { CommandOptions, CommandResult } from '../../nodeplugin/command.js';

// ---------------------------------------------------------------------------------------------
// Names

const NAME_TAG = 'kmt';
const PID36 = process.pid.toString(36);

/**
 * A name unique to this process, `<prefix>-<pid36>-<random>`, cut to `maxLength` (interface
 * names: 15). Randomness comes last so truncation keeps uniqueness within a process.
 */
export function uniqueName(prefix: string, maxLength = 15): string {
  const rnd = randomBytes(4).toString('hex');
  const full = `${prefix}-${PID36}-${rnd}`;
  if (full.length <= maxLength) return full;
  const keep = Math.max(0, maxLength - rnd.length - 1);
  return `${`${prefix}${PID36}`.slice(0, keep)}-${rnd}`.slice(0, maxLength);
}

const STALE_NAME = new RegExp(`^${NAME_TAG}-[a-z0-9]+-([a-z0-9]+)-[0-9a-f]{8}$`);

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let swept = false;

/** Deletes namespaces this helper created in processes that are gone. Safe to call any time. */
export async function sweepStaleNetns(): Promise<string[]> {
  const list = await runCommand(['ip', 'netns', 'list'], { allowFailure: true });
  const removed: string[] = [];
  for (const line of list.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid36 = STALE_NAME.exec(name)?.[1];
    if (pid36 === undefined) continue;
    const pid = parseInt(pid36, 36);
    if (pid === process.pid || processAlive(pid)) continue;
    await runCommand(['ip', 'netns', 'del', name], { allowFailure: true });
    removed.push(name);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Namespaces

const live = new Set<Netns>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const ns of live) {
      for (const child of ns.children) child.kill('SIGKILL');
      try {
        execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  });
}

export interface ForkOptions {
  /** Extra environment for the child. */
  readonly env?: NodeJS.ProcessEnv;
  /** Child's stdout/stderr: inherit (default) or ignore. */
  readonly stdio?: 'inherit' | 'ignore';
}

export class Netns {
  readonly name: string;
  /** Bind-mounted namespace file, usable with nsenter --net= and setns(2). */
  readonly path: string;
  /** Node processes started in this namespace with fork(); killed by destroy(). */
  readonly children = new Set<ChildProcess>();
  #destroyed = false;

  private constructor(name: string) {
    this.name = name;
    this.path = `/run/netns/${name}`;
  }

  /**
   * Creates a namespace named `kmt-<prefix>-<pid36>-<random>` with `lo` up and IPv6 duplicate
   * address detection off (addresses are usable at once). Prefer `useNetns(test).create()`,
   * which also schedules the deletion.
   */
  static async create(prefix = 'ns'): Promise<Netns> {
    if (!/^[a-z0-9]{1,12}$/.test(prefix)) throw new TypeError(`netns prefix: 1-12 lowercase letters/digits, got ${prefix}`);
    if (!swept) {
      swept = true;
      await sweepStaleNetns();
    }
    installExitHook();
    const ns = new Netns(`${NAME_TAG}-${prefix}-${PID36}-${randomBytes(4).toString('hex')}`);
    await runCommand(['ip', 'netns', 'add', ns.name]);
    live.add(ns);
    try {
      await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
      await ns.sysctl('net.ipv6.conf.all.accept_dad', '0', true);
      await ns.sysctl('net.ipv6.conf.default.accept_dad', '0', true);
    } catch (err) {
      await ns.destroy();
      throw err;
    }
    return ns;
  }

  /** argv prefix that runs a command inside this namespace. */
  wrap(argv: readonly string[]): string[] {
    return ['nsenter', `--net=${this.path}`, '--', ...argv];
  }

  /** Runs a command inside this namespace. */
  exec(argv: readonly string[], options?: CommandOptions): Promise<CommandResult> {
    if (this.#destroyed) return Promise.reject(new Error(`netns ${this.name} was destroyed`));
    return runCommand(this.wrap(argv), options);
  }

  /** `ip ARGS...` inside this namespace; resolves with stdout. */
  async ip(...args: string[]): Promise<string> {
    return (await this.exec(['ip', ...args])).stdout;
  }

  /** Sets a sysctl of this namespace (net.* keys are per namespace). */
  async sysctl(key: string, value: string, optional = false): Promise<void> {
    await this.exec(['sysctl', '-q', '-w', `${key}=${value}`], { allowFailure: optional });
  }

  /**
   * Starts `node MODULE ARGS...` inside this namespace with an IPC channel (advanced
   * serialization, so Uint8Array and bigint cross it). The child is killed by destroy().
   */
  fork(module: string | URL, args: readonly string[] = [], options: ForkOptions = {}): ChildProcess {
    if (this.#destroyed) throw new Error(`netns ${this.name} was destroyed`);
    const modulePath = module instanceof URL ? fileURLToPath(module) : module;
    const child = fork(modulePath, [...args], {
      execPath: 'nsenter',
      execArgv: [`--net=${this.path}`, '--', process.execPath],
      serialization: 'advanced',
      stdio: options.stdio === 'ignore' ? ['ignore', 'ignore', 'ignore', 'ipc'] : ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...options.env },
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Kills the children and deletes the namespace (and every interface in it). Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.all([...this.children].map((c) => stopChild(c, 2000)));
    await runCommand(['ip', 'netns', 'del', this.name], { allowFailure: true });
    live.delete(this);
  }
}

export interface VethEnd {
  /** Namespace of this end; undefined for the caller's (root) namespace. */
  readonly ns?: Netns;
  /** Interface name (at most 15 characters; unique within its namespace). */
  readonly name: string;
  /** Addresses to assign, in CIDR form (IPv6 ones with `nodad`). */
  readonly addresses?: readonly string[];
  readonly mtu?: number;
}

/**
 * Creates a veth pair whose ends are born directly in their namespaces (no temporary name in
 * the root namespace), assigns addresses and sets both ends up.
 */
export async function createVethPair(a: VethEnd, b: VethEnd): Promise<void> {
  const nsArg = (e: VethEnd): string[] => (e.ns ? ['netns', e.ns.name] : []);
  await runCommand(['ip', 'link', 'add', a.name, ...nsArg(a), 'type', 'veth', 'peer', 'name', b.name, ...nsArg(b)]);
  for (const end of [a, b]) {
    const ip = (...args: string[]): Promise<unknown> => (end.ns ? end.ns.ip(...args) : runCommand(['ip', ...args]));
    if (end.mtu !== undefined) await ip('link', 'set', end.name, 'mtu', String(end.mtu));
    for (const addr of end.addresses ?? []) {
      await ip('addr', 'add', addr, 'dev', end.name, ...(addr.includes(':') ? ['nodad'] : []));
    }
    await ip('link', 'set', end.name, 'up');
  }
}

export interface NetnsFactory {
  /** A new namespace, deleted after the test file's tests (after.always). */
  create(prefix?: string): Promise<Netns>;
  /** Namespaces created so far and not yet destroyed. */
  readonly all: ReadonlySet<Netns>;
  /** Deletes every namespace this factory created. */
  destroyAll(): Promise<void>;
}

/** Namespace factory bound to an ava test file: cleanup runs in `test.after.always`. */
export function useNetns(test: TestFn): NetnsFactory {
  const mine = new Set<Netns>();
  const factory: NetnsFactory = {
    all: mine,
    async create(prefix?: string) {
      const ns = await Netns.create(prefix);
      mine.add(ns);
      return ns;
    },
    async destroyAll() {
      await Promise.all([...mine].map((ns) => ns.destroy()));
      mine.clear();
    },
  };
  test.after.always('delete test network namespaces', () => factory.destroyAll());
  return factory;
}

// ---------------------------------------------------------------------------------------------
// RPC into a namespace

/** An error as it crosses the IPC channel (own enumerable properties kept). */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly props: Readonly<Record<string, unknown>>;
}

interface RpcCall { readonly kind: 'call'; readonly id: number; readonly method: string; readonly args: readonly unknown[] }
type RpcMessage =
  | { readonly kind: 'ready' }
  | { readonly kind: 'fatal'; readonly error: WireError }
  | { readonly kind: 'result'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly kind: 'result'; readonly id: number; readonly ok: false; readonly error: WireError };

export function errorToWire(err: unknown): WireError {
  if (err instanceof Error) {
    const props: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(err)) {
      if (typeof v !== 'function') props[k] = v;
    }
    return { name: err.name, message: err.message, ...(err.stack === undefined ? {} : { stack: err.stack }), props };
  }
  return { name: 'Error', message: String(err), props: {} };
}

/** Default reconstruction: an Error with the remote name, message, stack and properties. */
export function errorFromWire(w: WireError): Error {
  const err = Object.assign(new Error(w.message), w.props);
  err.name = w.name;
  if (w.stack !== undefined) err.stack = `${w.stack}\n    --- in the netns worker ---`;
  return err;
}

type AnyFn = (...args: never[]) => unknown;
export type RpcApi = Readonly<Record<string, AnyFn>>;

/**
 * Child side: answers NetnsWorker calls with `handlers`, then signals readiness. The process
 * exits when the parent disconnects. Call it once, at the top level of the worker module.
 */
export function serveRpc(handlers: RpcApi): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('serveRpc: this process has no IPC channel (start it with Netns.fork or NetnsWorker)');
  process.on('message', (raw) => {
    const msg = raw as RpcCall | { readonly kind: 'other' };
    if (msg.kind !== 'call') return;
    const handler = Object.hasOwn(handlers, msg.method) ? handlers[msg.method] : undefined;
    void (async () => {
      try {
        if (!handler) throw new Error(`no such RPC method: ${msg.method}`);
        const value = await (handler as (...a: readonly unknown[]) => unknown)(...msg.args);
        send({ kind: 'result', id: msg.id, ok: true, value } satisfies RpcMessage);
      } catch (err) {
        send({ kind: 'result', id: msg.id, ok: false, error: errorToWire(err) } satisfies RpcMessage);
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
  send({ kind: 'ready' } satisfies RpcMessage);
}

/** Child side: report a start-up failure (e.g. a socket that could not be opened) and exit. */
export function failRpc(err: unknown): never {
  process.send?.({ kind: 'fatal', error: errorToWire(err) } satisfies RpcMessage);
  process.exit(1);
}

export interface NetnsWorkerOptions {
  /** Turns remote errors back into local classes (default: errorFromWire). */
  readonly reviveError?: (w: WireError) => Error;
  /** How long to wait for the worker to become ready (default 60 s; TCG guests are slow). */
  readonly startTimeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Parent side: a Node child process inside a namespace whose functions can be called. */
export class NetnsWorker<Api extends RpcApi> {
  readonly ns: Netns;
  readonly #child: ChildProcess;
  readonly #revive: (w: WireError) => Error;
  readonly #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #exited: Error | undefined;

  private constructor(ns: Netns, child: ChildProcess, revive: (w: WireError) => Error) {
    this.ns = ns;
    this.#child = child;
    this.#revive = revive;
    child.on('message', (raw) => {
      const msg = raw as RpcMessage;
      if (msg.kind !== 'result') return;
      const call = this.#calls.get(msg.id);
      if (!call) return;
      this.#calls.delete(msg.id);
      if (msg.ok) call.resolve(msg.value);
      else call.reject(this.#revive(msg.error));
    });
    child.on('exit', (code, signal) => {
      this.#exited = new Error(`netns worker in ${ns.name} exited (${signal ?? String(code)})`);
      for (const c of this.#calls.values()) c.reject(this.#exited);
      this.#calls.clear();
    });
  }

  /** Forks `module` (which must call serveRpc) inside `ns` and waits until it is ready. */
  static async start<Api extends RpcApi>(ns: Netns, module: string | URL, options: NetnsWorkerOptions = {}): Promise<NetnsWorker<Api>> {
    const child = ns.fork(module, [], options.env ? { env: options.env } : {});
    const revive = options.reviveError ?? errorFromWire;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { done(new Error(`netns worker in ${ns.name} did not start within ${options.startTimeoutMs ?? 60_000} ms`)); },
        options.startTimeoutMs ?? 60_000);
      const onMessage = (raw: unknown): void => {
        const msg = raw as RpcMessage;
        if (msg.kind === 'ready') done();
        else if (msg.kind === 'fatal') done(revive(msg.error));
      };
      const onExit = (code: number | null, signal: string | null): void => {
        done(new Error(`netns worker in ${ns.name} exited during start-up (${signal ?? String(code)})`));
      };
      const onError = (err: Error): void => { done(err); };
      function done(err?: Error): void {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
        if (err) {
          child.kill('SIGKILL');
          reject(err);
        } else {
          resolve();
        }
      }
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.on('error', onError);
    });
    return new NetnsWorker<Api>(ns, child, revive);
  }

  /** Calls `method` in the worker. */
  call<K extends keyof Api & string>(method: K, ...args: Parameters<Api[K]>): Promise<Awaited<ReturnType<Api[K]>>> {
    if (this.#exited) return Promise.reject(this.#exited);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#child.send({ kind: 'call', id, method, args } satisfies RpcCall, (err) => {
        if (err) {
          this.#calls.delete(id);
          reject(err);
        }
      });
    });
  }

  /** Disconnects (the worker exits by itself); kills it if it lingers. */
  async close(): Promise<void> {
    await stopChild(this.#child, 5000);
  }
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
  });
}
