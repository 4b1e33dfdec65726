/** The reconciler's ports implemented over the real kernel adapters. */
import { canonicalIp } from '../core/ip.js';
import type { NodeBpf } from './bpf/index.js';
import type { ChangeOutcome, DatapathMapsPort, XfrmPort } from './reconciler/reconciler.js';
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

export class BpfMapsPort implements DatapathMapsPort {
  readonly #bpf: NodeBpf;
  constructor(bpf: NodeBpf) {
    this.#bpf = bpf;
  }
  setPeerMarks(marks: ReadonlyMap<string, number>): Promise<void> {
    return this.setPeerMarksCounted(marks).then(() => undefined);
  }
  setPeerCidrs(cidrs: readonly string[]): Promise<void> {
    return this.setPeerCidrsCounted(cidrs).then(() => undefined);
  }
  /** As setPeerMarks; resolves to the number of map entries written or deleted. */
  setPeerMarksCounted(marks: ReadonlyMap<string, number>): Promise<number> {
    // KmeshNodeInfo addresses are hashed as written, but the map wants canonical text.
    const r = this.#bpf.setPeerMarks(new Map([...marks].map(([a, m]) => [canonicalIp(a), m])));
    return Promise.resolve(r.added.length + r.removed.length);
  }
  /** As setPeerCidrs; resolves to the number of map entries written or deleted. */
  setPeerCidrsCounted(cidrs: readonly string[]): Promise<number> {
    const r = this.#bpf.setPeerCidrs(cidrs);
    return Promise.resolve(r.added.length + r.removed.length);
  }
}
