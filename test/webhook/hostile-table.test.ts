/**
 * A table of malformed and hostile requests sent over real HTTPS to a running webhook, each with
 * the answer it must get: HTTP status, then (for AdmissionReviews) allowed/denied, status code
 * and a message pattern. Every answer is also checked for the contract invariants: uid echoed,
 * apiVersion/kind echoed, no patch on validate or on denial, warnings at most 120 characters,
 * and no key material anywhere in the body.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import {
  ADMIN,
  KEY1,
  KEY2,
  type HttpResult,
  type PostOptions,
  type TestWebhook,
  ipsecSecret,
  ipsecValue,
  kni,
  kniReview,
  kniSpec,
  NODE_A,
  NODE_B,
  nodeAgent,
  responseOf,
  secretReview,
  startWebhook,
} from './helpers.js';

interface Case {
  readonly name: string;
  readonly path?: string;
  /** A JSON value to send, or a function building it; `raw` wins. */
  readonly body?: unknown;
  readonly options?: PostOptions;
  readonly status: number;
  /** For HTTP 200: the decision. */
  readonly allowed?: boolean;
  readonly code?: number;
  readonly message?: RegExp;
  readonly patched?: boolean;
  readonly warning?: RegExp;
}

const hexKey = KEY1.toString('hex');
const valid = ipsecSecret(ipsecValue(4));
const ok = (extra: Record<string, unknown> = {}) => secretReview({ object: valid, ...extra });
const withRequest = (mutate: (req: Record<string, unknown>) => void) => {
  const r = ok() as { request: Record<string, unknown> };
  mutate(r.request);
  return r;
};
const deepBase = ok();
const secretWith = (value: Parameters<typeof ipsecSecret>[0], extra: Record<string, unknown> = {}) => secretReview({ object: { ...ipsecSecret(value), ...extra } });

