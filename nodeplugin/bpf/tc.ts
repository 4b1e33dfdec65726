/**
 * tc attachment of our programs, through iproute2's `tc` with `object-pinned` (the program is
 * already loaded and pinned in the node's pin dir, so tc creates no maps of its own and never
 * touches /sys/fs/bpf/tc/globals).
 */
import { CommandError } from '../command.js';
import { run } from './exec.js';
import type { Tools } from './exec.js';
import { PROGRAM_NAMES, TC_HANDLES, TC_PRIO } from './layout.js';
import type { ProgramKind } from './layout.js';

export interface NetnsOption {
  /** Network namespace: a name under /run/netns or a path (e.g. /proc/PID/ns/net). Default: ours. */
  readonly netns?: string | undefined;
}

/** One of our filters as tc reports it. */
export interface TcFilter {
  readonly ifname: string;
  readonly program: ProgramKind;
  readonly prio: number;
  readonly handle: number;
  readonly progId: number;
  readonly progName: string;
}

/** A filter sits at our (prio, handle) but runs a program that is not ours: we leave it alone. */
export class ForeignFilterError extends Error {
  constructor(ifname: string, handle: number, progName: string) {
    super(
      `${ifname}: tc ingress prio ${TC_PRIO} handle 0x${handle.toString(16)} belongs to program ` +
        `${JSON.stringify(progName)}, not to kmesh-ipsec; refusing to replace or delete it`,
    );
    this.name = 'ForeignFilterError';
  }
}

/** Interface names as the kernel accepts them (IFNAMSIZ 16 incl. NUL, no '/', no whitespace). */
export function checkIfname(ifname: string): void {
  if (!/^[^\s/:]{1,15}$/.test(ifname) || ifname === '.' || ifname === '..') {
    throw new TypeError(`interface name ${JSON.stringify(ifname)} is not a valid Linux interface name`);
  }
}

interface RawFilter {
  pref?: number;
  kind?: string;
  options?: { handle?: string; prog?: { id?: number; name?: string } };
}

interface RawQdisc {
  kind?: string;
  dev?: string;
  handle?: string;
}

function parseJsonArray<T>(text: string, what: string): T[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const v: unknown = JSON.parse(trimmed);
  if (!Array.isArray(v)) throw new Error(`${what}: expected a JSON array from tc`);
  return v as T[];
}

function isNoDevice(err: unknown): boolean {
  return err instanceof CommandError && /Cannot find device|No such device/i.test(err.stderr);
}

/** Every bpf filter on ingress of `ifname`, ours or not, as (prio, handle, program). */
async function ingressBpfFilters(ifname: string, netns: string | undefined, tools: Tools): Promise<Omit<TcFilter, 'program'>[]> {
  const out = await run([tools.tc, '-j', 'filter', 'show', 'dev', ifname, 'ingress'], { netns, tools });
  const result: Omit<TcFilter, 'program'>[] = [];
  for (const f of parseJsonArray<RawFilter>(out, `tc filter show dev ${ifname} ingress`)) {
    // tc prints one header line per (prio, protocol) without options; only entries with a
    // handle are filters.
    const handle = f.options?.handle;
    if (f.kind !== 'bpf' || handle === undefined || f.pref === undefined) continue;
    result.push({
      ifname,
      prio: f.pref,
      handle: Number.parseInt(handle, 16),
      progId: f.options?.prog?.id ?? 0,
      progName: f.options?.prog?.name ?? '',
    });
  }
  return result;
}

/** Our filters on one interface ([] if the interface or its ingress hook does not exist). */
export async function ourFilters(ifname: string, opts: NetnsOption & { tools: Tools }): Promise<TcFilter[]> {
  checkIfname(ifname);
  let all: Omit<TcFilter, 'program'>[];
  try {
    all = await ingressBpfFilters(ifname, opts.netns, opts.tools);
  } catch (err) {
    if (isNoDevice(err)) return [];
    throw err;
  }
  const result: TcFilter[] = [];
  for (const program of ['pod', 'node'] as const) {
    const f = all.find((x) => x.prio === TC_PRIO && x.handle === TC_HANDLES[program]);
    if (f && f.progName === PROGRAM_NAMES[program]) result.push({ ...f, program });
  }
  return result;
}

