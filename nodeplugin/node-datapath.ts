/**
 * One node's datapath: the step the node plugin runs whenever the secret, a peer or the clock
 * changes. It adopts what the kernel already holds (peer ids, accepted SPIs, outbound SAs it
 * can no longer rebuild), decides which inbound SPIs to keep, plans, protects pairs that were
 * encrypted from falling back to clear text, and reconciles. A restarted plugin therefore
 * converges without tearing down working SAs, and all state it needs between runs is in the
 * kernel or returned.
 */
import { type LocalNode, type PeerNode, type Plan, Planner } from '../core/plan.js';
import { inboundSpisToKeep } from '../core/retention.js';
import type { IpsecKey } from '../core/secret.js';
import { adoptAcceptedSpis, adoptPeerIds } from './reconciler/adopt.js';
import { type DatapathMapsPort, type ReconcileReport, Reconciler, type ReconcilerOptions, type XfrmPort } from './reconciler/reconciler.js';
import { isOwnedInboundState } from './reconciler/ownership.js';
import { type ProtectedCidr, protectEncryptedPairs } from './reconciler/protect.js';
import { stateKey } from './reconciler/xfrm-diff.js';

export interface SyncInput {
  readonly local: LocalNode;
  /** Peers whose KmeshNodeInfo is trusted (stamp verified). The local node is ignored. */
  readonly peers: readonly PeerNode[];
  /**
   * Peers known from a KmeshNodeInfo that is not trusted (stamp missing, forged, expired). They
   * get no SAs; their pod CIDRs are blocked if they were encrypted before (or with `strict`).
   */
  readonly refused?: readonly PeerNode[];
  /** Drop, rather than send in clear, traffic to every known peer pod CIDR that cannot be encrypted. */
  readonly strict?: boolean;
  /** Every key version this process knows, by SPI. */
  readonly keys: ReadonlyMap<number, IpsecKey>;
  readonly now: number;
  /** How long an old inbound SPI stays after every peer moved past it. */
  readonly graceMs: number;
  /**
   * Read the kernel back: dump the xfrm tables and read the BPF maps (default). false trusts
   * what this datapath read at its last verified sync and changed since, which costs no kernel
   * read: for syncs driven by events between periodic resyncs. A datapath that knows nothing
   * yet (its first sync, or after a change failed) reads back anyway.
   */
  readonly verify?: boolean;
}

/** What the caller keeps between syncs (all of it can be lost: it is re-adopted from the kernel). */
export interface SyncMemory {
  readonly peerIds: ReadonlyMap<string, number>;
  readonly unusedSince: ReadonlyMap<number, number>;
}

export interface SyncResult {
  readonly report: ReconcileReport;
  /** The plan as applied (after protection). */
  readonly plan: Plan;
  /**
   * The SPI this node may now advertise: its newest key, once every inbound state of that SPI
   * and the shared in/fwd policies are in the kernel. 0 when that cannot be confirmed this
   * round (no key, or an install failed): keep advertising what was advertised before.
   */
  readonly advertisedSpi: number;
  readonly acceptedSpis: readonly number[];
  /** Peer pod CIDRs the plan could not encrypt that were kept on an old SA or blocked. */
  readonly protectedCidrs: readonly ProtectedCidr[];
  readonly memory: SyncMemory;
  /** When to sync again at the latest so an expired grace period is acted on. */
  readonly nextExpiry?: number;
}

export class NodeDatapath {
  readonly #reconciler: Reconciler;
  readonly #planner = new Planner();

  constructor(xfrm: XfrmPort, maps: DatapathMapsPort, options: ReconcilerOptions = {}) {
    this.#reconciler = new Reconciler(xfrm, maps, options);
  }

  async sync(input: SyncInput, memory: SyncMemory = { peerIds: new Map(), unusedSince: new Map() }): Promise<SyncResult> {
    const verify = input.verify ?? true;
    const actual = await this.#reconciler.snapshot({ fresh: verify });
    const peers = input.peers.filter((p) => p.name !== input.local.name);
    const refused = (input.refused ?? []).filter((p) => p.name !== input.local.name);
    // Adoption only matters for peers the caller has no id for (after a restart: all of them).
    const unknown = peers.filter((p) => !memory.peerIds.has(p.name));
    const peerIds = unknown.length === 0 ? memory.peerIds : new Map([...adoptPeerIds(actual.states, unknown), ...memory.peerIds]);
    const localSpi = Math.max(0, ...input.keys.keys());
    const retention = inboundSpisToKeep({
      localSpi,
      accepted: adoptAcceptedSpis(actual.states),
      peerSpis: peers.map((p) => p.spec.spi),
      unusedSince: memory.unusedSince,
      now: input.now,
      graceMs: input.graceMs,
    });
    const planned = this.#planner.plan({ local: input.local, peers, keys: input.keys, inboundSpis: retention.keep, peerIds });
    const guarded = protectEncryptedPairs({ plan: planned, actual, usable: peers, refused, strict: input.strict ?? false });
    const kept = new Set(retention.keep);
    const report = await this.#reconciler.reconcile(guarded.plan, {
      actual,
      verify,
      // An inbound SA of a still-accepted SPI whose key this process never learnt (it was
      // installed before a restart) keeps working until its grace period ends; an outbound SA
      // protectEncryptedPairs kept stays until the peer advertises an SPI we have a key for.
      keepState: (s) => (isOwnedInboundState(s) && kept.has(s.spi) && !input.keys.has(s.spi)) || guarded.keptStates.has(stateKey(s)),
    });
    return {
      report,
      plan: guarded.plan,
      advertisedSpi: input.keys.has(localSpi) && inboundReady(report, localSpi) ? localSpi : 0,
      acceptedSpis: retention.keep,
      protectedCidrs: guarded.protectedCidrs,
      memory: { peerIds: planned.peerIds, unusedSince: retention.unusedSince },
      ...(retention.nextExpiry === undefined ? {} : { nextExpiry: retention.nextExpiry }),
    };
  }
}

/**
 * Whether peers may start sending with `spi`: no inbound state of that SPI, no in/fwd policy and
 * no map update failed. A failure on another peer's outbound side does not hold it back.
 */
function inboundReady(report: ReconcileReport, spi: number): boolean {
  if (report.mapsFailed) return false;
  return !report.failures.some(({ change }) => {
    if (change.op === 'addState' || change.op === 'updateState') return isOwnedInboundState(change.state) && change.state.spi === spi;
    if (change.op === 'addPolicy' || change.op === 'updatePolicy') return change.policy.dir !== 'out';
    return false;
  });
}
