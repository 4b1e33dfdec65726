import test from 'ava';
import { deriveKey } from '../../core/derive.js';
import { ValidationError } from '../../core/result.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const PSK1 = hex('2dc9410d7cd6b324461bf16db518646594276c5362c30fc476ebca3f1a394b6ed4462161');
const BOOT_A = '550e8400-e29b-41d4-a716-446655440000';
const BOOT_B = '550e8400-e29b-41d4-a716-446655440001';

// Known-answer vectors for Kmesh's derivation (generateIPSecKey in kmesh-net/kmesh,
// pkg/controller/encryption/ipsec/ipsec_handler.go): SHA-512 over PSK ‖ src IP text ‖ dst IP text
// ‖ src boot ID[0:36] ‖ dst boot ID[0:36], cut to the PSK length. V1 uses the inputs of Kmesh's
// TestGenerateIPSecKey, which checks only determinism and length, so the expected outputs were
// computed independently from that definition (not by running Kmesh).
test('V1: 10.0.0.1 -> 10.0.0.2', (t) => {
  t.is(toHex(deriveKey(PSK1, '10.0.0.1', '10.0.0.2', BOOT_A, BOOT_B)), 'd8fe0696f4b6a3db73a1f3f05879aa17d8250fb75499490a6ed0807bddfb4d718478b217');
});

test('V2: the reverse direction gets a different key', (t) => {
  t.is(toHex(deriveKey(PSK1, '10.0.0.2', '10.0.0.1', BOOT_B, BOOT_A)), 'e7898df49169e8150b778af04e0c5f5b3d36e93f095ad1d9408a5573577440ebf1e91691');
});

test('V3: IPv6 addresses hashed as text', (t) => {
  const psk = Uint8Array.from({ length: 36 }, (_, i) => i);
  t.is(
    toHex(deriveKey(psk, 'fc00:f853:ccd:e793::3', 'fc00:f853:ccd:e793::2', '0f6cf0e6-0d5d-4a38-9d3a-2b8a0a3c6f11', 'c3b7f2d4-7e21-4f0b-8a55-91d2e4b7a0c9')),
    'da0cb5e803567124b7f4e497e08ab929697d96faeac370bc9a2aa2991c98d9d19f13e490',
  );
});

test('boot IDs longer than 36 bytes are truncated like Kmesh', (t) => {
  t.deepEqual(deriveKey(PSK1, '10.0.0.1', '10.0.0.2', `${BOOT_A}\n`, `${BOOT_B}xyz`), deriveKey(PSK1, '10.0.0.1', '10.0.0.2', BOOT_A, BOOT_B));
});

test('a short boot ID is an error naming the field, not a crash', (t) => {
  const err = t.throws(() => deriveKey(PSK1, '10.0.0.1', '10.0.0.2', 'short', BOOT_B), { instanceOf: ValidationError });
  t.is(err.errors[0]?.field, 'srcBootID');
  t.regex(err.message, /at least 36 bytes.*got 5/);
  const err2 = t.throws(() => deriveKey(PSK1, '10.0.0.1', '10.0.0.2', BOOT_A, ''), { instanceOf: ValidationError });
  t.is(err2.errors[0]?.field, 'dstBootID');
});

test('a PSK that is not 36 bytes is refused', (t) => {
  t.throws(() => deriveKey(new Uint8Array(32), '10.0.0.1', '10.0.0.2', BOOT_A, BOOT_B), { message: /psk: must be 36 bytes, got 32/ });
});

test('every input changes the key', (t) => {
  const base = toHex(deriveKey(PSK1, '10.0.0.1', '10.0.0.2', BOOT_A, BOOT_B));
  const other = Uint8Array.from(PSK1);
  other[35] = (other[35] ?? 0) ^ 1;
  for (const k of [
    deriveKey(other, '10.0.0.1', '10.0.0.2', BOOT_A, BOOT_B),
    deriveKey(PSK1, '10.0.0.3', '10.0.0.2', BOOT_A, BOOT_B),
    deriveKey(PSK1, '10.0.0.1', '10.0.0.3', BOOT_A, BOOT_B),
    deriveKey(PSK1, '10.0.0.1', '10.0.0.2', BOOT_B, BOOT_B),
    deriveKey(PSK1, '10.0.0.1', '10.0.0.2', BOOT_A, BOOT_A),
  ]) {
    t.not(toHex(k), base);
    t.is(k.length, 36);
  }
});
