/**
 * Throwaway X.509 material for tests: a CA and leaf certificates it signs. Go clients (kubectl)
 * verify strictly, so certificates carry proper CA constraints, key usages and SANs.
 * Keys come from node:crypto (native, fast); node-forge only assembles and signs certificates.
 */

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface CertificateAndKey {
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  commonName: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  /** Extended key usage; webhook and API serving certificates need "server". */
  usage?: 'server' | 'client' | 'both';
  validityDays?: number;
}

export interface CertificateAuthority extends CertificateAndKey {
  issue(options: IssueOptions): CertificateAndKey;
}

function newKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  };
}

function baseCertificate(publicPem: string, commonName: string, validityDays: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  // A leading 0x01 keeps the DER integer positive, which Go insists on.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 5 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + validityDays * 24 * 3600 * 1000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}

export function createCertificateAuthority(commonName = 'local-api-ca'): CertificateAuthority {
  const keys = newKeyPair();
  const caKey = forge.pki.privateKeyFromPem(keys.privatePem);
  const caCert = baseCertificate(keys.publicPem, commonName, 30);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caKey, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(caCert);

  return {
    certPem,
    keyPem: keys.privatePem,
    issue(options: IssueOptions): CertificateAndKey {
      const leafKeys = newKeyPair();
      const cert = baseCertificate(leafKeys.publicPem, options.commonName, options.validityDays ?? 30);
      cert.setIssuer(caCert.subject.attributes);
      const usage = options.usage ?? 'server';
      const altNames = [
        ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
        ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ];
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: usage !== 'client', clientAuth: usage !== 'server' },
        ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
        { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
      ]);
      cert.sign(caKey, forge.md.sha256.create());
      return { certPem: forge.pki.certificateToPem(cert), keyPem: leafKeys.privatePem };
    },
  };
}
