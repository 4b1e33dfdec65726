/**
 * Property-based fuzzing (fast-check) of what reads hostile input first: the strict JSON reader,
 * the key decoder and Secret parser, the KmeshNodeInfo validator and the AdmissionReview
 * envelope. For every generated input: no exception but ValidationError (these return Results,
 * so in practice none), bounded output (error counts, message sizes), and bounded time, with a
 * margin of several thousand times what an input takes (microseconds) so machine load cannot
 * fail it. Where an oracle exists, the result is checked against it (JSON.parse, hex, base64).
 */
import test from 'ava';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { type FieldError, type Result, ValidationError, formatErrors } from '../../core/result.js';
import { decodeAeadKey, parseIpsecSecret, parseIpsecValue } from '../../core/secret.js';
import { MAX_JSON_DEPTH, parseStrictJson } from '../../core/strict-json.js';
import { validateNodeInfo, validateNodeInfoSpec } from '../../core/nodeinfo.js';
import { parseAdmissionReview } from '../../webhook/admission-review.js';

/**
 * A guard against runaway work (a quadratic path over a 160 KB input takes minutes), not a
 * performance check: real calls take microseconds to a few milliseconds, and a loaded CI machine
 * once stretched one past a second.
 */
const MAX_MS_PER_INPUT = 10_000;
const MAX_ERRORS = 200;
const MAX_MESSAGE_CHARS = 4096;
const RUNS = { numRuns: 400 };

/** Run `fn`, failing on any exception but ValidationError or on taking too long. */
function bounded<T>(fn: () => T): T | undefined {
  const started = performance.now();
  let value: T | undefined;
  try {
    value = fn();
  } catch (err: unknown) {
    if (!(err instanceof ValidationError)) throw err;
  }
  const ms = performance.now() - started;
  if (ms > MAX_MS_PER_INPUT) throw new Error(`took ${Math.round(ms)} ms`);
  return value;
}

function checkErrors(result: Result<unknown> | undefined): void {
  if (!result || result.ok) return;
  const errors: readonly FieldError[] = result.errors;
  if (errors.length === 0) throw new Error('a failure without errors');
  if (errors.length > MAX_ERRORS) throw new Error(`${errors.length} errors`);
  const message = formatErrors(errors);
  if (message.length > MAX_MESSAGE_CHARS) throw new Error(`a message of ${message.length} characters`);
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(message)) throw new Error(`unescaped characters in ${JSON.stringify(message.slice(0, 200))}`);
}

const hexChars = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...Array.from('0123456789abcdefABCDEF')), minLength: min, maxLength: max });
/** Deep or wide bracket soup: the shapes that overflow recursive readers. */
const brackets = fc.tuple(fc.integer({ min: 0, max: 20_000 }), fc.constantFrom('[', '{"a":', '[{"b":')).map(([n, open]) => `${open.repeat(n)}1${(open === '[' ? ']' : open === '{"a":' ? '}' : '}]').repeat(n)}`);

test('strict JSON: never throws, and on JSON without duplicate keys agrees with JSON.parse', (t) => {
  fc.assert(fc.property(fc.json({ maxDepth: 6 }), (text) => {
    const r = bounded(() => parseStrictJson(text, 'v'));
    checkErrors(r);
    if (!r?.ok) throw new Error(`refused valid JSON ${text.slice(0, 100)}`);
    return JSON.stringify(r.value.value) === JSON.stringify(JSON.parse(text));
  }), RUNS);
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), brackets, fc.json().map((j) => j.slice(0, -1))), (text) => {
    const r = bounded(() => parseStrictJson(text, 'v'));
    checkErrors(r);
    // Whatever the strict reader accepts is JSON.
    if (r?.ok) JSON.parse(text);
  }), RUNS);
  t.false(parseStrictJson(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`, 'v').ok);
  t.true(parseStrictJson(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`, 'v').ok);
});

