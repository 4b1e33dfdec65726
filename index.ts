/**
 * kmesh-ipsec programmatic API: the pure `core` domain functions. Nothing exported here does
 * I/O; the webhook, node plugin and CLI are built on these. The kernel layer (xfrm over
 * netlink, the tc programs, the reconciler) is the separate subpath `kmesh-ipsec/nodeplugin`.
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
export {
  DEFAULT_CLOCK_SKEW_SECONDS,
  DEFAULT_STAMP_TTL_SECONDS,
  MAX_STAMP_CHARS,
  STAMP_FIELD,
  STAMP_ISSUER,
  STAMP_TYPE,
  StampAlgorithm,
  type StampClaims,
  StampFailure,
  type StampKeyRing,
  type StampSigningKey,
  type StampSubject,
  type StampVerification,
  type StampVerificationKey,
  type StampDecoding,
  decodeStampClaims,
  importStampJwks,
  importStampSigningKey,
  signStamp,
  specDigest,
  verifyStamp,
} from './core/stamp.js';
export {
  type LocalNode,
  type Mark,
  type PeerNode,
  type Plan,
  type PlanInput,
  type PlannedPolicy,
  type PlannedState,
  type PlannedTemplate,
  type SkippedPeer,
  plan,
} from './core/plan.js';
export { type RetentionInput, type RetentionResult, inboundSpisToKeep } from './core/retention.js';
export { canonicalDigest, canonicalJson } from './core/canonical-json.js';
export { type JsonPatchOperation, LAST_APPLIED_ANNOTATION, canonicalIpsecData, canonicalSecretPatch, jsonPointerToken } from './core/secret-patch.js';
export { type NodeFacts, type PeerClaim, checkSpecAgainstNode, checkSpecAgainstPeers, cidrContains, cidrsOverlap, nodeFactsFromNode } from './core/nodeinfo-claims.js';
export {
  type ClusterKeyInput,
  type ClusterKeyView,
  ClusterVerdict,
  type NodeCondition,
  type NodeKeyStatus,
  NodeKeyState,
  type NodeObservation,
  StampState,
  clusterKeyView,
  observeNodeInfo,
  rotationHoldouts,
} from './core/cluster-keys.js';
