/**
 * Bounded work per request, over real HTTPS: lists are capped before anything in them is parsed,
 * nesting and error counts are bounded, bad input never gets a 500 (from either endpoint), and
 * log lines and denial messages stay small and escaped whatever the request holds.
 */
import test from 'ava';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseIpsecValue } from '../../core/secret.js';
import { validateNodeInfoSpec } from '../../core/nodeinfo.js';
import {
  KEY1,
  NODE_A,
  type TestWebhook,
  ipsecSecret,
  kni,
  kniReview,
  kniSpec,
  nodeAgent,
  responseOf,
  secretReview,
  startWebhook,
} from './helpers.js';

const logLines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    logLines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
    done();
  },
});

let hook: TestWebhook;
test.before(async () => {
  hook = await startWebhook({ logger: pino({ level: 'info' }, sink) });
});
test.after.always(async () => {
  await hook.close();
});

/** Characters that must never reach a log line, a denial or a terminal unescaped. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const MAX_MESSAGE_CHARS = 4096;
const MAX_LOG_LINE_BYTES = 8192;

const manyAddresses = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

test.serial('a KmeshNodeInfo with 100,000 addresses is refused by its count, on both endpoints', async (t) => {
  const spec = { ...kniSpec(NODE_A), addresses: manyAddresses(100_000) };
  const review = kniReview({ object: kni('node-a', spec), user: nodeAgent('node-a') });
  const denied = responseOf(await hook.post('/validate', review));
  t.false(denied.allowed);
  t.is(denied.status?.code, 422);
  t.regex(denied.status?.message ?? '', /spec\.addresses: at most 64 addresses \(a node has a handful\), got 100000/);
  const mutated = responseOf(await hook.post('/mutate', review));
  t.true(mutated.allowed, 'mutation never denies');
  t.is(mutated.patch, undefined, 'and never stamps what validation refuses');
});

test.serial('a KmeshNodeInfo with 100,000 pod CIDRs is refused by its count', async (t) => {
  const spec = { ...kniSpec(NODE_A), podCIDRS: manyAddresses(100_000).map((a) => `${a}/32`) };
  const denied = responseOf(await hook.post('/validate', kniReview({ object: kni('node-a', spec), user: nodeAgent('node-a') })));
  t.is(denied.status?.code, 422);
  t.regex(denied.status?.message ?? '', /spec\.podCIDRS: at most 64 pod CIDRs .*got 100000/);
});

test('the list caps come before any item is read: 100,000 items cost no item reads', (t) => {
  let reads = 0;
  const list: string[] = [];
  list.length = 100_000;
  for (let i = 0; i < list.length; i++) {
    Object.defineProperty(list, i, {
      get: () => {
        reads++;
        return '10.0.0.1';
      },
    });
  }
  const spec = validateNodeInfoSpec({ spi: 1, addresses: list, bootID: '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b', podCIDRS: list });
  t.false(spec.ok);
  t.is(reads, 0);
});

test.serial('a deeply nested data.ipSec is a 422 from validate and an untouched allow from mutate, never a 500', async (t) => {
  const text = `{"spi":4,"aeadKey":"${KEY1.toString('base64')}","x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
  const review = secretReview({ object: ipsecSecret(text) });
  const validated = await hook.post('/validate', review);
  t.is(validated.status, 200);
  t.is(responseOf(validated).status?.code, 422);
  t.regex(responseOf(validated).status?.message ?? '', /data\.ipSec: must be one JSON object: nested deeper than 64 levels at offset \d+/);
  const mutated = responseOf(await hook.post('/mutate', review));
  t.true(mutated.allowed);
  t.is(mutated.patch, undefined);
});

test.serial('120,000 unknown fields in data.ipSec: a 422 on size, never a 500', async (t) => {
  const fields = Array.from({ length: 120_000 }, (_, i) => `"f${i}":1`).join(',');
  const review = secretReview({ object: ipsecSecret(`{${fields},"spi":4,"aeadKey":"${KEY1.toString('base64')}"}`) });
  for (const path of ['/validate', '/mutate']) {
    const r = await hook.post(path, review);
    t.is(r.status, 200, path);
    const response = responseOf(r);
    if (path === '/validate') {
      t.is(response.status?.code, 422);
      t.regex(response.status?.message ?? '', /data\.ipSec: must be at most 65536 characters \(the value is about 110\), got \d+/);
    } else t.true(response.allowed);
  }
});

test('unknown fields are listed a few at a time, then counted', (t) => {
  const fields = Array.from({ length: 5000 }, (_, i) => `"f${i}":1`).join(',');
  const parsed = parseIpsecValue(`{${fields},"spi":4,"aeadKey":"${KEY1.toString('base64')}"}`);
  if (parsed.ok) return t.fail('accepted');
  t.true(parsed.errors.length <= 6, `${parsed.errors.length} errors`);
  t.deepEqual(parsed.errors.at(-1), { field: 'ipSec', message: 'and 4995 more unknown fields' });
});

test.serial('120,000 unknown fields in a KmeshNodeInfo spec: a 422 that counts them, never a 500', async (t) => {
  const spec: Record<string, unknown> = { ...kniSpec(NODE_A) };
  for (let i = 0; i < 120_000; i++) spec[`f${i}`] = 1;
  const review = kniReview({ object: kni('node-a', spec), user: nodeAgent('node-a') });
  const denied = responseOf(await hook.post('/validate', review));
  t.is(denied.status?.code, 422);
  t.regex(denied.status?.message ?? '', /spec: and 119995 more unknown fields/);
  t.true((denied.status?.message.length ?? 0) <= MAX_MESSAGE_CHARS);
  t.true(responseOf(await hook.post('/mutate', review)).allowed);
});

test.serial('log lines and denial messages stay small and escaped, whatever the request holds', async (t) => {
  logLines.length = 0;
  const spec: Record<string, unknown> = { ...kniSpec(NODE_A), addresses: ['10.0.0.1\u202e'] };
  for (let i = 0; i < 20_000; i++) spec[`\u200bf${i}\n`] = 1;
  const review = kniReview({
    object: kni('node-a\u202e', spec),
    name: `node-a\u001b[2J${'n'.repeat(1_000_000)}`,
    namespace: 'kmesh-system\n{"level":60,"msg":"forged"}',
    user: { username: `${'u'.repeat(2_000_000)}\u2028`, groups: ['\u202egroup'], extra: { 'authentication.kubernetes.io/node-name': ['node-a\u200b'] } },
  });
  for (const path of ['/validate', '/mutate']) {
    const r = await hook.post(path, review);
    t.is(r.status, 200, path);
    const message = responseOf(r).status?.message ?? '';
    t.true(message.length <= MAX_MESSAGE_CHARS, `${path}: message of ${message.length} characters`);
    t.false(UNSAFE.test(message), `${path}: ${message.slice(0, 300)}`);
  }
  const badEnvelope = kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a') }) as { request: { userInfo: { extra: Record<string, unknown> } } };
  for (let i = 0; i < 100_000; i++) badEnvelope.request.userInfo.extra[`k\u200b${i}`] = 'not a list';
  const bad = await hook.post('/validate', badEnvelope);
  t.is(bad.status, 400);
  const badMessage = (bad.json as { message: string }).message;
  t.true(badMessage.length <= MAX_MESSAGE_CHARS, `400 message of ${badMessage.length} characters`);
  t.false(UNSAFE.test(badMessage));

  t.true(logLines.length >= 3, `${logLines.length} log lines`);
  for (const line of logLines) {
    t.true(Buffer.byteLength(line) <= MAX_LOG_LINE_BYTES, `a log line of ${Buffer.byteLength(line)} bytes: ${line.slice(0, 200)}`);
    const values: string[] = [];
    JSON.parse(line, (_key, value: unknown) => {
      if (typeof value === 'string') values.push(value);
      return value;
    });
    for (const v of values) t.false(UNSAFE.test(v), `unescaped text in a log line: ${JSON.stringify(v.slice(0, 120))}`);
  }
  t.false(logLines.some((l) => l.includes('"forged"')));
});