/**
 * Make sure the interface has an ingress hook. An existing clsact (or plain ingress) qdisc is
 * kept as it is, whoever created it: replacing it would delete every filter on it.
 */
async function ensureIngressQdisc(ifname: string, netns: string | undefined, tools: Tools): Promise<void> {
  const has = async (): Promise<boolean> => {
    const out = await run([tools.tc, '-j', 'qdisc', 'show', 'dev', ifname], { netns, tools });
    return parseJsonArray<RawQdisc>(out, `tc qdisc show dev ${ifname}`).some((q) => q.kind === 'clsact' || q.kind === 'ingress');
  };
  if (await has()) return;
  try {
    await run([tools.tc, 'qdisc', 'add', 'dev', ifname, 'clsact'], { netns, tools });
  } catch (err) {
    // Someone may have added one between our check and our add; that is as good as ours.
    if (!(await has())) throw err;
  }
}

/**
 * Attach (or atomically replace) our program on ingress of `ifname`. Idempotent: re-attaching
 * swaps the program in our filter without a window where packets bypass it.
 */
export async function attach(
  ifname: string,
  program: ProgramKind,
  progPin: string,
  opts: NetnsOption & { tools: Tools },
): Promise<TcFilter> {
  checkIfname(ifname);
  const { netns, tools } = opts;
  const handle = TC_HANDLES[program];
  await ensureIngressQdisc(ifname, netns, tools);
  const existing = (await ingressBpfFilters(ifname, netns, tools)).find((f) => f.prio === TC_PRIO && f.handle === handle);
  if (existing && existing.progName !== PROGRAM_NAMES[program]) throw new ForeignFilterError(ifname, handle, existing.progName);
  await run(
    [tools.tc, 'filter', 'replace', 'dev', ifname, 'ingress', 'protocol', 'all', 'prio', String(TC_PRIO),
      'handle', `0x${handle.toString(16)}`, 'bpf', 'direct-action', 'object-pinned', progPin],
    { netns, tools },
  );
  const now = (await ourFilters(ifname, opts)).find((f) => f.program === program);
  if (!now) throw new Error(`${ifname}: tc accepted our ${program} filter but does not list it`);
  return now;
}

/** Delete our filter for `program`; false when there was none (or the interface is gone). */
export async function detach(ifname: string, program: ProgramKind, opts: NetnsOption & { tools: Tools }): Promise<boolean> {
  checkIfname(ifname);
  const { netns, tools } = opts;
  const handle = TC_HANDLES[program];
  let all: Omit<TcFilter, 'program'>[];
  try {
    all = await ingressBpfFilters(ifname, netns, tools);
  } catch (err) {
    if (isNoDevice(err)) return false;
    throw err;
  }
  const existing = all.find((f) => f.prio === TC_PRIO && f.handle === handle);
  if (!existing) return false;
  if (existing.progName !== PROGRAM_NAMES[program]) throw new ForeignFilterError(ifname, handle, existing.progName);
  try {
    await run(
      [tools.tc, 'filter', 'del', 'dev', ifname, 'ingress', 'protocol', 'all', 'prio', String(TC_PRIO),
        'handle', `0x${handle.toString(16)}`, 'bpf'],
      { netns, tools },
    );
  } catch (err) {
    if (isNoDevice(err)) return false;
    throw err;
  }
  return true;
}

/** Our filters on every interface of the namespace. */
export async function listAll(opts: NetnsOption & { tools: Tools }): Promise<TcFilter[]> {
  const { netns, tools } = opts;
  const out = await run([tools.tc, '-j', 'qdisc', 'show'], { netns, tools });
  const devs = new Set<string>();
  for (const q of parseJsonArray<RawQdisc>(out, 'tc qdisc show')) {
    if ((q.kind === 'clsact' || q.kind === 'ingress') && q.dev !== undefined) devs.add(q.dev);
  }
  const result: TcFilter[] = [];
  for (const dev of [...devs].sort()) result.push(...(await ourFilters(dev, opts)));
  return result;
}
