/**
 * The validity stamp: a compact JWS the admission webhook writes into the `kmesh.net/validity`
 * annotation of every KmeshNodeInfo it admits. Node plugins build kernel state from peers'
 * KmeshNodeInfos, and RBAC alone cannot stop a compromised node from publishing another
 * node's addresses or pod CIDRs (every plugin may write KmeshNodeInfos). The stamp carries
 * the webhook's word that *this* spec was written by *that* node's own plugin and matched its
 * Node object, so plugins refuse any peer whose stamp is missing, forged, expired or about a
 * different spec: an object written around the webhook is useless.
 *
 * Both halves live here so signer and verifier cannot drift apart. docs/trust-chain.md
 * describes the keys, their rotation and the re-stamping schedule.
 */
import { CompactSign, base64url, calculateJwkThumbprint, compactVerify, decodeProtectedHeader, errors as joseErrors, importJWK } from 'jose';
import type { CryptoKey, JWK, KeyObject } from 'jose';
import { canonicalDigest } from './canonical-json.js';
import { VALIDITY_ANNOTATION } from './constants.js';
import type { KmeshNodeInfoSpec } from './nodeinfo.js';
import { type Result, fail, ok } from './result.js';
import { describeJsonValue, isRecord } from './json-value.js';

/** JWS `typ`: a token minted for another purpose with the same key is never mistaken for a stamp (RFC 8725 §3.11). */
export const STAMP_TYPE = 'kmesh-validity+jwt';
/** `iss` of every stamp. */
export const STAMP_ISSUER = 'kmesh-ipsec-webhook';
/** Default lifetime. Plugins re-publish at half-life, so the webhook may be down for 12 h before peers drop anyone. */
export const DEFAULT_STAMP_TTL_SECONDS = 24 * 60 * 60;
/** Default tolerance for clock differences between the webhook and the verifying node. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
/** Stamps longer than this are refused unparsed: annotations are user input. */
export const MAX_STAMP_CHARS = 2048;

/** Signature algorithms a stamp key may use: Ed25519 (preferred) or ECDSA P-256. */
export const StampAlgorithm = { EdDSA: 'EdDSA', ES256: 'ES256' } as const;
export type StampAlgorithm = (typeof StampAlgorithm)[keyof typeof StampAlgorithm];

export const StampFailure = {
  Missing: 'missing',
  Malformed: 'malformed',
  BadSignature: 'bad-signature',
  UnknownKid: 'unknown-kid',
  Expired: 'expired',
  NotYetValid: 'not-yet-valid',
  SpecMismatch: 'spec-mismatch',
  NodeMismatch: 'node-mismatch',
} as const;
export type StampFailure = (typeof StampFailure)[keyof typeof StampFailure];

/** What a stamp asserts. Times are seconds since the epoch, as in JWT. */
export interface StampClaims {
  readonly iss: typeof STAMP_ISSUER;
  /** The node name (= the KmeshNodeInfo name). */
  readonly sub: string;
  /** spec.spi, repeated in clear so a plugin can log which key version a peer was admitted with. */
  readonly spi: number;
  /** canonicalDigest(spec): `sha256:` + base64url. */
  readonly spec: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
}

/** The KmeshNodeInfo facts a stamp is about. */
export interface StampSubject {
  readonly nodeName: string;
  readonly spec: KmeshNodeInfoSpec;
}

export interface StampSigningKey {
  /** RFC 7638 thumbprint of the public key: one kid names exactly one key. */
  readonly kid: string;
  readonly alg: StampAlgorithm;
  readonly privateKey: CryptoKey | KeyObject;
  /** The public half as JWK (with kid, alg, use), ready to publish in a JWKS. */
  readonly publicJwk: JWK;
}

export interface StampVerificationKey {
  readonly kid: string;
  readonly alg: StampAlgorithm;
  readonly publicKey: CryptoKey | KeyObject;
}

/** Keys accepted for verification, by kid. During a rotation it holds the old and the new key. */
export type StampKeyRing = ReadonlyMap<string, StampVerificationKey>;

export type StampVerification =
  | { readonly ok: true; readonly kid: string; readonly claims: StampClaims }
  /** `message` says what is wrong with the stamp; prefix it with STAMP_FIELD when showing it. */
  | { readonly ok: false; readonly reason: StampFailure; readonly message: string };

export interface SignOptions {
  /** Seconds since the epoch; default now. */
  readonly now?: number;
  readonly ttlSeconds?: number;
}

