import test from 'ava';
import { randomBytes } from 'node:crypto';
import { encodeIpsecValue, parseIpsecSecret, parseIpsecValue, renderIpsecSecret, decodeAeadKey } from '../../core/secret.js';
import { formatErrors } from '../../core/result.js';

// The aeadKey of the example IPsec secret in Kmesh's own unit tests (kmesh-net/kmesh,
// pkg/controller/encryption/ipsec): 36 bytes, standard base64, as Go's encoding/json writes []byte.
const KMESH_B64 = 'LclBDXzWsyRGG/FttRhkZZQnbFNiww/EduvKPxo5S27URiFh';
const KMESH_HEX = Buffer.from(KMESH_B64, 'base64').toString('hex');
const KMESH_JSON = `{"spi":1,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${KMESH_B64}","length":128}`;

test('the Kmesh example value parses and re-encodes byte for byte', (t) => {
  const r = parseIpsecValue(KMESH_JSON);
  if (!r.ok) return t.fail(formatErrors(r.errors));
  t.is(r.value.key.spi, 1);
  t.is(r.value.key.icvBits, 128);
  t.is(encodeIpsecValue(r.value.key), KMESH_JSON);
  t.deepEqual(r.value.normalisation, { keyWasHex: false, defaulted: [] });
});

test('a 72-hex key (kmeshctl --key form) normalises to the same canonical value', (t) => {
  const r = parseIpsecValue(`{"spi":1,"aeadKey":"${KMESH_HEX.toUpperCase()}"}`);
  if (!r.ok) return t.fail(formatErrors(r.errors));
  t.is(encodeIpsecValue(r.value.key), KMESH_JSON);
  t.deepEqual(r.value.normalisation, { keyWasHex: true, defaulted: ['aeadKeyName', 'length'] });
});

test('ICV 64 and 96 are accepted', (t) => {
  for (const n of [64, 96]) {
    const r = parseIpsecValue(`{"spi":3,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${KMESH_B64}","length":${n}}`);
    t.true(r.ok && r.value.key.icvBits === n);
  }
});

