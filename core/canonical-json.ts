/**
 * One byte sequence per JSON value, so the webhook (which signs) and every node plugin (which
 * verifies) hash the same bytes for the same KmeshNodeInfo spec, whatever key order the API
 * server, kubectl or a Go client happened to write. Object keys are sorted by UTF-16 code unit
 * (the order JSON.stringify and JCS, RFC 8785, use for the ASCII keys we have); arrays keep
 * their order because order is meaningful in a spec (addresses[0] is the primary address).
 */
import { createHash } from 'node:crypto';

/** Canonical JSON text of `value`; throws TypeError on values JSON cannot represent. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    // NaN and Infinity would silently become null; a digest over that would hide a bug.
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${String(value)} is not representable in JSON`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v: unknown) => canonicalJson(v)).join(',')}]`;
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: a ${typeof value} is not representable in JSON`);
}

/** `sha256:` + base64url SHA-256 of the canonical JSON text (UTF-8). */
export function canonicalDigest(value: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(value), 'utf8').digest('base64url')}`;
}
