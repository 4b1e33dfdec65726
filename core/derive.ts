/**
 * Per-pair key derivation, byte-for-byte Kmesh's: SHA-512 over the PSK, the two node addresses
 * as text and the two boot IDs truncated to 36 bytes, cut to the PSK length. A peer that reboots
 * gets a new boot ID and so new keys, which is why states are replaced, not kept.
 */
import { createHash } from 'node:crypto';
import { PSK_BYTES } from './constants.js';
import { ValidationError } from './result.js';

const BOOT_ID_BYTES = 36;

/**
 * Key for traffic from the node at `srcIP` (boot `srcBootID`) to the node at `dstIP`.
 * Both ends call it with the sender as src. IPs are hashed exactly as given (not normalised),
 * as Kmesh does with the text from KmeshNodeInfo.spec.addresses.
 * @throws ValidationError when the PSK is not 36 bytes or a boot ID is shorter than 36 bytes.
 */
export function deriveKey(psk: Uint8Array, srcIP: string, dstIP: string, srcBootID: string, dstBootID: string): Uint8Array {
  const src = Buffer.from(srcBootID, 'utf8');
  const dst = Buffer.from(dstBootID, 'utf8');
  const errors = [];
  if (psk.length !== PSK_BYTES) errors.push({ field: 'psk', message: `must be ${PSK_BYTES} bytes, got ${psk.length}` });
  if (src.length < BOOT_ID_BYTES) errors.push({ field: 'srcBootID', message: `must be at least ${BOOT_ID_BYTES} bytes (a UUID), got ${src.length}` });
  if (dst.length < BOOT_ID_BYTES) errors.push({ field: 'dstBootID', message: `must be at least ${BOOT_ID_BYTES} bytes (a UUID), got ${dst.length}` });
  if (errors.length > 0) throw new ValidationError(errors);
  const digest = createHash('sha512')
    .update(psk)
    .update(srcIP, 'utf8')
    .update(dstIP, 'utf8')
    .update(src.subarray(0, BOOT_ID_BYTES))
    .update(dst.subarray(0, BOOT_ID_BYTES))
    .digest();
  return Uint8Array.from(digest.subarray(0, psk.length));
}
