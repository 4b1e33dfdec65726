/**
 * The mutating webhook's patches for the IPsec Secret, applied with an independent JSON Patch
 * implementation (fast-json-patch) to prove they turn what a user wrote into the canonical
 * object, that applying them twice is a no-op (reinvocation), and that the result is what the
 * validating webhook then accepts.
 */
import test from 'ava';
import jsonpatch from 'fast-json-patch';
import {
  KEY1,
  KEY2,
  type TestWebhook,
  decodeIpsec,
  decodePatch,
  ipsecSecret,
  ipsecValue,
  responseOf,
  secretReview,
  startWebhook,
} from './helpers.js';

let hook: TestWebhook;
test.before(async () => {
  hook = await startWebhook();
});
test.after.always(async () => {
  await hook.close();
});

const canonical = (spi: number, key: Buffer, icv = 128): string => `{"spi":${spi},"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${key.toString('base64')}","length":${icv}}`;

/** Mutate, apply the patch with fast-json-patch, and return the new object plus the response. */
async function mutate(object: Record<string, unknown>, extra: Parameters<typeof secretReview>[0] = {}) {
  const response = responseOf(await hook.post('/mutate', secretReview({ object, ...extra })));
  const ops = decodePatch(response);
  const applied = jsonpatch.applyPatch(structuredClone(object), ops as jsonpatch.Operation[], /* validate */ true, /* mutate */ false).newDocument;
  return { response, ops, applied };
}

const inputs: { name: string; object: Record<string, unknown>; spi: number; key: Buffer; warning: RegExp }[] = [
  { name: '72 hex characters', object: ipsecSecret(ipsecValue(4, KEY1, { aeadKey: KEY1.toString('hex') })), spi: 4, key: KEY1, warning: /aeadKey: stored as base64 \(the form Kmesh reads\)/ },
  { name: '72 upper-case hex characters', object: ipsecSecret(ipsecValue(4, KEY1, { aeadKey: KEY1.toString('hex').toUpperCase() })), spi: 4, key: KEY1, warning: /stored as base64/ },
  { name: 'aeadKeyName and length left out', object: ipsecSecret({ spi: 5, aeadKey: KEY1.toString('base64') }), spi: 5, key: KEY1, warning: /defaulted aeadKeyName=rfc4106\(gcm\(aes\)\), length=128/ },
  { name: 'hex key and nothing else', object: ipsecSecret({ aeadKey: KEY2.toString('hex'), spi: 9 }), spi: 9, key: KEY2, warning: /stored as base64/ },
  { name: 'pretty-printed, fields reordered', object: ipsecSecret(`{\n  "length": 128,\n  "aeadKey": "${KEY1.toString('base64')}",\n  "spi": 4,\n  "aeadKeyName": "rfc4106(gcm(aes))"\n}`), spi: 4, key: KEY1, warning: /rewritten in canonical form/ },
  { name: 'value under stringData only', object: { ...ipsecSecret(ipsecValue(4)), data: undefined, stringData: { ipSec: JSON.stringify(ipsecValue(4)) } }, spi: 4, key: KEY1, warning: /canonical form/ },
];

for (const input of inputs) {
  test(`mutation canonicalises: ${input.name}`, async (t) => {
    const { response, ops, applied } = await mutate(input.object);
    t.true(response.allowed);
    t.is(response.patchType, 'JSONPatch');
    t.true(ops.length > 0);
    t.regex((response.warnings ?? []).join('\n'), input.warning);
    t.is(Buffer.from((applied as { data: { ipSec: string } }).data.ipSec, 'base64').toString('utf8'), canonical(input.spi, input.key), 'byte-exact canonical value');
    t.false('stringData' in applied, 'no second copy under stringData');
    t.is((applied as { type: string }).type, 'Opaque');

    // Reinvocation: the patched object is a fixed point.
    const again = await mutate(applied);
    t.is(again.response.patch, undefined, 'no patch the second time');
    t.is(again.response.warnings, undefined);
    // And it is what validation accepts.
    const validated = responseOf(await hook.post('/validate', secretReview({ object: applied })));
    t.true(validated.allowed, validated.status?.message);
  });
}

test('a secret exactly as kmeshctl writes it is left alone', async (t) => {
  // The example value from Kmesh's own unit test.
  const kmesh = '{"spi":4,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"LclBDXzWsyRGG/FttRhkZZQnbFNiww/EduvKPxo5S27URiFh","length":128}';
  const { response } = await mutate(ipsecSecret(kmesh));
  t.true(response.allowed);
  t.is(response.patch, undefined);
  t.is(response.patchType, undefined);
  t.is(response.warnings, undefined);
});

test('a missing type is defaulted to Opaque', async (t) => {
  const object = ipsecSecret(ipsecValue(4));
  delete object.type;
  const { ops, applied } = await mutate(object);
  t.deepEqual(ops, [{ op: 'add', path: '/type', value: 'Opaque' }]);
  t.is((applied as { type: string }).type, 'Opaque');
});

test('the patch is base64 of a JSON array of RFC 6902 operations', async (t) => {
  const { response } = await mutate(ipsecSecret(ipsecValue(4, KEY1, { aeadKey: KEY1.toString('hex') })));
  const text = Buffer.from(response.patch ?? '', 'base64').toString('utf8');
  t.true(text.startsWith('[') && text.endsWith(']'));
  t.deepEqual(JSON.parse(text), [{ op: 'replace', path: '/data/ipSec', value: Buffer.from(canonical(4, KEY1)).toString('base64') }]);
  t.is(Buffer.from(response.patch ?? '', 'base64').toString('base64'), response.patch ?? '', 'standard padded base64');
});

