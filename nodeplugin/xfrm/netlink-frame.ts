/**
 * Netlink framing: messages (nlmsghdr + payload), attributes (nlattr TLVs), acks (nlmsgerr)
 * and NLMSG_DONE. The `netlink` package formats and parses headers and attributes; this module
 * adds what batching over NETLINK_XFRM needs on top of it and knows nothing of xfrm structs.
 *
 * Ours on top of the package, and why:
 * - Encoding writes headers into one buffer per payload and one per datagram, sized in advance
 *   (`attrSpace`, `writeAttrHeader`, `encodeDatagram`), instead of the package's
 *   `formatMessage`/`formatAttribute`: those make a Buffer for every header and return arrays
 *   of parts to be joined, which was most of the cost of encoding 5,000 policies in a fresh
 *   process (bench:nodeplugin, --cpu-prof: formatAttribute was the top self-time item and
 *   garbage collection a third of the run). The layout is the same: each message and attribute
 *   starts at a 4-byte aligned offset, because the kernel steps to the next one there.
 * - A batch datagram is one contiguous buffer (see socket.ts for why not one iovec per message).
 * - `parseError` reads the errno and the echoed header but not the extended-ack TLVs after it,
 *   which carry the kernel's reason (e.g. "Requested AEAD algorithm not found").
 * - The package throws plain Errors on malformed input; they become XfrmTransportError here, and
 *   an attribute too long for its 16-bit length a RangeError before anything is formatted.
 */
import { HEADER_LENGTH, align, parseAttributes, parseError, parseMessages } from 'netlink';
import type { NetlinkAttribute, NetlinkMessage } from 'netlink';
import { LE, asBuffer, cString, view, zeroed } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import { NLA_HDRLEN, NLMSGERR_ATTR, NLM_F } from './uapi.js';

/** A received message; `data` is its payload (a view into the datagram). */
export type { NetlinkMessage, NetlinkAttribute };
/** A message to send: `port` is the sender's netlink port id, `data` the payload. */
export interface OutgoingMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly port: number;
  readonly data: Uint8Array;
}

/** Messages back to back, each padded to 4 bytes: one datagram for one sendmsg. */
export function encodeDatagram(messages: readonly OutgoingMessage[]): Uint8Array {
  let size = 0;
  for (const m of messages) size += align(HEADER_LENGTH + m.data.length);
  const out = zeroed(size);
  const dv = view(out);
  let off = 0;
  for (const m of messages) {
    const length = HEADER_LENGTH + m.data.length;
    // struct nlmsghdr
    dv.setUint32(off, length, LE);
    dv.setUint16(off + 4, m.type, LE);
    dv.setUint16(off + 6, m.flags, LE);
    dv.setUint32(off + 8, m.seq, LE);
    dv.setUint32(off + 12, m.port, LE);
    out.set(m.data, off + HEADER_LENGTH);
    off += align(length);
  }
  return out;
}

/** All netlink messages in one received datagram. */
export function parseDatagram(buf: Uint8Array): NetlinkMessage[] {
  try {
    return parseMessages(asBuffer(buf));
  } catch (err: unknown) {
    throw new XfrmTransportError(`malformed netlink datagram (${buf.length} bytes): ${errorText(err)}`, { cause: err });
  }
}

/** Bytes an attribute with `dataLength` bytes of data takes in a message, padding included. */
export function attrSpace(dataLength: number): number {
  return align(NLA_HDRLEN + dataLength);
}

/**
 * Writes the header (struct nlattr) of an attribute with `dataLength` bytes of data at `off`;
 * returns where its data goes. The next attribute starts at `off + attrSpace(dataLength)`.
 */
export function writeAttrHeader(dv: DataView, off: number, type: number, dataLength: number): number {
  if (NLA_HDRLEN + dataLength > 0xffff) throw new RangeError(`attribute ${type}: ${dataLength} bytes is too long`);
  dv.setUint16(off, NLA_HDRLEN + dataLength, LE);
  dv.setUint16(off + 2, type, LE);
  return off + NLA_HDRLEN;
}

/** Writes a u32 attribute at `off`; returns where the next one starts. */
export function writeU32Attr(dv: DataView, off: number, type: number, v: number): number {
  dv.setUint32(writeAttrHeader(dv, off, type, 4), v, LE);
  return off + attrSpace(4);
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
