/**
 * Private helpers for the BPF tests: a throw-away bpffs, network namespaces, packet builders,
 * BPF_PROG_TEST_RUN through bpftool, nftables counters and a UDP sender. Everything here runs
 * real commands as root; nothing is mocked.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TOOLS, run } from '../../nodeplugin/bpf/exec.js';
import { Netns, createVethPair } from '../helpers/netns.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const OBJECT_DIR = join(REPO, 'bpf/build');

/**
 * `nft` by absolute path: under npm/npx, node_modules/.bin comes first in PATH and holds an
 * unrelated `nft` (@vercel/nft, pulled in by ava) that silently "succeeds".
 */
export const NFT = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((p) => existsSync(p)) ?? 'nft';

export function sh(argv: string[], netns?: string): Promise<string> {
  return run(argv, { netns, tools: DEFAULT_TOOLS });
}

/**
 * A private bpffs instance mounted on a temp dir. Every mount of bpffs is a new, empty
 * filesystem, so tests neither see nor disturb /sys/fs/bpf or each other; unmounting drops
 * every pin made in it.
 */
export interface Bpffs {
  readonly dir: string;
  cleanup(): Promise<void>;
}

export async function mountBpffs(): Promise<Bpffs> {
  const dir = await mkdtemp(join(tmpdir(), 'kmi-bpffs-'));
  await sh(['mount', '-t', 'bpf', 'bpf', dir]);
  return {
    dir,
    async cleanup() {
      await sh(['umount', dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Makes pin names of fixture programs unique within this process. */
let pins = 0;

/** Namespaces made here, by name (the adapter under test takes netns names). */
const created = new Map<string, Netns>();

/** A fresh namespace from the shared helper (stale ones swept, deleted on exit); returns its name. */
export async function addNetns(tag: string): Promise<string> {
  const ns = await Netns.create(tag);
  created.set(ns.name, ns);
  return ns.name;
}

export async function delNetns(name: string): Promise<void> {
  await created.get(name)?.destroy();
  created.delete(name);
}

/** A namespace made by addNetns; never the root namespace by accident. */
function made(name: string): Netns {
  const ns = created.get(name);
  if (!ns) throw new Error(`netns ${name} was not made by addNetns`);
  return ns;
}

/** veth pair with one end in each namespace. */
export async function vethPair(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  await createVethPair({ ns: made(nsA), name: ifA }, { ns: made(nsB), name: ifB });
}

/**
 * Build and pin the "foreign" fixture program (test/bpf/fixtures/foreign_mark.c) that sets
 * `mark` on every packet, and return its pin path.
 */
export async function foreignProgram(bpffsDir: string, mark: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kmi-foreign-'));
  try {
    const obj = join(dir, 'foreign.o');
    await sh(['clang', '-O2', '-g', '-target', 'bpf', `-DFOREIGN_MARK=${String(mark)}`,
      `-I/usr/include/${(await sh(['clang', '-print-multiarch'])).trim() || 'x86_64-linux-gnu'}`,
      '-c', join(REPO, 'test/bpf/fixtures/foreign_mark.c'), '-o', obj]);
    const pin = join(bpffsDir, `foreign_${mark.toString(16)}_${String(++pins)}`);
    await sh(['bpftool', 'prog', 'load', obj, pin, 'type', 'classifier']);
    return pin;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A foreign filter (not ours) on ingress at `prio`, creating the clsact qdisc as its owner would. */
export async function addForeignFilter(netns: string, ifname: string, pin: string, prio: number, handle = 1): Promise<void> {
  await sh(['tc', 'qdisc', 'replace', 'dev', ifname, 'clsact'], netns);
  await sh(['tc', 'filter', 'add', 'dev', ifname, 'ingress', 'protocol', 'all', 'prio', String(prio),
    'handle', `0x${handle.toString(16)}`, 'bpf', 'direct-action', 'object-pinned', pin], netns);
}

export interface TcShown {
  pref: number;
  handle: string;
  progName: string;
}

/** `tc -j filter show dev X ingress`, filters only. */
export async function tcShow(netns: string, ifname: string): Promise<TcShown[]> {
  const out = await sh(['tc', '-j', 'filter', 'show', 'dev', ifname, 'ingress'], netns);
  const list = JSON.parse(out.trim() || '[]') as { pref: number; kind: string; options?: { handle?: string; prog?: { name?: string } } }[];
  return list
    .filter((f) => f.options?.handle !== undefined)
    .map((f) => ({ pref: f.pref, handle: f.options?.handle ?? '', progName: f.options?.prog?.name ?? '' }));
}

// ---------------------------------------------------------------------------------------------
// Packets

const MAC_A = Buffer.from('020000000001', 'hex');
const MAC_B = Buffer.from('020000000002', 'hex');

export function eth(ethertype: number, payload: Buffer): Buffer {
  const type = Buffer.alloc(2);
  type.writeUInt16BE(ethertype, 0);
  return Buffer.concat([MAC_B, MAC_A, type, payload]);
}

function v4(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

function v6(text: string): Buffer {
  const [head = '', tail = ''] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const tl = text.includes('::') && tail !== '' ? tail.split(':') : [];
  const groups = text.includes('::') ? [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function ipv4(src: string, dst: string, proto: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = 64;
  h[9] = proto;
  v4(src).copy(h, 12);
  v4(dst).copy(h, 16);
  return eth(0x0800, Buffer.concat([h, payload]));
}

/** IPv6 packet; `ext` is a list of [headerType, body] extension headers placed before the payload. */
export function ipv6(src: string, dst: string, nexthdr: number, payload: Buffer, ext: [number, Buffer][] = []): Buffer {
  const chain: Buffer[] = [];
  let first = nexthdr;
  for (let i = ext.length - 1; i >= 0; i--) {
    const [type, body] = ext[i]!;
    const hdr = Buffer.concat([Buffer.from([first, 0]), body]);
    if (type !== 44) hdr[1] = hdr.length / 8 - 1;
    chain.unshift(hdr);
    first = type;
  }
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  const rest = Buffer.concat([...chain, payload]);
  h.writeUInt16BE(rest.length, 4);
  h[6] = first;
  h[7] = 64;
  v6(src).copy(h, 8);
  v6(dst).copy(h, 24);
  return eth(0x86dd, Buffer.concat([h, rest]));
}

/** ESP payload: SPI, sequence number, some opaque bytes. */
export function espPayload(spi = 1): Buffer {
  const b = Buffer.alloc(40, 0xab);
  b.writeUInt32BE(spi, 0);
  b.writeUInt32BE(1, 4);
  return b;
}

export function udpPayload(): Buffer {
  return Buffer.from('1f9000090010000068656c6c6f2121', 'hex');
}

export function arpRequest(): Buffer {
  const b = Buffer.from('0001080006040001' + '020000000001' + '0a0a0a01' + '000000000000' + '0a0a0a02', 'hex');
  return Buffer.concat([Buffer.alloc(6, 0xff), MAC_A, Buffer.from([0x08, 0x06]), b]);
}

/** The same frame with an 802.1Q tag inserted after the MAC addresses. */
export function withVlan(frame: Buffer, vlan: number): Buffer {
  return Buffer.concat([frame.subarray(0, 12), Buffer.from([0x81, 0x00, (vlan >> 8) & 0x0f, vlan & 0xff]), frame.subarray(12)]);
}

// ---------------------------------------------------------------------------------------------
// BPF_PROG_TEST_RUN

/** sizeof(struct __sk_buff) rounded up; the kernel accepts a longer ctx if the tail is zero. */
const SKB_CTX_SIZE = 192;
const SKB_MARK_OFFSET = 8;

export interface RunResult {
  retval: number;
  mark: number;
  dataOut: Buffer;
}

/**
 * Run a pinned tc program once on `frame` with skb->mark preset to `mark`, through
 * `bpftool prog run` (BPF_PROG_TEST_RUN): the kernel builds a real skb, runs the program and
 * returns the skb's mark in the output context.
 */
export async function progRun(pin: string, frame: Buffer, mark = 0): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'kmi-run-'));
  try {
    const ctx = Buffer.alloc(SKB_CTX_SIZE);
    ctx.writeUInt32LE(mark >>> 0, SKB_MARK_OFFSET);
    await writeFile(join(dir, 'in'), frame);
    await writeFile(join(dir, 'ctx'), ctx);
    const out = await sh(['bpftool', '-j', 'prog', 'run', 'pinned', pin, 'data_in', join(dir, 'in'), 'data_out', join(dir, 'out'),
      'ctx_in', join(dir, 'ctx'), 'ctx_out', join(dir, 'ctx_out')]);
    const { retval } = JSON.parse(out) as { retval: number };
    const ctxOut = await readFile(join(dir, 'ctx_out'));
    return { retval: retval | 0, mark: ctxOut.readUInt32LE(SKB_MARK_OFFSET), dataOut: await readFile(join(dir, 'out')) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Observing real packets

/** Packets counted by each nftables rule that carries a comment, in the namespace. */
export async function nftCounters(netns: string): Promise<Map<string, number>> {
  const out = await sh([NFT, '-j', 'list', 'ruleset'], netns);
  if (out.trim() === '') throw new Error(`nft -j printed nothing; ruleset:\n${await sh([NFT, 'list', 'ruleset'], netns)}`);
  const doc = JSON.parse(out) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] };
  const result = new Map<string, number>();
  for (const item of doc.nftables) {
    const r = item.rule;
    if (!r?.comment) continue;
    const counter = r.expr.find((e) => e.counter)?.counter;
    if (counter) result.set(r.comment, counter.packets);
  }
  return result;
}

export interface UdpSend {
  src?: string;
  dst: string;
  port: number;
  count: number;
  size?: number;
}

/** Send UDP datagrams from inside `netns` (node itself, moved there with nsenter). */
export async function sendUdp(netns: string, sends: UdpSend[]): Promise<void> {
  const script = `
    const dgram = require('node:dgram');
    const sends = JSON.parse(process.argv[1]);
    (async () => {
      for (const s of sends) {
        const sock = dgram.createSocket(s.dst.includes(':') ? 'udp6' : 'udp4');
        await new Promise((res, rej) => { sock.once('error', rej); sock.bind({ address: s.src, port: 0 }, res); });
        for (let i = 0; i < s.count; i++) {
          await new Promise((res, rej) => sock.send(Buffer.alloc(s.size ?? 16, 0x61), s.port, s.dst, (e) => e ? rej(e) : res()));
        }
        sock.close();
      }
    })().catch((e) => { console.error(e); process.exit(1); });`;
  await sh([process.execPath, '-e', script, JSON.stringify(sends)], netns);
}
