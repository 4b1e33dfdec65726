/**
 * KeyRing: which Secret contents are accepted, which refused and why, and which versions are
 * kept. Real Secret values in Kmesh's layout, parsed by core/secret.ts.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { keyFingerprint } from '../../../core/fingerprint.js';
import { KeyRing, type KeyLoad } from '../../../nodeplugin/daemon/key-ring.js';

const material = (seed: number): Buffer => Buffer.from(Array.from({ length: 36 }, (_, i) => (seed * 31 + i * 11 + 1) & 0xff));
const secret = (spi: number, key: Buffer, length = 128) => `{"spi":${spi},"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${key.toString('base64')}","length":${length}}`;

const K1 = material(1);
const K2 = material(2);

function accepted(t: { fail: (m: string) => void }, load: KeyLoad): void {
  if (load.kind !== 'accepted') t.fail(`expected accepted, got ${JSON.stringify(load)}`);
}

test('the first well-formed key is accepted with its fingerprint and becomes current', (t) => {
  const ring = new KeyRing();
  t.is(ring.current(), undefined);
  const load = ring.learn(`  ${secret(3, K1)}\n`);
  t.deepEqual(load, { kind: 'accepted', spi: 3, previousSpi: 0, fingerprint: keyFingerprint(K1) });
  t.is(ring.current()?.spi, 3);
  t.deepEqual([...ring.keys().keys()], [3]);
});

test('malformed content is refused with the parser\'s field errors and changes nothing', (t) => {
  const ring = new KeyRing();
  accepted(t, ring.learn(secret(1, K1)));
  for (const text of ['', 'not json', '{"spi":2}', secret(0, K2), secret(2, Buffer.alloc(36))]) {
    const load = ring.learn(text);
    if (load.kind !== 'refused') return t.fail(`${text}: ${load.kind}`);
    t.is(load.reason, 'malformed', text);
    t.regex(load.message, /ipSec/, text);
  }
  t.is(ring.current()?.spi, 1);
  t.is(ring.keys().size, 1);
});

test('an SPI below the current one is refused as spi-backwards and says "uses"', (t) => {
  const ring = new KeyRing();
  accepted(t, ring.learn(secret(5, K1)));
  const load = ring.learn(secret(4, K2));
  t.like(load, { kind: 'refused', reason: 'spi-backwards' });
  if (load.kind === 'refused') t.regex(load.message, /SPI 4 is below SPI 5, which this node already uses/);
  t.is(ring.current()?.spi, 5);
});

test('after a restart the floor (what the node advertises) refuses an older first key and says "advertises"', (t) => {
  const ring = new KeyRing();
  ring.setFloor(7);
  ring.setFloor(3); // the floor never goes down
  const load = ring.learn(secret(6, K1));
  t.like(load, { kind: 'refused', reason: 'spi-backwards' });
  if (load.kind === 'refused') t.regex(load.message, /SPI 6 is below SPI 7, which this node already advertises/);
  t.is(ring.current(), undefined);
  // The advertised SPI itself is not a regression.
  t.like(ring.learn(secret(7, K1)), { kind: 'accepted', spi: 7, previousSpi: 0 });
});

test('the floor also bounds a key below it when a lower current key exists', (t) => {
  const ring = new KeyRing();
  accepted(t, ring.learn(secret(2, K1)));
  ring.setFloor(9);
  const load = ring.learn(secret(4, K2));
  t.like(load, { kind: 'refused', reason: 'spi-backwards' });
  if (load.kind === 'refused') t.regex(load.message, /below SPI 9, which this node already uses/);
});

test('the same SPI with the same key is unchanged; with another key or ICV it is refused as spi-reused', (t) => {
  const ring = new KeyRing();
  accepted(t, ring.learn(secret(1, K1)));
  // Hex form of the same key and reordered whitespace are the same version.
  t.deepEqual(ring.learn(`{"spi":1,"aeadKey":"${K1.toString('hex')}"}`), { kind: 'unchanged', spi: 1 });
  for (const text of [secret(1, K2), secret(1, K1, 96)]) {
    const load = ring.learn(text);
    t.like(load, { kind: 'refused', reason: 'spi-reused' });
    if (load.kind === 'refused') t.regex(load.message, /^ipSec\.spi: SPI 1 is already in use with another key/);
  }
  t.deepEqual([...ring.keys().keys()], [1]);
});

test('a newer SPI is accepted and reports the previous one; older versions stay known', (t) => {
  const ring = new KeyRing();
  accepted(t, ring.learn(secret(1, K1)));
  t.deepEqual(ring.learn(secret(2, K2)), { kind: 'accepted', spi: 2, previousSpi: 1, fingerprint: keyFingerprint(K2) });
  t.is(ring.current()?.spi, 2);
  t.deepEqual([...ring.keys().keys()].sort(), [1, 2]);
  // An older version still held is "unchanged", not backwards: the Secret may be read again late.
  t.deepEqual(ring.learn(secret(1, K1)), { kind: 'unchanged', spi: 1 });
});

test('keys() is a copy', (t) => {
  const ring = new KeyRing();
  accepted(t, ring.learn(secret(1, K1)));
  (ring.keys() as Map<number, unknown>).delete(1);
  t.is(ring.keys().size, 1);
});

test('prune drops what is not needed, always keeps the newest, and returns what it dropped', (t) => {
  const ring = new KeyRing();
  t.deepEqual(ring.prune([]), []);
  for (const [spi, seed] of [[1, 1], [2, 2], [3, 3], [4, 4]] as const) accepted(t, ring.learn(secret(spi, material(seed))));
  t.deepEqual(ring.prune([2]), [1, 3]);
  t.deepEqual([...ring.keys().keys()].sort(), [2, 4]);
  // Nothing needed: the newest stays anyway.
  t.deepEqual(ring.prune(new Set<number>()), [2]);
  t.deepEqual([...ring.keys().keys()], [4]);
  t.is(ring.current()?.spi, 4);
});

test('no outcome contains the key in any encoding', (t) => {
  const key = randomBytes(36);
  const other = randomBytes(36);
  const ring = new KeyRing();
  ring.setFloor(10);
  const outcomes = [
    ring.learn(secret(5, key)),
    ring.learn(secret(10, key)),
    ring.learn(secret(10, key)),
    ring.learn(secret(10, other)),
    ring.learn(secret(9, other)),
    ring.learn(`{"spi":11,"aeadKey":"${key.toString('hex')}X"}`),
    ring.learn(`{"spi":11,"aeadKey":"${key.toString('base64').slice(1)}"}`),
    ring.learn(`{"spi":11,"aeadKey":"${key.toString('base64')}","extra":1}`),
  ];
  t.deepEqual(outcomes.map((o) => o.kind), ['refused', 'accepted', 'unchanged', 'refused', 'refused', 'refused', 'refused', 'refused']);
  const text = JSON.stringify(outcomes);
  for (const k of [key, other]) {
    for (const encoded of [k.toString('base64'), k.toString('base64url'), k.toString('hex'), k.toString('hex').toUpperCase(), k.subarray(0, 32).toString('base64'), k.subarray(0, 32).toString('hex')]) {
      t.false(text.includes(encoded.slice(0, 24)), `outcomes contain ${encoded.slice(0, 8)}…`);
    }
  }
});
