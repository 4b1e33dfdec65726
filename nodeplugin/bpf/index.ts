/**
 * Adapter for the tc programs in bpf/: loads them against maps pinned in a per-node directory,
 * attaches them with iproute2's tc, and reads/writes the maps.
 *
 * Pinning: iproute2's own ELF loader only pins by-name maps under /sys/fs/bpf/tc/globals, which
 * several "nodes" sharing one bpffs (tests, kind-style setups) would share too. So we load with
 * bpftool instead: the first load creates the maps and pins them by name in the node's pin dir
 * (`pinmaps`), later loads reuse those pins (`map name X pinned PATH`), and the program itself is
 * pinned there too. tc then attaches the pinned program (`object-pinned`), creating nothing.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rmdir, statfs, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RawMap } from 'bpf';
import type { MapRef } from 'bpf';
import { peerIdFromInboundMark } from '../../core/marks.js';
import { DEFAULT_TOOLS, run } from './exec.js';
import type { Tools } from './exec.js';
import {
  COUNTER_SLOTS,
  DEFAULT_BPFFS_ROOT,
  LPM_FAMILY_VALUE,
  MAPS,
  NODE_COUNTERS,
  OBJECT_FILES,
  OBJECT_MAPS,
  POD_COUNTERS,
  PROGRAM_NAMES,
  decodeAddressKey,
  decodeCidrKey,
  encodeAddress,
  encodeCidr,
  readU32,
  u32Buf,
} from './layout.js';
import type { MapId, NodeCounters, PodCounters, ProgramKind } from './layout.js';
import { applyDiff, entries, openPinned, possibleCpus, readPerCpuU64 } from './maps.js';
import type { DiffResult } from './maps.js';
import * as tc from './tc.js';
import type { NetnsOption, TcFilter } from './tc.js';

export { CommandError } from '../command.js';
export { DEFAULT_TOOLS } from './exec.js';
export type { Tools } from './exec.js';
export { ForeignFilterError } from './tc.js';
export type { NetnsOption, TcFilter } from './tc.js';
export { MapLayoutError } from './maps.js';
export type { DiffResult } from './maps.js';
export {
  DEFAULT_BPFFS_ROOT,
  MAPS,
  NODE_COUNTERS,
  OBJECT_FILES,
  POD_COUNTERS,
  PROGRAM_NAMES,
  TC_HANDLES,
  TC_PRIO,
} from './layout.js';
export type { NodeCounters, PodCounters, ProgramKind } from './layout.js';

const BPFFS_MAGIC = 0xcafe4a11;

/**
 * The package's bpf/build/, relative to dist/nodeplugin/bpf/: `make -C bpf` (run by `npm run
 * build` and by `prepare`, so `npm pack`) puts the objects (`OBJECT_FILES`) there, and the
 * package ships them.
 */
export const DEFAULT_OBJECT_DIR = fileURLToPath(new URL('../../../bpf/build/', import.meta.url));

/**
 * `<root>/<nodeName>`, the per-node pin directory. bpffs refuses names containing '.', which
 * node names (DNS subdomains) may have; they become '_', which node names cannot contain, so
 * distinct nodes keep distinct directories.
 */
export function nodePinDir(nodeName: string, root = DEFAULT_BPFFS_ROOT): string {
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    throw new TypeError(`node name ${JSON.stringify(nodeName)} is not a Kubernetes node name`);
  }
  return join(root, nodeName.replaceAll('.', '_'));
}

export interface EnsureOptions {
  /** Directory holding kmi_pod.o / kmi_node.o. Default: the package's bpf/build. */
  readonly objectDir?: string;
  readonly tools?: Partial<Tools>;
}

/** What ensureMaps did, for logging. */
export interface EnsureReport {
  /** Maps created (by name); the others were reused with their contents. */
  readonly created: string[];
}

/** Attached filter plus whether its program uses this pin dir's maps (false: another node's or an old load's). */
export interface AttachedFilter extends TcFilter {
  readonly usesOurMaps: boolean;
}

export interface Counters {
  readonly pod: PodCounters;
  readonly node: NodeCounters;
}

/**
 * Create (or reuse) the maps pinned in `pinDir`, load both programs against them (or reuse the
 * pinned ones) and pin the programs there. Reuse keeps map contents: a restarted plugin finds
 * its state in place, and filters still attached keep working throughout.
 *
 * A program pin is named after its object file's content (`kmipsec_pod_<sha256 prefix>`): a
 * restart with the same build reuses the loaded program, so the attached filters already run
 * what this build would attach and nothing is replaced; a new build loads and pins its
 * programs next to the old ones, which are unpinned (filters keep them alive until they are
 * re-attached). Returns the handle for everything else. One handle per pin dir per process:
 * concurrent ensureMaps on the same dir race.
 */
