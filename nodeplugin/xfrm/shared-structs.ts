/**
 * The xfrm structs that states and policies both carry: xfrm_address_t, struct xfrm_selector,
 * the lifetimes (struct xfrm_lifetime_cfg / xfrm_lifetime_cur) and the XFRMA_MARK attribute
 * (struct xfrm_mark). Offsets and sizes: uapi.ts.
 */
import ipaddr from 'ipaddr.js';
import { parseCidr, parseIp } from '../../core/ip.js';
import { LE, setBytes, view } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import { attrSpace, writeAttrHeader } from './netlink-frame.js';
import type { NetlinkAttribute } from './netlink-frame.js';
import { OFF, SIZE, XFRMA, XFRM_INF_HALF } from './uapi.js';
import { afToFamily, checkRange, checkU32, familyToAf } from './xfrm-values.js';
import type { IpFamily, XfrmLifetimeCurrent, XfrmMark, XfrmSelector } from './types.js';

/** Writes the xfrm_address_t of an address of the given family at `off` (the rest stays zero). */
export function writeAddress(dv: DataView, off: number, family: IpFamily, text: string, what = 'address'): void {
  const ip = parseIp(text);
  if (!ip) throw new TypeError(`${what}: not an IP address: ${JSON.stringify(text)}`);
  if (ip.family !== family) throw new TypeError(`${what}: ${text} is not an IPv${family} address`);
  setBytes(dv, off, ip.bytes);
}

/** Canonical text of the xfrm_address_t at `bytes[0..16)`. */
export function decodeAddress(family: IpFamily, bytes: Uint8Array): string {
  // A dotted quad is its four bytes in decimal; only IPv6 needs ipaddr's RFC 5952 rules.
  if (family === 4) return `${bytes[0] ?? 0}.${bytes[1] ?? 0}.${bytes[2] ?? 0}.${bytes[3] ?? 0}`;
  return ipaddr.fromByteArray(Array.from(bytes.subarray(0, 16))).toString();
}


/** The any-selector of a family. */
export function anySelector(family: IpFamily): XfrmSelector {
  return family === 4 ? { src: '0.0.0.0/0', dst: '0.0.0.0/0' } : { src: '::/0', dst: '::/0' };
}

/** Writes struct xfrm_selector at `off` of a zeroed buffer; returns its family. */
export function writeSelector(dv: DataView, off: number, sel: XfrmSelector): IpFamily {
  const s = parseCidr(sel.src);
  const d = parseCidr(sel.dst);
  if (!s) throw new TypeError(`selector src: not a CIDR: ${JSON.stringify(sel.src)}`);
  if (!d) throw new TypeError(`selector dst: not a CIDR: ${JSON.stringify(sel.dst)}`);
  if (s.family !== d.family) throw new TypeError(`selector: ${sel.src} and ${sel.dst} are of different families`);
  const o = OFF.selector;
  setBytes(dv, off + o.daddr, d.bytes);
  setBytes(dv, off + o.saddr, s.bytes);
  const dport = checkRange('selector dstPort', sel.dstPort ?? 0, 0xffff);
  const sport = checkRange('selector srcPort', sel.srcPort ?? 0, 0xffff);
  dv.setUint16(off + o.dport, dport, false);
  dv.setUint16(off + o.dportMask, dport ? 0xffff : 0, false);
  dv.setUint16(off + o.sport, sport, false);
  dv.setUint16(off + o.sportMask, sport ? 0xffff : 0, false);
  dv.setUint16(off + o.family, familyToAf(s.family), LE);
  dv.setUint8(off + o.prefixlenD, d.prefixLength);
  dv.setUint8(off + o.prefixlenS, s.prefixLength);
  dv.setUint8(off + o.proto, checkRange('selector proto', sel.proto ?? 0, 255));
  dv.setInt32(off + o.ifindex, checkRange('selector ifindex', sel.ifindex ?? 0, 0x7fffffff), LE);
  return s.family;
}

/** Reads struct xfrm_selector at `off`. A selector with family 0 is read as `fallback`. */
export function readSelector(buf: Uint8Array, off: number, fallback: IpFamily): XfrmSelector {
  const dv = view(buf);
  const o = OFF.selector;
  const af = dv.getUint16(off + o.family, LE);
  const family = af === 0 ? fallback : afToFamily(af);
  const sel: { -readonly [K in keyof XfrmSelector]: XfrmSelector[K] } = {
    src: `${decodeAddress(family, buf.subarray(off + o.saddr))}/${dv.getUint8(off + o.prefixlenS)}`,
    dst: `${decodeAddress(family, buf.subarray(off + o.daddr))}/${dv.getUint8(off + o.prefixlenD)}`,
  };
  const proto = dv.getUint8(off + o.proto);
  const sport = dv.getUint16(off + o.sport, false) & dv.getUint16(off + o.sportMask, false);
  const dport = dv.getUint16(off + o.dport, false) & dv.getUint16(off + o.dportMask, false);
  const ifindex = dv.getInt32(off + o.ifindex, LE);
  if (proto) sel.proto = proto;
  if (sport) sel.srcPort = sport;
  if (dport) sel.dstPort = dport;
  if (ifindex) sel.ifindex = ifindex;
  return sel;
}

/**
 * struct xfrm_lifetime_cfg for "never expires": the four byte/packet limits are XFRM_INF, the
 * four time limits 0 (= no timer). XFRM_INF in a time field would be a bug: the kernel's
 * timers compute `limit + add_time - now` in 64 bits, which wraps to a negative timeout, and
 * the object hard-expires (is deleted) about a second after it was added.
 */
export function writeInfiniteLifetime(dv: DataView, off: number): void {
  // The four limits are 8 halves; the time limits after them stay zero.
  for (let i = 0; i < 8; i++) dv.setUint32(off + i * 4, XFRM_INF_HALF);
}

export function readLifetimeCurrent(buf: Uint8Array, off: number): XfrmLifetimeCurrent {
  const dv = view(buf);
  const o = OFF.lifetimeCur;
  return {
    bytes: Number(dv.getBigUint64(off + o.bytes, LE)),
    packets: Number(dv.getBigUint64(off + o.packets, LE)),
    addTime: Number(dv.getBigUint64(off + o.addTime, LE)),
    useTime: Number(dv.getBigUint64(off + o.useTime, LE)),
  };
}

/** Bytes an XFRMA_MARK attribute takes. */
export const MARK_ATTR_SPACE = attrSpace(SIZE.mark);

/** Writes an XFRMA_MARK attribute at `off`; returns where the next attribute starts. */
export function writeMarkAttr(dv: DataView, off: number, mark: XfrmMark): number {
  const data = writeAttrHeader(dv, off, XFRMA.MARK, SIZE.mark);
  dv.setUint32(data, checkU32('mark value', mark.value), LE);
  dv.setUint32(data + 4, checkU32('mark mask', mark.mask), LE);
  return off + MARK_ATTR_SPACE;
}

export function attrMark(a: NetlinkAttribute): XfrmMark {
  if (a.data.length < SIZE.mark) throw new XfrmTransportError('XFRMA_MARK too short');
  const dv = view(a.data);
  return { value: dv.getUint32(0, LE), mask: dv.getUint32(4, LE) };
}
