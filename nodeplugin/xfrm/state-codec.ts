/**
 * xfrm states (SAs): struct xfrm_usersa_info with its attributes (XFRMA_ALG_AEAD, XFRMA_MARK,
 * XFRMA_SET_MARK/_MASK, XFRMA_LTIME_VAL) and struct xfrm_usersa_id, to and from bytes.
 */
import { LE, cString, view, zeroed } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import { attrSpace, attrU32, parseAttrs, writeAttrHeader, writeU32Attr } from './netlink-frame.js';
import type { NetlinkAttribute } from './netlink-frame.js';
import { MARK_ATTR_SPACE, anySelector, attrMark, decodeAddress, readLifetimeCurrent, readSelector, writeAddress, writeInfiniteLifetime, writeMarkAttr, writeSelector } from './shared-structs.js';
import { ALG_NAME_LEN, OFF, SIZE, XFRMA } from './uapi.js';
import { afToFamily, checkRange, checkU32, familyToAf, modeName, modeNumber, protoName, protoNumber } from './xfrm-values.js';
import type { XfrmAead, XfrmMark, XfrmState, XfrmStateId, XfrmStateInfo } from './types.js';

/** The algorithm name's bytes, checked (before anything is written). */
function aeadName(aead: XfrmAead): Buffer {
  const name = Buffer.from(aead.name, 'utf8');
  if (name.length === 0 || name.length >= ALG_NAME_LEN) throw new RangeError(`aead name: 1 to ${ALG_NAME_LEN - 1} bytes, got ${name.length}`);
  if (aead.key.length === 0) throw new RangeError('aead key: empty');
  checkU32('aead icvBits', aead.icvBits);
  return name;
}

/** Writes the XFRMA_ALG_AEAD attribute at `off`; returns where the next attribute starts. */
function writeAeadAttr(b: Uint8Array, dv: DataView, off: number, aead: XfrmAead, name: Buffer): number {
  const length = SIZE.algoAead + aead.key.length;
  const data = writeAttrHeader(dv, off, XFRMA.ALG_AEAD, length);
  b.set(name, data + OFF.algoAead.name);
  dv.setUint32(data + OFF.algoAead.keyLen, aead.key.length * 8, LE);
  dv.setUint32(data + OFF.algoAead.icvLen, aead.icvBits, LE);
  b.set(aead.key, data + OFF.algoAead.key);
  return off + attrSpace(length);
}

function decodeAead(a: NetlinkAttribute): XfrmAead {
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

const U32_ATTR_SPACE = attrSpace(4);

/** Payload of XFRM_MSG_NEWSA / XFRM_MSG_UPDSA: struct xfrm_usersa_info + attributes, in one buffer. */
export function encodeState(s: XfrmState): Uint8Array {
  const name = s.aead ? aeadName(s.aead) : undefined;
  const size = SIZE.usersaInfo + (s.aead ? attrSpace(SIZE.algoAead + s.aead.key.length) : 0) + (s.mark ? MARK_ATTR_SPACE : 0) + (s.outputMark ? 2 * U32_ATTR_SPACE : 0);
  const b = zeroed(size);
  const dv = view(b);
  const o = OFF.usersaInfo;
  // The selector's family may differ from the state's (inner vs outer addresses of a tunnel).
  writeSelector(dv, o.sel, s.selector ?? anySelector(s.family));
  writeAddress(dv, o.id + OFF.id.daddr, s.family, s.dst, 'state dst');
  dv.setUint32(o.id + OFF.id.spi, checkU32('spi', s.spi), false);
  dv.setUint8(o.id + OFF.id.proto, protoNumber(s.proto));
  writeAddress(dv, o.saddr, s.family, s.src, 'state src');
  writeInfiniteLifetime(dv, o.lft);
  dv.setUint32(o.reqid, checkU32('reqid', s.reqid), LE);
  dv.setUint16(o.family, familyToAf(s.family), LE);
  dv.setUint8(o.mode, modeNumber(s.mode));
  dv.setUint8(o.replayWindow, checkRange('replayWindow', s.replayWindow ?? 0, 255));
  let off: number = SIZE.usersaInfo;
  if (s.aead && name) off = writeAeadAttr(b, dv, off, s.aead, name);
  if (s.mark) off = writeMarkAttr(dv, off, s.mark);
  if (s.outputMark) {
    off = writeU32Attr(dv, off, XFRMA.SET_MARK, checkU32('outputMark value', s.outputMark.value));
    writeU32Attr(dv, off, XFRMA.SET_MARK_MASK, checkU32('outputMark mask', s.outputMark.mask));
  }
  return b;
}

/** Payload of XFRM_MSG_GETSA / XFRM_MSG_DELSA: struct xfrm_usersa_id (+ XFRMA_MARK). */
export function encodeStateId(id: XfrmStateId): Uint8Array {
  const b = zeroed(SIZE.usersaId + (id.mark ? MARK_ATTR_SPACE : 0));
  const dv = view(b);
  const o = OFF.usersaId;
  writeAddress(dv, o.daddr, id.family, id.dst, 'state dst');
  dv.setUint32(o.spi, checkU32('spi', id.spi), false);
  dv.setUint16(o.family, familyToAf(id.family), LE);
  dv.setUint8(o.proto, protoNumber(id.proto));
  if (id.mark) writeMarkAttr(dv, SIZE.usersaId, id.mark);
  return b;
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