export async function ensureMaps(pinDir: string, opts: EnsureOptions = {}): Promise<NodeBpf> {
  if (!isAbsolute(pinDir)) throw new TypeError(`pin dir ${JSON.stringify(pinDir)} must be absolute`);
  // bpffs refuses '.' in names and libbpf rewrites every '.' of a map pin path to '_'.
  if (pinDir.includes('.')) throw new TypeError(`pin dir ${JSON.stringify(pinDir)} must not contain '.'`);
  const tools: Tools = { ...DEFAULT_TOOLS, ...opts.tools };
  const objectDir = opts.objectDir ?? DEFAULT_OBJECT_DIR;
  await checkOnBpffs(pinDir);
  await mkdir(pinDir, { recursive: true });
  const created: string[] = [];
  const present = new Set(await readdir(pinDir));
  const programPins = {} as Record<ProgramKind, string>;
  for (const kind of ['pod', 'node'] as const) {
    const loaded = await loadProgram(kind, pinDir, objectDir, present, tools);
    created.push(...loaded.created);
    programPins[kind] = loaded.pin;
  }
  const refs = {} as Record<MapId, MapRef>;
  try {
    for (const id of Object.keys(MAPS) as MapId[]) refs[id] = openPinned(join(pinDir, MAPS[id].name), MAPS[id]);
  } catch (err) {
    for (const r of Object.values(refs)) r.close();
    throw err;
  }
  return new NodeBpf(pinDir, tools, refs, { created }, programPins);
}

/** Pin names of `kind`'s programs: `<program name>_<12 hex digits of the object's SHA-256>`. */
function isProgramPin(name: string, kind: ProgramKind): boolean {
  return name === PROGRAM_NAMES[kind] || new RegExp(`^${PROGRAM_NAMES[kind]}_[0-9a-f]{12}$`).test(name);
}

async function loadProgram(kind: ProgramKind, pinDir: string, objectDir: string, present: Set<string>, tools: Tools): Promise<{ created: string[]; pin: string }> {
  const obj = join(objectDir, OBJECT_FILES[kind]);
  const tag = createHash('sha256').update(await readFile(obj)).digest('hex').slice(0, 12);
  const pinName = `${PROGRAM_NAMES[kind]}_${tag}`;
  const progPin = join(pinDir, pinName);
  const mapNames = OBJECT_MAPS[kind].map((id) => MAPS[id].name);
  const existing = mapNames.filter((n) => present.has(n));
  // The same build, loaded against maps that are all still pinned: nothing to do.
  if (present.has(pinName) && existing.length === mapNames.length) return { created: [], pin: progPin };
  // bpffs refuses names containing '.'.
  const tmpPin = `${join(pinDir, PROGRAM_NAMES[kind])}_loading`;
  await unlink(tmpPin).catch(ignoreEnoent);
  // Check existing pins before the verifier sees them: bpftool reuses whatever is pinned.
  for (const id of OBJECT_MAPS[kind]) {
    if (present.has(MAPS[id].name)) openPinned(join(pinDir, MAPS[id].name), MAPS[id]).close();
  }
  const argv = [tools.bpftool, 'prog', 'load', obj, tmpPin, 'type', 'classifier'];
  let created: string[] = [];
  if (existing.length === mapNames.length) {
    for (const n of mapNames) argv.push('map', 'name', n, 'pinned', join(pinDir, n));
  } else {
    // A half-pinned set (a crash between pins) cannot be completed by bpftool, which pins all
    // of an object's maps or none. Drop the survivor: the plugin rewrites map contents from
    // cluster state anyway.
    for (const n of existing) await unlink(join(pinDir, n));
    argv.push('pinmaps', pinDir);
    created = mapNames;
  }
  await run(argv, { tools });
  // Atomic swap, so the pin path always names a loaded program.
  await rename(tmpPin, progPin);
  for (const old of present) if (old !== pinName && isProgramPin(old, kind)) await unlink(join(pinDir, old)).catch(ignoreEnoent);
  return { created, pin: progPin };
}

/** Refuse before creating anything: the nearest existing ancestor must be on bpffs. */
async function checkOnBpffs(pinDir: string): Promise<void> {
  for (let dir = pinDir; ; dir = dirname(dir)) {
    try {
      if ((await statfs(dir)).type === BPFFS_MAGIC) return;
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dir === dirname(dir)) throw err;
    }
  }
  throw new Error(`pin dir ${pinDir} is not on a bpf filesystem (mount one: mount -t bpf bpf /sys/fs/bpf)`);
}

function ignoreEnoent(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

function checkedMark(address: string, mark: number): number {
  if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff || peerIdFromInboundMark(mark) === undefined) {
    throw new RangeError(`peer ${address}: mark ${String(mark)} is not an inbound state mark ((peerId << 16) | 0xd0)`);
  }
  return mark;
}

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

