/**
 * core/stamp.ts: signing and verifying validity stamps, including every way a stamp can be
 * wrong (tampered, expired, wrong key, wrong node, wrong spec) and key rotation.
 */
import test from 'ava';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { addToJwks, generateStampKey } from '../../certs/stamp-keygen.js';
import { canonicalDigest, canonicalJson } from '../../core/canonical-json.js';
import type { KmeshNodeInfoSpec } from '../../core/nodeinfo.js';
import {
  MAX_STAMP_CHARS,
  STAMP_TYPE,
  StampFailure,
  type StampKeyRing,
  StampSignatureCache,
  type StampVerificationKey,
  type StampSigningKey,
  importStampJwks,
  importStampSigningKey,
  signStamp,
  specDigest,
  verifyStamp,
} from '../../core/stamp.js';

const spec: KmeshNodeInfoSpec = { spi: 3, addresses: ['10.0.0.1', 'fd00::1'], bootID: '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b', podCIDRS: ['10.244.1.0/24'] };
const subject = { nodeName: 'node-a', spec };
const NOW = 1_800_000_000;

async function signer(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<{ key: StampSigningKey; ring: StampKeyRing; d: string }> {
  const generated = await generateStampKey(alg);
  const key = await importStampSigningKey(generated.privateJwk);
  const ring = await importStampJwks({ keys: [generated.publicJwk] });
  if (!key.ok || !ring.ok) throw new Error('test key did not import');
  return { key: key.value, ring: ring.value, d: String(generated.privateJwk.d) };
}

const decode = (part: string | undefined): Record<string, unknown> => JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

for (const alg of ['EdDSA', 'ES256'] as const) {
  test(`${alg}: a stamp verifies and says what it binds`, async (t) => {
    const { key, ring } = await signer(alg);
    const token = await signStamp(subject, key, { now: NOW, ttlSeconds: 86_400 });
    const parts = token.split('.');
    t.is(parts.length, 3, 'compact JWS');
    t.true(token.length < 600, `compact enough for an annotation (${token.length} chars)`);
    t.deepEqual(decode(parts[0]), { alg, kid: key.kid, typ: STAMP_TYPE });
    t.deepEqual(decode(parts[1]), { iss: 'kmesh-ipsec-webhook', sub: 'node-a', spi: 3, spec: specDigest(spec), iat: NOW, nbf: NOW, exp: NOW + 86_400 });
    const v = await verifyStamp(token, subject, ring, { now: NOW + 60 });
    t.true(v.ok);
    if (v.ok) {
      t.is(v.kid, key.kid);
      t.is(v.claims.sub, 'node-a');
    }
  });
}

test('the spec digest ignores key order but not array order', (t) => {
  const reordered = { podCIDRS: spec.podCIDRS, bootID: spec.bootID, addresses: spec.addresses, spi: spec.spi } as KmeshNodeInfoSpec;
  t.is(specDigest(reordered), specDigest(spec));
  t.not(specDigest({ ...spec, addresses: [...spec.addresses].reverse() }), specDigest(spec));
  t.is(canonicalJson({ b: [2, 1], a: { d: null, c: 'x' } }), '{"a":{"c":"x","d":null},"b":[2,1]}');
  t.regex(canonicalDigest(spec), /^sha256:[A-Za-z0-9_-]{43}$/);
  t.throws(() => canonicalJson({ n: Number.NaN }), { instanceOf: TypeError });
});

test('a stamp survives the spec being re-serialised with other key order', async (t) => {
  const { key, ring } = await signer();
  const token = await signStamp(subject, key, { now: NOW });
  const roundTripped = JSON.parse(`{"podCIDRS":["10.244.1.0/24"],"spi":3,"bootID":"${spec.bootID}","addresses":["10.0.0.1","fd00::1"]}`) as KmeshNodeInfoSpec;
  t.true((await verifyStamp(token, { nodeName: 'node-a', spec: roundTripped }, ring, { now: NOW })).ok);
});

interface BadCase {
  readonly name: string;
  readonly reason: StampFailure;
  readonly message: RegExp;
  readonly make: (ctx: { token: string; key: StampSigningKey; ring: StampKeyRing }) => Promise<{ token: unknown; subject?: typeof subject; ring?: StampKeyRing; now?: number }>;
}

const flip = (s: string, at: number): string => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);

