/**
 * The key versions a node plugin knows, by SPI, learnt from the mounted Secret.
 *
 * The Secret holds one key at a time, so each version is kept here from the moment it is read
 * until no kernel object needs it any more (old inbound SPIs stay through the rotation's grace
 * period; a peer that lags keeps receiving with the older key). A new file content is
 * accepted only if it is well formed and moves forward; anything else is refused and the keys
 * already known stay in force. Pure: the caller does the file I/O, logging and metrics.
 * No message produced here contains key material.
 */
import { keyFingerprint } from '../../core/fingerprint.js';
import { formatErrors } from '../../core/result.js';
import { type IpsecKey, parseIpsecValue, sameKeyMaterial } from '../../core/secret.js';

export type KeyLoad =
  | { readonly kind: 'accepted'; readonly spi: number; readonly previousSpi: number; readonly fingerprint: string }
  | { readonly kind: 'unchanged'; readonly spi: number }
  | { readonly kind: 'refused'; readonly reason: KeyRefusal; readonly message: string };

/** Why a Secret content was refused; also the `reason` label of the load-error metric. */
export type KeyRefusal = 'malformed' | 'spi-backwards' | 'spi-reused';

export class KeyRing {
  readonly #keys = new Map<number, IpsecKey>();
  /** Lowest SPI a first key may have: what this node already advertises (after a restart). */
  #floor = 0;

  /** Keys by SPI (a copy). */
  keys(): ReadonlyMap<number, IpsecKey> {
    return new Map(this.#keys);
  }

  /** The newest key, undefined before the first one was read. */
  current(): IpsecKey | undefined {
    let newest: IpsecKey | undefined;
    for (const k of this.#keys.values()) if (!newest || k.spi > newest.spi) newest = k;
    return newest;
  }

  /**
   * After a restart this process knows no key, but the node may already advertise SPI n and
   * peers use it: a Secret below n is a regression, not a first key.
   */
  setFloor(spi: number): void {
    this.#floor = Math.max(this.#floor, spi);
  }

  /** Offer the text of the `ipSec` file. */
  learn(text: string): KeyLoad {
    const parsed = parseIpsecValue(text.trim());
    if (!parsed.ok) return { kind: 'refused', reason: 'malformed', message: formatErrors(parsed.errors) };
    const key = parsed.value.key;
    const current = this.current();
    const known = this.#keys.get(key.spi);
    if (known) {
      if (sameKeyMaterial(known, key) && known.icvBits === key.icvBits) return { kind: 'unchanged', spi: key.spi };
      return {
        kind: 'refused', reason: 'spi-reused',
        message: `ipSec.spi: SPI ${key.spi} is already in use with another key; a new key needs a new SPI (kmesh-ipsec secret create raises it)`,
      };
    }
    const lowest = Math.max(current?.spi ?? 0, this.#floor);
    if (key.spi < lowest) {
      return {
        kind: 'refused', reason: 'spi-backwards',
        message: `ipSec.spi: SPI ${key.spi} is below SPI ${lowest}, which this node already ${current ? 'uses' : 'advertises'}; the SPI only goes up (was the Secret restored from an old copy?)`,
      };
    }
    this.#keys.set(key.spi, key);
    return { kind: 'accepted', spi: key.spi, previousSpi: current?.spi ?? 0, fingerprint: keyFingerprint(key.aeadKey) };
  }

  /** Forget versions no kernel object needs any more; the newest key always stays. */
  prune(needed: Iterable<number>): number[] {
    const keep = new Set(needed);
    const current = this.current();
    const dropped: number[] = [];
    for (const spi of [...this.#keys.keys()]) {
      if (spi !== current?.spi && !keep.has(spi)) {
        this.#keys.delete(spi);
        dropped.push(spi);
      }
    }
    return dropped;
  }
}
