/**
 * Errors and key-free descriptions of xfrm objects. Descriptions are what goes into logs and
 * error messages, so they never contain key bytes (only the algorithm name and key length).
 */
import { constants as osConstants } from 'node:os';
import type {
  XfrmMark, XfrmOperation, XfrmPolicy, XfrmPolicyId, XfrmSelector, XfrmState, XfrmStateId, XfrmTemplate,
} from './types.js';

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, num]) => [num, name]),
);

/** Symbolic name of a positive errno (`EEXIST`), or `E<number>` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

export interface XfrmErrorInit {
  /** Positive errno. */
  readonly errno: number;
  readonly operation: XfrmOperation;
  /** Key-free description of the object the operation was about. */
  readonly object: string;
  /** Kernel's extended-ack message, when it sent one. */
  readonly extack?: string;
}

/** A request the kernel refused. */
export class XfrmError extends Error {
  override readonly name = 'XfrmError';
  /** Positive errno, e.g. 17. */
  readonly errno: number;
  /** Symbolic errno, e.g. `EEXIST`. */
  readonly code: string;
  readonly operation: XfrmOperation;
  readonly object: string;
  readonly extack: string | undefined;

  constructor(init: XfrmErrorInit) {
    const code = errnoName(init.errno);
    const detail = init.extack === undefined ? '' : `: ${init.extack}`;
    super(`${init.operation} ${init.object}: ${code}${detail}`);
    this.errno = init.errno;
    this.code = code;
    this.operation = init.operation;
    this.object = init.object;
    this.extack = init.extack;
  }

  /** The object does not exist: ENOENT (policies) or ESRCH (states: the kernel's "no such SA"). */
  get notFound(): boolean {
    return this.code === 'ENOENT' || this.code === 'ESRCH';
  }

  /** An object with the same key exists (EEXIST). */
  get alreadyExists(): boolean {
    return this.code === 'EEXIST';
  }
}

/** The socket failed, a reply was malformed or did not arrive in time (not a kernel refusal). */
export class XfrmTransportError extends Error {
  override readonly name = 'XfrmTransportError';
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

export function describeMark(mark: XfrmMark | undefined): string {
  return mark === undefined ? '' : ` mark ${hex(mark.value)}/${hex(mark.mask)}`;
}

export function describeSelector(sel: XfrmSelector): string {
  let s = `${sel.src} -> ${sel.dst}`;
  if (sel.proto) s += ` proto ${sel.proto}`;
  if (sel.srcPort) s += ` sport ${sel.srcPort}`;
  if (sel.dstPort) s += ` dport ${sel.dstPort}`;
  if (sel.ifindex) s += ` dev #${sel.ifindex}`;
  return s;
}

/** e.g. `state esp spi 0x1 10.0.0.2 -> 10.0.0.1 tunnel reqid 27501 mark 0x100d0/0xffffffff aead rfc4106(gcm(aes)) 288-bit key icv 128`. */
export function describeState(s: XfrmState): string {
  let d = `state ${s.proto} spi ${hex(s.spi)} ${s.src} -> ${s.dst} ${s.mode} reqid ${s.reqid}${describeMark(s.mark)}`;
  if (s.outputMark) d += ` output-mark ${hex(s.outputMark.value)}/${hex(s.outputMark.mask)}`;
  if (s.aead) d += ` aead ${s.aead.name} ${s.aead.key.length * 8}-bit key icv ${s.aead.icvBits}`;
  return d;
}

export function describeStateId(id: XfrmStateId): string {
  const src = id.src === undefined ? '' : `${id.src} `;
  return `state ${id.proto} spi ${hex(id.spi)} ${src}-> ${id.dst}${describeMark(id.mark)}`;
}

export function describeTemplate(t: XfrmTemplate): string {
  return `tmpl ${t.src} -> ${t.dst} ${t.proto} spi ${hex(t.spi)} reqid ${t.reqid} ${t.mode}`;
}

export function describePolicy(p: XfrmPolicy): string {
  const prio = p.priority ? ` priority ${p.priority}` : '';
  const tmpls = p.tmpls.map((t) => `, ${describeTemplate(t)}`).join('');
  return `policy ${p.dir} ${describeSelector(p.selector)}${describeMark(p.mark)}${prio} ${p.action}${tmpls}`;
}

export function describePolicyId(id: XfrmPolicyId): string {
  const index = id.index ? ` index ${id.index}` : '';
  return `policy ${id.dir} ${describeSelector(id.selector)}${describeMark(id.mark)}${index}`;
}
