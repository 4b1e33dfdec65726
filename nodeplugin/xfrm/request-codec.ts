/**
 * What goes on the wire for each change and dump: the netlink message type, flags and payload.
 * The socket adds sequence numbers and the port id when it frames them.
 */
import { encodePolicy, encodePolicyId } from './policy-codec.js';
import { encodeState, encodeStateId } from './state-codec.js';
import { NLM_F, XFRM_MSG } from './uapi.js';
import type { XfrmChange } from './types.js';

export interface XfrmRequest {
  readonly type: number;
  readonly flags: number;
  readonly payload: Uint8Array;
}

/** Netlink type, flags and payload of one change (always REQUEST|ACK). */
export function encodeChange(c: XfrmChange): XfrmRequest {
  const flags = NLM_F.REQUEST | NLM_F.ACK;
  switch (c.op) {
    case 'addState': return { type: XFRM_MSG.NEWSA, flags, payload: encodeState(c.state) };
    case 'updateState': return { type: XFRM_MSG.UPDSA, flags, payload: encodeState(c.state) };
    case 'deleteState': return { type: XFRM_MSG.DELSA, flags, payload: encodeStateId(c.id) };
    case 'addPolicy': return { type: XFRM_MSG.NEWPOLICY, flags, payload: encodePolicy(c.policy) };
    case 'updatePolicy': return { type: XFRM_MSG.UPDPOLICY, flags, payload: encodePolicy(c.policy) };
    case 'deletePolicy': return { type: XFRM_MSG.DELPOLICY, flags, payload: encodePolicyId(c.id) };
  }
}

/** Dump request of all states or all policies (empty payload: no filter). */
export function encodeDumpRequest(what: 'states' | 'policies'): XfrmRequest {
  return {
    type: what === 'states' ? XFRM_MSG.GETSA : XFRM_MSG.GETPOLICY,
    flags: NLM_F.REQUEST | NLM_F.DUMP,
    payload: new Uint8Array(0),
  };
}
