/**
 * A "node plugin" inside one node's network namespace, for the multi-node VM suite: it sets up
 * the BPF programs and drives NodeDatapath.sync(), the same step the daemon runs. Every call
 * opens nothing new: one xfrm socket and one set of pinned maps for the worker's lifetime, but
 * sync() re-adopts everything from the kernel, as a restarted plugin would. Not a test file.
 */
import { ensureMaps, type NodeBpf } from '../../nodeplugin/bpf/index.js';
import { BpfMapsPort, NetlinkXfrmPort } from '../../nodeplugin/kernel-ports.js';
import { NodeDatapath, type SyncInput, type SyncMemory } from '../../nodeplugin/node-datapath.js';
import { type ChangeOutcome, Reconciler, type XfrmPort } from '../../nodeplugin/reconciler/reconciler.js';
import type { Plan } from '../../core/plan.js';
import { XfrmSocket, type XfrmChange } from '../../nodeplugin/xfrm/index.js';
import { keyFingerprint } from '../../core/fingerprint.js';
import { isOwnedPolicy, isOwnedState } from '../../nodeplugin/reconciler/ownership.js';
import { failRpc, serveRpc } from '../helpers/netns.js';

let socket: XfrmSocket;
let bpf: NodeBpf | undefined;
let datapath: NodeDatapath | undefined;
let reconciler: Reconciler | undefined;

/**
 * The kernel port, plus failure injection for the host suite: with `refuseStateAdds` on, every
 * SA add is refused as a kernel without ESP refuses it and the rest goes to the kernel, so a
 * failed install means the same on every kernel, with or without ESP.
 */
class InjectableXfrmPort implements XfrmPort {
  refuseStateAdds = false;
  readonly #kernel: XfrmPort;
  constructor(kernel: XfrmPort) {
    this.#kernel = kernel;
  }
  dumpStates() { return this.#kernel.dumpStates(); }
  dumpPolicies() { return this.#kernel.dumpPolicies(); }
  async apply(changes: readonly XfrmChange[]): Promise<readonly ChangeOutcome[]> {
    const refused = (c: XfrmChange) => this.refuseStateAdds && (c.op === 'addState' || c.op === 'updateState');
    const passed = await this.#kernel.apply(changes.filter((c) => !refused(c)));
    let next = 0;
    return changes.map((change) => refused(change)
      ? { change, error: new Error('injected refusal (as from a kernel without ESP: EPROTONOSUPPORT)') }
      : passed[next++] ?? { change, error: new Error('the kernel port returned fewer outcomes than changes') });
  }
}
let xfrmPort: InjectableXfrmPort | undefined;
try {
  socket = XfrmSocket.open();
} catch (err) {
  failRpc(err);
}

/** An owned SA as the test compares it: no key bytes cross back, only a fingerprint. */
export interface StateSummary {
  readonly src: string;
  readonly dst: string;
  readonly spi: number;
  readonly mark?: number;
  readonly keyFingerprint: string;
  readonly addTime: number;
  readonly bytes: number;
}

const api = {
  async setup(pinDir: string, podIfs: string[], nodeIfs: string[]): Promise<void> {
    bpf = await ensureMaps(pinDir);
    for (const i of podIfs) await bpf.attachPodProgram(i);
    for (const i of nodeIfs) await bpf.attachNodeProgram(i);
    xfrmPort = new InjectableXfrmPort(new NetlinkXfrmPort(socket));
    datapath = new NodeDatapath(xfrmPort, new BpfMapsPort(bpf));
    reconciler = new Reconciler(xfrmPort, new BpfMapsPort(bpf));
  },
  refuseStateAdds(on: boolean): void {
    if (!xfrmPort) throw new Error('setup() first');
    xfrmPort.refuseStateAdds = on;
  },
  /** One reconcile of a given plan (the host suite's plans carry no SAs: see there). */
  async reconcilePlan(plan: Plan) {
    if (!reconciler) throw new Error('setup() first');
    return reconciler.reconcile(plan);
  },
  async sync(input: SyncInput, memory?: SyncMemory) {
    if (!datapath) throw new Error('setup() first');
    const r = await datapath.sync(input, memory);
    return { report: r.report, advertisedSpi: r.advertisedSpi, acceptedSpis: r.acceptedSpis, memory: r.memory };
  },
  async ownedStates(): Promise<StateSummary[]> {
    return (await socket.dumpStates()).filter(isOwnedState).map((s) => ({
      src: s.src, dst: s.dst, spi: s.spi, ...(s.mark ? { mark: s.mark.value } : {}),
      keyFingerprint: keyFingerprint(s.aead?.key ?? new Uint8Array()), addTime: s.current.addTime, bytes: s.current.bytes,
    }));
  },
  async ownedPolicyCount(): Promise<number> {
    return (await socket.dumpPolicies()).filter(isOwnedPolicy).length;
  },
  counters: () => {
    if (!bpf) throw new Error('setup() first');
    const c = bpf.readCounters();
    return { pod: { ...c.pod }, node: { ...c.node } };
  },
  peerCidrs: () => bpf?.listPeerCidrs() ?? [],
};
export type NodeWorkerApi = typeof api;
serveRpc(api);