export interface VerifyOptions {
  /** Seconds since the epoch; default now. */
  readonly now?: number;
  readonly clockSkewSeconds?: number;
  /** Signatures verified before: a token found there is not verified again (every other check still runs). */
  readonly signatures?: StampSignatureCache;
}

/**
 * Tokens whose signature verified lately, with their payload, for one key ring: the webhook
 * checks the same stamp at every write of a KmeshNodeInfo (the mutation looks at the stamp it
 * carries, the validation checks it again), and a signature costs far more than everything
 * else an admission does (an Ed25519 verification ~80 µs, bench:webhook). Only the signature
 * check is skipped; the binding to the object and the lifetime are checked every time. The
 * least recently used entry goes first when it is full, so its memory is bounded.
 */
export class StampSignatureCache {
  readonly #entries = new Map<string, { readonly key: StampVerificationKey; readonly payload: Uint8Array }>();
  readonly #maxEntries: number;

  constructor(maxEntries = 4096) {
    this.#maxEntries = maxEntries;
  }

  /** The payload of `token` if its signature verified with this very key. */
  payload(token: string, key: StampVerificationKey): Uint8Array | undefined {
    const hit = this.#entries.get(token);
    if (hit?.key !== key) return undefined;
    this.#entries.delete(token);
    this.#entries.set(token, hit);
    return hit.payload;
  }

  /** Record that `token`'s signature verified with `key`. */
  remember(token: string, key: StampVerificationKey, payload: Uint8Array): void {
    if (token.length > MAX_STAMP_CHARS) return;
    this.#entries.delete(token);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(token, { key, payload });
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Sign a stamp for `subject`. */
export async function signStamp(subject: StampSubject, key: StampSigningKey, options: SignOptions = {}): Promise<string> {
  const iat = Math.floor(options.now ?? Date.now() / 1000);
  const ttl = options.ttlSeconds ?? DEFAULT_STAMP_TTL_SECONDS;
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new RangeError(`ttlSeconds: must be a positive integer, got ${String(ttl)}`);
  const claims: StampClaims = {
    iss: STAMP_ISSUER,
    sub: subject.nodeName,
    spi: subject.spec.spi,
    spec: specDigest(subject.spec),
    iat,
    nbf: iat,
    exp: iat + ttl,
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: STAMP_TYPE })
    .sign(key.privateKey);
}

/** The digest a stamp binds: only the four spec fields, so extra fields cannot change its meaning. */
export function specDigest(spec: KmeshNodeInfoSpec): string {
  return canonicalDigest({ spi: spec.spi, addresses: spec.addresses, bootID: spec.bootID, podCIDRS: spec.podCIDRS });
}

/**
 * Verify `token` (the annotation value, possibly absent) against the object it was found on.
 * Never throws for a bad token: every failure comes back as a typed reason with a message an
 * operator can act on.
 */
export async function verifyStamp(token: unknown, subject: StampSubject, keys: StampKeyRing, options: VerifyOptions = {}): Promise<StampVerification> {
  const now = options.now ?? Date.now() / 1000;
  const skew = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const framed = readFrame(token);
  if (!framed.ok) return framed;
  const { header } = framed;
  const key = keys.get(header.kid);
  // The kid is attacker-controlled text: shown only when it looks like one of ours.
  const shownKid = /^[A-Za-z0-9_-]{1,64}$/.test(header.kid) ? header.kid : `(a kid of ${header.kid.length} characters)`;
  if (!key) return failed(StampFailure.UnknownKid, `was signed with key ${shownKid}, which is not in the trusted JWKS (${[...keys.keys()].join(', ') || 'empty'})`);
  if (header.alg !== key.alg) return failed(StampFailure.BadSignature, `header alg ${quoted(header.alg)} does not match key ${key.kid} (${key.alg})`);

  let payload = options.signatures?.payload(framed.token, key);
  if (payload === undefined) {
    try {
      payload = (await compactVerify(framed.token, key.publicKey, { algorithms: [key.alg] })).payload;
    } catch (err: unknown) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) return failed(StampFailure.BadSignature, `signature does not verify with key ${key.kid}`);
      return failed(StampFailure.Malformed, 'is not a valid compact JWS');
    }
    options.signatures?.remember(framed.token, key, payload);
  }
  const claims = parseClaims(payload);
  if (!claims) return failed(StampFailure.Malformed, 'has a payload that is not a kmesh-ipsec stamp (iss, sub, spi, spec, iat, nbf, exp)');

  if (claims.sub !== subject.nodeName) return failed(StampFailure.NodeMismatch, `was issued for node ${JSON.stringify(claims.sub)}, not ${JSON.stringify(subject.nodeName)}`);
  if (claims.spec !== specDigest(subject.spec) || claims.spi !== subject.spec.spi) {
    return failed(StampFailure.SpecMismatch, 'was issued for a different spec; the object changed after admission');
  }
  if (now > claims.exp + skew) return failed(StampFailure.Expired, `expired at ${isoTime(claims.exp)}; the node plugin re-publishes its KmeshNodeInfo to get a new one`);
  if (now + skew < claims.nbf) return failed(StampFailure.NotYetValid, `is not valid before ${isoTime(claims.nbf)}; check the clocks of the webhook and this node`);
  return { ok: true, kid: key.kid, claims };
}