/**
 * Remove our pins (maps and programs) from `pinDir`, and the directory if that leaves it empty.
 * Needs no handle, so the uninstall path works even when the pinned objects no longer load.
 * Returns the pins removed.
 */
export async function removeNodePins(pinDir: string): Promise<string[]> {
  const removed: string[] = [];
  let present: string[];
  try {
    present = await readdir(pinDir);
  } catch (err: unknown) {
    ignoreEnoent(err);
    return removed;
  }
  const ours = (n: string): boolean => Object.values(MAPS).some((m) => m.name === n) || isProgramPin(n, 'pod') || isProgramPin(n, 'node');
  for (const n of present.filter(ours)) {
    try {
      await unlink(join(pinDir, n));
      removed.push(n);
    } catch (err: unknown) {
      ignoreEnoent(err);
    }
  }
  await rmdir(pinDir).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') ignoreEnoent(err);
  });
  return removed;
}

/** Handle on one node's pinned maps and programs. */
export class NodeBpf {
  readonly pinDir: string;
  readonly report: EnsureReport;
  readonly #tools: Tools;
  readonly #refs: Record<MapId, MapRef>;
  readonly #cpus: number;
  readonly #programPins: Readonly<Record<ProgramKind, string>>;

  constructor(pinDir: string, tools: Tools, refs: Record<MapId, MapRef>, report: EnsureReport, programPins: Readonly<Record<ProgramKind, string>>) {
    this.pinDir = pinDir;
    this.#programPins = programPins;
    this.#tools = tools;
    this.#refs = refs;
    this.report = report;
    this.#cpus = possibleCpus();
  }

  /** Path of a pinned program or map in this node's pin dir. */
  pinPath(name: string): string {
    return join(this.pinDir, name);
  }

  /** Path of the pinned program of this build (what new attachments run). */
  programPin(kind: ProgramKind): string {
    return this.#programPins[kind];
  }