const cases: Case[] = [
  // ---- transport: never a crash, always a clear 4xx ------------------------------------------
  { name: 'body is not JSON', options: { raw: '{"apiVersion": admission' }, status: 400, message: /not valid JSON/ },
  { name: 'empty body', options: { raw: '' }, status: 400, message: /AdmissionReview/ },
  { name: 'body is a JSON array', body: [ok()], status: 400, message: /must be a JSON AdmissionReview object, got an array/ },
  { name: 'body is a JSON number', body: 42, status: 400, message: /got number 42/ },
  { name: 'body is JSON null', body: null, status: 400, message: /got null/ },
  { name: 'body is a JSON string', body: 'AdmissionReview', status: 400, message: /got the string/ },
  { name: 'v1beta1 AdmissionReview', body: { ...ok(), apiVersion: 'admission.k8s.io/v1beta1' }, status: 400, message: /admissionReviewVersions: \["v1"\]/ },
  { name: 'wrong kind', body: { ...ok(), kind: 'Pod' }, status: 400, message: /kind: must be "AdmissionReview"/ },
  { name: 'no request', body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, status: 400, message: /request: required/ },
  { name: 'request is an array', body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: [] }, status: 400, message: /request: required/ },
  { name: 'request without uid', body: withRequest((r) => delete r.uid), status: 400, message: /request\.uid: required/ },
  { name: 'empty uid', body: withRequest((r) => (r.uid = '')), status: 400, message: /request\.uid/ },
  { name: 'uid of 300 characters', body: withRequest((r) => (r.uid = 'u'.repeat(300))), status: 400, message: /at most 256/ },
  { name: 'uid is a number', body: withRequest((r) => (r.uid = 7)), status: 400, message: /request\.uid/ },
  { name: 'no operation', body: withRequest((r) => delete r.operation), status: 400, message: /request\.operation: must be one of CREATE, UPDATE, DELETE, CONNECT/ },
  { name: 'operation PATCH (an HTTP verb, not an admission operation)', body: withRequest((r) => (r.operation = 'PATCH')), status: 400, message: /request\.operation/ },
  { name: 'no kind in request', body: withRequest((r) => delete r.kind), status: 400, message: /request\.kind: required/ },
  { name: 'kind without version', body: withRequest((r) => (r.kind = { group: '', kind: 'Secret' })), status: 400, message: /request\.kind/ },
  { name: 'no userInfo', body: withRequest((r) => delete r.userInfo), status: 400, message: /request\.userInfo: required/ },
  { name: 'userInfo.groups is a string', body: withRequest((r) => (r.userInfo = { username: 'x', groups: 'system:masters' })), status: 400, message: /request\.userInfo\.groups/ },
  { name: 'userInfo.extra value is not a list', body: withRequest((r) => (r.userInfo = { username: 'x', extra: { 'authentication.kubernetes.io/node-name': 'node-a' } })), status: 400, message: /request\.userInfo\.extra/ },
  { name: 'object is a string', body: withRequest((r) => (r.object = 'kind: Secret')), status: 400, message: /request\.object: must be an object/ },
  { name: 'CREATE without object', body: withRequest((r) => (r.object = null)), status: 400, message: /request\.object: required for CREATE/ },
  { name: 'UPDATE without oldObject', body: withRequest((r) => (r.operation = 'UPDATE')), status: 400, message: /request\.oldObject: required for UPDATE/ },
  { name: 'dryRun is a string', body: withRequest((r) => (r.dryRun = 'true')), status: 400, message: /request\.dryRun: must be a boolean/ },
  { name: 'a response smuggled into the request', body: { ...ok(), response: { uid: 'x', allowed: true } }, status: 400, message: /response: must be absent/ },
  { name: 'body over the 4 MiB limit', options: { raw: JSON.stringify({ ...ok(), pad: 'x'.repeat(4.5 * 1024 * 1024) }) }, status: 413, message: /exceeds 4194304 bytes/ },
  { name: 'Content-Type text/plain', body: ok(), options: { contentType: 'text/plain' }, status: 415, message: /Content-Type must be application\/json, got "text\/plain"/ },
  { name: 'no Content-Type', body: ok(), options: { contentType: null }, status: 415, message: /got none/ },
  { name: 'charset latin1', body: ok(), options: { contentType: 'application/json; charset=latin1' }, status: 415, message: /utf-8/ },
  { name: 'charset utf-16 (a body the docs refuse, although a decoder exists)', options: { contentType: 'application/json; charset=utf-16', raw: Buffer.from(`\ufeff${JSON.stringify(ok())}`, 'utf16le') }, status: 415, message: /charset must be utf-8, got "utf-16"/ },
  { name: 'charset utf-7', body: ok(), options: { contentType: 'application/json; charset=UTF-7' }, status: 415, message: /charset must be utf-8, got "utf-7"/ },
  { name: 'charset UTF-8, quoted, is utf-8', body: ok(), options: { contentType: 'application/json; charset="UTF-8"' }, status: 200, allowed: true },
  { name: 'unknown Content-Encoding', body: ok(), options: { headers: { 'content-encoding': 'compress' } }, status: 415, message: /Content-Encoding/ },
  { name: 'GET on the admission endpoint', path: '/validate', options: { method: 'GET' }, status: 405, message: /use POST/ },
  { name: 'unknown path', path: '/admit', body: ok(), status: 404, message: /POST \/mutate and POST \/validate/ },
  { name: 'deeply nested JSON in an unrelated field', body: deepBase, options: { raw: `${JSON.stringify(deepBase).slice(0, -1)},"deep":${'['.repeat(50000)}${']'.repeat(50000)}}` }, status: 200, allowed: true },

  // ---- scoping: what is not ours passes untouched --------------------------------------------
  { name: 'another Secret in kmesh-system, garbage data', body: secretReview({ object: { ...ipsecSecret('garbage', { name: 'other' }) } }), status: 200, allowed: true, patched: false },
  { name: 'kmesh-ipsec in another namespace', body: secretReview({ object: ipsecSecret('garbage', { namespace: 'default' }) }), status: 200, allowed: true, patched: false },
  { name: 'a ConfigMap sent by a too-wide rule', body: { ...ok(), request: { ...(ok() as { request: object }).request, kind: { group: '', version: 'v1', kind: 'ConfigMap' } } }, status: 200, allowed: true },
  { name: 'mutate: another Secret is never patched', path: '/mutate', body: secretReview({ object: { ...ipsecSecret(ipsecValue(1, KEY1, { aeadKey: hexKey }), { name: 'kmesh-ipsec-backup' }) } }), status: 200, allowed: true, patched: false },
  { name: 'DELETE of the IPsec secret: allowed, with advice', body: secretReview({ operation: 'DELETE', oldObject: valid }), status: 200, allowed: true, warning: /needs spi > 3/ },
  { name: 'mutate: DELETE is never patched', path: '/mutate', body: secretReview({ operation: 'DELETE', oldObject: valid }), status: 200, allowed: true, patched: false },
  { name: 'CONNECT passes', body: withRequest((r) => (r.operation = 'CONNECT')), status: 200, allowed: true },

  // ---- the IPsec secret: what a kubectl user can get wrong -----------------------------------
  { name: 'data.ipSec not base64', body: secretReview({ object: { ...valid, data: { ipSec: '{"spi":1}' } } }), status: 200, allowed: false, code: 422, message: /data\.ipSec: must be standard base64 .*put plain JSON under stringData/ },
  { name: 'ipSec is not JSON', body: secretWith('spi=1'), status: 200, allowed: false, code: 422, message: /data\.ipSec: must be one JSON object/ },
  { name: 'duplicate spi key', body: secretWith(`{"spi":1,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${KEY1.toString('base64')}","length":128,"spi":9}`), status: 200, allowed: false, code: 422, message: /duplicate key "spi"/ },
  { name: 'key of 71 hex characters', body: secretWith(ipsecValue(1, KEY1, { aeadKey: hexKey.slice(1) })), status: 200, allowed: false, code: 422, message: /data\.ipSec\.aeadKey: must be 72 hex characters \(36 bytes\); got 71/ },
  { name: 'key of all zeros', body: secretWith(ipsecValue(1, KEY1, { aeadKey: '00'.repeat(36) })), status: 200, allowed: false, code: 422, message: /is all zeros; use 36 random bytes/ },
  { name: 'key of all zeros in base64 (48 A, which are hex digits too)', body: secretWith(ipsecValue(1, Buffer.alloc(36))), status: 200, allowed: false, code: 422, message: /is 48 hex digits/ },
  { name: 'key of 32 bytes (salt forgotten)', body: secretWith(ipsecValue(1, KEY1.subarray(0, 32))), status: 200, allowed: false, code: 422, message: /must decode to 36 bytes .*decodes to 32 bytes/ },
  { name: 'key with a non-base64 character', body: secretWith(ipsecValue(1, KEY1, { aeadKey: `${KEY1.toString('base64').slice(0, 47)}!` })), status: 200, allowed: false, code: 422, message: /character 48 \("!"\) is neither hex nor base64/ },
  { name: 'spi 0', body: secretWith(ipsecValue(0)), status: 200, allowed: false, code: 422, message: /spi: must be an integer from 1 to 2147483647, got 0/ },
  { name: 'spi 1.0', body: secretWith(`{"spi":1.0,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${KEY1.toString('base64')}","length":128}`), status: 200, allowed: false, code: 422, message: /without fraction or exponent, got 1\.0/ },
  { name: 'spi as a string', body: secretWith(ipsecValue(1, KEY1, { spi: '5' })), status: 200, allowed: false, code: 422, message: /spi: must be .*got the string "5"/ },
  { name: 'spi above 2^31-1', body: secretWith(ipsecValue(2 ** 31)), status: 200, allowed: false, code: 422, message: /from 1 to 2147483647/ },
  { name: 'ICV length 100', body: secretWith(ipsecValue(4, KEY1, { length: 100 })), status: 200, allowed: false, code: 422, message: /length: must be the ICV length in bits: one of 64, 96, 128/ },
  { name: 'another AEAD', body: secretWith(ipsecValue(4, KEY1, { aeadKeyName: 'rfc4543(gcm(aes))' })), status: 200, allowed: false, code: 422, message: /aeadKeyName: must be "rfc4106\(gcm\(aes\)\)"/ },
  { name: 'field name in the wrong case', body: secretWith({ SPI: 4, aeadKey: KEY1.toString('base64') }), status: 200, allowed: false, code: 422, message: /did you mean "spi"\?/ },
  { name: 'a second data key', body: secretReview({ object: { ...valid, data: { ...(valid.data as object), extra: 'eA==' } } }), status: 200, allowed: false, code: 422, message: /data\.extra: unexpected key/ },
  { name: 'type kubernetes.io/tls', body: secretReview({ object: { ...valid, type: 'kubernetes.io/tls' } }), status: 200, allowed: false, code: 422, message: /type: must be "Opaque"/ },
  { name: 'no data at all', body: secretReview({ object: { ...valid, data: undefined } }), status: 200, allowed: false, code: 422, message: /data\.ipSec: required/ },
  { name: '__proto__ in the value cannot pollute', body: secretWith(`{"__proto__":{"allowed":true},"spi":4,"aeadKey":"${KEY1.toString('base64')}"}`), status: 200, allowed: false, code: 422, message: /ipSec\.__proto__: unknown field/ },

  // ---- SPI rules ---------------------------------------------------------------------------
  { name: 'CREATE at SPI 3 while node-c advertises 3', body: secretWith(ipsecValue(3)), status: 200, allowed: false, code: 422, message: /spi: must be above 3, the highest SPI nodes still advertise .*use 4/ },
  { name: 'CREATE at SPI 4 is fresh', body: secretWith(ipsecValue(4)), status: 200, allowed: true },
  { name: 'UPDATE lowering the SPI', body: secretReview({ operation: 'UPDATE', object: ipsecSecret(ipsecValue(4, KEY2)), oldObject: ipsecSecret(ipsecValue(5)) }), status: 200, allowed: false, code: 422, message: /must not go down: the current SPI is 5, this sets 4; use 6/ },
  { name: 'UPDATE changing the key at the same SPI (validate)', body: secretReview({ operation: 'UPDATE', object: ipsecSecret(ipsecValue(5, KEY2)), oldObject: ipsecSecret(ipsecValue(5)) }), status: 200, allowed: false, code: 422, message: /a new key needs a higher SPI: set spi to 6/ },
  { name: 'UPDATE raising the SPI with the old key', body: secretReview({ operation: 'UPDATE', object: ipsecSecret(ipsecValue(6)), oldObject: ipsecSecret(ipsecValue(5)) }), status: 200, allowed: false, code: 422, message: /aeadKey: a higher SPI must come with a new key/ },
  { name: 'UPDATE rotating properly', body: secretReview({ operation: 'UPDATE', object: ipsecSecret(ipsecValue(6, KEY2)), oldObject: ipsecSecret(ipsecValue(5)) }), status: 200, allowed: true },
  { name: 'dryRun is answered like the real thing (denied)', body: secretReview({ object: ipsecSecret(ipsecValue(1)), dryRun: true }), status: 200, allowed: false, code: 422, message: /must be above 3/ },
  { name: 'dryRun mutation still shows the canonical form', path: '/mutate', body: secretReview({ object: ipsecSecret(ipsecValue(4, KEY1, { aeadKey: hexKey })), dryRun: true }), status: 200, allowed: true, patched: true, warning: /stored as base64/ },

  // ---- KmeshNodeInfo -----------------------------------------------------------------------
  { name: 'KNI of another node, from a node plugin', body: kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-b') }), status: 200, allowed: false, code: 403, message: /is on node node-b \(by its token\) and may write only KmeshNodeInfo node-b/ },
  { name: 'KNI from a user who is no node plugin', body: kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: { username: 'alice', groups: ['system:authenticated'] } }), status: 200, allowed: false, code: 403, message: /alice is not a node plugin service account/ },
  { name: 'KNI from the plugin account with an unbound token', body: kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: { username: 'system:serviceaccount:kmesh-system:kmesh-ipsec-node' } }), status: 200, allowed: false, code: 403, message: /not bound to a node/ },
  { name: 'KNI token naming two nodes', body: kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: { username: 'system:serviceaccount:kmesh-system:kmesh', extra: { 'authentication.kubernetes.io/node-name': ['node-a', 'node-b'] } } }), status: 200, allowed: false, code: 403, message: /names 2 nodes/ },
  { name: 'KNI claiming another node\'s address', body: kniReview({ object: kni('node-a', { ...kniSpec(NODE_A), addresses: ['10.0.0.2'] }), user: nodeAgent('node-a') }), status: 200, allowed: false, code: 403, message: /10\.0\.0\.2 is not an InternalIP of node node-a/ },
  { name: 'KNI claiming another node\'s pod CIDR', body: kniReview({ object: kni('node-a', { ...kniSpec(NODE_A), podCIDRS: ['10.244.2.0/24'] }), user: nodeAgent('node-a') }), status: 200, allowed: false, code: 403, message: /10\.244\.2\.0\/24 is not within the pod CIDRs of node node-a/ },
  { name: 'KNI with a bad schema', body: kniReview({ object: kni('node-a', { spi: -1, addresses: [], bootID: 'x', podCIDRS: ['10.244.1.5/24'] }), user: nodeAgent('node-a') }), status: 200, allowed: false, code: 422, message: /spec\.spi: .*spec\.bootID: .*spec\.addresses: .*has host bits set; did you mean 10\.244\.1\.0\/24/ },
  { name: 'KNI outside kmesh-system', body: kniReview({ object: { ...kni('node-a', kniSpec(NODE_A)), metadata: { name: 'node-a', namespace: 'default' } }, namespace: 'default', user: nodeAgent('node-a') }), status: 200, allowed: false, code: 422, message: /metadata\.namespace: must be "kmesh-system"/ },
  { name: 'KNI DELETE of another node', body: kniReview({ operation: 'DELETE', oldObject: kni('node-b', kniSpec(NODE_B)), user: nodeAgent('node-a') }), status: 200, allowed: false, code: 403, message: /may write only KmeshNodeInfo node-a/ },
  { name: 'KNI without a stamp (mutating webhook bypassed)', body: kniReview({ object: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a') }), status: 200, allowed: false, code: 403, message: /no validity stamp/ },
  { name: 'KNI with a forged stamp', body: kniReview({ object: kni('node-a', kniSpec(NODE_A), { 'kmesh.net/validity': 'eyJhbGciOiJub25lIn0.e30.' }), user: nodeAgent('node-a') }), status: 200, allowed: false, code: 403, message: /kmesh\.net\/validity"\]: has typ/ },
  { name: 'admin may write any node\'s KNI (with a warning)', path: '/mutate', body: kniReview({ object: kni('node-b', kniSpec(NODE_B)), user: ADMIN }), status: 200, allowed: true, patched: true },
];

let hook: TestWebhook;
test.before(async () => {
  hook = await startWebhook();
});
test.after.always(async () => {
  await hook.close();
});

test('the table has at least 40 hostile or malformed cases', (t) => {
  t.true(cases.length >= 40, `${cases.length} cases`);
  t.is(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique');
});

const forbiddenInBodies = [KEY1.toString('base64'), KEY1.toString('hex'), KEY2.toString('base64'), KEY2.toString('hex'), hexKey.slice(1)];

for (const c of cases) {
  test(`${c.status} ${c.allowed === undefined ? '' : c.allowed ? 'allowed' : 'denied'}: ${c.name}`, async (t) => {
    const path = c.path ?? '/validate';
    const result: HttpResult = await hook.post(path, c.body, c.options);
    t.is(result.status, c.status, result.text.slice(0, 500));
    for (const secret of forbiddenInBodies) t.false(result.text.includes(secret), 'no key material in the answer');
    if (c.status !== 200) {
      const status = result.json as { kind: string; code: number; message: string };
      t.is(status.kind, 'Status');
      t.is(status.code, c.status);
      if (c.message) t.regex(status.message, c.message);
      return;
    }
    const response = responseOf(result);
    const sentUid = (c.body as { request?: { uid?: string } }).request?.uid;
    t.is<string | undefined, string | undefined>(response.uid, sentUid, 'uid echoed');
    t.is<boolean | undefined, boolean | undefined>(response.allowed, c.allowed);
    if (c.allowed === false) {
      t.is(response.status?.code, c.code);
      if (c.message) t.regex(response.status?.message ?? '', c.message);
      t.is(response.patch, undefined, 'a denial carries no patch');
    } else {
      t.is(response.status, undefined, 'an allowed answer carries no status');
    }
    if (path === '/validate') t.is(response.patch, undefined, 'validate never patches');
    if (c.patched !== undefined) t.is(response.patch !== undefined, c.patched);
    t.is(response.patch !== undefined, response.patchType === 'JSONPatch', 'patch and patchType go together');
    for (const w of response.warnings ?? []) t.true(w.length <= 120, `warning too long: ${w}`);
    if (c.warning) t.regex((response.warnings ?? []).join('\n'), c.warning);
  });
}

test('a prototype-polluting AdmissionReview leaves the process clean', async (t) => {
  const raw = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","__proto__":{"polluted":1},"request":{"uid":"${randomUUID()}","kind":{"group":"","version":"v1","kind":"Secret"},"operation":"CREATE","userInfo":{"username":"x","extra":{"__proto__":["node-a"]}},"namespace":"kmesh-system","name":"other","object":{"__proto__":{"polluted":2}}}}`;
  const result = await hook.post('/validate', undefined, { raw });
  t.is(result.status, 200);
  t.true(responseOf(result).allowed);
  t.is(({} as { polluted?: unknown }).polluted, undefined);
});

test('the server survives the whole table and still answers', async (t) => {
  const result = await hook.post('/healthz', undefined, { method: 'GET' });
  t.is(result.status, 200);
  const tooLarge = await hook.post('/validate', undefined, { raw: 'x'.repeat(5 * 1024 * 1024) });
  t.is(tooLarge.status, 413);
  const metrics = await hook.post('/metrics', undefined, { method: 'GET' });
  t.regex(metrics.text, /kmesh_ipsec_webhook_bad_requests_total\{reason="not-admission-review"\} \d+/);
  t.regex(metrics.text, /kmesh_ipsec_webhook_bad_requests_total\{reason="entity.too.large"\} [1-9]/);
});