export type StampDecoding =
  | { readonly ok: true; readonly kid: string; readonly claims: StampClaims }
  | { readonly ok: false; readonly reason: typeof StampFailure.Missing | typeof StampFailure.Malformed; readonly message: string };

/**
 * Read a stamp's claims WITHOUT checking its signature, for status views that show when a
 * node's stamp expires. Anyone can write a token that decodes: never base a trust decision on
 * this, use verifyStamp. Same bounds and framing checks as verifyStamp.
 */
export function decodeStampClaims(token: unknown): StampDecoding {
  const framed = readFrame(token);
  if (!framed.ok) return framed;
  const payloadPart = framed.token.split('.')[1] ?? '';
  let payload: Uint8Array;
  try {
    payload = base64url.decode(payloadPart);
  } catch {
    return failed(StampFailure.Malformed, 'has a payload that is not base64url');
  }
  const claims = parseClaims(payload);
  if (!claims) return failed(StampFailure.Malformed, 'has a payload that is not a kmesh-ipsec stamp (iss, sub, spi, spec, iat, nbf, exp)');
  return { ok: true, kid: framed.header.kid, claims };
}

type Framed =
  | { readonly ok: true; readonly token: string; readonly header: ReturnType<typeof decodeProtectedHeader> & { readonly kid: string } }
  | { readonly ok: false; readonly reason: typeof StampFailure.Missing | typeof StampFailure.Malformed; readonly message: string };

/** The checks every reader does before touching the payload: present, a bounded string, a compact JWS of our typ with a kid. */
function readFrame(token: unknown): Framed {
  if (token === undefined || token === null || token === '') return failed(StampFailure.Missing, 'no validity stamp; only objects admitted by the kmesh-ipsec webhook carry one');
  if (typeof token !== 'string') return failed(StampFailure.Malformed, `must be a compact JWS string, got ${describeJsonValue(token)}`);
  if (token.length > MAX_STAMP_CHARS) return failed(StampFailure.Malformed, `is ${token.length} characters; a stamp is at most ${MAX_STAMP_CHARS}`);
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return failed(StampFailure.Malformed, 'is not a compact JWS (three base64url parts with a JSON header)');
  }
  if (header.typ !== STAMP_TYPE) return failed(StampFailure.Malformed, `has typ ${header.typ === undefined ? '(none)' : quoted(header.typ)}, expected "${STAMP_TYPE}"`);
  const kid = header.kid;
  if (typeof kid !== 'string' || kid === '') return failed(StampFailure.Malformed, 'has no kid in its header');
  return { ok: true, token, header: { ...header, kid } };
}

/** The field path of the stamp, for error messages (`field: message`). */
export const STAMP_FIELD = `metadata.annotations[${JSON.stringify(VALIDITY_ANNOTATION)}]`;

function failed<R extends StampFailure>(reason: R, message: string): { readonly ok: false; readonly reason: R; readonly message: string } {
  return { ok: false, reason, message };
}

/** Header values are short identifiers: show them quoted, and anything else by type. */
function quoted(v: unknown): string {
  return typeof v === 'string' && v.length <= 64 ? JSON.stringify(v) : describeJsonValue(v);
}

function isoTime(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString();
}

function parseClaims(payload: Uint8Array): StampClaims | undefined {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    return undefined;
  }
  if (!isRecord(v)) return undefined;
  const { iss, sub, spi, spec, iat, nbf, exp } = v;
  const isTime = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (iss !== STAMP_ISSUER || typeof sub !== 'string' || typeof spec !== 'string') return undefined;
  if (typeof spi !== 'number' || !Number.isSafeInteger(spi) || !isTime(iat) || !isTime(nbf) || !isTime(exp) || exp <= nbf) return undefined;
  return { iss, sub, spi, spec, iat, nbf, exp };
}

