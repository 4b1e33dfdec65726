/**
 * Stamp signing keys: generate a key pair as JWKs (kid = RFC 7638 thumbprint) and fold its
 * public half into a JWKS. Publishing the new public key next to the old one before the webhook
 * signs with it is what lets nodes verify stamps from both during a rotation
 * (docs/trust-chain.md).
 */
import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import { type Result, fail, ok } from '../core/result.js';
import { StampAlgorithm, importStampJwks, importStampSigningKey } from '../core/stamp.js';

export interface GeneratedStampKey {
  readonly kid: string;
  /** Private JWK with kid, alg and use: the content of the webhook's key file. Never log it. */
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
}

export async function generateStampKey(alg: StampAlgorithm = StampAlgorithm.EdDSA): Promise<GeneratedStampKey> {
  const pair = await generateKeyPair(alg, { extractable: true, ...(alg === StampAlgorithm.EdDSA ? { crv: 'Ed25519' } : {}) });
  const raw = await exportJWK(pair.privateKey);
  const imported = await importStampSigningKey(raw);
  if (!imported.ok) throw new Error(`generated key was refused: ${imported.errors.map((e) => e.message).join('; ')}`);
  const { kid, publicJwk } = imported.value;
  return { kid, privateJwk: { ...raw, kid, alg, use: 'sig' }, publicJwk };
}

/**
 * `existing` (a JWKS, or undefined) plus `key`, newest first, without duplicates. Refuses an
 * existing JWKS that would not load, so a broken ConfigMap is not silently extended.
 */
export async function addToJwks(existing: unknown, key: JWK): Promise<Result<{ keys: JWK[] }>> {
  const base = existing === undefined ? { keys: [] } : existing;
  const checked = await importStampJwks(base, 'existing JWKS');
  if (!checked.ok) return checked;
  const keys = (base as { keys: JWK[] }).keys.filter((k) => k.kid !== key.kid);
  const merged = { keys: [key, ...keys] };
  const again = await importStampJwks(merged, 'JWKS');
  if (!again.ok) return fail(again.errors);
  return ok(merged);
}
