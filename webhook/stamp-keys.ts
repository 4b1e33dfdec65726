/**
 * The webhook's stamp keys: one private key that signs, and the ring of public keys it accepts
 * when checking a stamp (the signer's own, plus any in the published JWKS, so that stamps
 * signed before a key rotation keep verifying until they expire). Loaded from files so the
 * private key can come from a Secret volume and be replaced without a restart.
 */
import { type FieldError, type Result, fail, ok } from '../core/result.js';
import {
  DEFAULT_CLOCK_SKEW_SECONDS,
  DEFAULT_STAMP_TTL_SECONDS,
  type StampKeyRing,
  type StampSigningKey,
  type StampVerificationKey,
  importStampJwks,
  importStampSigningKey,
} from '../core/stamp.js';

export interface StampKeys {
  readonly signer: StampSigningKey;
  readonly ring: StampKeyRing;
}

/** What admission needs from the key store. */
export interface StampAuthority {
  current(): StampKeys | undefined;
  readonly ttlSeconds: number;
  readonly clockSkewSeconds: number;
}

export class StampKeyStore implements StampAuthority {
  #keys: StampKeys | undefined;
  readonly ttlSeconds: number;
  readonly clockSkewSeconds: number;

  constructor(options: { ttlSeconds?: number; clockSkewSeconds?: number } = {}) {
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_STAMP_TTL_SECONDS;
    this.clockSkewSeconds = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  }

  current(): StampKeys | undefined {
    return this.#keys;
  }

  set(keys: StampKeys): void {
    this.#keys = keys;
  }
}

/**
 * Stamp keys from the contents of the key files (as WatchedFiles reads them): the private
 * signing JWK and, optionally, the JWKS of other accepted public keys. Errors name the file's
 * role and never quote its contents: they are private keys.
 */
export async function parseStampKeyFiles(keyFile: Buffer, jwksFile: Buffer | undefined): Promise<Result<StampKeys>> {
  const key = parseJson(keyFile, 'stamp key');
  const jwks = jwksFile === undefined ? ok(undefined) : parseJson(jwksFile, 'stamp JWKS');
  if (!key.ok || !jwks.ok) return fail([...(key.ok ? [] : key.errors), ...(jwks.ok ? [] : jwks.errors)]);
  return stampKeysFrom(key.value, jwks.value);
}

function parseJson(text: Buffer, what: string): Result<unknown> {
  try {
    return ok(JSON.parse(text.toString('utf8')) as unknown);
  } catch {
    return fail([{ field: what, message: 'not JSON' }]);
  }
}

/** Combine a signer and extra verification keys; the signer's public key is always accepted. */
async function stampKeysFrom(signingJwk: unknown, jwks: unknown): Promise<Result<StampKeys>> {
  const signer = await importStampSigningKey(signingJwk, 'stamp key');
  const ring = jwks === undefined ? ok<StampKeyRing>(new Map()) : await importStampJwks(jwks, 'stamp JWKS');
  const errors: FieldError[] = [...(signer.ok ? [] : signer.errors), ...(ring.ok ? [] : ring.errors)];
  if (!signer.ok || !ring.ok) return fail(errors);
  const own = await importStampJwks({ keys: [signer.value.publicJwk] }, 'stamp key');
  if (!own.ok) return own;
  const merged = new Map<string, StampVerificationKey>(ring.value);
  for (const [kid, key] of own.value) merged.set(kid, key);
  return ok({ signer: signer.value, ring: merged });
}
