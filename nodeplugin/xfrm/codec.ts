/**
 * Pure encoder/decoder for NETLINK_XFRM messages: netlink framing, attributes, and the xfrm
 * structs (xfrm_usersa_info, xfrm_usersa_id, xfrm_userpolicy_info, xfrm_userpolicy_id,
 * xfrm_user_tmpl, xfrm_selector, xfrm_algo_aead, xfrm_mark, lifetimes). No I/O here; the
 * socket adapter (socket.ts) only moves the bytes.
 *
 * Host-order fields use the machine's endianness (netlink is host-order); SPIs, ports and
 * addresses are network order. Layouts: see uapi.ts.
 */
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';
import { parseCidr, parseIp } from '../../core/ip.js';
import { concatBytes } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import {
  AF_INET, AF_INET6, ALG_NAME_LEN, NLA_HDRLEN, NLA_TYPE_MASK, NLMSGERR_ATTR, NLMSG_HDRLEN, NLM_F, OFF, SIZE,
  XFRMA, XFRM_INF, XFRM_MODE, XFRM_MSG, XFRM_POLICY_ACTION, XFRM_POLICY_DIR, XFRM_POLICY_MAX, XFRM_POLICY_TYPE,
  XFRM_PROTO,
} from './uapi.js';
import type {
  IpFamily, XfrmAead, XfrmChange, XfrmLifetimeCurrent, XfrmMark, XfrmMode, XfrmPolicy, XfrmPolicyAction,
  XfrmPolicyDir, XfrmPolicyId, XfrmPolicyInfo, XfrmPolicyType, XfrmProto, XfrmSelector, XfrmState, XfrmStateId,
  XfrmStateInfo, XfrmTemplate,
} from './types.js';

const LE = endianness() === 'LE';

// ---------------------------------------------------------------------------------------------
// Small helpers

const align4 = (n: number): number => (n + 3) & ~3;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function checkU32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name}: must be an integer from 0 to 0xffffffff, got ${v}`);
  return v;
}

function checkRange(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name}: must be an integer from 0 to ${max}, got ${v}`);
  return v;
}

function lookup<K extends string>(table: Readonly<Record<K, number>>, name: string, what: string): number {
  const v = (table as Readonly<Record<string, number | undefined>>)[name];
  if (v !== undefined) return v;
  const m = /^[a-z]+-(\d+)$/.exec(name);
  if (m?.[1] !== undefined) return checkRange(what, Number(m[1]), 255);
  throw new RangeError(`${what}: unknown value ${JSON.stringify(name)}`);
}

function reverse<K extends string>(table: Readonly<Record<K, number>>, n: number): K | undefined {
  for (const [k, v] of Object.entries(table) as [K, number][]) if (v === n) return k;
  return undefined;
}

export function protoNumber(p: XfrmProto): number {
  return lookup(XFRM_PROTO, p, 'proto');
}
export function protoName(n: number): XfrmProto {
  return reverse(XFRM_PROTO, n) ?? `proto-${n}`;
}
export function modeNumber(m: XfrmMode): number {
  return lookup(XFRM_MODE, m, 'mode');
}
export function modeName(n: number): XfrmMode {
  return reverse(XFRM_MODE, n) ?? `mode-${n}`;
}

export function familyToAf(f: IpFamily): number {
  return f === 4 ? AF_INET : AF_INET6;
}
export function afToFamily(af: number): IpFamily {
  if (af === AF_INET) return 4;
  if (af === AF_INET6) return 6;
  throw new XfrmTransportError(`unexpected address family ${af} in an xfrm message`);
}

// ---------------------------------------------------------------------------------------------
// Addresses and selectors

/** xfrm_address_t bytes of an address of the given family. */
export function encodeAddress(family: IpFamily, text: string, what = 'address'): Uint8Array {
  const ip = parseIp(text);
  if (!ip) throw new TypeError(`${what}: not an IP address: ${JSON.stringify(text)}`);
  if (ip.family !== family) throw new TypeError(`${what}: ${text} is not an IPv${family} address`);
  const out = new Uint8Array(SIZE.address);
  out.set(ip.bytes);
  return out;
}

/** Canonical text of the xfrm_address_t at `bytes[0..16)`. */
export function decodeAddress(family: IpFamily, bytes: Uint8Array): string {
  const n = family === 4 ? 4 : 16;
  return ipaddr.fromByteArray(Array.from(bytes.subarray(0, n))).toString();
}

