/**
 * The cluster-wide key view: from the Secret's SPI and every KmeshNodeInfo, where each node
 * stands in the key rollout, and one verdict for the cluster. `kmesh-ipsec status --cluster`
 * prints it and `kmesh-ipsec secret create` consults it before rotating. Pure: the caller reads
 * the objects and the clock. docs/operations.md explains the states to operators.
 *
 * Node states (the first that applies):
 * - `failing`:    something that will not fix itself by waiting: the spec is invalid; it
 *                 advertises SPI 0 (no key); it advertises an SPI above the Secret's; its
 *                 validity stamp is missing, unreadable, for another node or spec, expired or
 *                 not yet valid (peers refuse such a node); or a current condition says
 *                 Ready=False, or KeyInSync=False for a reason other than PeersBehind.
 * - `behind`:     it advertises an older SPI than the target (the Secret's, or the highest any
 *                 node advertises when the Secret is not known).
 * - `converging`: it advertises the target SPI, but says its peers have not caught up
 *                 (KeyInSync=False, reason PeersBehind), or a Ready/KeyInSync condition was
 *                 written for an older generation of the object (not yet reported on this spec).
 * - `current`:    none of the above.
 * Absent or Unknown conditions (Kmesh agents write none) do not count against a node.
 *
 * Verdict: `no-nodes` when there is no KmeshNodeInfo; else `degraded` when any node is
 * failing; else `rotating` when any node is behind or converging; else `in-sync`.
 */
import { SPI_MAX, VALIDITY_ANNOTATION } from './constants.js';
import { type KmeshNodeInfoSpec, validateNodeInfoSpec } from './nodeinfo.js';
import { type Result, formatErrors } from './result.js';
import { safeText } from './safe-text.js';
import { isRecord } from './json-value.js';
import { DEFAULT_CLOCK_SKEW_SECONDS, type StampDecoding, decodeStampClaims, specDigest } from './stamp.js';

export const ConditionType = { Ready: 'Ready', KeyInSync: 'KeyInSync' } as const;
/** KeyInSync=False with this reason is a rotation still spreading, not a failure. */
export const PEERS_BEHIND_REASON = 'PeersBehind';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** One status condition as a node reported it; text fields are bounded but otherwise raw. */
export interface NodeCondition {
  readonly status: ConditionStatus;
  readonly reason?: string;
  readonly message?: string;
  /** Written for an older metadata.generation: it describes an earlier spec. */
  readonly stale: boolean;
}

/** What one KmeshNodeInfo says, read defensively: every field may be missing or garbage. */
export interface NodeObservation {
  readonly name: string;
  readonly spec: Result<KmeshNodeInfoSpec>;
  /** spec.spi when it is an integer in range, even if other spec fields are invalid. */
  readonly spi?: number;
  /** The stamp's claims, decoded WITHOUT signature verification (display only). */
  readonly stamp: StampDecoding;
  readonly ready?: NodeCondition;
  readonly keyInSync?: NodeCondition;
}

export const StampState = {
  /** Decodes, names this node and spec, and is within its validity window. Signature NOT checked. */
  Valid: 'valid',
  Missing: 'missing',
  Malformed: 'malformed',
  /** Issued for another node name or another spec (the object changed after admission). */
  Mismatch: 'mismatch',
  /** The CLI's clock is at or past `exp` (no skew allowance: an expiry is a deadline). */
  Expired: 'expired',
  /** `nbf` is more than the clock skew (60 s) ahead of the CLI's clock. */
  NotYetValid: 'not-yet-valid',
} as const;
export type StampState = (typeof StampState)[keyof typeof StampState];

export const NodeKeyState = { Current: 'current', Behind: 'behind', Converging: 'converging', Failing: 'failing' } as const;
export type NodeKeyState = (typeof NodeKeyState)[keyof typeof NodeKeyState];

