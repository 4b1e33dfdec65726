/**
 * Which kernel objects are ours (docs/mark-layout.md, "Ownership"). Everything the reconciler
 * deletes passes through these predicates first, so another IPsec user's config on the same
 * machine, Kmesh's included, is never touched.
 */
import { DECRYPTED_MARK, ENCRYPT_MARK, MARK_MASK, OWNED_REQID, peerIdFromInboundMark } from '../../core/marks.js';
import type { XfrmPolicy, XfrmState } from '../xfrm/types.js';

export function isOwnedState(s: XfrmState): boolean {
  return s.reqid === OWNED_REQID && s.proto === 'esp';
}

/** One of our inbound SAs: ours, and marked with a per-peer inbound mark. */
export function isOwnedInboundState(s: XfrmState): boolean {
  return isOwnedState(s) && s.mark !== undefined && peerIdFromInboundMark(s.mark.value) !== undefined;
}

export function isOwnedPolicy(p: XfrmPolicy & { readonly socket?: boolean }): boolean {
  if (p.socket === true || p.tmpls.length === 0) return false;
  const mark = p.mark;
  if (mark?.mask !== MARK_MASK || (mark.value !== ENCRYPT_MARK && mark.value !== DECRYPTED_MARK)) return false;
  return p.tmpls.every((t) => t.reqid === OWNED_REQID);
}