const badCases: BadCase[] = [
  { name: 'no annotation', reason: StampFailure.Missing, message: /no validity stamp/, make: () => Promise.resolve({ token: undefined }) },
  { name: 'empty annotation', reason: StampFailure.Missing, message: /no validity stamp/, make: () => Promise.resolve({ token: '' }) },
  { name: 'not a string', reason: StampFailure.Malformed, message: /must be a compact JWS string, got number 5/, make: () => Promise.resolve({ token: 5 }) },
  { name: 'garbage', reason: StampFailure.Malformed, message: /not a compact JWS/, make: () => Promise.resolve({ token: 'hello' }) },
  { name: 'far too long', reason: StampFailure.Malformed, message: new RegExp(`at most ${MAX_STAMP_CHARS}`), make: () => Promise.resolve({ token: 'a'.repeat(MAX_STAMP_CHARS + 1) }) },
  { name: 'a JWT of another type', reason: StampFailure.Malformed, message: /has typ "JWT"/, make: async ({ key }) => ({ token: await new CompactSign(new TextEncoder().encode('{}')).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey) }) },
  { name: 'no kid', reason: StampFailure.Malformed, message: /no kid/, make: async ({ key }) => ({ token: await new CompactSign(new TextEncoder().encode('{}')).setProtectedHeader({ alg: key.alg, typ: STAMP_TYPE }).sign(key.privateKey) }) },
  { name: 'signed payload that is not a stamp', reason: StampFailure.Malformed, message: /payload that is not a kmesh-ipsec stamp/, make: async ({ key }) => ({ token: await new CompactSign(new TextEncoder().encode('{"sub":"node-a"}')).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: STAMP_TYPE }).sign(key.privateKey) }) },
  {
    name: 'claims edited (sub changed to node-b)',
    reason: StampFailure.BadSignature,
    message: /signature does not verify/,
    make: ({ token }) => {
      const [h, p, s] = token.split('.');
      const claims = decode(p);
      const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'node-b' })).toString('base64url');
      return Promise.resolve({ token: `${h}.${forged}.${s}`, subject: { ...subject, nodeName: 'node-b' } });
    },
  },
  {
    name: 'expiry extended by the holder',
    reason: StampFailure.BadSignature,
    message: /signature does not verify/,
    make: ({ token }) => {
      const [h, p, s] = token.split('.');
      const forged = Buffer.from(JSON.stringify({ ...decode(p), exp: NOW + 10 * 365 * 86_400 })).toString('base64url');
      return Promise.resolve({ token: `${h}.${forged}.${s}` });
    },
  },
  { name: 'signature bit flipped', reason: StampFailure.BadSignature, message: /signature does not verify/, make: ({ token }) => Promise.resolve({ token: flip(token, token.lastIndexOf('.') + 5) }) },
  {
    name: 'alg "none" with a trusted kid',
    reason: StampFailure.BadSignature,
    message: /header alg "none" does not match/,
    make: ({ token, key }) => {
      const header = Buffer.from(JSON.stringify({ alg: 'none', kid: key.kid, typ: STAMP_TYPE })).toString('base64url');
      return Promise.resolve({ token: `${header}.${token.split('.')[1] ?? ''}.` });
    },
  },
  {
    name: 'signed by another key claiming a trusted kid',
    reason: StampFailure.BadSignature,
    message: /signature does not verify with key/,
    make: async ({ key }) => {
      const other = await signer();
      return { token: await signStamp(subject, { ...other.key, kid: key.kid }, { now: NOW }) };
    },
  },
  { name: 'signed by an untrusted key', reason: StampFailure.UnknownKid, message: /not in the trusted JWKS/, make: async () => ({ token: await signStamp(subject, (await signer()).key, { now: NOW }) }) },
  { name: 'verified with an empty ring', reason: StampFailure.UnknownKid, message: /\(empty\)/, make: ({ token }) => Promise.resolve({ token, ring: new Map() }) },
  { name: 'expired (past exp + skew)', reason: StampFailure.Expired, message: /expired at 2027-01-16T.*re-publishes/, make: ({ token }) => Promise.resolve({ token, now: NOW + 86_400 + 61 }) },
  { name: 'not yet valid (before nbf - skew)', reason: StampFailure.NotYetValid, message: /not valid before .*check the clocks/, make: ({ token }) => Promise.resolve({ token, now: NOW - 61 }) },
  { name: 'stamp of node-a on node-b\'s object', reason: StampFailure.NodeMismatch, message: /issued for node "node-a", not "node-b"/, make: ({ token }) => Promise.resolve({ token, subject: { ...subject, nodeName: 'node-b' } }) },
  { name: 'spec address changed', reason: StampFailure.SpecMismatch, message: /different spec/, make: ({ token }) => Promise.resolve({ token, subject: { ...subject, spec: { ...spec, addresses: ['10.0.0.9'] } } }) },
  { name: 'spec SPI changed', reason: StampFailure.SpecMismatch, message: /different spec/, make: ({ token }) => Promise.resolve({ token, subject: { ...subject, spec: { ...spec, spi: 4 } } }) },
  { name: 'pod CIDR added', reason: StampFailure.SpecMismatch, message: /different spec/, make: ({ token }) => Promise.resolve({ token, subject: { ...subject, spec: { ...spec, podCIDRS: [...spec.podCIDRS, '10.244.9.0/24'] } } }) },
  { name: 'boot ID changed (node rebooted)', reason: StampFailure.SpecMismatch, message: /different spec/, make: ({ token }) => Promise.resolve({ token, subject: { ...subject, spec: { ...spec, bootID: '00000000-2b3d-4e5f-8a9b-0c1d2e3f4a5b' } } }) },
];

