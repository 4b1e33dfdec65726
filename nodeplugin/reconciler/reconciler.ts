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
import type { Plan, SkippedPeer } from '../../core/plan.js';
import type { XfrmChange, XfrmPolicyInfo, XfrmStateInfo } from '../xfrm/types.js';
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

/** The BPF maps the tc programs read. Each setter makes the map equal to its argument. */
export interface DatapathMapsPort {
  setPeerMarks(marks: ReadonlyMap<string, number>): Promise<void>;
  setPeerCidrs(cidrs: readonly string[]): Promise<void>;
}

export interface KernelSnapshot {
  readonly states: readonly XfrmStateInfo[];
  readonly policies: readonly XfrmPolicyInfo[];
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

export class Reconciler {
  readonly #xfrm: XfrmPort;
  readonly #maps: DatapathMapsPort;
  readonly #drainMs: number;

  constructor(xfrm: XfrmPort, maps: DatapathMapsPort, options: ReconcilerOptions = {}) {
    this.#xfrm = xfrm;
    this.#maps = maps;
    this.#drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
  }

  async snapshot(): Promise<KernelSnapshot> {
    const [states, policies] = await Promise.all([this.#xfrm.dumpStates(), this.#xfrm.dumpPolicies()]);
    return { states, policies };
  }

  /** Make the kernel match `plan`. `actual` may be passed when the caller has just dumped it. */
  async reconcile(plan: Plan, options: DiffOptions & { readonly actual?: KernelSnapshot } = {}): Promise<ReconcileReport> {
    const actual = options.actual ?? (await this.snapshot());
    const diff = diffXfrm({ states: plan.states.map(toXfrmState), policies: plan.policies.map(toXfrmPolicy) }, actual, options);
    const errors: string[] = [];
    const failures: ChangeOutcome[] = [];
    const installed = await this.#apply(diff.install, errors, failures);
    let mapsFailed = false;
    try {
      await this.#maps.setPeerMarks(plan.peerMarks);
      await this.#maps.setPeerCidrs(plan.peerPodCidrs);
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
    const outcomes = await this.#xfrm.apply(changes);
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
