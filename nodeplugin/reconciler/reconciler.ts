/**
 * Applies a plan to the kernel with the fewest changes: dump, diff, install, update the BPF
 * maps, then remove. If anything in the install step fails, nothing is removed this round, so
 * the previous working state stays in force and the next reconcile retries.
 *
 * When a round both installs and removes (a policy moved to a new SA, the old SA goes), the
 * removals wait `drainMs`: a packet that resolved the old policy just before the swap may
 * still be on its way to the old SA, and deleting that SA under it drops the packet
 * (XfrmOutNoStates). Seen in the VM, where a vCPU can stall for milliseconds.
 */
import type { Plan, PlannedPolicy, PlannedState, SkippedPeer } from '../../core/plan.js';
import type { XfrmChange, XfrmPolicy, XfrmPolicyInfo, XfrmState, XfrmStateInfo } from '../xfrm/types.js';
import { KnownTables } from './known-tables.js';
import { type DiffOptions, diffXfrm, toXfrmPolicy, toXfrmState } from './xfrm-diff.js';

/** The kernel's xfrm tables, as the reconciler needs them. */
export interface XfrmPort {
  dumpStates(): Promise<readonly XfrmStateInfo[]>;
  dumpPolicies(): Promise<readonly XfrmPolicyInfo[]>;
  /** Apply in order; one outcome per change, never throwing for a single failed change. */
  apply(changes: readonly XfrmChange[]): Promise<readonly ChangeOutcome[]>;
}

export interface ChangeOutcome {
  readonly change: XfrmChange;
  /** Set when the kernel refused the change; the message never contains key material. */
  readonly error?: Error;
}

/**
 * The BPF maps the tc programs read. Each setter makes the map equal to its argument. Without
 * `verify` an adapter may diff against what it wrote last instead of reading the map back
 * (BpfMapsPort does); with it, it reads the map (the periodic resync).
 */
export interface DatapathMapsPort {
  setPeerMarks(marks: ReadonlyMap<string, number>, options?: MapsWriteOptions): Promise<void>;
  setPeerCidrs(cidrs: readonly string[], options?: MapsWriteOptions): Promise<void>;
}

export interface MapsWriteOptions {
  readonly verify?: boolean;
}

export interface KernelSnapshot {
  readonly states: readonly XfrmStateInfo[];
  readonly policies: readonly XfrmPolicyInfo[];
  /** stateKey -> state, when the snapshot already has it (KnownTables); the diff builds it otherwise. */
  readonly stateIndex?: ReadonlyMap<string, XfrmStateInfo>;
  /** policyKey -> policy of the policies that are not per-socket, likewise. */
  readonly policyIndex?: ReadonlyMap<string, XfrmPolicyInfo>;
  /** slotKey -> the states with that (family, dst, SPI, proto), likewise. */
  readonly slotIndex?: ReadonlyMap<string, readonly XfrmStateInfo[]>;
}

export interface ReconcileReport {
  readonly installed: number;
  readonly removed: number;
  readonly unchanged: number;
  /** True when removals were held back because an install failed. */
  readonly removalsDeferred: boolean;
  readonly errors: readonly string[];
  /** The changes the kernel refused (errors holds their descriptions). */
  readonly failures: readonly ChangeOutcome[];
  /** True when updating the BPF maps failed (errors says why). */
  readonly mapsFailed: boolean;
  readonly skipped: readonly SkippedPeer[];
}

export interface ReconcilerOptions {
  /** Pause between installing and removing in the same round (default 1000 ms). */
  readonly drainMs?: number;
}

export const DEFAULT_DRAIN_MS = 1000;

export interface ReconcileOptions extends DiffOptions {
  /** The tables as the caller just read them (from snapshot()). */
  readonly actual?: KernelSnapshot;
  /** Read the BPF maps back instead of trusting what was written (passed to the maps port). */
  readonly verify?: boolean;
}

export class Reconciler {
  readonly #xfrm: XfrmPort;
  readonly #maps: DatapathMapsPort;
  readonly #drainMs: number;
  readonly #known = new KnownTables();