// ---- keys ------------------------------------------------------------------------------------

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const;

function algorithmFor(jwk: Record<string, unknown>): StampAlgorithm | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return StampAlgorithm.EdDSA;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return StampAlgorithm.ES256;
  return undefined;
}

function publicMembers(jwk: Record<string, unknown>): JWK {
  const out: JWK = {};
  for (const k of ['kty', 'crv', 'x', 'y'] as const) {
    const v = jwk[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** Check one JWK's type, alg and kid (which must be its RFC 7638 thumbprint). */
async function checkJwk(jwk: unknown, field: string, wantPrivate: boolean): Promise<Result<{ jwk: Record<string, unknown>; alg: StampAlgorithm; kid: string }>> {
  if (!isRecord(jwk)) return fail([{ field, message: `must be a JWK object, got ${describeJsonValue(jwk)}` }]);
  const alg = algorithmFor(jwk);
  if (!alg) return fail([{ field, message: `must be an Ed25519 (kty OKP, crv Ed25519) or P-256 (kty EC, crv P-256) key, got kty ${describeJsonValue(jwk.kty)} crv ${describeJsonValue(jwk.crv)}` }]);
  if (jwk.alg !== undefined && jwk.alg !== alg) return fail([{ field: `${field}.alg`, message: `must be "${alg}" for this key type, got ${describeJsonValue(jwk.alg)}` }]);
  const hasPrivate = PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined);
  if (wantPrivate && typeof jwk.d !== 'string') return fail([{ field: `${field}.d`, message: 'required: this must be the private signing key (kmesh-ipsec webhook keygen writes one)' }]);
  if (!wantPrivate && hasPrivate) return fail([{ field, message: 'contains private key material; publish only public keys in the JWKS' }]);
  let thumbprint: string;
  try {
    thumbprint = await calculateJwkThumbprint(publicMembers(jwk));
  } catch {
    return fail([{ field, message: 'is missing public key members (x, and y for EC)' }]);
  }
  if (jwk.kid !== undefined && jwk.kid !== thumbprint) {
    return fail([{ field: `${field}.kid`, message: `must be the key's RFC 7638 thumbprint ${thumbprint}, got ${describeJsonValue(jwk.kid)}` }]);
  }
  return ok({ jwk, alg, kid: thumbprint });
}

/** Import the private signing key from its JWK (as written by `kmesh-ipsec webhook keygen`). */
export async function importStampSigningKey(jwk: unknown, field = 'signingKey'): Promise<Result<StampSigningKey>> {
  const checked = await checkJwk(jwk, field, true);
  if (!checked.ok) return checked;
  const { alg, kid } = checked.value;
  try {
    const privateKey = await importJWK({ ...(checked.value.jwk as JWK), kid, alg }, alg);
    if (privateKey instanceof Uint8Array) return fail([{ field, message: 'must be an asymmetric key' }]);
    const publicJwk: JWK = { ...publicMembers(checked.value.jwk), kid, alg, use: 'sig' };
    return ok({ kid, alg, privateKey, publicJwk });
  } catch {
    return fail([{ field, message: 'could not be imported (corrupt key members)' }]);
  }
}

/** Import a public JWKS (`{"keys":[...]}`) into a key ring. Refuses private members and duplicate kids. */
export async function importStampJwks(jwks: unknown, field = 'jwks'): Promise<Result<StampKeyRing>> {
  if (!isRecord(jwks) || !Array.isArray(jwks.keys)) return fail([{ field, message: `must be a JWKS object {"keys":[...]}, got ${describeJsonValue(jwks)}` }]);
  const ring = new Map<string, StampVerificationKey>();
  const errors = [];
  for (const [i, item] of (jwks.keys as unknown[]).entries()) {
    const at = `${field}.keys[${i}]`;
    const checked = await checkJwk(item, at, false);
    if (!checked.ok) {
      errors.push(...checked.errors);
      continue;
    }
    const { alg, kid } = checked.value;
    if (ring.has(kid)) {
      errors.push({ field: at, message: `duplicates key ${kid}` });
      continue;
    }
    try {
      const publicKey = await importJWK({ ...publicMembers(checked.value.jwk), kid, alg }, alg);
      if (publicKey instanceof Uint8Array) throw new TypeError('symmetric');
      ring.set(kid, { kid, alg, publicKey });
    } catch {
      errors.push({ field: at, message: 'could not be imported (corrupt key members)' });
    }
  }
  if (errors.length > 0) return fail(errors);
  return ok(ring);
}
