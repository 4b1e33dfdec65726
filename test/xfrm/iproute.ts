/**
 * Parsers for iproute2's `ip xfrm policy` and `ip -s xfrm state` text (iproute2 6.1 has no
 * JSON output for xfrm: `ip -j xfrm ...` prints text). Only the fields the tests compare are
 * extracted. Not a test file.
 *
 * Policy block:
 *   src 0.0.0.0/0 dst 10.244.1.0/24
 *   	dir out priority 0 ptype main
 *   	mark 0xe0/0xffffffff
 *   	tmpl src 10.0.0.1 dst 10.0.0.2
 *   		proto esp spi 0x00000001 reqid 27501 mode tunnel
 * State block (with -s):
 *   src 10.0.0.1 dst 10.0.0.2
 *   	proto esp spi 0x00000001(1) reqid 27501(0x00006b6d) mode tunnel
 *   	...
 *   	mark 0x100d0/0xffffffff
 *   	output-mark 0xd0/0xffffffff
 *   	...
 *   	lifetime current:
 *   	  1234(bytes), 10(packets)
 */

export interface IpMark { value: number; mask: number }

export interface IpTmpl { src: string; dst: string; proto: string; spi: number; reqid: number; mode: string }

export interface IpPolicy {
  src: string;
  dst: string;
  dir: string;
  priority: number;
  mark?: IpMark;
  action?: string;
  tmpls: IpTmpl[];
}

export interface IpState {
  src: string;
  dst: string;
  proto: string;
  spi: number;
  reqid: number;
  mode: string;
  mark?: IpMark;
  outputMark?: IpMark;
  aead?: string;
  bytes?: number;
  packets?: number;
}

/** Splits into blocks that start at an unindented line. */
function blocks(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) out.push([line]);
    else out.at(-1)?.push(line);
  }
  return out;
}

function tokens(line: string): string[] {
  return line.trim().split(/\s+/);
}

/** Value after `key` in a token list. */
function after(toks: readonly string[], key: string): string | undefined {
  const i = toks.indexOf(key);
  return i >= 0 ? toks[i + 1] : undefined;
}

function parseMark(text: string | undefined): IpMark | undefined {
  if (text === undefined) return undefined;
  const [v, m] = text.split('/');
  return { value: Number(v), mask: m === undefined ? 0xffffffff : Number(m) };
}

/** Leading number of `0x00000001(1)` / `27501(0x00006b6d)`. */
function num(text: string | undefined): number {
  if (text === undefined) return 0;
  return Number(/^(0x[0-9a-f]+|\d+)/i.exec(text)?.[1] ?? NaN);
}

export function parseIpXfrmPolicies(text: string): IpPolicy[] {
  const out: IpPolicy[] = [];
  for (const b of blocks(text)) {
    const head = tokens(b[0] ?? '');
    if (head[0] !== 'src') continue;
    const p: IpPolicy = { src: after(head, 'src') ?? '', dst: after(head, 'dst') ?? '', dir: '', priority: 0, tmpls: [] };
    for (let i = 1; i < b.length; i++) {
      const t = tokens(b[i] ?? '');
      if (t[0] === 'dir') {
        p.dir = t[1] ?? '';
        p.priority = num(after(t, 'priority'));
        const action = after(t, 'action');
        if (action !== undefined) p.action = action;
      } else if (t[0] === 'mark') {
        const mark = parseMark(t[1]);
        if (mark) p.mark = mark;
      } else if (t[0] === 'tmpl') {
        const next = tokens(b[i + 1] ?? '');
        i++;
        p.tmpls.push({
          src: after(t, 'src') ?? '',
          dst: after(t, 'dst') ?? '',
          proto: after(next, 'proto') ?? '',
          spi: num(after(next, 'spi')),
          reqid: num(after(next, 'reqid')),
          mode: after(next, 'mode') ?? '',
        });
      }
    }
    out.push(p);
  }
  return out;
}

export function parseIpXfrmStates(text: string): IpState[] {
  const out: IpState[] = [];
  for (const b of blocks(text)) {
    const head = tokens(b[0] ?? '');
    if (head[0] !== 'src') continue;
    const s: IpState = { src: after(head, 'src') ?? '', dst: after(head, 'dst') ?? '', proto: '', spi: 0, reqid: 0, mode: '' };
    for (let i = 1; i < b.length; i++) {
      const t = tokens(b[i] ?? '');
      if (t[0] === 'proto') {
        s.proto = t[1] ?? '';
        s.spi = num(after(t, 'spi'));
        s.reqid = num(after(t, 'reqid'));
        s.mode = after(t, 'mode') ?? '';
      } else if (t[0] === 'mark') {
        const mark = parseMark(t[1]);
        if (mark) s.mark = mark;
      } else if (t[0] === 'output-mark') {
        const mark = parseMark(t[1]);
        if (mark) s.outputMark = mark;
      } else if (t[0] === 'aead') {
        s.aead = t[1] ?? '';
      } else if (t[0] === 'lifetime' && t[1] === 'current:') {
        const m = /(\d+)\(bytes\),\s*(\d+)\(packets\)/.exec(b[i + 1] ?? '');
        if (m) {
          s.bytes = Number(m[1]);
          s.packets = Number(m[2]);
        }
      }
    }
    out.push(s);
  }
  return out;
}
