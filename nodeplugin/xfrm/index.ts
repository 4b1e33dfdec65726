/**
 * xfrm (IPsec SA/SP) configuration over NETLINK_XFRM: domain types, a pure codec and a thin
 * socket adapter. See socket.ts for batching and namespace notes; the wire format is in
 * netlink-frame.ts (netlink messages and attributes), state-codec.ts, policy-codec.ts,
 * shared-structs.ts (selectors, addresses, lifetimes, marks) and request-codec.ts.
 */
export type * from './types.js';
export { XfrmSocket, describeChange } from './socket.js';
export type { BatchResult, XfrmSocketOptions, XfrmSocketStats } from './socket.js';
export {
  XfrmError, XfrmTransportError, errnoName, describeMark, describePolicy, describePolicyId, describeSelector,
  describeState, describeStateId, describeTemplate,
} from './errors.js';
export type { XfrmErrorInit } from './errors.js';
export { anySelector } from './shared-structs.js';