export const ClusterVerdict = { InSync: 'in-sync', Rotating: 'rotating', Degraded: 'degraded', NoNodes: 'no-nodes' } as const;
export type ClusterVerdict = (typeof ClusterVerdict)[keyof typeof ClusterVerdict];

export interface NodeKeyStatus {
  readonly name: string;
  /** Absent when spec.spi is not a valid SPI. */
  readonly spi?: number;
  readonly stamp: { readonly state: StampState; /** seconds since the epoch */ readonly expiresAt?: number };
  readonly ready?: NodeCondition;
  readonly keyInSync?: NodeCondition;
  readonly state: NodeKeyState;
  /** Why the node is failing, behind or converging, one short line each; empty when current. */
  readonly notes: readonly string[];
}

export interface ClusterKeyView {
  readonly verdict: ClusterVerdict;
  readonly secretSpi?: number;
  /** What every node should advertise: the Secret's SPI, else the highest SPI any node advertises (0 if none). */
  readonly targetSpi: number;
  /** Sorted by name. */
  readonly nodes: readonly NodeKeyStatus[];
  /** One line explaining the verdict. */
  readonly summary: string;
}

export interface ClusterKeyInput {
  /** The Secret's SPI; undefined when the Secret is absent or could not be read. */
  readonly secretSpi?: number;
  readonly nodes: readonly NodeObservation[];
  /** Seconds since the epoch. */
  readonly now: number;
}

/** Longest condition message kept (the contract's bound) and longest shown in a note. */
const MAX_MESSAGE_CHARS = 1024;
const MAX_NOTE_TEXT_CHARS = 160;
const MAX_REASON_CHARS = 128;
/** Names listed in a summary or refusal before "and N more". */
const MAX_NAMES_LISTED = 5;

/** Read one KmeshNodeInfo object as the API returns it. Never throws. */
export function observeNodeInfo(obj: unknown): NodeObservation {
  const o = isRecord(obj) ? obj : {};
  const meta = isRecord(o.metadata) ? o.metadata : {};
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : '(unnamed)';
  const generation = typeof meta.generation === 'number' ? meta.generation : undefined;
  const annotations = isRecord(meta.annotations) ? meta.annotations : {};
  const rawSpi = isRecord(o.spec) ? o.spec.spi : undefined;
  const spi = typeof rawSpi === 'number' && Number.isSafeInteger(rawSpi) && rawSpi >= 0 && rawSpi <= SPI_MAX ? rawSpi : undefined;
  const conditions = isRecord(o.status) && Array.isArray(o.status.conditions) ? (o.status.conditions as unknown[]) : [];
  const ready = readCondition(conditions, ConditionType.Ready, generation);
  const keyInSync = readCondition(conditions, ConditionType.KeyInSync, generation);
  return {
    name,
    spec: validateNodeInfoSpec(o.spec),
    ...(spi === undefined ? {} : { spi }),
    stamp: decodeStampClaims(annotations[VALIDITY_ANNOTATION]),
    ...(ready ? { ready } : {}),
    ...(keyInSync ? { keyInSync } : {}),
  };
}

function readCondition(conditions: readonly unknown[], type: string, generation: number | undefined): NodeCondition | undefined {
  const c = conditions.find((x): x is Record<string, unknown> => isRecord(x) && x.type === type);
  if (!c) return undefined;
  const status: ConditionStatus = c.status === 'True' || c.status === 'False' ? c.status : 'Unknown';
  const observed = c.observedGeneration;
  const stale = typeof observed === 'number' && generation !== undefined && observed < generation;
  return {
    status,
    ...(typeof c.reason === 'string' && c.reason !== '' ? { reason: c.reason.slice(0, MAX_REASON_CHARS) } : {}),
    ...(typeof c.message === 'string' && c.message !== '' ? { message: c.message.slice(0, MAX_MESSAGE_CHARS) } : {}),
    stale,
  };
}

