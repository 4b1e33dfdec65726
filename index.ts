/**
 * kmesh-ipsec programmatic API: the pure `core` domain functions. Nothing exported here does
 * I/O; the webhook, node plugin and CLI are built on these.
 *
 * @example
 * import { deriveKey, parseIpsecSecret } from 'kmesh-ipsec';
 * const parsed = parseIpsecSecret(secretObject);
 * if (parsed.ok) deriveKey(parsed.value.key.aeadKey, '10.0.0.1', '10.0.0.2', bootA, bootB);
 */
export * from './core/constants.js';
export * from './core/marks.js';
export { type FieldError, type Result, ValidationError, formatErrors, unwrap } from './core/result.js';
export {
  type IpsecKey,
  type ParsedIpsecSecret,
  type ParsedIpsecValue,
  type SecretObject,
  checkKeyStrength,
  decodeAeadKey,
  encodeIpsecValue,
  isIpsecSecretName,
  parseIpsecSecret,
  parseIpsecValue,
  renderIpsecSecret,
  sameKeyMaterial,
} from './core/secret.js';
export { keyFingerprint } from './core/fingerprint.js';
export { SpiViolation, type SpiTransitionError, checkSpiAboveAdvertised, checkSpiTransition, initialSpi, nextSpi } from './core/spi.js';
export { deriveKey } from './core/derive.js';
export { type KmeshNodeInfo, type KmeshNodeInfoSpec, validateNodeInfo, validateNodeInfoSpec } from './core/nodeinfo.js';
export { type ParsedCidr, type ParsedIp, parseCidr, parseIp } from './core/ip.js';
