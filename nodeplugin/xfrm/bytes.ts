/**
 * Byte helpers shared by the netlink framing and the xfrm struct codecs. Netlink headers and
 * most xfrm struct fields are in the host's byte order; SPIs, ports and addresses are in
 * network order.
 */
import { endianness } from 'node:os';

/** True when host-order fields are little-endian (the DataView flag for them). */
export const LE = endianness() === 'LE';

export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The same bytes as a Buffer, without copying (the `netlink` package parses Buffers). */
export function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * The parts back to back in one new buffer (Buffer.concat), returned as a plain Uint8Array view
 * so that callers and tests see the same type whichever codec built the bytes.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const joined = Buffer.concat(parts);
  return new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
}

/** The text of a NUL-terminated (or NUL-padded) C string field. */
export function cString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return Buffer.from(nul < 0 ? b : b.subarray(0, nul)).toString('utf8');
}
