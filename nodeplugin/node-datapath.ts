/**
 * One node's datapath: the step the node plugin runs whenever the secret, a peer or the clock
 * changes. It adopts what the kernel already holds (peer ids, accepted SPIs), decides which
 * inbound SPIs to keep, plans, and reconciles. A restarted plugin therefore converges without
 * tearing down working SAs, and all state it needs between runs is in the kernel or returned.
 */
import { type LocalNode, type PeerNode, type Plan, plan } from '../core/plan.js';
import { inboundSpisToKeep } from '../core/retention.js';
import type { IpsecKey } from '../core/secret.js';
import { adoptAcceptedSpis, adoptPeerIds } from './reconciler/adopt.js';
import { type DatapathMapsPort, type ReconcileReport, Reconciler, type ReconcilerOptions, type XfrmPort } from './reconciler/reconciler.js';
import { isOwnedInboundState } from './reconciler/ownership.js';

export interface SyncInput {
  readonly local: LocalNode;
  readonly peers: readonly PeerNode[];
  /** Every key version this process knows, by SPI. */
  readonly keys: ReadonlyMap<number, IpsecKey>;
  readonly now: number;
  /** How long an old inbound SPI stays after every peer moved past it. */
  readonly graceMs: number;
}

/** What the caller keeps between syncs (all of it can be lost: it is re-adopted from the kernel). */
export interface SyncMemory {
  readonly peerIds: ReadonlyMap<string, number>;
  readonly unusedSince: ReadonlyMap<number, number>;
}

export interface SyncResult {
  readonly report: ReconcileReport;
  readonly plan: Plan;
  /** The SPI this node may now advertise: inbound states for it are installed. 0 = none. */
  readonly advertisedSpi: number;
  readonly acceptedSpis: readonly number[];
  readonly memory: SyncMemory;
  /** When to sync again at the latest so an expired grace period is acted on. */
  readonly nextExpiry?: number;
}

export class NodeDatapath {
  readonly #reconciler: Reconciler;

  constructor(xfrm: XfrmPort, maps: DatapathMapsPort, options: ReconcilerOptions = {}) {
    this.#reconciler = new Reconciler(xfrm, maps, options);
  }

  async sync(input: SyncInput, memory: SyncMemory = { peerIds: new Map(), unusedSince: new Map() }): Promise<SyncResult> {
    const actual = await this.#reconciler.snapshot();
    const peerIds = new Map([...adoptPeerIds(actual.states, input.peers), ...memory.peerIds]);
    const localSpi = Math.max(0, ...input.keys.keys());
    const retention = inboundSpisToKeep({
      localSpi,
      accepted: adoptAcceptedSpis(actual.states),
      peerSpis: input.peers.filter((p) => p.name !== input.local.name).map((p) => p.spec.spi),
      unusedSince: memory.unusedSince,
      now: input.now,
      graceMs: input.graceMs,
    });
    const desired = plan({ local: input.local, peers: input.peers, keys: input.keys, inboundSpis: retention.keep, peerIds });
    const kept = new Set(retention.keep);
    const report = await this.#reconciler.reconcile(desired, {
      actual,
      // An inbound SA of a still-accepted SPI whose key this process never learnt (it was
      // installed before a restart) keeps working until its grace period ends.
      keepState: (s) => isOwnedInboundState(s) && kept.has(s.spi) && !input.keys.has(s.spi),
    });
    const installedOk = report.errors.length === 0;
    return {
      report,
      plan: desired,
      advertisedSpi: installedOk && input.keys.has(localSpi) ? localSpi : 0,
      acceptedSpis: retention.keep,
      memory: { peerIds: desired.peerIds, unusedSince: retention.unusedSince },
      ...(retention.nextExpiry === undefined ? {} : { nextExpiry: retention.nextExpiry }),
    };
  }
}
