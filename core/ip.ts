/**
 * IP and CIDR parsing for node facts. Kubernetes writes addresses and pod CIDRs in canonical
 * text, and key derivation hashes the address *text*, so the canonical form matters, not only
 * the value.
 */
import { isIPv4 } from 'node:net';
import ipaddr from 'ipaddr.js';

export type IpFamily = 4 | 6;

export interface ParsedIp {
  readonly family: IpFamily;
  /** Network-order bytes: 4 for IPv4, 16 for IPv6. */
  readonly bytes: Uint8Array;
  /** Canonical text (dotted quad, or RFC 5952 for IPv6). */
  readonly canonical: string;
}

export interface ParsedCidr extends ParsedIp {
  readonly prefixLength: number;
  /** `canonical/prefix` with the host bits cleared. */
  readonly network: string;
  /** True when the input had host bits set (e.g. 10.244.1.5/24). */
  readonly hasHostBits: boolean;
}

function fromAddr(addr: ipaddr.IPv4 | ipaddr.IPv6): ParsedIp {
  const family: IpFamily = addr.kind() === 'ipv4' ? 4 : 6;
  return { family, bytes: Uint8Array.from(addr.toByteArray()), canonical: addr.toString() };
}

/**
 * Parsed forms of the texts seen lately. A node plugin with 5,000 peers parses the same few
 * thousand addresses and CIDRs in the plan, the diff and the encoder on every sync, and
 * ipaddr.js costs microseconds per call; a lookup costs tens of nanoseconds. Bounded: when a
 * table is full it starts over, so text an attacker chooses costs memory only up to the cap.
 * Results are shared between callers: never mutate them (their `bytes` included). They are
 * not frozen: a fresh node plugin parses every peer's addresses once, where freezing, spreads
 * and array callbacks doubled the cost of a parse (bench:nodeplugin, policies in a fresh process).
 */
const MEMO_ENTRIES = 32_768;
/** Longer text is no address or CIDR (IPv6 CIDR text is at most 49 characters): not kept. */
const MEMO_TEXT_CHARS = 64;
const ipMemo = new Map<string, ParsedIp | null>();
const cidrMemo = new Map<string, ParsedCidr | null>();

function remember<T>(memo: Map<string, T | null>, text: string, value: T | undefined): T | undefined {
  if (text.length > MEMO_TEXT_CHARS) return value;
  if (memo.size >= MEMO_ENTRIES) memo.clear();
  memo.set(text, value ?? null);
  return value;
}

/** Parse a plain IPv4 dotted quad or IPv6 address; undefined for anything else (no octal, no zones). */
export function parseIp(text: string): ParsedIp | undefined {
  const known = ipMemo.get(text);
  if (known !== undefined) return known ?? undefined;
  return remember(ipMemo, text, parseIpText(text));
}

function parseIpText(text: string): ParsedIp | undefined {
  // Node's own check accepts exactly what ipaddr's isValidFourPartDecimal does (four decimal
  // parts of 0 to 255, no leading zeros), and such text is already canonical. One regular
  // expression instead of ipaddr's two parses and a toString: a fresh node plugin parses every
  // peer's addresses once, and ipaddr was half of encoding 5,000 policies in a fresh process.
  if (isIPv4(text)) {
    const parts = text.split('.');
    const bytes = new Uint8Array(4);
    for (let i = 0; i < 4; i++) bytes[i] = Number(parts[i]);
    return { family: 4, bytes, canonical: text };
  }
  if (!text.includes(':') || text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
  return fromAddr(ipaddr.IPv6.parse(text));
}

/** Canonical text of an address, or the input unchanged when it is not one (compare, never hash). */
export function canonicalIp(text: string): string {
  return parseIp(text)?.canonical ?? text;
}

/** Parse `address/prefix`; undefined when either part is invalid. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const known = cidrMemo.get(text);
  if (known !== undefined) return known ?? undefined;
  return remember(cidrMemo, text, parseCidrText(text));
}

function parseCidrText(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  if (prefixLength > ip.bytes.length * 8) return undefined;
  const masked = maskBytes(ip.bytes, prefixLength);
  let hasHostBits = false;
  for (let i = 0; i < masked.length; i++) if (masked[i] !== ip.bytes[i]) hasHostBits = true;
  const netAddr = !hasHostBits ? ip.canonical : ip.family === 4 ? masked.join('.') : ipaddr.fromByteArray(Array.from(masked)).toString();
  return { family: ip.family, bytes: ip.bytes, canonical: ip.canonical, prefixLength, network: `${netAddr}/${prefixLength}`, hasHostBits };
}

export function maskBytes(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff00 >> keep) & 0xff);
  }
  return out;
}
