/**
 * xfrm states (SAs): struct xfrm_usersa_info with its attributes (XFRMA_ALG_AEAD, XFRMA_MARK,
 * XFRMA_SET_MARK/_MASK, XFRMA_LTIME_VAL) and struct xfrm_usersa_id, to and from bytes.
 */
import { LE, concatBytes, cString, view } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import { attrU32, encodeAttr, encodeU32Attr, parseAttrs } from './netlink-frame.js';
import type { NetlinkAttribute } from './netlink-frame.js';
import { anySelector, attrMark, decodeAddress, encodeAddress, encodeMarkAttr, readLifetimeCurrent, readSelector, writeInfiniteLifetime, writeSelector } from './shared-structs.js';
import { ALG_NAME_LEN, OFF, SIZE, XFRMA } from './uapi.js';
import { afToFamily, checkRange, checkU32, familyToAf, modeName, modeNumber, protoName, protoNumber } from './xfrm-values.js';
import type { XfrmAead, XfrmMark, XfrmState, XfrmStateId, XfrmStateInfo } from './types.js';

function encodeAeadAttr(aead: XfrmAead): Uint8Array[] {
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
  if (s.aead) parts.push(...encodeAeadAttr(s.aead));
  if (s.mark) parts.push(...encodeMarkAttr(s.mark));
  if (s.outputMark) {
    parts.push(...encodeU32Attr(XFRMA.SET_MARK, checkU32('outputMark value', s.outputMark.value)));
    parts.push(...encodeU32Attr(XFRMA.SET_MARK_MASK, checkU32('outputMark mask', s.outputMark.mask)));
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
  return id.mark ? concatBytes([b, ...encodeMarkAttr(id.mark)]) : b;
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
