/**
 * skb mark layout and kernel-object ownership. docs/mark-layout.md explains why each value
 * is what it is; keep the two in step.
 *
 * All marks are matched with a full 32-bit mask, as Kmesh does, so a packet carries exactly
 * one of these values or none.
 */

/** Full mask used with every mark below. */
export const MARK_MASK = 0xffffffff;

/** Set by the pod-veth tc program on packets to a peer pod CIDR; selects out policies (Kmesh). */
export const ENCRYPT_MARK = 0xe0;

/** Output mark of every inbound state: decrypted packets carry it; selects in/fwd policies (Kmesh). */
export const DECRYPTED_MARK = 0xd0;

/** Smallest and largest per-peer id a node hands out (16 bits, 0 is "no peer"). */
export const PEER_ID_MIN = 1;
export const PEER_ID_MAX = 0xffff;

/**
 * Mark of the inbound state for ESP from peer `peerId`. The node-interface tc program sets it
 * from the outer source address before xfrm input, so each peer gets its own (dst, SPI, mark)
 * key and any number of peers can share one SPI.
 */
export function inboundStateMark(peerId: number): number {
  if (!Number.isInteger(peerId) || peerId < PEER_ID_MIN || peerId > PEER_ID_MAX) {
    throw new RangeError(`peerId: must be an integer from ${PEER_ID_MIN} to ${PEER_ID_MAX}, got ${peerId}`);
  }
  return ((peerId << 16) | DECRYPTED_MARK) >>> 0;
}

/** The peer id encoded in an inbound state mark, or undefined if the mark is not one of ours. */
export function peerIdFromInboundMark(mark: number): number | undefined {
  const id = mark >>> 16;
  if ((mark & 0xffff) !== DECRYPTED_MARK || id < PEER_ID_MIN) return undefined;
  return id;
}

/**
 * reqid of every xfrm state and template we create. It is not on the wire (so Kmesh peers do
 * not care) and differs from Kmesh's reqid 1, which lets us recognise our objects: ASCII "km".
 */
export const OWNED_REQID = 0x6b6d;