/** The view of the whole cluster. */
export function clusterKeyView(input: ClusterKeyInput): ClusterKeyView {
  const { secretSpi, now } = input;
  const advertised = input.nodes.map((n) => n.spi ?? 0);
  const targetSpi = secretSpi ?? Math.max(0, ...advertised);
  const nodes = [...input.nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((n) => nodeStatus(n, targetSpi, secretSpi, now));
  const verdict = verdictOf(nodes);
  const base = { verdict, ...(secretSpi === undefined ? {} : { secretSpi }), targetSpi, nodes };
  return { ...base, summary: summarize(base) };
}

function nodeStatus(n: NodeObservation, targetSpi: number, secretSpi: number | undefined, now: number): NodeKeyStatus {
  const stamp = stampStatus(n, now);
  const failures: string[] = [];
  if (!n.spec.ok) failures.push(`spec invalid: ${clip(formatErrors(n.spec.errors))}`);
  if (n.spi === 0) failures.push('no key yet (advertises SPI 0)');
  if (n.spi !== undefined && secretSpi !== undefined && n.spi > secretSpi) failures.push(`advertises SPI ${n.spi}, above the Secret's ${secretSpi}`);
  if (stamp.note) failures.push(stamp.note);
  const fresh = (c: NodeCondition | undefined): NodeCondition | undefined => (c && !c.stale ? c : undefined);
  const ready = fresh(n.ready);
  const keyInSync = fresh(n.keyInSync);
  if (ready?.status === 'False') failures.push(conditionNote(ConditionType.Ready, ready));
  const peersBehind = keyInSync?.status === 'False' && keyInSync.reason === PEERS_BEHIND_REASON;
  if (keyInSync?.status === 'False' && !peersBehind) failures.push(conditionNote(ConditionType.KeyInSync, keyInSync));

  const common = {
    name: n.name,
    ...(n.spi === undefined ? {} : { spi: n.spi }),
    stamp: { state: stamp.state, ...(stamp.expiresAt === undefined ? {} : { expiresAt: stamp.expiresAt }) },
    ...(n.ready ? { ready: n.ready } : {}),
    ...(n.keyInSync ? { keyInSync: n.keyInSync } : {}),
  };
  if (failures.length > 0) return { ...common, state: NodeKeyState.Failing, notes: failures };
  // Past the failure checks, spi is a valid SPI above 0 and not above the Secret's.
  const spi = n.spi ?? 0;
  if (spi < targetSpi) return { ...common, state: NodeKeyState.Behind, notes: [`behind: advertises SPI ${spi}, target ${targetSpi}`] };
  const waiting: string[] = [];
  if (peersBehind) waiting.push(`waiting for peers to use SPI ${spi} (KeyInSync=False ${PEERS_BEHIND_REASON})`);
  const staleTypes = [n.ready, n.keyInSync].flatMap((c, i) => (c?.stale ? [i === 0 ? ConditionType.Ready : ConditionType.KeyInSync] : []));
  if (staleTypes.length > 0) waiting.push(`${staleTypes.join(' and ')} not yet reported for the current spec`);
  if (waiting.length > 0) return { ...common, state: NodeKeyState.Converging, notes: waiting };
  return { ...common, state: NodeKeyState.Current, notes: [] };
}

function stampStatus(n: NodeObservation, now: number): { state: StampState; expiresAt?: number; note?: string } {
  const refused = 'peers refuse this node';
  if (!n.stamp.ok) {
    return n.stamp.reason === 'missing'
      ? { state: StampState.Missing, note: `no validity stamp: ${refused}` }
      : { state: StampState.Malformed, note: `validity stamp unreadable (${clip(n.stamp.message)}): ${refused}` };
  }
  const { claims } = n.stamp;
  const expiresAt = claims.exp;
  if (claims.sub !== n.name) return { state: StampState.Mismatch, expiresAt, note: `validity stamp was issued for node ${clip(JSON.stringify(claims.sub))}: ${refused}` };
  // An invalid spec has its own failure note; its digest is meaningless.
  if (n.spec.ok && (claims.spi !== n.spec.value.spi || claims.spec !== specDigest(n.spec.value))) {
    return { state: StampState.Mismatch, expiresAt, note: `validity stamp was issued for another spec (SPI ${claims.spi}): ${refused}` };
  }
  if (now >= expiresAt) return { state: StampState.Expired, expiresAt, note: `validity stamp expired at ${isoTime(expiresAt)}: ${refused}` };
  if (now + DEFAULT_CLOCK_SKEW_SECONDS < claims.nbf) {
    return { state: StampState.NotYetValid, expiresAt, note: `validity stamp not valid before ${isoTime(claims.nbf)} (check clocks): ${refused}` };
  }
  return { state: StampState.Valid, expiresAt };
}

function conditionNote(type: string, c: NodeCondition): string {
  const reason = c.reason === undefined ? '' : ` ${safeText(c.reason, MAX_REASON_CHARS)}`;
  const message = c.message === undefined ? '' : `: ${clip(c.message)}`;
  return `${type}=${c.status}${reason}${message}`;
}

function verdictOf(nodes: readonly NodeKeyStatus[]): ClusterVerdict {
  if (nodes.length === 0) return ClusterVerdict.NoNodes;
  if (nodes.some((n) => n.state === NodeKeyState.Failing)) return ClusterVerdict.Degraded;
  if (nodes.some((n) => n.state === NodeKeyState.Behind || n.state === NodeKeyState.Converging)) return ClusterVerdict.Rotating;
  return ClusterVerdict.InSync;
}

function summarize(v: Omit<ClusterKeyView, 'summary'>): string {
  const total = v.nodes.length;
  const against = v.secretSpi === undefined ? `SPI ${v.targetSpi} (the highest advertised; the Secret's SPI is unknown)` : `SPI ${v.targetSpi}, the Secret's`;
  if (v.verdict === ClusterVerdict.NoNodes) return 'no KmeshNodeInfo found: no node plugin has published yet';
  if (v.verdict === ClusterVerdict.InSync) return `${total === 1 ? 'the only node' : `all ${total} nodes`} on ${against}`;
  // Degraded or rotating: every kind of trouble, worst first.
  const inState = (s: NodeKeyState): readonly NodeKeyStatus[] => v.nodes.filter((n) => n.state === s);
  const failing = inState(NodeKeyState.Failing);
  const behind = inState(NodeKeyState.Behind);
  const converging = inState(NodeKeyState.Converging);
  return [
    ...(failing.length > 0 ? [`${failing.length} of ${total} ${plural(total, 'node')} failing: ${nameList(failing)}`] : []),
    ...(behind.length > 0 ? [`${behind.length} of ${total} ${plural(total, 'node')} behind ${against}: ${nameList(behind)}`] : []),
    ...(converging.length > 0 ? [`${converging.length} waiting for peers or status: ${nameList(converging)}`] : []),
  ].join('; ');
}

/**
 * Nodes a rotation away from `secretSpi` must wait for: every node not advertising exactly
 * that SPI (older, none, invalid, or newer: a newer one could collide with the next SPI).
 */
export function rotationHoldouts(nodes: readonly NodeKeyStatus[], secretSpi: number): readonly NodeKeyStatus[] {
  return nodes.filter((n) => n.spi !== secretSpi);
}

/** "a, b, c and 4 more": bounded, for one-line messages. */
export function nameList<T extends { readonly name: string }>(nodes: readonly T[], show: (n: T) => string = (n) => n.name): string {
  const shown = nodes.slice(0, MAX_NAMES_LISTED).map(show).join(', ');
  return nodes.length > MAX_NAMES_LISTED ? `${shown} and ${nodes.length - MAX_NAMES_LISTED} more` : shown;
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

function clip(text: string): string {
  return safeText(text, MAX_NOTE_TEXT_CHARS);
}

/** RFC 3339 to the second; the raw number when it is beyond what Date can show (claims are input). */
export function isoTime(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
