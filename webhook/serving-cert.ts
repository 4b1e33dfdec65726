/**
 * The serving certificate: validating a key pair before it is used, and hot-swapping it into a
 * running TLS server. tls.Server#setSecureContext changes the context only for handshakes that
 * start afterwards; established connections (the API server keeps them alive) continue with the
 * context they were made with, so a rotation drops nothing.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { type SecureContextOptions, type Server as TlsServer, createSecureContext } from 'node:tls';
import { type Result, fail, ok } from '../core/result.js';

/** TLS ≥ 1.2, as the API server's client requires. */
export const TLS_MIN_VERSION = 'TLSv1.2';
/**
 * Mozilla's "intermediate" profile without finite-field DHE: for TLS 1.2 only ECDHE key
 * exchange (forward secrecy) with AEAD ciphers, for ECDSA (cert-manager's default) and RSA
 * (`kmesh-ipsec certs`) keys; every TLS 1.3 suite qualifies. Node's default list would also
 * take RSA key exchange and CBC modes. Go's client (the API server) offers all of these.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface ServingPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly notAfter: Date;
  /** SHA-256 fingerprint of the leaf: safe to log, and what tests compare. */
  readonly fingerprint256: string;
  readonly subjectAltName: string;
}

/** `clientCa`: the CA bundle client certificates are verified against (when required). */
export function secureContextOptions(pair: Pick<ServingPair, 'cert' | 'key'>, clientCa?: Buffer): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS, honorCipherOrder: true, ...(clientCa ? { ca: clientCa } : {}) };
}

/**
 * Check a PEM bundle of CA certificates for verifying clients: at least one certificate, every
 * one a CA and unexpired. Messages never quote the input.
 */
export function checkClientCa(pem: Buffer, now: Date = new Date()): Result<Buffer> {
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return fail([{ field: 'client CA', message: 'holds no PEM certificate' }]);
  for (const [i, block] of blocks.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      return fail([{ field: `client CA certificate ${i + 1}`, message: 'is not a valid certificate' }]);
    }
    if (!cert.ca) return fail([{ field: `client CA certificate ${i + 1}`, message: 'is not a CA certificate (basicConstraints CA:TRUE)' }]);
    if (new Date(cert.validTo).getTime() <= now.getTime()) return fail([{ field: `client CA certificate ${i + 1}`, message: `expired at ${new Date(cert.validTo).toISOString()}` }]);
  }
  return ok(pem);
}

/**
 * Check a PEM certificate chain and key before serving them. Messages never quote the inputs:
 * one of them is a private key.
 */
export function checkServingPair(cert: Buffer, key: Buffer, now: Date = new Date()): Result<ServingPair> {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    return fail([{ field: 'tls.crt', message: 'is not a PEM certificate' }]);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return fail([{ field: 'tls.key', message: 'is not a PEM private key (unencrypted PKCS#8, PKCS#1 or SEC1)' }]);
  }
  if (!leaf.checkPrivateKey(privateKey)) return fail([{ field: 'tls.key', message: 'does not belong to the certificate in tls.crt' }]);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) return fail([{ field: 'tls.crt', message: `expired at ${notAfter.toISOString()}` }]);
  try {
    createSecureContext(secureContextOptions({ cert, key }));
  } catch (err: unknown) {
    const reason = err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' ? (err as NodeJS.ErrnoException).code : 'unknown';
    return fail([{ field: 'tls.crt', message: `rejected by OpenSSL (${reason ?? 'unknown'})` }]);
  }
  return ok({ cert, key, notAfter, fingerprint256: leaf.fingerprint256, subjectAltName: leaf.subjectAltName ?? '' });
}

/** Swap the pair (and client CA) of a running server; only new handshakes see them. */
export function installServingPair(server: TlsServer, pair: ServingPair, clientCa?: Buffer): void {
  server.setSecureContext(secureContextOptions(pair, clientCa));
}
