/**
 * Scalar values of xfrm structs: range checks for what we encode, and xfrm's enums (protocol,
 * mode, direction, action, policy type, address family) between our names and the kernel's
 * numbers. Numbers without a name round-trip as `proto-<n>` / `mode-<n>`.
 */
import { XfrmTransportError } from './errors.js';
import { AF_INET, AF_INET6, XFRM_MODE, XFRM_PROTO } from './uapi.js';
import type { IpFamily, XfrmMode, XfrmProto } from './types.js';

export function checkU32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name}: must be an integer from 0 to 0xffffffff, got ${v}`);
  return v;
}

export function checkRange(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name}: must be an integer from 0 to ${max}, got ${v}`);
  return v;
}

/** The kernel's number for `name` in `table`, or the number of a `<word>-<n>` placeholder. */
export function lookup<K extends string>(table: Readonly<Record<K, number>>, name: string, what: string): number {
  const v = (table as Readonly<Record<string, number | undefined>>)[name];
  if (v !== undefined) return v;
  const m = /^[a-z]+-(\d+)$/.exec(name);
  if (m?.[1] !== undefined) return checkRange(what, Number(m[1]), 255);
  throw new RangeError(`${what}: unknown value ${JSON.stringify(name)}`);
}

/** Number -> name of each table, made on first use (a dump decodes a few per object). */
const reversed = new WeakMap<object, ReadonlyMap<number, string>>();

/** Our name for the kernel's number `n` in `table`, if it has one. */
export function reverse<K extends string>(table: Readonly<Record<K, number>>, n: number): K | undefined {
  let byNumber = reversed.get(table);
  if (!byNumber) {
    const m = new Map<number, string>();
    // The first name of a number wins, as the scan in table order did.
    for (const [k, v] of Object.entries(table) as [K, number][]) if (!m.has(v)) m.set(v, k);
    reversed.set(table, (byNumber = m));
  }
  return byNumber.get(n) as K | undefined;
}

export function protoNumber(p: XfrmProto): number {
  return lookup(XFRM_PROTO, p, 'proto');
}
export function protoName(n: number): XfrmProto {
  return reverse(XFRM_PROTO, n) ?? `proto-${n}`;
}
export function modeNumber(m: XfrmMode): number {
  return lookup(XFRM_MODE, m, 'mode');
}
export function modeName(n: number): XfrmMode {
  return reverse(XFRM_MODE, n) ?? `mode-${n}`;
}

export function familyToAf(f: IpFamily): number {
  return f === 4 ? AF_INET : AF_INET6;
}
export function afToFamily(af: number): IpFamily {
  if (af === AF_INET) return 4;
  if (af === AF_INET6) return 6;
  throw new XfrmTransportError(`unexpected address family ${af} in an xfrm message`);
}
