/**
 * One node's datapath: the step the node plugin runs whenever the secret, a peer or the clock
 * changes. It adopts what the kernel already holds (peer ids, accepted SPIs, outbound SAs it
 * can no longer rebuild), decides which inbound SPIs to keep, plans, protects pairs that were
 * encrypted from falling back to clear text, and reconciles. A restarted plugin therefore
 * converges without tearing down working SAs, and all state it needs between runs is in the
 * kernel or returned.
 */
import { type LocalNode, type PeerNode, type Plan, Planner, sameKeyRing, sameNodeSpec, sameStrings } from '../core/plan.js';
import { inboundSpisToKeep } from '../core/retention.js';
import type { IpsecKey } from '../core/secret.js';
import { adoptAcceptedSpis, adoptPeerIds } from './reconciler/adopt.js';
import { type DatapathMapsPort, type KernelSnapshot, type ReconcileReport, Reconciler, type ReconcilerOptions, type XfrmPort } from './reconciler/reconciler.js';
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

/** A clean sync, with what it depended on: a sync with the same is answered from it. */
interface Settled {
  readonly input: SyncInput;
  readonly memory: SyncMemory;
  readonly tablesVersion: number;
  readonly result: SyncResult;
}

export class NodeDatapath {
  readonly #reconciler: Reconciler;
  readonly #planner = new Planner();
  #settled: Settled | undefined;
  /** adoptAcceptedSpis of the last tables it was asked about (the same object while they do not change). */
  #accepted: { readonly tables: KernelSnapshot; readonly spis: number[] } | undefined;

  constructor(xfrm: XfrmPort, maps: DatapathMapsPort, options: ReconcilerOptions = {}) {
    this.#reconciler = new Reconciler(xfrm, maps, options);
  }

  async sync(input: SyncInput, memory: SyncMemory = { peerIds: new Map(), unusedSince: new Map() }): Promise<SyncResult> {
    const verify = input.verify ?? true;
    const settled = this.#settled;
    this.#settled = undefined;
    if (!verify && settled && this.#unchangedSince(settled, input, memory)) {
      this.#settled = settled;
      return { ...settled.result, report: nothingToDo(settled.result) };
    }
    const { result, tablesRead } = await this.#run(input, memory, verify);
    const tablesVersion = this.#reconciler.tablesVersion;
    const { report } = result;
    // Only a sync that found the kernel as planned can stand in for the next one: it decided
    // from the tables it read, so it must not have changed them (then the next sync would read
    // other tables), and nothing may have failed.
    if (tablesVersion !== undefined && tablesVersion === tablesRead && report.errors.length === 0 && report.failures.length === 0 && !report.mapsFailed) {
      this.#settled = { input, memory: result.memory, tablesVersion, result };
    }
    return result;
  }

  /**
   * Whether a sync between resyncs would do exactly what the settled one did, which found the
   * kernel as planned: nothing. Everything sync() depends on is the same: the tables as known
   * (no change since), the memory it returned, the facts (by value: the daemon rebuilds them
   * each time), and the clock has not reached the next grace expiry, before which the retained
   * SPIs cannot change. A node plugin with 5,000 peers gets a KmeshNodeInfo event whenever any
   * peer updates its status; each such event then costs a comparison, not a plan and a diff.
   */
  #unchangedSince(settled: Settled, input: SyncInput, memory: SyncMemory): boolean {
    const was = settled.input;
    return memory === settled.memory &&
      this.#reconciler.tablesVersion === settled.tablesVersion &&
      (settled.result.nextExpiry === undefined || input.now < settled.result.nextExpiry) &&
      input.strict === was.strict && input.graceMs === was.graceMs &&
      sameLocal(input.local, was.local) && samePeers(input.peers, was.peers) && samePeers(input.refused ?? [], was.refused ?? []) &&
      sameKeyRing(input.keys, was.keys);
  }

  /** SPIs of our inbound states in `tables`: a scan of every SA, made once per version of the tables. */
  #acceptedSpis(tables: KernelSnapshot): number[] {
    if (this.#accepted?.tables !== tables) this.#accepted = { tables, spis: adoptAcceptedSpis(tables.states) };
    return this.#accepted.spis;
  }

  async #run(input: SyncInput, memory: SyncMemory, verify: boolean): Promise<{ result: SyncResult; tablesRead: number | undefined }> {
    const actual = await this.#reconciler.snapshot({ fresh: verify });
    const tablesRead = this.#reconciler.tablesVersion;
    const peers = input.peers.filter((p) => p.name !== input.local.name);
    const refused = (input.refused ?? []).filter((p) => p.name !== input.local.name);
    // Adoption only matters for peers the caller has no id for (after a restart: all of them).
    const unknown = peers.filter((p) => !memory.peerIds.has(p.name));
    const peerIds = unknown.length === 0 ? memory.peerIds : new Map([...adoptPeerIds(actual.states, unknown), ...memory.peerIds]);
    const localSpi = Math.max(0, ...input.keys.keys());
    const retention = inboundSpisToKeep({
      localSpi,
      accepted: this.#acceptedSpis(actual),
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
    const result: SyncResult = {
      report,
      plan: guarded.plan,
      advertisedSpi: input.keys.has(localSpi) && inboundReady(report, localSpi) ? localSpi : 0,
      acceptedSpis: retention.keep,
      protectedCidrs: guarded.protectedCidrs,
      memory: { peerIds: planned.peerIds, unusedSince: retention.unusedSince },
      ...(retention.nextExpiry === undefined ? {} : { nextExpiry: retention.nextExpiry }),
    };
    return { result, tablesRead };
  }
}

/** The report of a sync that found the kernel as planned and changed nothing. */
function nothingToDo(settled: SyncResult): ReconcileReport {
  return {
    installed: 0, removed: 0, unchanged: settled.plan.states.length + settled.plan.policies.length,
    removalsDeferred: false, errors: [], failures: [], mapsFailed: false, skipped: settled.plan.skipped,
  };
}

function sameLocal(a: LocalNode, b: LocalNode): boolean {
  return a === b || (a.name === b.name && a.bootID === b.bootID && sameStrings(a.addresses, b.addresses) && sameStrings(a.podCIDRS, b.podCIDRS));
}

function samePeers(a: readonly PeerNode[], b: readonly PeerNode[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as PeerNode, y = b[i] as PeerNode;
    if (x !== y && (x.name !== y.name || !sameNodeSpec(x.spec, y.spec))) return false;
  }
  return true;
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