const key = (k: string) => `{"spi":1,"aeadKey":"${k}"}`;
const malformed: [name: string, value: string, field: string, message: RegExp][] = [
  ['not JSON', 'spi=1', 'ipSec', /must be one JSON object: unexpected character/],
  ['empty', '', 'ipSec', /unexpected end of input/],
  ['trailing garbage', `${KMESH_JSON} x`, 'ipSec', /unexpected text after the JSON value/],
  ['two objects', `${KMESH_JSON}${KMESH_JSON}`, 'ipSec', /unexpected text after the JSON value/],
  ['duplicate key', `{"spi":1,"spi":2,"aeadKey":"${KMESH_B64}"}`, 'ipSec', /duplicate key "spi"/],
  ['an array', '[1]', 'ipSec', /must be a JSON object like/],
  ['a string', '"x"', 'ipSec', /must be a JSON object like/],
  ['unknown field', `{"spi":1,"aeadKey":"${KMESH_B64}","mode":"tunnel"}`, 'ipSec.mode', /unknown field; allowed fields are spi, aeadKeyName, aeadKey, length/],
  ['wrong case field', `{"SPI":1,"spi":1,"aeadKey":"${KMESH_B64}"}`, 'ipSec.SPI', /case-sensitive, did you mean "spi"/],
  ['missing spi', `{"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /required: an integer from 1 to 2147483647/],
  ['spi zero', `{"spi":0,"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /from 1 to 2147483647, got 0/],
  ['spi negative', `{"spi":-3,"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /got -3/],
  ['spi too large', `{"spi":2147483648,"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /got 2147483648/],
  ['spi as string', `{"spi":"1","aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /got the string "1"/],
  ['spi fraction', `{"spi":1.5,"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /without fraction or exponent, got 1.5/],
  ['spi 1.0', `{"spi":1.0,"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /without fraction or exponent, got 1.0/],
  ['spi exponent', `{"spi":1e2,"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /got 1e2/],
  ['spi null', `{"spi":null,"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /got null/],
  ['spi as object', `{"spi":{},"aeadKey":"${KMESH_B64}"}`, 'ipSec.spi', /got an object/],
  ['missing key', '{"spi":1}', 'ipSec.aeadKey', /required: 72 hex characters or standard base64 of 36 bytes/],
  ['empty key', key(''), 'ipSec.aeadKey', /got an empty string/],
  ['key as number', '{"spi":1,"aeadKey":12}', 'ipSec.aeadKey', /must be a string/],
  ['hex too short (70)', key(KMESH_HEX.slice(2)), 'ipSec.aeadKey', /must be 72 hex characters \(36 bytes\); got 70 hex characters/],
  ['hex too long (74)', key(`${KMESH_HEX}ab`), 'ipSec.aeadKey', /got 74 hex characters/],
  ['32-byte AES key without salt (64 hex)', key(KMESH_HEX.slice(0, 64)), 'ipSec.aeadKey', /got 64 hex characters \(the 4-byte salt is missing\)/],
  ['72 characters, the last not hex', key(`${KMESH_HEX.slice(0, 71)}-`), 'ipSec.aeadKey', /must be 72 hex characters \(36 bytes\); character 72 \("-"\) is not a hex digit/],
  ['72 characters, one in the middle not hex', key(`${KMESH_HEX.slice(0, 10)}g${KMESH_HEX.slice(11)}`), 'ipSec.aeadKey', /character 11 \("g"\) is not a hex digit/],
  ['72 characters, an invisible one', key(`${KMESH_HEX.slice(0, 35)}\u200b${KMESH_HEX.slice(36)}`), 'ipSec.aeadKey', /character 36 \("\\u\{200b\}"\) is not a hex digit/],
  ['48 hex digits: a hex key cut short, though it decodes as base64', key(KMESH_HEX.slice(0, 48)), 'ipSec.aeadKey', /is 48 hex digits: a hex key needs 72 \(this one is cut short\?\)/],
  ['base64 with a character outside both alphabets', key(`${KMESH_B64.slice(0, 47)}!`), 'ipSec.aeadKey', /character 48 \("!"\) is neither hex nor base64/],
  ['base64 of 32 bytes', key(randomBytes(32).toString('base64')), 'ipSec.aeadKey', /must decode to 36 bytes.*decodes to 32 bytes/],
  ['base64 of 40 bytes', key(randomBytes(40).toString('base64')), 'ipSec.aeadKey', /decodes to 40 bytes/],
  ['base64 without padding', key(randomBytes(35).toString('base64').replace(/=+$/, '')), 'ipSec.aeadKey', /not canonical padded base64/],
  ['url-safe base64', key(Buffer.from(KMESH_B64, 'base64').toString('base64url')), 'ipSec.aeadKey', /character \d+ \("[-_]"\) is neither hex nor base64 \(base64url\? use standard base64, with \+ and \/\)/],
  ['key with whitespace', key(` ${KMESH_B64}`), 'ipSec.aeadKey', /surrounding whitespace/],
  ['all-zero key', key('00'.repeat(36)), 'ipSec.aeadKey', /is all zeros/],
  ['repeated byte key', key('ab'.repeat(36)), 'ipSec.aeadKey', /the byte 0xab repeated/],
  ['wrong algorithm', `{"spi":1,"aeadKeyName":"rfc4543(gcm(aes))","aeadKey":"${KMESH_B64}"}`, 'ipSec.aeadKeyName', /must be "rfc4106\(gcm\(aes\)\)"/],
  ['algorithm with different case', `{"spi":1,"aeadKeyName":"RFC4106(GCM(AES))","aeadKey":"${KMESH_B64}"}`, 'ipSec.aeadKeyName', /the only supported AEAD/],
  ['ICV 127', `{"spi":1,"aeadKey":"${KMESH_B64}","length":127}`, 'ipSec.length', /one of 64, 96, 128, got 127/],
  ['ICV in bytes (16)', `{"spi":1,"aeadKey":"${KMESH_B64}","length":16}`, 'ipSec.length', /ICV length in bits/],
  ['ICV as string', `{"spi":1,"aeadKey":"${KMESH_B64}","length":"128"}`, 'ipSec.length', /got the string "128"/],
];

for (const [name, value, field, message] of malformed) {
  test(`rejects: ${name}`, (t) => {
    const r = parseIpsecValue(value);
    if (r.ok) return t.fail('accepted');
    const hit = r.errors.find((e) => e.field === field);
    t.truthy(hit, `expected an error on ${field}, got ${formatErrors(r.errors)}`);
    t.regex(hit?.message ?? '', message);
  });
}

test('every problem is reported at once', (t) => {
  const r = parseIpsecValue('{"spi":0,"aeadKeyName":"x","aeadKey":"00","length":1,"extra":true}');
  if (r.ok) return t.fail();
  t.deepEqual(r.errors.map((e) => e.field).sort(), ['ipSec.aeadKey', 'ipSec.aeadKeyName', 'ipSec.extra', 'ipSec.length', 'ipSec.spi']);
});

test('error messages never echo a long key', (t) => {
  const secretish = randomBytes(30).toString('hex');
  const r = parseIpsecValue(key(secretish));
  t.false(r.ok);
  t.false(JSON.stringify(r).includes(secretish));
});

test('a "__proto__" field is an unknown field, not a prototype change', (t) => {
  const r = parseIpsecValue(`{"spi":1,"aeadKey":"${KMESH_B64}","__proto__":{"length":64}}`);
  t.false(r.ok);
  t.is(r.ok ? '' : r.errors[0]?.field, 'ipSec.__proto__');
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('secret: data form parses; render gives the canonical object', (t) => {
  const r = parseIpsecSecret({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', data: { ipSec: b64(KMESH_JSON) } });
  if (!r.ok) return t.fail(formatErrors(r.errors));
  t.is(r.value.source, 'data');
  t.deepEqual(renderIpsecSecret(r.value.key), {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kmesh-ipsec', namespace: 'kmesh-system' }, type: 'Opaque', data: { ipSec: b64(KMESH_JSON) },
  });
});

test('secret: stringData form with hex key parses', (t) => {
  const r = parseIpsecSecret({ stringData: { ipSec: key(KMESH_HEX) } });
  t.true(r.ok && r.value.source === 'stringData' && r.value.normalisation.keyWasHex);
});

const secretCases: [string, unknown, string, RegExp][] = [
  ['not an object', 'x', 'secret', /must be a Secret object/],
  ['no ipSec anywhere', { data: {} }, 'data.ipSec', /required/],
  ['extra data key', { data: { ipSec: b64(KMESH_JSON), other: b64('x') } }, 'data.other', /holds only "ipSec"/],
  ['wrong type', { type: 'kubernetes.io/tls', data: { ipSec: b64(KMESH_JSON) } }, 'type', /must be "Opaque"/],
  ['data not base64', { data: { ipSec: KMESH_JSON } }, 'data.ipSec', /must be standard base64/],
  ['data value not a string', { data: { ipSec: 5 } }, 'data.ipSec', /must be a string/],
  ['data and stringData disagree on spi', { data: { ipSec: b64(KMESH_JSON) }, stringData: { ipSec: KMESH_JSON.replace('"spi":1', '"spi":2') } }, 'stringData.ipSec', /disagrees with data.ipSec \(spi 2 vs 1\)/],
  ['data and stringData disagree on key', { data: { ipSec: b64(KMESH_JSON) }, stringData: { ipSec: key(randomBytes(36).toString('hex')) } }, 'stringData.ipSec', /different key/],
  ['bad value inside data', { data: { ipSec: b64('{"spi":1}') } }, 'data.ipSec.aeadKey', /required/],
];
for (const [name, obj, field, message] of secretCases) {
  test(`secret rejects: ${name}`, (t) => {
    const r = parseIpsecSecret(obj);
    if (r.ok) return t.fail('accepted');
    const hit = r.errors.find((e) => e.field === field);
    t.truthy(hit, formatErrors(r.errors));
    t.regex(hit?.message ?? '', message);
  });
}

test('secret: data and stringData that agree (hex vs base64) are fine', (t) => {
  t.true(parseIpsecSecret({ data: { ipSec: b64(KMESH_JSON) }, stringData: { ipSec: key(KMESH_HEX) } }).ok);
});

test('decodeAeadKey: 48 hex digits are not read as base64 of 36 bytes, although they could be', (t) => {
  const r = decodeAeadKey('a1'.repeat(24), 'k');
  t.false(r.ok);
  // A random base64 key is all hex digits with probability (22/64)^48, about 6e-23.
  const b64 = randomBytes(36).toString('base64');
  t.true(/[^0-9a-fA-F]/.test(b64) ? decodeAeadKey(b64, 'k').ok : true);
});
