/**
 * The two conditions a node plugin publishes on its KmeshNodeInfo's status, so `kubectl get`
 * and dashboards show which node is behind (metav1.Condition shape; additive to Kmesh's CRD):
 *
 * - Ready: the last reconcile programmed the kernel without errors.
 * - KeyInSync: every usable peer sends and accepts this node's current SPI. The SPI on the wire
 *   is the receiver's, so this holds exactly when every usable peer advertises the same SPI as
 *   this node (a peer that advertises it has its key, and this node sends with it) and an
 *   outbound SA towards each of them is in place.
 *
 * Pure; the caller keeps the previous conditions so lastTransitionTime only moves on a change.
 */
import { safeText } from '../../core/safe-text.js';

export interface Condition {
  readonly type: 'Ready' | 'KeyInSync';
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

export interface ConditionInput {
  /** Newest key this node has (0: none). */
  readonly currentSpi: number;
  /** SPI this node advertises. */
  readonly advertisedSpi: number;
  /** Peers used this round with the SPI they advertise. */
  readonly peers: readonly { readonly name: string; readonly spi: number }[];
  /** Peers with no outbound SA this round (skipped by the plan). */
  readonly withoutOutbound: readonly string[];
  /** Refused peers and why (informational in the message). */
  readonly refused: readonly { readonly name: string; readonly reason: string }[];
  /** Errors of the last reconcile; undefined before the first one finished. */
  readonly errors: readonly string[] | undefined;
  /** Why the node's own facts are unusable (boot ID mismatch, Node missing), if they are. */
  readonly factsProblem?: string;
  readonly generation?: number;
}

const MAX_MESSAGE = 1024;

export function computeConditions(input: ConditionInput, previous: readonly Condition[], now: Date): Condition[] {
  const ready = readyCondition(input);
  const sync = keyInSyncCondition(input);
  return [ready, sync].map((c) => {
    const prev = previous.find((p) => p.type === c.type);
    const lastTransitionTime = prev?.status === c.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { ...c, message: clip(c.message), lastTransitionTime, ...(input.generation === undefined ? {} : { observedGeneration: input.generation }) };
  });
}

/** True when `a` and `b` would be the same status on the API (ignoring transition times). */
export function sameConditions(a: readonly Condition[], b: readonly Condition[]): boolean {
  const key = (cs: readonly Condition[]): string => cs.map((c) => `${c.type}|${c.status}|${c.reason}|${c.message}|${c.observedGeneration ?? ''}`).sort().join('\n');
  return key(a) === key(b);
}

type Draft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

function readyCondition(input: ConditionInput): Draft {
  if (input.factsProblem) return { type: 'Ready', status: 'False', reason: 'NodeFactsUnusable', message: input.factsProblem };
  if (input.errors === undefined) return { type: 'Ready', status: 'Unknown', reason: 'Starting', message: 'the first reconcile has not finished' };
  if (input.errors.length > 0) {
    const more = input.errors.length > 1 ? ` (and ${input.errors.length - 1} more)` : '';
    return { type: 'Ready', status: 'False', reason: 'ReconcileFailed', message: `${input.errors[0] ?? ''}${more}` };
  }
  return { type: 'Ready', status: 'True', reason: 'Programmed', message: input.currentSpi > 0 ? `kernel programmed for ${input.peers.length} peer(s)` : 'kernel programmed; no key yet' };
}

function keyInSyncCondition(input: ConditionInput): Draft {
  if (input.currentSpi <= 0) return { type: 'KeyInSync', status: 'False', reason: 'NoKey', message: 'no IPsec key has been loaded from the Secret yet' };
  if (input.advertisedSpi !== input.currentSpi) {
    return { type: 'KeyInSync', status: 'False', reason: 'NotAdvertised', message: `this node has SPI ${input.currentSpi} but advertises ${input.advertisedSpi}: its inbound states are not confirmed yet` };
  }
  const ahead = input.peers.filter((p) => p.spi > input.currentSpi);
  if (ahead.length > 0) {
    return { type: 'KeyInSync', status: 'False', reason: 'NodeBehind', message: `${list(ahead.map((p) => `${p.name} (SPI ${p.spi})`))} advertise a newer SPI than this node's ${input.currentSpi}; the Secret has not reached this node yet` };
  }
  const behind = input.peers.filter((p) => p.spi < input.currentSpi);
  if (behind.length > 0) {
    return { type: 'KeyInSync', status: 'False', reason: 'PeersBehind', message: `${list(behind.map((p) => `${p.name} (SPI ${p.spi})`))} still advertise an older SPI than this node's ${input.currentSpi}` };
  }
  if (input.withoutOutbound.length > 0) {
    return { type: 'KeyInSync', status: 'False', reason: 'PeersUnencrypted', message: `no outbound SA towards ${list(input.withoutOutbound)}` };
  }
  const refusedNote = input.refused.length > 0 ? `; refused: ${list(input.refused.map((r) => `${r.name} (${r.reason})`))}` : '';
  if (input.peers.length === 0) return { type: 'KeyInSync', status: 'True', reason: 'NoPeers', message: `SPI ${input.currentSpi}; no usable peer${refusedNote}` };
  return { type: 'KeyInSync', status: 'True', reason: 'InSync', message: `every usable peer (${input.peers.length}) uses SPI ${input.currentSpi}${refusedNote}` };
}

function list(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}

function clip(text: string): string {
  return safeText(text, MAX_MESSAGE);
}
