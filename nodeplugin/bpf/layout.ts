/**
 * Everything the TypeScript side must agree on with bpf/*.c: names, map shapes, key encodings,
 * counter slots, tc filter identity. Pure (no I/O) so it can be unit-tested without root.
 */
import { endianness } from 'node:os';
import { parseCidr, parseIp } from '../../core/ip.js';

// Map keys and values hold C integers in the host's byte order (Kmesh's Go writer assumes
// little-endian; we do not).
const LE = endianness() === 'LE';

/** A host-order u32 as the kernel stores it in a map key or value. */
export function u32Buf(n: number): Buffer {
  const b = Buffer.alloc(4);
  writeU32(b, n, 0);
  return b;
}

export function writeU32(b: Buffer, n: number, offset: number): void {
  if (LE) b.writeUInt32LE(n, offset);
  else b.writeUInt32BE(n, offset);
}

export function readU32(b: Buffer, offset: number): number {
  return LE ? b.readUInt32LE(offset) : b.readUInt32BE(offset);
}

export function readU64(b: Buffer, offset: number): bigint {
  return LE ? b.readBigUInt64LE(offset) : b.readBigUInt64BE(offset);
}

/** Which of our two programs. */
export type ProgramKind = 'pod' | 'node';

/** Kernel program names (ELF function names, <= 15 chars so the kernel keeps them whole). */
export const PROGRAM_NAMES: Readonly<Record<ProgramKind, string>> = {
  pod: 'kmipsec_pod',
  node: 'kmipsec_node',
};

/** Object file per program under the build dir (bpf/build/). */
export const OBJECT_FILES: Readonly<Record<ProgramKind, string>> = {
  pod: 'kmi_pod.o',
  node: 'kmi_node.o',
};

/** BPF map type numbers (uapi enum bpf_map_type) used here. */
export const MAP_TYPE = { HASH: 1, PERCPU_ARRAY: 6, LPM_TRIE: 11 } as const;
/** BPF_F_NO_PREALLOC. */
export const F_NO_PREALLOC = 1;

export interface MapShape {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
}

/** Slots in each counters map; more than we use so counters can be added without re-pinning. */
export const COUNTER_SLOTS = 16;

/** Mirrors the `.maps` definitions in bpf/kmi_pod.c and bpf/kmi_node.c. */
export const MAPS = {
  peerCidrs: { name: 'kmi_peer_cidrs', type: MAP_TYPE.LPM_TRIE, keySize: 20, valueSize: 4, maxEntries: 8192, flags: F_NO_PREALLOC },
  podStats: { name: 'kmi_pod_stats', type: MAP_TYPE.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: COUNTER_SLOTS, flags: 0 },
  peerMarks: { name: 'kmi_peer_marks', type: MAP_TYPE.HASH, keySize: 16, valueSize: 4, maxEntries: 16384, flags: F_NO_PREALLOC },
  nodeStats: { name: 'kmi_node_stats', type: MAP_TYPE.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: COUNTER_SLOTS, flags: 0 },
} as const satisfies Record<string, MapShape>;

export type MapId = keyof typeof MAPS;

/** Maps each object file defines; both are pinned under the node's pin dir by map name. */
export const OBJECT_MAPS: Readonly<Record<ProgramKind, readonly MapId[]>> = {
  pod: ['peerCidrs', 'podStats'],
  node: ['peerMarks', 'nodeStats'],
};

/** Counter slot indexes of kmi_pod_stats (enum in bpf/kmi_pod.c). */
export const POD_COUNTERS = { ip: 0, marked: 1, missed: 2, nonIp: 3, malformed: 4 } as const;
/** Counter slot indexes of kmi_node_stats (enum in bpf/kmi_node.c). */
export const NODE_COUNTERS = { espSeen: 0, espMarked: 1, espUnknownPeer: 2, nonEsp: 3, malformed: 4 } as const;

export type PodCounters = Record<keyof typeof POD_COUNTERS, number>;
export type NodeCounters = Record<keyof typeof NODE_COUNTERS, number>;

/**
 * tc filter identity. Both programs sit on clsact ingress at this priority with their own
 * handle; we only ever replace or delete a filter at exactly (TC_PRIO, our handle) whose
 * program name is ours. The priority is low enough to run before filters added without an
 * explicit priority (the kernel hands those out from 49152 down) and the programs return
 * TC_ACT_UNSPEC, so filters after ours still run.
 */
