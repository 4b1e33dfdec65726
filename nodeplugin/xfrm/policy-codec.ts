/**
 * xfrm policies: struct xfrm_userpolicy_info with its attributes (XFRMA_TMPL with struct
 * xfrm_user_tmpl entries, XFRMA_MARK, XFRMA_POLICY_TYPE) and struct xfrm_userpolicy_id, to and
 * from bytes.
 */
import { LE, view, zeroed } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import { attrSpace, parseAttrs, writeAttrHeader } from './netlink-frame.js';
import type { NetlinkAttribute } from './netlink-frame.js';
import { MARK_ATTR_SPACE, attrMark, decodeAddress, readSelector, writeAddress, writeInfiniteLifetime, writeMarkAttr, writeSelector } from './shared-structs.js';
import { OFF, SIZE, XFRMA, XFRM_POLICY_ACTION, XFRM_POLICY_DIR, XFRM_POLICY_MAX, XFRM_POLICY_TYPE } from './uapi.js';
import { afToFamily, checkU32, familyToAf, lookup, modeName, modeNumber, protoName, protoNumber, reverse } from './xfrm-values.js';
import type { XfrmMark, XfrmPolicy, XfrmPolicyAction, XfrmPolicyDir, XfrmPolicyId, XfrmPolicyInfo, XfrmPolicyType, XfrmTemplate } from './types.js';

function dirNumber(d: XfrmPolicyDir): number {
  return lookup(XFRM_POLICY_DIR, d, 'dir');
}

/** Writes the XFRMA_TMPL attribute at `off`; returns where the next attribute starts. */
function writeTemplates(dv: DataView, off: number, tmpls: readonly XfrmTemplate[]): number {
  const length = SIZE.userTmpl * tmpls.length;
  const data = writeAttrHeader(dv, off, XFRMA.TMPL, length);
  const o = OFF.userTmpl;
  for (let i = 0; i < tmpls.length; i++) {
    const t = tmpls[i] as XfrmTemplate;
    const at = data + i * SIZE.userTmpl;
    writeAddress(dv, at + o.id + OFF.id.daddr, t.family, t.dst, `tmpl[${i}] dst`);
    dv.setUint32(at + o.id + OFF.id.spi, checkU32(`tmpl[${i}] spi`, t.spi), false);
    dv.setUint8(at + o.id + OFF.id.proto, protoNumber(t.proto));
    dv.setUint16(at + o.family, familyToAf(t.family), LE);
    writeAddress(dv, at + o.saddr, t.family, t.src, `tmpl[${i}] src`);
    dv.setUint32(at + o.reqid, checkU32(`tmpl[${i}] reqid`, t.reqid), LE);
    dv.setUint8(at + o.mode, modeNumber(t.mode));
    dv.setUint8(at + o.optional, t.optional ? 1 : 0);
    // Any algorithm (what iproute2 sends): the SA decides.
    dv.setUint32(at + o.aalgos, 0xffffffff, LE);
    dv.setUint32(at + o.ealgos, 0xffffffff, LE);
    dv.setUint32(at + o.calgos, 0xffffffff, LE);
  }
  return off + attrSpace(length);
}

function decodeTemplates(a: NetlinkAttribute): XfrmTemplate[] {
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

const POLICY_TYPE_ATTR_SPACE = attrSpace(SIZE.userpolicyType);

/** Writes an XFRMA_POLICY_TYPE attribute at `off`; returns where the next attribute starts. */
function writePolicyTypeAttr(dv: DataView, off: number, type: XfrmPolicyType): number {
  dv.setUint8(writeAttrHeader(dv, off, XFRMA.POLICY_TYPE, SIZE.userpolicyType), lookup(XFRM_POLICY_TYPE, type, 'policy type'));
  return off + POLICY_TYPE_ATTR_SPACE;
}

/** Bytes the optional mark and policy type attributes take. */
function markAndTypeSpace(mark: XfrmMark | undefined, type: XfrmPolicyType | undefined): number {
  return (mark ? MARK_ATTR_SPACE : 0) + (type !== undefined && type !== 'main' ? POLICY_TYPE_ATTR_SPACE : 0);
}

/** Writes the optional mark and policy type attributes at `off`. */
function writeMarkAndType(dv: DataView, off: number, mark: XfrmMark | undefined, type: XfrmPolicyType | undefined): void {
  let at = off;
  if (mark) at = writeMarkAttr(dv, at, mark);
  if (type !== undefined && type !== 'main') writePolicyTypeAttr(dv, at, type);
}

/**
 * Payload of XFRM_MSG_NEWPOLICY / XFRM_MSG_UPDPOLICY: struct xfrm_userpolicy_info + attributes,
 * written into one zeroed buffer sized in advance.
 */
export function encodePolicy(p: XfrmPolicy): Uint8Array {
  const tmplSpace = p.tmpls.length > 0 ? attrSpace(SIZE.userTmpl * p.tmpls.length) : 0;
  const b = zeroed(SIZE.userpolicyInfo + tmplSpace + markAndTypeSpace(p.mark, p.type));
  const dv = view(b);
  const o = OFF.userpolicyInfo;
  writeSelector(dv, o.sel, p.selector);
  writeInfiniteLifetime(dv, o.lft);
  dv.setUint32(o.priority, checkU32('priority', p.priority ?? 0), LE);
  dv.setUint8(o.dir, dirNumber(p.dir));
  dv.setUint8(o.action, lookup(XFRM_POLICY_ACTION, p.action, 'action'));
  let off: number = SIZE.userpolicyInfo;
  if (p.tmpls.length > 0) off = writeTemplates(dv, off, p.tmpls);
  writeMarkAndType(dv, off, p.mark, p.type);
  return b;
}

/** Payload of XFRM_MSG_GETPOLICY / XFRM_MSG_DELPOLICY: struct xfrm_userpolicy_id + attributes. */
export function encodePolicyId(id: XfrmPolicyId): Uint8Array {
  const b = zeroed(SIZE.userpolicyId + markAndTypeSpace(id.mark, id.type));
  const dv = view(b);
  writeSelector(dv, OFF.userpolicyId.sel, id.selector);
  dv.setUint32(OFF.userpolicyId.index, checkU32('index', id.index ?? 0), LE);
  dv.setUint8(OFF.userpolicyId.dir, dirNumber(id.dir));
  writeMarkAndType(dv, SIZE.userpolicyId, id.mark, id.type);
  return b;
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
