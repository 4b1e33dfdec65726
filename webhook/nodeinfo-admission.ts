/**
 * Admission of KmeshNodeInfo objects.
 *
 * Both phases run the same admissibility check (schema, writer identity, claims against the
 * Node and against other nodes). Mutation stamps only what passes it, and otherwise lets the
 * request through unstamped: the validating webhook then denies it with the reasons, and if the
 * validating webhook were missing, the unstamped object would still be refused by every peer.
 * The stamp is never signed for something validation would refuse.
 */
import { KMESH_NAMESPACE, VALIDITY_ANNOTATION } from '../core/constants.js';
import { checkSpecAgainstNode, checkSpecAgainstPeers } from '../core/nodeinfo-claims.js';
import { type KmeshNodeInfo, validateNodeInfo } from '../core/nodeinfo.js';
import type { FieldError } from '../core/result.js';
import { jsonPointerToken } from '../core/secret-patch.js';
import { isRecord } from '../core/json-value.js';
import { STAMP_FIELD, StampSignatureCache, type StampKeyRing, signStamp, verifyStamp } from '../core/stamp.js';
import { type AdmissionRequest, Operation } from './admission-review.js';
import type { ClusterView } from './cluster-view.js';
import { type Decision, DenyCause, allow, deny } from './decision.js';
import { type IdentityPolicy, type Writer, identifyWriter } from './identity.js';
import type { StampAuthority } from './stamp-keys.js';

export interface NodeInfoAdmissionDeps {
  readonly cluster: ClusterView;
  readonly identity: IdentityPolicy;
  readonly stamps: StampAuthority;
  /** Compare claims with the Node object (needs get on nodes). */
  readonly checkNodeFacts: boolean;
  /** Seconds since the epoch. */
  now(): number;
}

type Admissible =
  | { readonly ok: true; readonly kni: KmeshNodeInfo | undefined; readonly writer: Writer; readonly subject: string }
  | { readonly ok: false; readonly decision: Decision };

export async function mutateNodeInfo(req: AdmissionRequest, deps: NodeInfoAdmissionDeps, budgetMs: number): Promise<Decision> {
  const checked = await admissible(req, deps, budgetMs);
  if (!checked.ok || !checked.kni || req.subResource !== '') return allow();
  const { kni } = checked;
  const keys = deps.stamps.current();
  if (!keys) return allow([], [`${VALIDITY_ANNOTATION}: not stamped, the webhook has no signing key loaded`]);

  const now = deps.now();
  const subject = { nodeName: kni.metadata.name, spec: kni.spec };
  const existing = kni.metadata.annotations?.[VALIDITY_ANNOTATION];
  const current = await verifyStamp(existing, subject, keys.ring, { now, clockSkewSeconds: deps.stamps.clockSkewSeconds, signatures: signaturesFor(keys.ring) });
  // Keeping a fresh stamp of the active key makes reinvocation and no-op updates patch-free;
  // past half-life, any write renews it (the plugin's periodic re-publish relies on that).
  if (current.ok && current.kid === keys.signer.kid && current.claims.exp - now > deps.stamps.ttlSeconds / 2) return allow();

  const token = await signStamp(subject, keys.signer, { now, ttlSeconds: deps.stamps.ttlSeconds });
  const meta = req.object?.metadata;
  const op = isRecord(meta) && isRecord(meta.annotations)
    ? { op: 'add' as const, path: `/metadata/annotations/${jsonPointerToken(VALIDITY_ANNOTATION)}`, value: token }
    : { op: 'add' as const, path: '/metadata/annotations', value: { [VALIDITY_ANNOTATION]: token } };
  return allow([op]);
}

export async function validateNodeInfoRequest(req: AdmissionRequest, deps: NodeInfoAdmissionDeps, budgetMs: number): Promise<Decision> {
  const checked = await admissible(req, deps, budgetMs);
  if (!checked.ok) return checked.decision;
  const { kni, writer, subject } = checked;
  const warnings = writer.kind === 'privileged' ? [`${subject} written by privileged ${writer.via}, not by the node's plugin`] : [];
  if (!kni || req.subResource !== '') return allow([], warnings);

  const keys = deps.stamps.current();
  if (!keys) return deny(DenyCause.NotSynced, subject, [{ field: STAMP_FIELD, message: 'cannot be checked: the webhook has no stamp keys loaded' }]);
  const verified = await verifyStamp(kni.metadata.annotations?.[VALIDITY_ANNOTATION], { nodeName: kni.metadata.name, spec: kni.spec }, keys.ring, {
    now: deps.now(),
    clockSkewSeconds: deps.stamps.clockSkewSeconds,
    signatures: signaturesFor(keys.ring),
  });
  if (!verified.ok) {
    const hint = 'stamps come from the mutating webhook kmeshnodeinfos.ipsec.kmesh.net (reinvocationPolicy IfNeeded)';
    return deny(DenyCause.Stamp, subject, [{ field: STAMP_FIELD, message: `${verified.message}; ${hint}` }], warnings);
  }
  return allow([], warnings);
}