for (const c of badCases) {
  test(`refused (${c.reason}): ${c.name}`, async (t) => {
    const { key, ring } = await signer();
    const token = await signStamp(subject, key, { now: NOW, ttlSeconds: 86_400 });
    const made = await c.make({ token, key, ring });
    const v = await verifyStamp(made.token, made.subject ?? subject, made.ring ?? ring, { now: made.now ?? NOW });
    t.false(v.ok);
    if (!v.ok) {
      t.is(v.reason, c.reason);
      t.regex(v.message, c.message);
    }
  });
}

/** Counts the signatures really verified (each success is remembered once). */
class CountingCache extends StampSignatureCache {
  verified = 0;
  override remember(token: string, key: StampVerificationKey, payload: Uint8Array): void {
    this.verified++;
    super.remember(token, key, payload);
  }
}

test('signature cache: a token is verified once; every other check still runs on each use', async (t) => {
  const { key, ring } = await signer();
  const token = await signStamp(subject, key, { now: NOW, ttlSeconds: 86_400 });
  const signatures = new CountingCache();
  for (let i = 0; i < 3; i++) t.true((await verifyStamp(token, subject, ring, { now: NOW, signatures })).ok);
  t.is(signatures.verified, 1);
  // Every refusal of the table, with the genuine token's signature already in the cache.
  for (const c of badCases) {
    const made = await c.make({ token, key, ring });
    const v = await verifyStamp(made.token, made.subject ?? subject, made.ring ?? ring, { now: made.now ?? NOW, signatures });
    t.like(v, { ok: false, reason: c.reason }, c.name);
  }
  // Another ring with a different key under the same kid: the cached signature does not count.
  const other = await signer();
  const impostor = new Map([[key.kid, { ...[...other.ring.values()][0]!, kid: key.kid }]]);
  t.like(await verifyStamp(token, subject, impostor, { now: NOW, signatures }), { ok: false, reason: StampFailure.BadSignature });
});

test('signature cache: bounded, least recently used out first', async (t) => {
  const { key, ring } = await signer();
  const signatures = new CountingCache(2);
  const tokens = await Promise.all([1, 2, 3].map((i) => signStamp(subject, key, { now: NOW + i })));
  const check = async (i: number) => t.true((await verifyStamp(tokens[i], subject, ring, { now: NOW + 10, signatures })).ok);
  await check(0);
  await check(1);
  await check(0); // 0 is now the most recent
  await check(2); // evicts 1
  t.is(signatures.size, 2);
  t.is(signatures.verified, 3);
  await check(0);
  t.is(signatures.verified, 3, 'kept');
  await check(1);
  t.is(signatures.verified, 4, 'evicted, verified again');
});

