import { createHash } from 'node:crypto';

/**
 * Short identifier of key material, safe to print: the first 8 bytes of its SHA-256, hex.
 * Operators compare fingerprints across nodes and CLI output without ever seeing the key.
 */
export function keyFingerprint(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}