test('key decoder: never throws; 72 hex digits decode to their bytes, 48 never do, canonical base64 of 36 bytes round-trips', (t) => {
  fc.assert(fc.property(fc.oneof(hexChars(0, 100), fc.base64String({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.anything()), (input) => {
    const r = bounded(() => decodeAeadKey(input, 'k'));
    checkErrors(r);
    if (r?.ok && r.value.length !== 36) throw new Error('a key that is not 36 bytes');
    if (typeof input === 'string' && /^[0-9a-fA-F]{72}$/.test(input) && !(r?.ok && Buffer.from(r.value).toString('hex') === input.toLowerCase())) throw new Error('72 hex digits not decoded');
    if (typeof input === 'string' && /^[0-9a-fA-F]{48}$/.test(input) && r?.ok) throw new Error('48 hex digits read as base64');
  }), RUNS);
  fc.assert(fc.property(fc.uint8Array({ minLength: 36, maxLength: 36 }), (bytes) => {
    const text = Buffer.from(bytes).toString('base64');
    const r = bounded(() => decodeAeadKey(text, 'k'));
    if (/^[0-9a-fA-F]+$/.test(text)) return r?.ok === false;
    return r?.ok === true && Buffer.from(r.value).equals(Buffer.from(bytes));
  }), RUNS);
  t.pass();
});

test('Secret parser: never throws on any value or object, with bounded errors', (t) => {
  const value = fc.record({
    spi: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
    aeadKeyName: fc.oneof(fc.constant('rfc4106(gcm(aes))'), fc.string()),
    aeadKey: fc.oneof(hexChars(72, 72), fc.constant(randomBytes(36).toString('base64')), fc.string(), fc.integer()),
    length: fc.oneof(fc.constantFrom(64, 96, 128), fc.integer(), fc.string()),
  }, { requiredKeys: [] });
  const text = fc.oneof(value.map((v) => JSON.stringify(v)), fc.tuple(value, fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 40 })).map(([v, extra]) => JSON.stringify({ ...extra, ...v })), fc.string({ unit: 'binary', maxLength: 200 }), brackets);
  fc.assert(fc.property(text, (s) => {
    checkErrors(bounded(() => parseIpsecValue(s)));
  }), RUNS);
  const secret = fc.record({
    type: fc.oneof(fc.constant('Opaque'), fc.anything()),
    data: fc.oneof(text.map((s) => ({ ipSec: Buffer.from(s).toString('base64') })), fc.dictionary(fc.string(), fc.anything(), { maxKeys: 20 }), fc.anything()),
    stringData: fc.oneof(text.map((s) => ({ ipSec: s })), fc.anything()),
  }, { requiredKeys: [] });
  fc.assert(fc.property(fc.oneof(secret, fc.anything()), (obj) => {
    checkErrors(bounded(() => parseIpsecSecret(obj)));
  }), RUNS);
  t.pass();
});

test('KmeshNodeInfo validator: never throws, whatever the object, with bounded errors, also for lists of 100,000', (t) => {
  const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 60 }), fc.constant('::ffff:10.0.0.1'), fc.constant('1'.repeat(100_000)));
  const cidr = fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string()), fc.oneof(fc.integer({ min: -1, max: 200 }).map(String), fc.string())).map(([a, p]) => `${a}/${p}`);
  const list = <T>(item: fc.Arbitrary<T>) => fc.oneof(fc.array(item, { maxLength: 80 }), fc.integer({ min: 0, max: 100_000 }).map((n) => Array.from({ length: n }, () => '10.0.0.1')), fc.anything());
  const spec = fc.record({
    spi: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.anything()),
    addresses: list(address),
    bootID: fc.oneof(fc.uuid(), fc.string()),
    podCIDRS: list(cidr),
  }, { requiredKeys: [] });
  const withExtra = fc.tuple(spec, fc.dictionary(fc.string(), fc.anything(), { maxKeys: 50 })).map(([s, extra]) => ({ ...extra, ...s }));
  const object = fc.record({
    apiVersion: fc.oneof(fc.constant('kmesh.net/v1alpha1'), fc.string()),
    kind: fc.oneof(fc.constant('KmeshNodeInfo'), fc.string()),
    metadata: fc.oneof(fc.record({ name: fc.string(), namespace: fc.oneof(fc.constant('kmesh-system'), fc.string()), annotations: fc.dictionary(fc.string(), fc.string()) }, { requiredKeys: [] }), fc.anything()),
    spec: fc.oneof(withExtra, fc.anything()),
  }, { requiredKeys: [] });
  fc.assert(fc.property(fc.oneof(object, fc.anything()), (obj) => {
    checkErrors(bounded(() => validateNodeInfo(obj)));
  }), RUNS);
  fc.assert(fc.property(withExtra, (s) => {
    checkErrors(bounded(() => validateNodeInfoSpec(s)));
  }), RUNS);
  t.pass();
});

test('AdmissionReview envelope: never throws, whatever the body, with bounded errors', (t) => {
  const userInfo = fc.record({ username: fc.oneof(fc.string(), fc.anything()), groups: fc.oneof(fc.array(fc.string()), fc.anything()), extra: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.array(fc.string()), fc.anything()), { maxKeys: 30 }), fc.anything()) }, { requiredKeys: [] });
  const request = fc.record({
    uid: fc.oneof(fc.uuid(), fc.string(), fc.anything()),
    kind: fc.oneof(fc.record({ group: fc.string(), version: fc.string(), kind: fc.string() }), fc.anything()),
    operation: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT'), fc.anything()),
    userInfo: fc.oneof(userInfo, fc.anything()),
    object: fc.anything(),
    oldObject: fc.anything(),
    dryRun: fc.anything(),
    name: fc.anything(),
    namespace: fc.anything(),
  }, { requiredKeys: [] });
  const review = fc.record({ apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), fc.string()), kind: fc.oneof(fc.constant('AdmissionReview'), fc.string()), request: fc.oneof(request, fc.anything()) }, { requiredKeys: [] });
  fc.assert(fc.property(fc.oneof(review, fc.anything()), (body) => {
    checkErrors(bounded(() => parseAdmissionReview(body)));
  }), RUNS);
  t.pass();
});
