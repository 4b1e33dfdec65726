/** Byte helpers shared by the netlink framing and the xfrm struct codecs. */

/**
 * The parts back to back in one new buffer (Buffer.concat), returned as a plain Uint8Array view
 * so that callers and tests see the same type whichever codec built the bytes.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const joined = Buffer.concat(parts);
  return new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
}