  constructor(xfrm: XfrmPort, maps: DatapathMapsPort, options: ReconcilerOptions = {}) {
    this.#xfrm = xfrm;
    this.#maps = maps;
    this.#drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
  }

  /** Changes whenever the xfrm tables as this reconciler knows them change; undefined when it knows nothing. */
  get tablesVersion(): number | undefined {
    return this.#known.version;
  }

  /**
   * The xfrm tables. `fresh` (the default) dumps them; otherwise what this reconciler knows they
   * hold is returned when it knows (KnownTables), which costs no kernel call.
   */
  async snapshot(options: { readonly fresh?: boolean } = {}): Promise<KernelSnapshot> {
    const known = options.fresh === false ? this.#known.snapshot() : undefined;
    if (known) return known;
    this.#known.forget();
    const [states, policies] = await Promise.all([this.#xfrm.dumpStates(), this.#xfrm.dumpPolicies()]);
    const dump = { states, policies };
    this.#known.load(dump);
    return this.#known.snapshot() ?? dump;
  }

  /** Make the kernel match `plan`. `actual` may be passed when the caller has just read it with snapshot(). */
  async reconcile(plan: Plan, options: ReconcileOptions = {}): Promise<ReconcileReport> {
    const actual = options.actual ?? (await this.snapshot());
    const diff = diffXfrm({ states: plan.states.map(desiredState), policies: plan.policies.map(desiredPolicy) }, actual, options);
    const errors: string[] = [];
    const failures: ChangeOutcome[] = [];
    const installed = await this.#apply(diff.install, errors, failures);
    let mapsFailed = false;
    const verify = { verify: options.verify ?? true };
    try {
      await this.#maps.setPeerMarks(plan.peerMarks, verify);
      await this.#maps.setPeerCidrs(plan.peerPodCidrs, verify);
    } catch (err: unknown) {
      mapsFailed = true;
      errors.push(`bpf maps: ${err instanceof Error ? err.message : String(err)}`);
    }
    const removalsDeferred = errors.length > 0 && diff.remove.length > 0;
    if (!removalsDeferred && diff.install.length > 0 && diff.remove.length > 0 && this.#drainMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.#drainMs));
    }
    const removed = removalsDeferred ? 0 : await this.#apply(diff.remove, errors, failures);
    // Never sent, so they defer nothing; reported every round until the other SA is gone.
    errors.push(...diff.heldBack);
    return { installed, removed, unchanged: diff.unchanged, removalsDeferred, errors, failures, mapsFailed, skipped: plan.skipped };
  }

  async #apply(changes: readonly XfrmChange[], errors: string[], failures: ChangeOutcome[]): Promise<number> {
    if (changes.length === 0) return 0;
    let outcomes: readonly ChangeOutcome[];
    try {
      outcomes = await this.#xfrm.apply(changes);
    } catch (err: unknown) {
      // Some of the batch may have reached the kernel: read it back next time.
      this.#known.forget();
      throw err;
    }
    this.#known.follow(changes, outcomes);
    let done = 0;
    for (const o of outcomes) {
      if (o.error) {
        errors.push(`${o.change.op}: ${o.error.message}`);
        failures.push(o);
      } else done++;
    }
    return done;
  }
}

/**
 * The kernel form of planned objects, made once per object: a Planner hands back the very
 * objects of unchanged peers, and the diff recognises what it compared before by identity.
 */
const desiredStates = new WeakMap<PlannedState, XfrmState>();
const desiredPolicies = new WeakMap<PlannedPolicy, XfrmPolicy>();

function desiredState(s: PlannedState): XfrmState {
  let x = desiredStates.get(s);
  if (!x) desiredStates.set(s, (x = toXfrmState(s)));
  return x;
}

function desiredPolicy(p: PlannedPolicy): XfrmPolicy {
  let x = desiredPolicies.get(p);
  if (!x) desiredPolicies.set(p, (x = toXfrmPolicy(p)));
  return x;
}