  /** Kernel id of the program pinned for this build. */
  async programId(kind: ProgramKind): Promise<number> {
    const out = await run([this.#tools.bpftool, '-j', 'prog', 'show', 'pinned', this.#programPins[kind]], { tools: this.#tools });
    const id = (JSON.parse(out) as { id?: unknown }).id;
    if (typeof id !== 'number') throw new Error(`bpftool did not report the id of ${this.#programPins[kind]}`);
    return id;
  }

  /** Attach the pod program to tc ingress of a pod veth's host side (packets leaving the pod). */
  attachPodProgram(ifname: string, opts: NetnsOption = {}): Promise<TcFilter> {
    return tc.attach(ifname, 'pod', this.#programPins.pod, { netns: opts.netns, tools: this.#tools });
  }

  /** Attach the node program to tc ingress of a node interface (ESP arriving from peers). */
  attachNodeProgram(ifname: string, opts: NetnsOption = {}): Promise<TcFilter> {
    return tc.attach(ifname, 'node', this.#programPins.node, { netns: opts.netns, tools: this.#tools });
  }

  /**
   * Remove our filter(s) from `ifname`: only the given program's, or both. Filters of anyone
   * else and the clsact qdisc itself stay. Returns the programs that were detached.
   */
  async detach(ifname: string, opts: NetnsOption & { program?: ProgramKind } = {}): Promise<ProgramKind[]> {
    const kinds: ProgramKind[] = opts.program ? [opts.program] : ['pod', 'node'];
    const done: ProgramKind[] = [];
    for (const kind of kinds) {
      if (await tc.detach(ifname, kind, { netns: opts.netns, tools: this.#tools })) done.push(kind);
    }
    return done;
  }

  /** Our filters on every interface of the namespace (or only `ifname`). */
  async listAttached(opts: NetnsOption & { ifname?: string } = {}): Promise<AttachedFilter[]> {
    const filters = opts.ifname === undefined
      ? await tc.listAll({ netns: opts.netns, tools: this.#tools })
      : await tc.ourFilters(opts.ifname, { netns: opts.netns, tools: this.#tools });
    const ours = new Set(Object.values(this.#refs).map((r) => r.id));
    const result: AttachedFilter[] = [];
    for (const f of filters) {
      const out = await run([this.#tools.bpftool, '-j', 'prog', 'show', 'id', String(f.progId)], { tools: this.#tools });
      const info = JSON.parse(out) as { map_ids?: number[] };
      const mapIds = info.map_ids ?? [];
      result.push({ ...f, usesOurMaps: mapIds.length > 0 && mapIds.every((id) => ours.has(id)) });
    }
    return result;
  }

  /** Make kmi_peer_cidrs hold exactly `cidrs` (canonical text); invalid input throws before any change. */
  setPeerCidrs(cidrs: Iterable<string>): DiffResult {
    const want = new Map<string, { key: Buffer; value: Buffer }>();
    for (const text of cidrs) {
      const e = encodeCidr(text);
      want.set(e.cidr, { key: e.key, value: u32Buf(LPM_FAMILY_VALUE[e.family]) });
    }
    const current = new Map<string, { key: Buffer; value: Buffer }>();
    for (const [key, value] of entries(this.#refs.peerCidrs)) {
      let text: string;
      try {
        text = decodeCidrKey(key, value).cidr;
      } catch {
        // Not something we wrote: make sure the diff deletes it.
        text = `invalid:${key.toString('hex')}`;
      }
      current.set(text, { key, value });
    }
    return applyDiff(this.#refs.peerCidrs, current, want);
  }

  /**
   * Insert `add` into kmi_peer_cidrs and delete `remove` (canonical text), without reading the
   * map: for a caller that knows what it holds. Invalid input throws before any change.
   */
  updatePeerCidrs(add: Iterable<string>, remove: Iterable<string>): DiffResult {
    const inserts = [...add].map((text) => encodeCidr(text));
    const deletes = [...remove].map((text) => encodeCidr(text));
    const map = new RawMap(this.#refs.peerCidrs);
    for (const e of inserts) map.set(e.key, u32Buf(LPM_FAMILY_VALUE[e.family]));
    for (const e of deletes) map.delete(e.key);
    return { added: inserts.map((e) => e.cidr).sort(), removed: deletes.map((e) => e.cidr).sort() };
  }

  /** Peer CIDRs currently in the map, sorted. */
  listPeerCidrs(): string[] {
    return sortedUnique(entries(this.#refs.peerCidrs).map(([k, v]) => decodeCidrKey(k, v).cidr));
  }

  /**
   * Make kmi_peer_marks hold exactly `marks` (peer node address -> inbound state mark). Every
   * mark must be an inbound state mark ((peerId << 16) | 0xd0); invalid input throws before any change.
   */
  setPeerMarks(marks: ReadonlyMap<string, number>): DiffResult {
    const want = new Map<string, { key: Buffer; value: Buffer }>();
    for (const [address, mark] of marks) {
      const a = encodeAddress(address);
      want.set(a.address, { key: a.key, value: u32Buf(checkedMark(address, mark)) });
    }
    const current = new Map<string, { key: Buffer; value: Buffer }>();
    for (const [key, value] of entries(this.#refs.peerMarks)) current.set(decodeAddressKey(key), { key, value });
    return applyDiff(this.#refs.peerMarks, current, want);
  }

  /**
   * Set `set` (peer address -> inbound state mark) in kmi_peer_marks and delete `remove`, without
   * reading the map: for a caller that knows what it holds. Invalid input throws before any change.
   */
  updatePeerMarks(set: ReadonlyMap<string, number>, remove: Iterable<string>): DiffResult {
    const writes = [...set].map(([address, mark]) => ({ key: encodeAddress(address), value: u32Buf(checkedMark(address, mark)) }));
    const deletes = [...remove].map((address) => encodeAddress(address));
    const map = new RawMap(this.#refs.peerMarks);
    for (const w of writes) map.set(w.key.key, w.value);
    for (const d of deletes) map.delete(d.key);
    return { added: writes.map((w) => w.key.address).sort(), removed: deletes.map((d) => d.address).sort() };
  }

  /** Peer address -> mark currently in the map, in address order. */
  listPeerMarks(): Map<string, number> {
    const list = entries(this.#refs.peerMarks).map(([k, v]) => [decodeAddressKey(k), readU32(v, 0)] as const);
    return new Map([...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  }

  /** Packet counters of both programs, summed over CPUs, since the maps were created. */
  readCounters(): Counters {
    const pod = readPerCpuU64(this.#refs.podStats, COUNTER_SLOTS, this.#cpus);
    const node = readPerCpuU64(this.#refs.nodeStats, COUNTER_SLOTS, this.#cpus);
    const pick = <K extends string>(slots: Readonly<Record<K, number>>, values: bigint[]): Record<K, number> => {
      const out = {} as Record<K, number>;
      for (const name of Object.keys(slots) as K[]) out[name] = Number(values[slots[name]] ?? 0n);
      return out;
    };
    return { pod: pick(POD_COUNTERS, pod), node: pick(NODE_COUNTERS, node) };
  }

  /**
   * Uninstall: remove our pins (maps and programs) and the pin dir if that leaves it empty, and
   * close the handle. Attached filters keep their program and maps alive until detached.
   */
  async removePins(): Promise<void> {
    this.close();
    await removeNodePins(this.pinDir);
  }

  /** Close our map fds. Pins, programs and filters stay: they outlive the process by design. */
  close(): void {
    for (const r of Object.values(this.#refs)) r.close();
  }
}