/** Signatures verified with each key ring; a reloaded ring starts empty (and the old cache goes with the old ring). */
const signatureCaches = new WeakMap<StampKeyRing, StampSignatureCache>();

function signaturesFor(ring: StampKeyRing): StampSignatureCache {
  let cache = signatureCaches.get(ring);
  if (!cache) signatureCaches.set(ring, (cache = new StampSignatureCache()));
  return cache;
}

/** Schema, writer identity and claims: everything both phases must agree on. */
async function admissible(req: AdmissionRequest, deps: NodeInfoAdmissionDeps, budgetMs: number): Promise<Admissible> {
  const name = req.name !== '' ? req.name : objectName(req.object);
  const subject = `KmeshNodeInfo ${req.namespace || KMESH_NAMESPACE}/${name || '(unnamed)'}`;
  const writer = identifyWriter(req.userInfo, deps.identity);
  // Without this the garbage collector could not delete the KmeshNodeInfo of a Node that is
  // gone (failurePolicy Fail), and dead nodes would stay peers forever (Kmesh #1828).
  if (req.operation === Operation.Delete && deps.identity.deleterUsernames.has(req.userInfo.username)) return { ok: true, kni: undefined, writer, subject };
  const denied = checkWriter(writer, name);
  if (denied.length > 0) return { ok: false, decision: deny(DenyCause.Forbidden, subject, denied) };
  if (req.operation === Operation.Delete || req.operation === Operation.Connect || !req.object) return { ok: true, kni: undefined, writer, subject };

  const valid = validateNodeInfo(req.object);
  const errors: FieldError[] = valid.ok ? [] : [...valid.errors];
  if (req.namespace !== KMESH_NAMESPACE && !errors.some((e) => e.field === 'metadata.namespace')) errors.push({ field: 'metadata.namespace', message: `must be "${KMESH_NAMESPACE}", where node plugins look for KmeshNodeInfos` });
  if (!valid.ok || errors.length > 0) return { ok: false, decision: deny(DenyCause.Invalid, subject, errors) };
  const kni = valid.value;
  if (req.subResource !== '') return { ok: true, kni, writer, subject };

  const peers = deps.cluster.nodeInfos();
  if (!peers.synced) return { ok: false, decision: notSynced(subject, peers.reason) };
  const claims = checkSpecAgainstPeers(kni.metadata.name, kni.spec, peers.value);
  if (deps.checkNodeFacts) {
    const facts = await deps.cluster.nodeFacts(kni.metadata.name, budgetMs);
    if (!facts.synced) return { ok: false, decision: notSynced(subject, facts.reason) };
    if (facts.value === undefined) {
      claims.push({ field: 'metadata.name', message: `there is no Node ${JSON.stringify(kni.metadata.name)}; a KmeshNodeInfo is named after its node` });
    } else {
      claims.push(...checkSpecAgainstNode(kni.spec, facts.value));
    }
  }
  if (claims.length > 0) return { ok: false, decision: deny(DenyCause.Claims, subject, claims) };
  return { ok: true, kni, writer, subject };
}

function checkWriter(writer: Writer, name: string): FieldError[] {
  if (writer.kind === 'privileged') return [];
  if (writer.kind === 'unknown') {
    return [{ field: 'metadata.name', message: `${writer.reason}; only a node's own plugin or a privileged user may write its KmeshNodeInfo` }];
  }
  if (writer.node === name) return [];
  const how = writer.via === 'token' ? 'by its token' : 'by the configured user mapping';
  return [{ field: 'metadata.name', message: `${writer.username} is on node ${writer.node} (${how}) and may write only KmeshNodeInfo ${writer.node}` }];
}

function notSynced(subject: string, reason: string): Decision {
  return deny(DenyCause.NotSynced, subject, [{ field: 'spec', message: `cannot be checked against the cluster yet (${reason}); retry in a few seconds` }]);
}

function objectName(obj: Readonly<Record<string, unknown>> | null): string {
  const meta = obj?.metadata;
  return isRecord(meta) && typeof meta.name === 'string' ? meta.name : '';
}