export const TC_PRIO = 0x6b; // 107, 'k'
export const TC_HANDLES: Readonly<Record<ProgramKind, number>> = {
  pod: 0x6b6d0001, // "km" + 1
  node: 0x6b6d0002,
};

/** Family tag stored as the LPM value (see bpf/kmi_pod.c). */
export const LPM_FAMILY_VALUE = { 4: 4, 6: 6 } as const;

/** A validated pod CIDR as the LPM trie stores it. */
export interface LpmEntry {
  readonly cidr: string;
  readonly family: 4 | 6;
  readonly key: Buffer;
}

/**
 * Validate a CIDR and encode it as a kmi_peer_cidrs key. Only the canonical text is accepted
 * (lower-case RFC 5952 IPv6, dotted-quad IPv4 without leading zeros, no host bits, no zone,
 * no IPv4-mapped IPv6), so the strings listPeerCidrs returns compare equal to the input.
 */
export function encodeCidr(text: string): LpmEntry {
  const p = parseCidr(text);
  if (!p) throw new TypeError(`peer CIDR ${JSON.stringify(text)}: not an IPv4 or IPv6 CIDR`);
  if (p.family === 6 && isV4Mapped(p.bytes)) {
    throw new TypeError(`peer CIDR ${JSON.stringify(text)}: IPv4-mapped IPv6 is not accepted, write the IPv4 CIDR`);
  }
  if (p.hasHostBits || p.network !== text) {
    throw new TypeError(`peer CIDR ${JSON.stringify(text)}: not canonical, expected ${JSON.stringify(p.network)}`);
  }
  const key = Buffer.alloc(MAPS.peerCidrs.keySize);
  writeU32(key, p.prefixLength, 0);
  Buffer.from(p.bytes).copy(key, 4);
  return { cidr: text, family: p.family, key };
}

/**
 * Decode a kmi_peer_cidrs key (plus its value, which tells the family: the key alone cannot,
 * since IPv4 entries are stored like Kmesh's without a discriminator).
 */
export function decodeCidrKey(key: Buffer, value: Buffer): LpmEntry {
  const prefix = readU32(key, 0);
  const family = readU32(value, 0);
  if (family !== 4 && family !== 6) {
    throw new Error(`kmi_peer_cidrs: entry ${key.toString('hex')} has value ${family}, expected 4 or 6`);
  }
  const len = family === 4 ? 4 : 16;
  const addr = key.subarray(4, 4 + len);
  const ip = parseIp(family === 4 ? Array.from(addr).join('.') : ipv6Text(addr));
  if (!ip || prefix > len * 8) throw new Error(`kmi_peer_cidrs: malformed key ${key.toString('hex')}`);
  return { cidr: `${ip.canonical}/${prefix}`, family, key: Buffer.from(key) };
}

/** A validated peer node address as the kmi_peer_marks hash stores it. */
export interface AddrKey {
  readonly address: string;
  readonly key: Buffer;
}

/** Validate a canonical IP address and encode it as a 16-byte kmi_peer_marks key (IPv4 as ::ffff:a.b.c.d). */
export function encodeAddress(text: string): AddrKey {
  const p = parseIp(text);
  if (!p) throw new TypeError(`peer address ${JSON.stringify(text)}: not an IPv4 or IPv6 address`);
  if (p.family === 6 && isV4Mapped(p.bytes)) {
    throw new TypeError(`peer address ${JSON.stringify(text)}: IPv4-mapped IPv6 is not accepted, write the IPv4 address`);
  }
  if (p.canonical !== text) {
    throw new TypeError(`peer address ${JSON.stringify(text)}: not canonical, expected ${JSON.stringify(p.canonical)}`);
  }
  const key = Buffer.alloc(MAPS.peerMarks.keySize);
  if (p.family === 4) {
    key[10] = 0xff;
    key[11] = 0xff;
    Buffer.from(p.bytes).copy(key, 12);
  } else {
    Buffer.from(p.bytes).copy(key, 0);
  }
  return { address: text, key };
}

export function decodeAddressKey(key: Buffer): string {
  const bytes = Uint8Array.from(key);
  const text = isV4Mapped(bytes) ? Array.from(bytes.subarray(12)).join('.') : ipv6Text(key);
  const p = parseIp(text);
  if (!p) throw new Error(`kmi_peer_marks: malformed key ${key.toString('hex')}`);
  return p.canonical;
}

function isV4Mapped(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

function ipv6Text(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

/** Default per-node pin directory on the host bpffs. */
export const DEFAULT_BPFFS_ROOT = '/sys/fs/bpf/kmesh-ipsec';
