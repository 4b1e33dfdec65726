/**
 * xfrm policies: struct xfrm_userpolicy_info with its attributes (XFRMA_TMPL with struct
 * xfrm_user_tmpl entries, XFRMA_MARK, XFRMA_POLICY_TYPE) and struct xfrm_userpolicy_id, to and
 * from bytes.
 */
import { LE, concatBytes, view } from './bytes.js';
import { XfrmTransportError } from './errors.js';
import { encodeAttr, parseAttrs } from './netlink-frame.js';
import type { NetlinkAttribute } from './netlink-frame.js';
import { attrMark, decodeAddress, encodeAddress, encodeMarkAttr, readSelector, writeInfiniteLifetime, writeSelector } from './shared-structs.js';
import { OFF, SIZE, XFRMA, XFRM_POLICY_ACTION, XFRM_POLICY_DIR, XFRM_POLICY_MAX, XFRM_POLICY_TYPE } from './uapi.js';
import { afToFamily, checkU32, familyToAf, lookup, modeName, modeNumber, protoName, protoNumber, reverse } from './xfrm-values.js';
import type { XfrmMark, XfrmPolicy, XfrmPolicyAction, XfrmPolicyDir, XfrmPolicyId, XfrmPolicyInfo, XfrmPolicyType, XfrmTemplate } from './types.js';

function dirNumber(d: XfrmPolicyDir): number {
  return lookup(XFRM_POLICY_DIR, d, 'dir');
}

function encodeTemplates(tmpls: readonly XfrmTemplate[]): Uint8Array[] {
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

function encodePolicyTypeAttr(type: XfrmPolicyType): Uint8Array[] {
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
  if (p.tmpls.length > 0) parts.push(...encodeTemplates(p.tmpls));
  if (p.mark) parts.push(...encodeMarkAttr(p.mark));
  if (p.type !== undefined && p.type !== 'main') parts.push(...encodePolicyTypeAttr(p.type));
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
  if (id.mark) parts.push(...encodeMarkAttr(id.mark));
  if (id.type !== undefined && id.type !== 'main') parts.push(...encodePolicyTypeAttr(id.type));
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