test('clock skew is tolerated up to the configured bound', async (t) => {
  const { key, ring } = await signer();
  const token = await signStamp(subject, key, { now: NOW, ttlSeconds: 3600 });
  t.true((await verifyStamp(token, subject, ring, { now: NOW + 3600 + 59 })).ok);
  t.true((await verifyStamp(token, subject, ring, { now: NOW - 59 })).ok);
  t.false((await verifyStamp(token, subject, ring, { now: NOW + 3600 + 11, clockSkewSeconds: 10 })).ok);
});

test('rotation: during the overlap both keys verify; afterwards only the new one', async (t) => {
  const oldKey = await generateStampKey();
  const newKey = await generateStampKey();
  const overlap = await addToJwks({ keys: [oldKey.publicJwk] }, newKey.publicJwk);
  t.true(overlap.ok);
  if (!overlap.ok) return;
  t.deepEqual(overlap.value.keys.map((k) => k.kid), [newKey.kid, oldKey.kid], 'newest first');
  const ring = await importStampJwks(overlap.value);
  const oldSigner = await importStampSigningKey(oldKey.privateJwk);
  const newSigner = await importStampSigningKey(newKey.privateJwk);
  if (!ring.ok || !oldSigner.ok || !newSigner.ok) return t.fail('import');
  const fromOld = await signStamp(subject, oldSigner.value, { now: NOW });
  const fromNew = await signStamp(subject, newSigner.value, { now: NOW });
  t.true((await verifyStamp(fromOld, subject, ring.value, { now: NOW })).ok);
  t.true((await verifyStamp(fromNew, subject, ring.value, { now: NOW })).ok);

  const after = await importStampJwks({ keys: [newKey.publicJwk] });
  if (!after.ok) return t.fail('import');
  const v = await verifyStamp(fromOld, subject, after.value, { now: NOW });
  t.is(v.ok ? 'ok' : v.reason, StampFailure.UnknownKid);
  t.true((await verifyStamp(fromNew, subject, after.value, { now: NOW })).ok);
});

test('a JWKS carrying a private key is refused (it is meant for a ConfigMap)', async (t) => {
  const k = await generateStampKey();
  const r = await importStampJwks({ keys: [k.privateJwk] });
  t.false(r.ok);
  if (!r.ok) t.regex(r.errors[0]?.message ?? '', /contains private key material/);
});

test('JWKS problems are reported per key', async (t) => {
  const k = await generateStampKey();
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const r = await importStampJwks({ keys: [k.publicJwk, k.publicJwk, { ...k.publicJwk, kid: 'my-key' }, await exportJWK(rsa.publicKey), 'x'] });
  t.false(r.ok);
  if (r.ok) return;
  t.deepEqual(r.errors.map((e) => e.field), ['jwks.keys[1]', 'jwks.keys[2].kid', 'jwks.keys[3]', 'jwks.keys[4]']);
  t.regex(r.errors[0]?.message ?? '', /duplicates key/);
  t.regex(r.errors[1]?.message ?? '', /RFC 7638 thumbprint/);
  t.regex(r.errors[2]?.message ?? '', /Ed25519 .* or P-256/);
  t.false((await importStampJwks({ kty: 'OKP' })).ok);
});

test('the signing key must be private, and its kid its thumbprint', async (t) => {
  const k = await generateStampKey();
  const pub = await importStampSigningKey(k.publicJwk);
  t.false(pub.ok);
  if (!pub.ok) t.regex(pub.errors[0]?.message ?? '', /must be the private signing key/);
  const wrongKid = await importStampSigningKey({ ...k.privateJwk, kid: 'k1' });
  t.false(wrongKid.ok);
  const ok = await importStampSigningKey({ ...k.privateJwk, kid: undefined });
  t.true(ok.ok, 'kid may be omitted and is then computed');
  if (ok.ok) t.is(ok.value.kid, k.kid);
});

test('failure messages never contain the token or key material', async (t) => {
  const { key, ring, d: private_ } = await signer();
  const token = await signStamp(subject, key, { now: NOW });
  for (const c of badCases) {
    const made = await c.make({ token, key, ring });
    const v = await verifyStamp(made.token, made.subject ?? subject, made.ring ?? ring, { now: made.now ?? NOW });
    if (!v.ok) {
      t.false(v.message.includes(token.split('.')[2] ?? 'x'));
      t.false(private_ !== '' && v.message.includes(private_));
    }
  }
});
