/** The reconciler's ports implemented over the real kernel adapters. */
import { canonicalIp } from '../core/ip.js';
import { sameStrings } from '../core/plan.js';
import type { DiffResult, NodeBpf } from './bpf/index.js';
import type { ChangeOutcome, DatapathMapsPort, MapsWriteOptions, XfrmPort } from './reconciler/reconciler.js';
import type { XfrmSocket } from './xfrm/index.js';
import type { XfrmChange, XfrmPolicyInfo, XfrmStateInfo } from './xfrm/types.js';

export class NetlinkXfrmPort implements XfrmPort {
  readonly #socket: XfrmSocket;
  constructor(socket: XfrmSocket) {
    this.#socket = socket;
  }
  dumpStates(): Promise<readonly XfrmStateInfo[]> {
    return this.#socket.dumpStates();
  }
  dumpPolicies(): Promise<readonly XfrmPolicyInfo[]> {
    return this.#socket.dumpPolicies();
  }
  async apply(changes: readonly XfrmChange[]): Promise<readonly ChangeOutcome[]> {
    const results = await this.#socket.applyBatch(changes);
    return results.map((r, i) => {
      const change = changes[i] as XfrmChange;
      return r.ok ? { change } : { change, error: r.error };
    });
  }
}

/**
 * The maps port over NodeBpf. It remembers what the maps hold after each write, so a write
 * without `verify` diffs against that instead of reading every entry back (a syscall per
 * entry: 36 ms at 1,000 peers); with `verify`, after a failure and on the first write it reads
 * the maps.
 */
export class BpfMapsPort implements DatapathMapsPort {
  readonly #bpf: NodeBpf;
  #marks: Map<string, number> | undefined;
  #cidrs: Set<string> | undefined;
  /** The arguments of the last successful writes, as given (before canonical text). */
  #marksAsked: Map<string, number> | undefined;
  #cidrsAsked: string[] | undefined;
  #mapReads = 0;

  constructor(bpf: NodeBpf) {
    this.#bpf = bpf;
  }
  /** How many times a write read a whole map back so far. */
  get mapReads(): number {
    return this.#mapReads;
  }
  setPeerMarks(marks: ReadonlyMap<string, number>, options?: MapsWriteOptions): Promise<void> {
    return this.setPeerMarksCounted(marks, options).then(() => undefined);
  }
  setPeerCidrs(cidrs: readonly string[], options?: MapsWriteOptions): Promise<void> {
    return this.setPeerCidrsCounted(cidrs, options).then(() => undefined);
  }
  /** As setPeerMarks; resolves to the number of map entries written or deleted. */
  setPeerMarksCounted(marks: ReadonlyMap<string, number>, options: MapsWriteOptions = {}): Promise<number> {
    return settled(() => this.#writeMarks(marks, options));
  }
  /** As setPeerCidrs; resolves to the number of map entries written or deleted. */
  setPeerCidrsCounted(cidrs: readonly string[], options: MapsWriteOptions = {}): Promise<number> {
    return settled(() => this.#writeCidrs(cidrs, options));
  }

  #writeMarks(marks: ReadonlyMap<string, number>, options: MapsWriteOptions): number {
    const known = options.verify === false ? this.#marks : undefined;
    // Asked for what was written last (the common event between resyncs): nothing to do.
    if (known && this.#marksAsked && sameEntries(marks, this.#marksAsked)) return 0;
    this.#marksAsked = undefined;
    // KmeshNodeInfo addresses are hashed as written, but the map wants canonical text.
    const want = new Map([...marks].map(([a, m]) => [canonicalIp(a), m]));
    this.#marks = undefined;
    let r: DiffResult;
    if (known) {
      const set = new Map([...want].filter(([a, m]) => known.get(a) !== m));
      r = this.#bpf.updatePeerMarks(set, [...known.keys()].filter((a) => !want.has(a)));
    } else {
      this.#mapReads++;
      r = this.#bpf.setPeerMarks(want);
    }
    this.#marks = want;
    this.#marksAsked = new Map(marks);
    return r.added.length + r.removed.length;
  }

  #writeCidrs(cidrs: readonly string[], options: MapsWriteOptions): number {
    const known = options.verify === false ? this.#cidrs : undefined;
    if (known && this.#cidrsAsked && sameStrings(cidrs, this.#cidrsAsked)) return 0;
    this.#cidrsAsked = undefined;
    const want = new Set(cidrs);
    this.#cidrs = undefined;
    let r: DiffResult;
    if (known) {
      r = this.#bpf.updatePeerCidrs([...want].filter((c) => !known.has(c)), [...known].filter((c) => !want.has(c)));
    } else {
      this.#mapReads++;
      r = this.#bpf.setPeerCidrs(want);
    }
    this.#cidrs = want;
    this.#cidrsAsked = [...cidrs];
    return r.added.length + r.removed.length;
  }
}

function sameEntries(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** The result of a synchronous map write as a promise: a refused write rejects instead of throwing. */
function settled(write: () => number): Promise<number> {
  try {
    return Promise.resolve(write());
  } catch (err: unknown) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
