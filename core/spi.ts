/**
 * Rules for changing the key. The SPI is the key's version and, on the wire, tells the receiver
 * which key to use. If an SPI ever came back with another key, nodes still holding states for
 * the old key would decrypt with the wrong one, so the SPI only goes up, and every new key gets
 * a new SPI.
 */
import { SPI_MAX } from './constants.js';
import type { FieldError } from './result.js';
import { type IpsecKey, sameKeyMaterial } from './secret.js';

export const SpiViolation = {
  Decreased: 'spi-decreased',
  KeyChangedSameSpi: 'key-changed-same-spi',
  RaisedSameKey: 'spi-raised-same-key',
  BelowAdvertised: 'spi-not-above-advertised',
} as const;
export type SpiViolation = (typeof SpiViolation)[keyof typeof SpiViolation];

export interface SpiTransitionError extends FieldError {
  readonly code: SpiViolation;
}

/** What to tell the user to use next; never throws, even at the top of the SPI space. */
function suggestAfter(spi: number): string {
  return spi >= SPI_MAX ? `no higher SPI is left (${SPI_MAX} is the largest); the key cannot be rotated further` : `use ${spi + 1}`;
}

/** Check an update of the secret from `current` to `next`; empty when allowed. */
export function checkSpiTransition(current: IpsecKey, next: IpsecKey, field = 'ipSec'): SpiTransitionError[] {
  if (next.spi < current.spi) {
    return [{ code: SpiViolation.Decreased, field: `${field}.spi`, message: `must not go down: the current SPI is ${current.spi}, this sets ${next.spi}; ${suggestAfter(current.spi)} with a new key` }];
  }
  const sameKey = sameKeyMaterial(current, next);
  if (next.spi === current.spi && !sameKey) {
    return [{ code: SpiViolation.KeyChangedSameSpi, field: `${field}.spi`, message: `a new key needs a higher SPI: ${current.spi < SPI_MAX ? `set spi to ${current.spi + 1}` : 'none is left'} (the current SPI ${current.spi} already names another key)` }];
  }
  if (next.spi > current.spi && sameKey) {
    return [{ code: SpiViolation.RaisedSameKey, field: `${field}.aeadKey`, message: `a higher SPI must come with a new key; this is the key of SPI ${current.spi}` }];
  }
  return [];
}

/**
 * A secret created where none exists must not reuse an SPI that nodes still advertise (their
 * states for it hold the old key). `advertised` are the SPIs found in KmeshNodeInfo objects.
 */
export function checkSpiAboveAdvertised(next: IpsecKey, advertised: readonly number[], field = 'ipSec'): SpiTransitionError[] {
  const highest = Math.max(0, ...advertised);
  if (next.spi > highest) return [];
  return [{ code: SpiViolation.BelowAdvertised, field: `${field}.spi`, message: `must be above ${highest}, the highest SPI nodes still advertise (their states hold the previous key); ${suggestAfter(highest)}` }];
}

/** The SPI that follows `spi`; throws when the space is exhausted. */
export function nextSpi(spi: number): number {
  if (spi >= SPI_MAX) throw new RangeError(`spi: ${spi} is the largest allowed SPI; the key cannot be rotated further`);
  return spi + 1;
}

/** SPI for a secret created where none exists: above anything nodes advertise. */
export function initialSpi(advertised: readonly number[]): number {
  return nextSpi(Math.max(0, ...advertised));
}
