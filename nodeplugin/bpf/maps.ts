/** Opening the pinned maps with the `bpf` package and the operations the node plugin needs. */
import { readFileSync } from 'node:fs';
import { RawMap, createMapRef, objGet } from 'bpf';
import type { MapRef } from 'bpf';
import { readU64, writeU32 } from './layout.js';
import type { MapShape } from './layout.js';

/** A pinned map exists but its shape differs from what this build expects. */
export class MapLayoutError extends Error {
  constructor(path: string, field: string, got: number, want: number) {
    super(
      `${path}: ${field} is ${got}, this build expects ${want}. The map was created by an ` +
        `incompatible version; remove the pin dir (detaching our filters first) to recreate it.`,
    );
    this.name = 'MapLayoutError';
  }
}

/** Open a pinned map and check it has the shape the programs were compiled for. */
export function openPinned(path: string, shape: MapShape): MapRef {
  // A bare objGet fd knows nothing about sizes; createMapRef asks the kernel for them.
  const ref = createMapRef(objGet(path), { transfer: true });
  const checks: [string, number, number][] = [
    ['type', ref.type, shape.type],
    ['key size', ref.keySize, shape.keySize],
    ['value size', ref.valueSize, shape.valueSize],
    ['max entries', ref.maxEntries, shape.maxEntries],
    ['flags', ref.flags, shape.flags],
  ];
  for (const [field, got, want] of checks) {
    if (got !== want) {
      ref.close();
      throw new MapLayoutError(path, field, got, want);
    }
  }
  return ref;
}

/** Number of possible CPUs: the kernel returns one value slot per possible CPU for per-CPU maps. */
export function possibleCpus(text = readFileSync('/sys/devices/system/cpu/possible', 'utf8')): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m?.[1]) throw new Error(`cannot parse possible CPU list ${JSON.stringify(text)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    n += hi - lo + 1;
  }
  return n;
}

/**
 * Sum a per-CPU array's u64 slots over all CPUs. The `bpf` package sizes lookup buffers from
 * MapRef.valueSize and has no per-CPU support, so we hand RawMap a view of the same fd whose
 * valueSize is the full per-CPU buffer (8-byte-aligned value per possible CPU), as the kernel
 * writes it.
 */
export function readPerCpuU64(ref: MapRef, slots: number, cpus: number): bigint[] {
  const stride = Math.ceil(ref.valueSize / 8) * 8;
  const view: MapRef = {
    get fd() {
      return ref.fd;
    },
    close() {
      // The view does not own the fd.
    },
    type: ref.type,
    keySize: ref.keySize,
    valueSize: stride * cpus,
    maxEntries: ref.maxEntries,
    flags: ref.flags,
  };
  const map = new RawMap(view);
  const key = Buffer.alloc(4);
  const sums: bigint[] = [];
  for (let i = 0; i < slots; i++) {
    writeU32(key, i, 0);
    const buf = map.get(key);
    let sum = 0n;
    if (buf) for (let c = 0; c < cpus; c++) sum += readU64(buf, c * stride);
    sums.push(sum);
  }
  return sums;
}

/** Entries asked for per BPF_MAP_LOOKUP_BATCH call. */
const LOOKUP_BATCH = 1024;
/** errno of a kernel without the batch command (EINVAL) or map type without it (ENOTSUPP, EOPNOTSUPP). */
const BATCH_UNSUPPORTED = new Set([22, 95, 524]);
/** Map types whose batch lookup this kernel refused: read key by key from then on. */
const noBatch = new Set<number>();

/**
 * Every (key, value) of a map: in batches of LOOKUP_BATCH per syscall where the kernel can
 * (Linux 5.6+; the periodic resync reads 10,000 entries at 5,000 peers, and a syscall per key
 * and per value cost 18 ms for the hash map where a batch costs 3), else key by key.
 */
export function entries(ref: MapRef): [Buffer, Buffer][] {
  const map = new RawMap(ref);
  if (!noBatch.has(ref.type)) {
    const batched: [Buffer, Buffer][] = [];
    try {
      for (const batch of map.getBatch(LOOKUP_BATCH)) for (const e of batch) batched.push(e);
      return batched;
    } catch (err: unknown) {
      const errno = (err as { errno?: unknown }).errno;
      // Unsupported is refused before anything is read; any other failure is real.
      if (batched.length > 0 || typeof errno !== 'number' || !BATCH_UNSUPPORTED.has(errno)) throw err;
      noBatch.add(ref.type);
    }
  }
  const result: [Buffer, Buffer][] = [];
  // Collect keys first: deleting or inserting while walking get_next_key can skip entries.
  const keys = [...map.keys()];
  for (const k of keys) {
    const v = map.get(k);
    if (v) result.push([k, v]);
  }
  return result;
}

export interface DiffResult {
  /** Keys (as text) inserted or whose value changed. */
  readonly added: string[];
  /** Keys (as text) deleted. */
  readonly removed: string[];
}

/**
 * Make the map hold exactly `want` (text key -> encoded key and value), touching only what
 * differs. Inserts and updates go first so that a replaced entry (e.g. /24 -> /25) never
 * leaves a moment in which neither is present.
 */
export function applyDiff(
  ref: MapRef,
  current: ReadonlyMap<string, { key: Buffer; value: Buffer }>,
  want: ReadonlyMap<string, { key: Buffer; value: Buffer }>,
): DiffResult {
  const map = new RawMap(ref);
  const added: string[] = [];
  const removed: string[] = [];
  for (const [text, w] of want) {
    const have = current.get(text);
    if (have?.value.equals(w.value)) continue;
    map.set(w.key, w.value);
    added.push(text);
  }
  for (const [text, have] of current) {
    if (want.has(text)) continue;
    map.delete(have.key);
    removed.push(text);
  }
  return { added: added.sort(), removed: removed.sort() };
}
