/**
 * Netlink framing: messages (nlmsghdr + payload), attributes (nlattr TLVs), acks (nlmsgerr)
 * and NLMSG_DONE. The `netlink` package formats and parses headers and attributes; this module
 * adds what batching over NETLINK_XFRM needs on top of it and knows nothing of xfrm structs.
 *
 * Ours on top of the package, and why:
 * - `formatMessage`/`formatAttribute` leave padding to the caller; each message and attribute is
 *   padded to 4 bytes here (`pad`), because the kernel steps to the next message of a datagram
 *   and the next attribute of a message at the aligned offset.
 * - A batch datagram is one contiguous buffer (see socket.ts for why not one iovec per message).
 * - `parseError` reads the errno and the echoed header but not the extended-ack TLVs after it,
 *   which carry the kernel's reason (e.g. "Requested AEAD algorithm not found").
 * - The package throws plain Errors on malformed input; they become XfrmTransportError here, and
 *   an attribute too long for its 16-bit length a RangeError before anything is formatted.
 */
import { HEADER_LENGTH, align, formatAttribute, formatMessage, pad, parseAttributes, parseError, parseMessages } from 'netlink';
import type { NetlinkAttribute, NetlinkMessage, NetlinkMessage_ } from 'netlink';
import { LE, asBuffer, concatBytes, cString, view } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import { NLA_HDRLEN, NLMSGERR_ATTR, NLM_F } from './uapi.js';

/** A received message; `data` is its payload (a view into the datagram). */
export type { NetlinkMessage, NetlinkAttribute };
/** A message to send: `port` is the sender's netlink port id, `data` the payload. */
export type OutgoingMessage = NetlinkMessage_;

/** Messages back to back, each padded to 4 bytes: one datagram for one sendmsg. */
export function encodeDatagram(messages: readonly OutgoingMessage[]): Uint8Array {
  return concatBytes(messages.flatMap((m) => pad(formatMessage(m))));
}

/** All netlink messages in one received datagram. */
export function parseDatagram(buf: Uint8Array): NetlinkMessage[] {
  try {
    return parseMessages(asBuffer(buf));
  } catch (err: unknown) {
    throw new XfrmTransportError(`malformed netlink datagram (${buf.length} bytes): ${errorText(err)}`, { cause: err });
  }
}

/** One attribute, padded to 4 bytes, as parts to be joined with the rest of its message. */
export function encodeAttr(type: number, data: Uint8Array): Uint8Array[] {
  if (NLA_HDRLEN + data.length > 0xffff) throw new RangeError(`attribute ${type}: ${data.length} bytes is too long`);
  return pad(formatAttribute({ type, data }));
}

export function encodeU32Attr(type: number, v: number): Uint8Array[] {
  const b = new Uint8Array(4);
  view(b).setUint32(0, v, LE);
  return encodeAttr(type, b);
}

/** The attributes from `buf[off]` to its end. Throws XfrmTransportError on a truncated one. */
export function parseAttrs(buf: Uint8Array, off: number): NetlinkAttribute[] {
  const out: NetlinkAttribute[] = [];
  try {
    parseAttributes(asBuffer(buf).subarray(off), (a) => out.push(a));
  } catch (err: unknown) {
    throw new XfrmTransportError(`malformed netlink attribute: ${errorText(err)}`, { cause: err });
  }
  return out;
}

export function attrU32(a: NetlinkAttribute): number {
  if (a.data.length < 4) throw new XfrmTransportError(`attribute ${a.type} too short`);
  return view(a.data).getUint32(0, LE);
}

export interface NlAck {
  /** Positive errno, 0 for success. */
  readonly errno: number;
  /** Extended-ack message, if the kernel sent one. */
  readonly extack?: string;
}

/** Decodes the payload of an NLMSG_ERROR (struct nlmsgerr + optional TLVs) of a message with `flags`. */
export function parseAck(payload: Uint8Array, flags: number): NlAck {
  let parsed: ReturnType<typeof parseError>;
  try {
    parsed = parseError(asBuffer(payload), flags);
  } catch (err: unknown) {
    throw new XfrmTransportError(`truncated NLMSG_ERROR: ${errorText(err)}`, { cause: err });
  }
  const errno = negErrno(parsed.errno);
  if (!(flags & NLM_F.ACK_TLVS)) return { errno };
  // The echoed request is the header only when capped, else the whole request.
  const echoed = flags & NLM_F.CAPPED ? HEADER_LENGTH : parsed.header.length;
  const tlvOff = 4 + align(echoed);
  if (tlvOff > payload.length) return { errno };
  let extack: string | undefined;
  for (const a of parseAttrs(payload, tlvOff)) {
    if (a.type === NLMSGERR_ATTR.MSG) extack = cString(a.data);
  }
  return extack === undefined ? { errno } : { errno, extack };
}

/** Payload of an NLMSG_DONE: the dump's status as a positive errno (0 for success). */
export function parseDone(payload: Uint8Array): number {
  return payload.length >= 4 ? negErrno(view(payload).getInt32(0, LE)) : 0;
}

/** Kernel errors are negative errnos; returns the positive errno (never -0). */
function negErrno(v: number): number {
  return v === 0 ? 0 : -v;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