test('UPDATE that changes the key but not the SPI gets SPI + 1, with a warning', async (t) => {
  const oldObject = ipsecSecret(ipsecValue(7, KEY1));
  const { response, applied } = await mutate(ipsecSecret(ipsecValue(7, KEY2)), { operation: 'UPDATE', oldObject });
  t.true(response.allowed);
  t.deepEqual(decodeIpsec(applied), { spi: 8, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: KEY2.toString('base64'), length: 128 });
  const [warning] = response.warnings ?? [];
  t.is(warning, 'data.ipSec.spi: the key changed but spi stayed 7; raised to 8 so nodes can tell the keys apart');
  t.true((warning ?? '').length <= 120);

  // Reinvoked with the bumped object and the same stored object: nothing more to do.
  const again = await mutate(applied, { operation: 'UPDATE', oldObject });
  t.is(again.response.patch, undefined);
  // The final object passes the SPI rules.
  const validated = responseOf(await hook.post('/validate', secretReview({ operation: 'UPDATE', object: applied, oldObject })));
  t.true(validated.allowed, validated.status?.message);
});

test('UPDATE with a hex key at the same SPI: canonical and bumped in one patch', async (t) => {
  const oldObject = ipsecSecret(ipsecValue(2, KEY1));
  const { response, applied } = await mutate(ipsecSecret({ spi: 2, aeadKey: KEY2.toString('hex') }), { operation: 'UPDATE', oldObject });
  t.deepEqual(decodeIpsec(applied), { spi: 3, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: KEY2.toString('base64'), length: 128 });
  t.is(response.warnings?.length, 3);
});

test('UPDATE changing only the ICV length is a new SA too: SPI + 1', async (t) => {
  const oldObject = ipsecSecret(ipsecValue(5, KEY1, { length: 128 }));
  const { applied } = await mutate(ipsecSecret(ipsecValue(5, KEY1, { length: 96 })), { operation: 'UPDATE', oldObject });
  t.is(decodeIpsec(applied).spi, 6);
});

test('UPDATE that keeps key and SPI is not bumped', async (t) => {
  const oldObject = ipsecSecret(ipsecValue(5, KEY1));
  const { response } = await mutate(ipsecSecret(ipsecValue(5, KEY1)), { operation: 'UPDATE', oldObject });
  t.is(response.patch, undefined);
});

test('UPDATE from an invalid stored secret: canonicalised, not bumped', async (t) => {
  const oldObject = ipsecSecret('not json');
  const { applied } = await mutate(ipsecSecret({ spi: 5, aeadKey: KEY1.toString('hex') }), { operation: 'UPDATE', oldObject });
  t.is(decodeIpsec(applied).spi, 5);
});

test('at the largest SPI a key change cannot be bumped; validation says why', async (t) => {
  const oldObject = ipsecSecret(ipsecValue(0x7fffffff, KEY1));
  const object = ipsecSecret(ipsecValue(0x7fffffff, KEY2));
  const { response } = await mutate(object, { operation: 'UPDATE', oldObject });
  t.is(response.patch, undefined);
  const validated = responseOf(await hook.post('/validate', secretReview({ operation: 'UPDATE', object, oldObject })));
  t.false(validated.allowed);
  t.regex(validated.status?.message ?? '', /no higher SPI is left|none is left/);
});

test('an invalid secret is passed through by mutation and denied by validation', async (t) => {
  const object = ipsecSecret(ipsecValue(4, KEY1, { aeadKey: KEY1.toString('hex').slice(2) }));
  const { response } = await mutate(object);
  t.true(response.allowed);
  t.is(response.patch, undefined);
  const validated = responseOf(await hook.post('/validate', secretReview({ object })));
  t.false(validated.allowed);
  t.is(validated.status?.code, 422);
  t.is(validated.status?.reason, 'Invalid');
  t.regex(validated.status?.message ?? '', /^Secret kmesh-system\/kmesh-ipsec: data\.ipSec\.aeadKey: must be 72 hex characters \(36 bytes\); got 70 hex characters$/);
});

test('dryRun gets the same patch as a real request', async (t) => {
  const object = ipsecSecret({ spi: 4, aeadKey: KEY1.toString('hex') });
  const real = await mutate(object);
  const dry = await mutate(object, { dryRun: true });
  t.deepEqual(dry.ops, real.ops);
  t.deepEqual(dry.response.warnings, real.response.warnings);
});

test("kubectl's last-applied-configuration (a plain copy of the key) is removed", async (t) => {
  const object = ipsecSecret(ipsecValue(4));
  (object.metadata as Record<string, unknown>).annotations = {
    'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { ipSec: JSON.stringify(ipsecValue(4)) } }),
    owner: 'net-team',
  };
  const { response, ops, applied } = await mutate(object);
  t.deepEqual(ops, [{ op: 'remove', path: '/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration' }]);
  t.deepEqual((applied.metadata as { annotations: object }).annotations, { owner: 'net-team' });
  t.deepEqual(response.warnings, ["removed kubectl's last-applied-configuration annotation: it held a plain copy of the key"]);
  t.is((await mutate(applied)).response.patch, undefined);
});
