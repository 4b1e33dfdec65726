/**
 * Admission of Secret kmesh-system/kmesh-ipsec.
 *
 * Mutation rewrites what it can parse into the canonical form and never denies: the validating
 * webhook is the one place that decides, and it sees the final object (after every mutating
 * webhook). Validation applies the core rules and the SPI rules: an SPI only goes up, a new key
 * gets a new SPI, and any SPI the secret moves to must be above every SPI a node still
 * advertises, because those nodes hold states for it under an older key.
 */
import { AEAD_ALGORITHM, SECRET_DATA_KEY } from '../core/constants.js';
import { type JsonPatchOperation, LAST_APPLIED_ANNOTATION, canonicalSecretPatch, jsonPointerToken } from '../core/secret-patch.js';
import { type IpsecKey, type IpsecKeyNormalisation, parseIpsecSecret, sameKeyMaterial } from '../core/secret.js';
import { checkSpiAboveAdvertised, checkSpiTransition, nextSpi } from '../core/spi.js';
import { type AdmissionRequest, Operation } from './admission-review.js';
import type { AdvertisedNodeInfo, ClusterView } from './cluster-view.js';
import { type Decision, DenyCause, allow, deny } from './decision.js';

const FIELD = `data.${SECRET_DATA_KEY}`;
const SUBJECT = 'Secret kmesh-system/kmesh-ipsec';

export function mutateIpsecSecret(req: AdmissionRequest): Decision {
  if ((req.operation !== Operation.Create && req.operation !== Operation.Update) || !req.object) return allow();
  const parsed = parseIpsecSecret(req.object);
  if (!parsed.ok) return allow();
  let key = parsed.value.key;

  let bumpedFrom: number | undefined;
  const old = req.operation === Operation.Update && req.oldObject ? parseIpsecSecret(req.oldObject) : undefined;
  if (old?.ok && key.spi === old.value.key.spi && !sameKeyMaterial(old.value.key, key)) {
    const raised = tryNextSpi(old.value.key.spi);
    if (raised !== undefined) {
      bumpedFrom = key.spi;
      key = { ...key, spi: raised };
    }
  }
  const patch = canonicalSecretPatch(req.object, key);
  return patch.length === 0 ? allow() : allow(patch, mutationWarnings(patch, parsed.value.normalisation, bumpedFrom, key.spi));
}

/** One line per thing the patch changed that the user did not write, so nothing changes silently. */
function mutationWarnings(patch: readonly JsonPatchOperation[], normalisation: IpsecKeyNormalisation, bumpedFrom: number | undefined, spi: number): string[] {
  const warnings: string[] = [];
  if (bumpedFrom !== undefined) warnings.push(`${FIELD}.spi: the key changed but spi stayed ${bumpedFrom}; raised to ${spi} so nodes can tell the keys apart`);
  if (normalisation.keyWasHex) warnings.push(`${FIELD}.aeadKey: stored as base64 (the form Kmesh reads) instead of the 72 hex characters given`);
  if (normalisation.defaulted.length > 0) {
    warnings.push(`${FIELD}: defaulted ${normalisation.defaulted.map((f) => (f === 'length' ? 'length=128' : `aeadKeyName=${AEAD_ALGORITHM}`)).join(', ')}`);
  }
  const paths = patch.map((op) => op.path);
  const valueRewritten = paths.some((p) => p.startsWith('/data') || p === '/stringData');
  if (valueRewritten && warnings.length === 0) warnings.push(`${FIELD}: rewritten in canonical form (Go field order, no whitespace)`);
  if (paths.includes(`/metadata/annotations/${jsonPointerToken(LAST_APPLIED_ANNOTATION)}`)) {
    warnings.push("removed kubectl's last-applied-configuration annotation: it held a plain copy of the key");
  }
  if (paths.includes('/type')) warnings.push('type: defaulted to Opaque');
  return warnings;
}

export function validateIpsecSecret(req: AdmissionRequest, cluster: ClusterView): Decision {
  if (req.operation === Operation.Delete) return allow([], [deletionWarning(cluster)]);
  if ((req.operation !== Operation.Create && req.operation !== Operation.Update) || !req.object) return allow();
  const parsed = parseIpsecSecret(req.object);
  if (!parsed.ok) return deny(DenyCause.Invalid, SUBJECT, parsed.errors);
  const next = parsed.value.key;

  const warnings: string[] = [];
  let current: IpsecKey | undefined;
  if (req.operation === Operation.Update && req.oldObject) {
    const old = parseIpsecSecret(req.oldObject);
    if (old.ok) current = old.value.key;
    else warnings.push(`the stored ${SUBJECT} is invalid; its SPI was checked against node advertisements only`);
  }
  if (current) {
    const transition = checkSpiTransition(current, next, FIELD);
    if (transition.length > 0) return deny(DenyCause.SpiTransition, SUBJECT, transition, warnings);
    // Same SPI (and so, by the rule above, the same key): nothing new can collide.
    if (next.spi === current.spi) return allow([], warnings);
  }

  const advertised = cluster.nodeInfos();
  if (!advertised.synced) {
    return deny(DenyCause.NotSynced, SUBJECT, [{
      field: `${FIELD}.spi`,
      message: `cannot check it against the SPIs nodes advertise yet (${advertised.reason}); retry in a few seconds`,
    }], warnings);
  }
  const above = checkSpiAboveAdvertised(next, [highestSpi(advertised.value)], FIELD);
  if (above.length > 0) return deny(DenyCause.SpiTransition, SUBJECT, above, warnings);
  return allow([], warnings);
}

/**
 * The highest SPI any node advertises (0 for none), without a list per admission: with
 * thousands of nodes, two arrays of their SPIs per request were the webhook's largest
 * allocation (bench:webhook, sampling heap profile).
 */
function highestSpi(nodes: readonly AdvertisedNodeInfo[]): number {
  let highest = 0;
  for (const n of nodes) if (n.spi !== undefined && n.spi > highest) highest = n.spi;
  return highest;
}

function deletionWarning(cluster: ClusterView): string {
  const advertised = cluster.nodeInfos();
  const highest = advertised.synced ? highestSpi(advertised.value) : 0;
  return highest > 0
    ? `${SUBJECT} deleted: nodes keep their states; a new secret needs spi > ${highest}`
    : `${SUBJECT} deleted: nodes keep their states until a new key arrives`;
}

function tryNextSpi(spi: number): number | undefined {
  try {
    return nextSpi(spi);
  } catch {
    return undefined;
  }
}

