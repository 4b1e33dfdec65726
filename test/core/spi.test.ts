import test from 'ava';
import { randomBytes } from 'node:crypto';
import { checkSpiAboveAdvertised, checkSpiTransition, initialSpi, nextSpi, SpiViolation } from '../../core/spi.js';
import type { IpsecKey } from '../../core/secret.js';

const mk = (spi: number, key = randomBytes(36), icvBits = 128): IpsecKey => ({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: Uint8Array.from(key), icvBits });
const K1 = randomBytes(36);
const K2 = randomBytes(36);

test('same SPI, same key: allowed (no-op update)', (t) => {
  t.deepEqual(checkSpiTransition(mk(4, K1), mk(4, K1)), []);
});

test('higher SPI with a new key: allowed', (t) => {
  t.deepEqual(checkSpiTransition(mk(4, K1), mk(5, K2)), []);
  t.deepEqual(checkSpiTransition(mk(4, K1), mk(40, K2)), []);
});

test('SPI going down is refused', (t) => {
  const [e] = checkSpiTransition(mk(4, K1), mk(3, K2));
  t.is(e?.code, SpiViolation.Decreased);
  t.is(e?.field, 'ipSec.spi');
  t.regex(e?.message ?? '', /must not go down: the current SPI is 4, this sets 3; use 5/);
});

test('SPI going down is refused even with the same key', (t) => {
  t.is(checkSpiTransition(mk(4, K1), mk(3, K1))[0]?.code, SpiViolation.Decreased);
});

test('same SPI with a different key is refused', (t) => {
  const [e] = checkSpiTransition(mk(4, K1), mk(4, K2));
  t.is(e?.code, SpiViolation.KeyChangedSameSpi);
  t.regex(e?.message ?? '', /set spi to 5/);
});

test('same SPI with a different ICV counts as a different key', (t) => {
  t.is(checkSpiTransition(mk(4, K1, 128), mk(4, K1, 96))[0]?.code, SpiViolation.KeyChangedSameSpi);
});

test('higher SPI with the current key is refused', (t) => {
  const [e] = checkSpiTransition(mk(4, K1), mk(5, K1));
  t.is(e?.code, SpiViolation.RaisedSameKey);
  t.is(e?.field, 'ipSec.aeadKey');
});

test('create after delete must be above every advertised SPI', (t) => {
  t.deepEqual(checkSpiAboveAdvertised(mk(8), [3, 7, 0]), []);
  const [e] = checkSpiAboveAdvertised(mk(7), [3, 7]);
  t.is(e?.code, SpiViolation.BelowAdvertised);
  t.regex(e?.message ?? '', /must be above 7.*use 8/);
  t.deepEqual(checkSpiAboveAdvertised(mk(1), []), []);
});

test('initialSpi and nextSpi', (t) => {
  t.is(initialSpi([]), 1);
  t.is(initialSpi([0, 0]), 1);
  t.is(initialSpi([2, 9]), 10);
  t.is(nextSpi(1), 2);
  t.throws(() => nextSpi(0x7fffffff), { instanceOf: RangeError });
});

test('the rules return errors, never throw, at the top of the SPI space', (t) => {
  const top = mk(0x7fffffff, K1);
  t.regex(checkSpiTransition(top, mk(0x7fffffff, K2))[0]?.message ?? '', /none is left/);
  t.regex(checkSpiTransition(top, mk(3, K2))[0]?.message ?? '', /no higher SPI is left/);
  t.regex(checkSpiAboveAdvertised(mk(5), [0x7fffffff])[0]?.message ?? '', /no higher SPI is left/);
});
