/**
 * What the kernel's xfrm tables hold, as this process last dumped them and then changed them
 * itself. A node plugin with 5,000 peers that dumped 15,000 objects on every event would spend
 * most of its time reading back what it just wrote (Cilium caches its xfrm dumps for the same
 * reason, cilium#32588), so between the periodic resyncs the reconciler diffs against this
 * instead.
 *
 * It only ever follows changes the kernel confirmed. Anything it cannot follow exactly makes it
 * forget everything, and the next reconcile dumps again: a refused or failed change (the kernel
 * may have done part of a batch), an operation the diff never sends (updateState), two objects
 * of one dump with the same identity (a foreign policy written with host bits, which a delete by
 * selector could hit instead). What it cannot see at all, another program changing the tables,
 * the periodic resync finds (docs/kernel-api.md).
 */
import type { ChangeOutcome, KernelSnapshot } from './reconciler.js';
import { markText, noteInstalled, policyKey, slotIndex, slotKey, stateKey } from './xfrm-diff.js';
import type { XfrmChange, XfrmPolicy, XfrmPolicyInfo, XfrmState, XfrmStateInfo } from '../xfrm/types.js';

export class KnownTables {
  /** Goes up whenever what is known changes (a load, a followed change, forgetting). */
  #version = 0;
  #snapshot: { readonly version: number; readonly tables: KernelSnapshot } | undefined;
  #states: Map<string, XfrmStateInfo> | undefined;
  #slots = new Map<string, XfrmStateInfo[]>();
  #policies: Map<string, XfrmPolicyInfo> | undefined;
  /** Per-socket policies: never ours, never changed by netlink; kept for the diff to skip. */
  #socketPolicies: readonly XfrmPolicyInfo[] = [];

  /** Changes whenever the tables as known change; undefined while nothing is known. */
  get version(): number | undefined {
    return this.#states && this.#policies ? this.#version : undefined;
  }

  /** The tables, or undefined when they must be dumped; the same object until they change. */
  snapshot(): KernelSnapshot | undefined {
    if (!this.#states || !this.#policies) return undefined;
    if (this.#snapshot?.version !== this.#version) {
      this.#snapshot = {
        version: this.#version,
        tables: {
          states: [...this.#states.values()],
          policies: [...this.#socketPolicies, ...this.#policies.values()],
          stateIndex: this.#states,
          policyIndex: this.#policies,
          slotIndex: this.#slots,
        },
      };
    }
    return this.#snapshot.tables;
  }

  /** Start over from a dump. */
  load(dump: KernelSnapshot): void {
    this.#version++;
    const states = new Map<string, XfrmStateInfo>();
    const policies = new Map<string, XfrmPolicyInfo>();
    let ambiguous = false;
    for (const s of dump.states) {
      const key = stateKey(s);
      if (states.has(key)) ambiguous = true;
      states.set(key, s);
    }
    for (const p of dump.policies) {
      if (p.socket) continue;
      const key = policyKey(p);
      if (policies.has(key)) ambiguous = true;
      policies.set(key, p);
    }
    if (ambiguous) {
      this.forget();
      return;
    }
    this.#states = states;
    this.#slots = slotIndex(dump.states);
    this.#policies = policies;
    this.#socketPolicies = dump.policies.filter((p) => p.socket);
  }

  forget(): void {
    this.#version++;
    this.#states = undefined;
    this.#slots = new Map();
    this.#policies = undefined;
    this.#socketPolicies = [];
  }

  /** Follow one applied batch by its outcomes (one per change, in order). */
  follow(changes: readonly XfrmChange[], outcomes: readonly ChangeOutcome[]): void {
    const states = this.#states, policies = this.#policies;
    if (!states || !policies) return;
    if (changes.length > 0) this.#version++;
    if (outcomes.length !== changes.length) {
      this.forget();
      return;
    }
    for (const { change, error } of outcomes) {
      if (error) {
        this.forget();
        return;
      }
      switch (change.op) {
        case 'addState': {
          const info = stateInfo(change.state);
          const slot = slotKey(info);
          states.set(`${slot}|${markText(info.mark)}`, info);
          const same = this.#slots.get(slot);
          if (same) same.push(info);
          else this.#slots.set(slot, [info]);
          noteInstalled(change.state, info);
          break;
        }
        case 'deleteState': {
          const key = stateKey(change.id);
          const gone = states.get(key);
          states.delete(key);
          const slot = slotKey(change.id);
          const rest = this.#slots.get(slot)?.filter((s) => s !== gone) ?? [];
          if (rest.length > 0) this.#slots.set(slot, rest);
          else this.#slots.delete(slot);
          break;
        }
        case 'addPolicy':
        case 'updatePolicy': {
          const info = policyInfo(change.policy);
          policies.set(policyKey(change.policy), info);
          noteInstalled(change.policy, info);
          break;
        }
        case 'deletePolicy':
          policies.delete(policyKey(change.id));
          break;
        case 'updateState':
          this.forget();
          return;
      }
    }
  }
}

/** An SA as a dump would report it right after the add (no traffic yet). */
function stateInfo(s: XfrmState): XfrmStateInfo {
  const any = s.family === 4 ? '0.0.0.0/0' : '::/0';
  return {
    ...s,
    selector: s.selector ?? { src: any, dst: any },
    replayWindow: s.replayWindow ?? 0,
    current: { bytes: 0, packets: 0, addTime: 0, useTime: 0 },
    stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
    flags: 0,
    otherAttributes: [],
  };
}

function policyInfo(p: XfrmPolicy): XfrmPolicyInfo {
  return { ...p, priority: p.priority ?? 0, type: p.type ?? 'main', index: 0, socket: false, flags: 0 };
}
