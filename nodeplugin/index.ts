/**
 * `kmesh-ipsec/nodeplugin`: the kernel layer, for a node plugin or a tool of your own. Unlike the
 * root export it does I/O: netlink sockets, bpftool, tc and the bpf filesystem, all as root (or
 * with CAP_NET_ADMIN, CAP_BPF and CAP_PERFMON). The caller's duties (what to keep between
 * syncs, when to publish an SPI, one process per network namespace) are in docs/kernel-api.md.
 *
 * - `NodeDatapath`: the whole sync step (adopt what the kernel holds, keep or drop old inbound
 *   SPIs, plan, keep encrypted pairs from falling back to clear text, reconcile). Built on
 *   `Reconciler`, which applies one `Plan` through two ports.
 * - The ports: `XfrmPort` (xfrm states and policies) and `DatapathMapsPort` (the BPF maps), with
 *   their kernel implementations `NetlinkXfrmPort` (over an `XfrmSocket`) and `BpfMapsPort` (over
 *   the `NodeBpf` handle `ensureMaps` returns). Tests and dry runs can pass their own.
 * - `XfrmSocket`: NETLINK_XFRM with batched changes and a pure codec underneath.
 * - `ensureMaps` / `NodeBpf`: load the tc programs against maps pinned per node, attach them,
 *   read and write the maps. The objects ship in the package (`DEFAULT_OBJECT_DIR`).
 *
 * @example
 * import { NodeDatapath, NetlinkXfrmPort, BpfMapsPort, XfrmSocket, ensureMaps, nodePinDir } from 'kmesh-ipsec/nodeplugin';
 * const bpf = await ensureMaps(nodePinDir('node-a'));
 * const datapath = new NodeDatapath(new NetlinkXfrmPort(XfrmSocket.open()), new BpfMapsPort(bpf));
 */
export {
  NodeDatapath,
  type SyncInput,
  type SyncMemory,
  type SyncResult,
} from './node-datapath.js';
export {
  DEFAULT_DRAIN_MS,
  Reconciler,
  type ChangeOutcome,
  type DatapathMapsPort,
  type KernelSnapshot,
  type ReconcileReport,
  type ReconcilerOptions,
  type XfrmPort,
} from './reconciler/reconciler.js';
export type { DiffOptions } from './reconciler/xfrm-diff.js';
export type { ProtectedCidr } from './reconciler/protect.js';
export { isOwnedInboundState, isOwnedPolicy, isOwnedState } from './reconciler/ownership.js';
export { BpfMapsPort, NetlinkXfrmPort } from './kernel-ports.js';
export * from './xfrm/index.js';
export * from './bpf/index.js';
