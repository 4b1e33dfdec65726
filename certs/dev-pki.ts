/**
 * A development PKI for the webhook: a CA and a serving certificate signed by it. The API server
 * trusts the CA through the webhook configurations' caBundle, so the leaf can be re-issued
 * (rotated) without touching caBundle, the same shape cert-manager produces in production.
 * `kmesh-ipsec certs` uses it, and so do the tests (the Kubernetes API double's own serving
 * certificate included): Go clients such as kubectl verify strictly, so the certificates carry
 * proper CA constraints, key usages and SANs.
 *
 * node-forge builds the certificates; key pairs come from Node's native generator (forge uses it
 * when running under Node), RSA 2048 because forge cannot sign with EC keys.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import forge from 'node-forge';
import { ensureDirectory, writeFileAtomic } from '../lib/atomic-write.js';

export interface CertificateAuthority {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ServingCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly dnsNames: readonly string[];
}

export interface ClientCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface DevPki {
  readonly ca: CertificateAuthority;
  readonly serving: ServingCertificate;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start a little in the past so a node whose clock lags accepts them at once. */
const BACKDATE_MS = 5 * 60 * 1000;

/** The names the API server may use for a Service: it dials `<service>.<namespace>.svc`. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export function createCertificateAuthority(options: { commonName?: string; days?: number; now?: Date } = {}): CertificateAuthority {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  setValidity(cert, options.now ?? new Date(), options.days ?? 365);
  const subject = [{ name: 'commonName', value: options.commonName ?? 'kmesh-ipsec-webhook-ca' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

export function issueServingCertificate(
  ca: CertificateAuthority,
  options: { dnsNames: readonly string[]; ipAddresses?: readonly string[]; days?: number; now?: Date; commonName?: string },
): ServingCertificate {
  const commonName = options.commonName ?? options.dnsNames[0];
  if (commonName === undefined) throw new RangeError('dnsNames: at least one name is required');
  const leaf = issueLeaf(ca, {
    // Go ignores the CN for host names; it is only there for humans reading the certificate.
    commonName,
    days: options.days ?? 90,
    now: options.now ?? new Date(),
    extKeyUsage: { serverAuth: true },
    altNames: [
      ...options.dnsNames.map((value) => ({ type: 2, value })),
      ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
    ],
  });
  return { ...leaf, dnsNames: [...options.dnsNames] };
}

/**
 * A client certificate (extended key usage clientAuth, no SANs), e.g. for the API server when
 * the webhook is run with --client-ca. The common name is the identity the server checks.
 */
export function issueClientCertificate(ca: CertificateAuthority, options: { commonName: string; days?: number; now?: Date }): ClientCertificate {
  return issueLeaf(ca, {
    commonName: options.commonName,
    days: options.days ?? 90,
    now: options.now ?? new Date(),
    extKeyUsage: { clientAuth: true },
    altNames: [],
  });
}

interface LeafOptions {
  readonly commonName: string;
  readonly days: number;
  readonly now: Date;
  readonly extKeyUsage: { readonly serverAuth?: true; readonly clientAuth?: true };
  readonly altNames: readonly { readonly type: number; readonly value?: string; readonly ip?: string }[];
}

function issueLeaf(ca: CertificateAuthority, options: LeafOptions): ClientCertificate {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  setValidity(cert, options.now, options.days);
  cert.setSubject([{ name: 'commonName', value: options.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', ...options.extKeyUsage },
    ...(options.altNames.length > 0 ? [{ name: 'subjectAltName', altNames: [...options.altNames] }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return {
    // The leaf alone: the chain up to (not including) the root, as servers should send it.
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
  };
}

export function generateDevPki(options: { service: string; namespace: string; days?: number; caDays?: number; ipAddresses?: readonly string[] }): DevPki {
  const ca = createCertificateAuthority({ days: options.caDays ?? 365 });
  const serving = issueServingCertificate(ca, {
    dnsNames: serviceDnsNames(options.service, options.namespace),
    commonName: `${options.service}.${options.namespace}.svc`,
    ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
    ...(options.days !== undefined ? { days: options.days } : {}),
  });
  return { ca, serving };
}

/** The caBundle field of a webhook configuration: base64 of the PEM. */
export function caBundle(ca: Pick<CertificateAuthority, 'certPem'>): string {
  return Buffer.from(ca.certPem, 'utf8').toString('base64');
}

export interface WrittenPki {
  readonly caCert: string;
  readonly caKey?: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
}

/**
 * Write ca.crt, tls.crt, tls.key (and ca.key when asked) into `dir`, keys mode 0600 from their
 * creation. Each file replaces its predecessor atomically (lib/atomic-write.ts), so a server
 * watching the directory never reads a half-written file.
 */
export async function writeDevPki(dir: string, pki: DevPki, options: { writeCaKey?: boolean } = {}): Promise<WrittenPki> {
  await ensureDirectory(dir, 0o700);
  const put = async (name: string, text: string, mode: number): Promise<string> => {
    const path = join(dir, name);
    await writeFileAtomic(path, text, mode);
    return path;
  };
  const caCert = await put('ca.crt', pki.ca.certPem, 0o644);
  const tlsCert = await put('tls.crt', pki.serving.certPem, 0o644);
  const tlsKey = await put('tls.key', pki.serving.keyPem, 0o600);
  const caKey = options.writeCaKey ? await put('ca.key', pki.ca.keyPem, 0o600) : undefined;
  return { caCert, tlsCert, tlsKey, ...(caKey ? { caKey } : {}) };
}

function serialNumber(): string {
  // Random 128-bit serial, positive as RFC 5280 asks, and with a non-zero first byte: a leading
  // zero would be a non-minimal DER INTEGER, which Go's parser (the API server's) rejects.
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString('hex');
}

function setValidity(cert: forge.pki.Certificate, now: Date, days: number): void {
  if (!Number.isInteger(days) || days <= 0) throw new RangeError(`days: must be a positive integer, got ${days}`);
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
}
