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

/**
 * Pair keys kept between plans. Planning again with mostly the same peers (every event of a
 * node plugin) would otherwise redo two SHA-512 derivations per peer and SPI. Entries are found
 * by the PSK object (a new key version is another object) and the four texts; what a round did
 * not ask for is dropped at the next round, so the cache holds at most two rounds of keys.
 * The keys it returns are shared: never mutate them.
 */
export class DerivedKeys {
  #current = new Map<Uint8Array, Map<string, Uint8Array>>();
  #previous = new Map<Uint8Array, Map<string, Uint8Array>>();

  /** deriveKey(), or the key derived for the same inputs in this round or the one before. */
  derive(psk: Uint8Array, srcIP: string, dstIP: string, srcBootID: string, dstBootID: string): Uint8Array {
    const id = `${srcIP}\n${dstIP}\n${srcBootID}\n${dstBootID}`;
    let round = this.#current.get(psk);
    const known = round?.get(id) ?? this.#previous.get(psk)?.get(id);
    const key = known ?? deriveKey(psk, srcIP, dstIP, srcBootID, dstBootID);
    if (!round) this.#current.set(psk, (round = new Map<string, Uint8Array>()));
    round.set(id, key);
    return key;
  }

  /** Start a round: keys not asked for since the last call are dropped at the next one. */
  nextRound(): void {
    this.#previous = this.#current;
    this.#current = new Map();
  }
}