interface ParsedSelector {
  family: IpFamily;
  src: Uint8Array;
  dst: Uint8Array;
  srcLen: number;
  dstLen: number;
}

function parseSelectorCidrs(sel: XfrmSelector): ParsedSelector {
  const s = parseCidr(sel.src);
  const d = parseCidr(sel.dst);
  if (!s) throw new TypeError(`selector src: not a CIDR: ${JSON.stringify(sel.src)}`);
  if (!d) throw new TypeError(`selector dst: not a CIDR: ${JSON.stringify(sel.dst)}`);
  if (s.family !== d.family) throw new TypeError(`selector: ${sel.src} and ${sel.dst} are of different families`);
  return { family: s.family, src: s.bytes, dst: d.bytes, srcLen: s.prefixLength, dstLen: d.prefixLength };
}

/** The any-selector of a family. */
export function anySelector(family: IpFamily): XfrmSelector {
  return family === 4 ? { src: '0.0.0.0/0', dst: '0.0.0.0/0' } : { src: '::/0', dst: '::/0' };
}

/** Writes struct xfrm_selector at `off`; returns its family. */
export function writeSelector(buf: Uint8Array, off: number, sel: XfrmSelector): IpFamily {
  const p = parseSelectorCidrs(sel);
  const dv = view(buf);
  const o = OFF.selector;
  buf.set(p.dst, off + o.daddr);
  buf.set(p.src, off + o.saddr);
  const dport = checkRange('selector dstPort', sel.dstPort ?? 0, 0xffff);
  const sport = checkRange('selector srcPort', sel.srcPort ?? 0, 0xffff);
  dv.setUint16(off + o.dport, dport, false);
  dv.setUint16(off + o.dportMask, dport ? 0xffff : 0, false);
  dv.setUint16(off + o.sport, sport, false);
  dv.setUint16(off + o.sportMask, sport ? 0xffff : 0, false);
  dv.setUint16(off + o.family, familyToAf(p.family), LE);
  dv.setUint8(off + o.prefixlenD, p.dstLen);
  dv.setUint8(off + o.prefixlenS, p.srcLen);
  dv.setUint8(off + o.proto, checkRange('selector proto', sel.proto ?? 0, 255));
  dv.setInt32(off + o.ifindex, checkRange('selector ifindex', sel.ifindex ?? 0, 0x7fffffff), LE);
  dv.setUint32(off + o.user, 0, LE);
  return p.family;
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
function writeInfiniteLifetime(buf: Uint8Array, off: number): void {
  const dv = view(buf);
  for (let i = 0; i < 4; i++) dv.setBigUint64(off + i * 8, XFRM_INF, LE);
  for (let i = 4; i < 8; i++) dv.setBigUint64(off + i * 8, 0n, LE);
}

function readLifetimeCurrent(buf: Uint8Array, off: number): XfrmLifetimeCurrent {
  const dv = view(buf);
  const o = OFF.lifetimeCur;
  return {
    bytes: Number(dv.getBigUint64(off + o.bytes, LE)),
    packets: Number(dv.getBigUint64(off + o.packets, LE)),
    addTime: Number(dv.getBigUint64(off + o.addTime, LE)),
    useTime: Number(dv.getBigUint64(off + o.useTime, LE)),
  };
}

// ---------------------------------------------------------------------------------------------
// Netlink attributes

export interface NlAttr {
  readonly type: number;
  readonly data: Uint8Array;
}

/** One attribute, padded to 4 bytes. */
export function encodeAttr(type: number, data: Uint8Array): Uint8Array {
  const len = NLA_HDRLEN + data.length;
  if (len > 0xffff) throw new RangeError(`attribute ${type}: ${data.length} bytes is too long`);
  const out = new Uint8Array(align4(len));
  const dv = view(out);
  dv.setUint16(0, len, LE);
  dv.setUint16(2, type, LE);
  out.set(data, NLA_HDRLEN);
  return out;
}

export function encodeU32Attr(type: number, v: number): Uint8Array {
  const b = new Uint8Array(4);
  view(b).setUint32(0, v, LE);
  return encodeAttr(type, b);
}

export function encodeMarkAttr(mark: XfrmMark): Uint8Array {
  const b = new Uint8Array(SIZE.mark);
  const dv = view(b);
  dv.setUint32(0, checkU32('mark value', mark.value), LE);
  dv.setUint32(4, checkU32('mark mask', mark.mask), LE);
  return encodeAttr(XFRMA.MARK, b);
}

/** Attributes in `buf[off..end)`. Throws on a truncated attribute. */
export function parseAttrs(buf: Uint8Array, off: number, end = buf.length): NlAttr[] {
  const dv = view(buf);
  const out: NlAttr[] = [];
  while (off + NLA_HDRLEN <= end) {
    const len = dv.getUint16(off, LE);
    const type = dv.getUint16(off + 2, LE) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > end) throw new XfrmTransportError(`malformed netlink attribute (type ${type}, length ${len})`);
    out.push({ type, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

function attrU32(a: NlAttr): number {
  if (a.data.length < 4) throw new XfrmTransportError(`attribute ${a.type} too short`);
  return view(a.data).getUint32(0, LE);
}

function attrMark(a: NlAttr): XfrmMark {
  if (a.data.length < SIZE.mark) throw new XfrmTransportError('XFRMA_MARK too short');
  const dv = view(a.data);
  return { value: dv.getUint32(0, LE), mask: dv.getUint32(4, LE) };
}

// ---------------------------------------------------------------------------------------------
// Netlink messages

export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly payload: Uint8Array;
}

/** One netlink message (header + payload, padded to 4 bytes). */
export function encodeNlmsg(msg: NlMessage): Uint8Array {
  const len = NLMSG_HDRLEN + msg.payload.length;
  const out = new Uint8Array(align4(len));
  const dv = view(out);
  dv.setUint32(0, len, LE);
  dv.setUint16(4, msg.type, LE);
  dv.setUint16(6, msg.flags, LE);
  dv.setUint32(8, msg.seq >>> 0, LE);
  dv.setUint32(12, msg.pid >>> 0, LE);
  out.set(msg.payload, NLMSG_HDRLEN);
  return out;
}

/** All netlink messages in one received datagram. */
export function parseNlmsgs(buf: Uint8Array): NlMessage[] {
  const dv = view(buf);
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = dv.getUint32(off, LE);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new XfrmTransportError(`malformed netlink message (length ${len} at ${off} of ${buf.length})`);
    out.push({
      type: dv.getUint16(off + 4, LE),
      flags: dv.getUint16(off + 6, LE),
      seq: dv.getUint32(off + 8, LE),
      pid: dv.getUint32(off + 12, LE),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  if (buf.length - off > 3) throw new XfrmTransportError(`malformed netlink datagram (${buf.length - off} trailing bytes)`);
  return out;
}

export interface NlAck {
  /** Positive errno, 0 for success. */
  readonly errno: number;
  /** Extended-ack message, if the kernel sent one. */
  readonly extack?: string;
}

/** Decodes the payload of an NLMSG_ERROR (struct nlmsgerr + optional TLVs) of a message with `flags`. */
export function parseAck(payload: Uint8Array, flags: number): NlAck {
  if (payload.length < 4) throw new XfrmTransportError('truncated NLMSG_ERROR');
  const dv = view(payload);
  const errno = negErrno(dv.getInt32(0, LE));
  if (!(flags & NLM_F.ACK_TLVS) || payload.length < SIZE.nlmsgerr) return { errno };
  // The echoed request is the header only when capped, else the whole request.
  const echoed = flags & NLM_F.CAPPED ? NLMSG_HDRLEN : dv.getUint32(4, LE);
  const tlvOff = 4 + align4(echoed);
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

function cString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return Buffer.from(nul < 0 ? b : b.subarray(0, nul)).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// States

function encodeAeadAttr(aead: XfrmAead): Uint8Array {
  const name = Buffer.from(aead.name, 'utf8');
  if (name.length === 0 || name.length >= ALG_NAME_LEN) throw new RangeError(`aead name: 1 to ${ALG_NAME_LEN - 1} bytes, got ${name.length}`);
  if (aead.key.length === 0) throw new RangeError('aead key: empty');
  checkU32('aead icvBits', aead.icvBits);
  const b = new Uint8Array(SIZE.algoAead + aead.key.length);
  const dv = view(b);
  b.set(name, OFF.algoAead.name);
  dv.setUint32(OFF.algoAead.keyLen, aead.key.length * 8, LE);
  dv.setUint32(OFF.algoAead.icvLen, aead.icvBits, LE);
  b.set(aead.key, OFF.algoAead.key);
  return encodeAttr(XFRMA.ALG_AEAD, b);
}

function decodeAead(a: NlAttr): XfrmAead {
  if (a.data.length < SIZE.algoAead) throw new XfrmTransportError('XFRMA_ALG_AEAD too short');
  const dv = view(a.data);
  const keyBytes = Math.ceil(dv.getUint32(OFF.algoAead.keyLen, LE) / 8);
  if (SIZE.algoAead + keyBytes > a.data.length) throw new XfrmTransportError('XFRMA_ALG_AEAD key truncated');
  return {
    name: cString(a.data.subarray(0, ALG_NAME_LEN)),
    // A copy, as a plain Uint8Array (not a view into, or a Buffer of, the received datagram).
    key: new Uint8Array(a.data.subarray(SIZE.algoAead, SIZE.algoAead + keyBytes)),
    icvBits: dv.getUint32(OFF.algoAead.icvLen, LE),
  };
}

/** Payload of XFRM_MSG_NEWSA / XFRM_MSG_UPDSA: struct xfrm_usersa_info + attributes. */
export function encodeState(s: XfrmState): Uint8Array {
  const info = new Uint8Array(SIZE.usersaInfo);
  const dv = view(info);
  const o = OFF.usersaInfo;
  // The selector's family may differ from the state's (inner vs outer addresses of a tunnel).
  writeSelector(info, o.sel, s.selector ?? anySelector(s.family));
  info.set(encodeAddress(s.family, s.dst, 'state dst'), o.id + OFF.id.daddr);
  dv.setUint32(o.id + OFF.id.spi, checkU32('spi', s.spi), false);
  dv.setUint8(o.id + OFF.id.proto, protoNumber(s.proto));
  info.set(encodeAddress(s.family, s.src, 'state src'), o.saddr);
  writeInfiniteLifetime(info, o.lft);
  dv.setUint32(o.reqid, checkU32('reqid', s.reqid), LE);
  dv.setUint16(o.family, familyToAf(s.family), LE);
  dv.setUint8(o.mode, modeNumber(s.mode));
  dv.setUint8(o.replayWindow, checkRange('replayWindow', s.replayWindow ?? 0, 255));
  const parts: Uint8Array[] = [info];
  if (s.aead) parts.push(encodeAeadAttr(s.aead));
  if (s.mark) parts.push(encodeMarkAttr(s.mark));
  if (s.outputMark) {
    parts.push(encodeU32Attr(XFRMA.SET_MARK, checkU32('outputMark value', s.outputMark.value)));
    parts.push(encodeU32Attr(XFRMA.SET_MARK_MASK, checkU32('outputMark mask', s.outputMark.mask)));
  }
  return concatBytes(parts);
}

/** Payload of XFRM_MSG_GETSA / XFRM_MSG_DELSA: struct xfrm_usersa_id (+ XFRMA_MARK). */
export function encodeStateId(id: XfrmStateId): Uint8Array {
  const b = new Uint8Array(SIZE.usersaId);
  const dv = view(b);
  const o = OFF.usersaId;
  b.set(encodeAddress(id.family, id.dst, 'state dst'), o.daddr);
  dv.setUint32(o.spi, checkU32('spi', id.spi), false);
  dv.setUint16(o.family, familyToAf(id.family), LE);
  dv.setUint8(o.proto, protoNumber(id.proto));
  return id.mark ? concatBytes([b, encodeMarkAttr(id.mark)]) : b;
}

/** Decodes the payload of an XFRM_MSG_NEWSA (dump entry or get reply). */
export function decodeState(payload: Uint8Array): XfrmStateInfo {
  if (payload.length < SIZE.usersaInfo) throw new XfrmTransportError(`xfrm_usersa_info: ${payload.length} bytes, expected ${SIZE.usersaInfo}`);
  const dv = view(payload);
  const o = OFF.usersaInfo;
  const family = afToFamily(dv.getUint16(o.family, LE));
  let current = readLifetimeCurrent(payload, o.curlft);
  let aead: XfrmAead | undefined;
  let mark: XfrmMark | undefined;
  let setMark: number | undefined;
  let setMarkMask: number | undefined;
  const other: number[] = [];
  for (const a of parseAttrs(payload, SIZE.usersaInfo)) {
    switch (a.type) {
      case XFRMA.ALG_AEAD: aead = decodeAead(a); break;
      case XFRMA.MARK: mark = attrMark(a); break;
      case XFRMA.SET_MARK: setMark = attrU32(a); break;
      case XFRMA.SET_MARK_MASK: setMarkMask = attrU32(a); break;
      case XFRMA.LTIME_VAL:
        if (a.data.length >= SIZE.lifetimeCur) current = readLifetimeCurrent(a.data, 0);
        break;
      case XFRMA.PAD: break;
      default: other.push(a.type);
    }
  }
  const so = o.stats;
  const state: { -readonly [K in keyof XfrmStateInfo]: XfrmStateInfo[K] } = {
    family,
    src: decodeAddress(family, payload.subarray(o.saddr)),
    dst: decodeAddress(family, payload.subarray(o.id + OFF.id.daddr)),
    spi: dv.getUint32(o.id + OFF.id.spi, false),
    proto: protoName(dv.getUint8(o.id + OFF.id.proto)),
    mode: modeName(dv.getUint8(o.mode)),
    reqid: dv.getUint32(o.reqid, LE),
    selector: readSelector(payload, o.sel, family),
    replayWindow: dv.getUint8(o.replayWindow),
    current,
    stats: { replayWindow: dv.getUint32(so, LE), replay: dv.getUint32(so + 4, LE), integrityFailed: dv.getUint32(so + 8, LE) },
    flags: dv.getUint8(o.flags),
    otherAttributes: other,
  };
  if (aead) state.aead = aead;
  if (mark) state.mark = mark;
  if (setMark !== undefined) state.outputMark = { value: setMark, mask: setMarkMask ?? 0xffffffff };
  return state;
}

// ---------------------------------------------------------------------------------------------
// Policies

function dirNumber(d: XfrmPolicyDir): number {
  return lookup(XFRM_POLICY_DIR, d, 'dir');
}

function encodeTemplates(tmpls: readonly XfrmTemplate[]): Uint8Array {
  const b = new Uint8Array(SIZE.userTmpl * tmpls.length);
  const dv = view(b);
  tmpls.forEach((t, i) => {
    const off = i * SIZE.userTmpl;
    const o = OFF.userTmpl;
    b.set(encodeAddress(t.family, t.dst, `tmpl[${i}] dst`), off + o.id + OFF.id.daddr);
    dv.setUint32(off + o.id + OFF.id.spi, checkU32(`tmpl[${i}] spi`, t.spi), false);
    dv.setUint8(off + o.id + OFF.id.proto, protoNumber(t.proto));
    dv.setUint16(off + o.family, familyToAf(t.family), LE);
    b.set(encodeAddress(t.family, t.src, `tmpl[${i}] src`), off + o.saddr);
    dv.setUint32(off + o.reqid, checkU32(`tmpl[${i}] reqid`, t.reqid), LE);
    dv.setUint8(off + o.mode, modeNumber(t.mode));
    dv.setUint8(off + o.share, 0);
    dv.setUint8(off + o.optional, t.optional ? 1 : 0);
    // Any algorithm (what iproute2 sends): the SA decides.
    dv.setUint32(off + o.aalgos, 0xffffffff, LE);
    dv.setUint32(off + o.ealgos, 0xffffffff, LE);
    dv.setUint32(off + o.calgos, 0xffffffff, LE);
  });
  return encodeAttr(XFRMA.TMPL, b);
}

function decodeTemplates(a: NlAttr): XfrmTemplate[] {
  const out: XfrmTemplate[] = [];
  const dv = view(a.data);
  for (let off = 0; off + SIZE.userTmpl <= a.data.length; off += SIZE.userTmpl) {
    const o = OFF.userTmpl;
    const family = afToFamily(dv.getUint16(off + o.family, LE));
    const t: { -readonly [K in keyof XfrmTemplate]: XfrmTemplate[K] } = {
      family,
      src: decodeAddress(family, a.data.subarray(off + o.saddr)),
      dst: decodeAddress(family, a.data.subarray(off + o.id + OFF.id.daddr)),
      proto: protoName(dv.getUint8(off + o.id + OFF.id.proto)),
      mode: modeName(dv.getUint8(off + o.mode)),
      spi: dv.getUint32(off + o.id + OFF.id.spi, false),
      reqid: dv.getUint32(off + o.reqid, LE),
    };
    if (dv.getUint8(off + o.optional)) t.optional = true;
    out.push(t);
  }
  return out;
}

function encodePolicyTypeAttr(type: XfrmPolicyType): Uint8Array {
  const b = new Uint8Array(SIZE.userpolicyType);
  b[0] = lookup(XFRM_POLICY_TYPE, type, 'policy type');
  return encodeAttr(XFRMA.POLICY_TYPE, b);
}

/** Payload of XFRM_MSG_NEWPOLICY / XFRM_MSG_UPDPOLICY: struct xfrm_userpolicy_info + attributes. */
export function encodePolicy(p: XfrmPolicy): Uint8Array {
  const info = new Uint8Array(SIZE.userpolicyInfo);
  const dv = view(info);
  const o = OFF.userpolicyInfo;
  writeSelector(info, o.sel, p.selector);
  writeInfiniteLifetime(info, o.lft);
  dv.setUint32(o.priority, checkU32('priority', p.priority ?? 0), LE);
  dv.setUint32(o.index, 0, LE);
  dv.setUint8(o.dir, dirNumber(p.dir));
  dv.setUint8(o.action, lookup(XFRM_POLICY_ACTION, p.action, 'action'));
  const parts: Uint8Array[] = [info];
  if (p.tmpls.length > 0) parts.push(encodeTemplates(p.tmpls));
  if (p.mark) parts.push(encodeMarkAttr(p.mark));
  if (p.type !== undefined && p.type !== 'main') parts.push(encodePolicyTypeAttr(p.type));
  return concatBytes(parts);
}

/** Payload of XFRM_MSG_GETPOLICY / XFRM_MSG_DELPOLICY: struct xfrm_userpolicy_id + attributes. */
export function encodePolicyId(id: XfrmPolicyId): Uint8Array {
  const b = new Uint8Array(SIZE.userpolicyId);
  const dv = view(b);
  writeSelector(b, OFF.userpolicyId.sel, id.selector);
  dv.setUint32(OFF.userpolicyId.index, checkU32('index', id.index ?? 0), LE);
  dv.setUint8(OFF.userpolicyId.dir, dirNumber(id.dir));
  const parts: Uint8Array[] = [b];
  if (id.mark) parts.push(encodeMarkAttr(id.mark));
  if (id.type !== undefined && id.type !== 'main') parts.push(encodePolicyTypeAttr(id.type));
  return concatBytes(parts);
}

/** Decodes the payload of an XFRM_MSG_NEWPOLICY (dump entry or get reply). */
export function decodePolicy(payload: Uint8Array): XfrmPolicyInfo {
  if (payload.length < SIZE.userpolicyInfo) throw new XfrmTransportError(`xfrm_userpolicy_info: ${payload.length} bytes, expected ${SIZE.userpolicyInfo}`);
  const dv = view(payload);
  const o = OFF.userpolicyInfo;
  const rawDir = dv.getUint8(o.dir);
  const socket = rawDir >= XFRM_POLICY_MAX;
  const dirNum = socket ? rawDir - XFRM_POLICY_MAX : rawDir;
  const dir = reverse(XFRM_POLICY_DIR, dirNum);
  if (dir === undefined) throw new XfrmTransportError(`unexpected policy direction ${rawDir}`);
  const actionNum = dv.getUint8(o.action);
  const action: XfrmPolicyAction = reverse(XFRM_POLICY_ACTION, actionNum) ?? 'block';
  let tmpls: XfrmTemplate[] = [];
  let mark: XfrmMark | undefined;
  let type: XfrmPolicyType = 'main';
  for (const a of parseAttrs(payload, SIZE.userpolicyInfo)) {
    if (a.type === XFRMA.TMPL) tmpls = decodeTemplates(a);
    else if (a.type === XFRMA.MARK) mark = attrMark(a);
    else if (a.type === XFRMA.POLICY_TYPE && a.data.length >= 1) type = reverse(XFRM_POLICY_TYPE, a.data[0] ?? 0) ?? 'main';
  }
  const sel = readSelector(payload, o.sel, 4);
  const policy: { -readonly [K in keyof XfrmPolicyInfo]: XfrmPolicyInfo[K] } = {
    dir,
    selector: sel,
    priority: dv.getUint32(o.priority, LE),
    action,
    tmpls,
    type,
    index: dv.getUint32(o.index, LE),
    socket,
    flags: dv.getUint8(o.flags),
  };
  if (mark) policy.mark = mark;
  return policy;
}

// ---------------------------------------------------------------------------------------------
// Requests

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
