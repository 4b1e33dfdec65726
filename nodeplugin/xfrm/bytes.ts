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
 * `n` zero bytes as a plain Uint8Array. Small ones are cut from Node's shared 8 KiB pool
 * (Buffer.allocUnsafe, then zeroed): `new Uint8Array(n)` and Buffer.alloc make an ArrayBuffer
 * each, which is what made the encoder slow (a buffer per field cost about 1 µs and most of its
 * garbage collection, measured with --cpu-prof in bench:nodeplugin). The bytes share an
 * ArrayBuffer with others: always address them through byteOffset (see `view`).
 */
export function zeroed(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(n).fill(0);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** Writes `bytes` (an address: 4 or 16 of them) at `off` of the view. */
export function setBytes(dv: DataView, off: number, bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) dv.setUint8(off + i, bytes[i] ?? 0);
}

/** The text of a NUL-terminated (or NUL-padded) C string field. */
export function cString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return Buffer.from(nul < 0 ? b : b.subarray(0, nul)).toString('utf8');
}
