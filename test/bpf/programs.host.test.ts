/**
 * The two tc programs, run by the kernel through BPF_PROG_TEST_RUN (`bpftool prog run`) on
 * crafted frames: exact control over headers (VLAN, IPv6 extension headers, truncation) and the
 * incoming skb->mark, and the resulting mark read back from the kernel's skb. Real packets
 * through attached filters are covered in packets.host.test.ts.
 */
import '../helpers/require-root.js';
import test from 'ava';
import { DECRYPTED_MARK, ENCRYPT_MARK, inboundStateMark } from '../../core/marks.js';
import { ensureMaps } from '../../nodeplugin/bpf/index.js';
import type { Counters, NodeBpf } from '../../nodeplugin/bpf/index.js';
import {
  OBJECT_DIR,
  arpRequest,
  espPayload,
  eth,
  ipv4,
  ipv6,
  mountBpffs,
  progRun,
  sh,
  udpPayload,
  withVlan,
} from './helpers.js';
import type { Bpffs } from './helpers.js';

const TC_ACT_UNSPEC = -1;
const FOREIGN = 0x5a5a;
const ESP = 50;
const UDP = 17;
const TCP = 6;

let fs: Bpffs;
let bpf: NodeBpf;
let podPin: string;
let nodePin: string;

test.before(async () => {
  fs = await mountBpffs();
  bpf = await ensureMaps(`${fs.dir}/node-a`, { objectDir: OBJECT_DIR });
  podPin = bpf.programPin('pod');
  nodePin = bpf.programPin('node');
  bpf.setPeerCidrs(['10.244.2.0/24', 'fd00:10:244:2::/64', '2001:db8::/32', '10.0.0.0/8']);
  bpf.setPeerMarks(new Map([['192.168.0.2', inboundStateMark(2)], ['fd00::2', inboundStateMark(7)]]));
});

test.after.always(async () => {
  (bpf as NodeBpf | undefined)?.close();
  await (fs as Bpffs | undefined)?.cleanup();
});

function delta(before: Counters, after: Counters): Counters {
  const d = <T extends Record<string, number>>(a: T, b: T): T =>
    Object.fromEntries(Object.keys(a).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)])) as T;
  return { pod: d(before.pod, after.pod), node: d(before.node, after.node) };
}

// --- pod program ---------------------------------------------------------------------------

const podCases: { title: string; frame: Buffer; markIn: number; markOut: number; counter: keyof Counters['pod'] }[] = [
  { title: 'IPv4 to a peer pod CIDR', frame: ipv4('10.244.1.5', '10.244.2.7', TCP, udpPayload()), markIn: 0, markOut: ENCRYPT_MARK, counter: 'marked' },
  { title: 'IPv4 to a peer pod CIDR, mark already set by someone', frame: ipv4('10.244.1.5', '10.244.2.255', UDP, udpPayload()), markIn: FOREIGN, markOut: ENCRYPT_MARK, counter: 'marked' },
  { title: 'IPv4 elsewhere', frame: ipv4('10.244.1.5', '172.16.2.7', UDP, udpPayload()), markIn: FOREIGN, markOut: FOREIGN, counter: 'missed' },
  { title: 'IPv4 802.1Q-tagged to a peer', frame: withVlan(ipv4('10.244.1.5', '10.244.2.7', UDP, udpPayload()), 42), markIn: 0, markOut: ENCRYPT_MARK, counter: 'marked' },
  { title: 'IPv6 to a peer pod CIDR', frame: ipv6('fd00:10:244:1::5', 'fd00:10:244:2::9', UDP, udpPayload()), markIn: 0, markOut: ENCRYPT_MARK, counter: 'marked' },
  { title: 'IPv6 elsewhere', frame: ipv6('fd00:10:244:1::5', 'fd00:10:244:3::9', UDP, udpPayload()), markIn: FOREIGN, markOut: FOREIGN, counter: 'missed' },
  { title: 'IPv6 802.1Q-tagged to a peer', frame: withVlan(ipv6('fd00:10:244:1::5', 'fd00:10:244:2::1', UDP, udpPayload()), 7), markIn: 0, markOut: ENCRYPT_MARK, counter: 'marked' },
  // 2001:db8::/32 is stored with the same 32 leading bits as IPv4 32.1.13.184: a family check
  // must stop it from matching.
  { title: 'IPv4 aliasing a short IPv6 entry is not marked', frame: ipv4('10.244.1.5', '32.1.13.184', UDP, udpPayload()), markIn: 0, markOut: 0, counter: 'missed' },
  { title: 'IPv6 aliasing an IPv4 entry is not marked', frame: ipv6('fd00:10:244:1::5', 'a00::1', UDP, udpPayload()), markIn: 0, markOut: 0, counter: 'missed' },
  { title: 'ARP is untouched', frame: arpRequest(), markIn: FOREIGN, markOut: FOREIGN, counter: 'nonIp' },
  // BPF_PROG_TEST_RUN refuses frames whose ethertype's L3 header is incomplete, but not behind
  // a VLAN tag: that is how a truncated header reaches the program here.
  { title: 'truncated IPv4 behind a VLAN tag is untouched', frame: withVlan(ipv4('10.244.1.5', '10.244.2.7', UDP, udpPayload()), 5).subarray(0, 18 + 12), markIn: FOREIGN, markOut: FOREIGN, counter: 'malformed' },
  { title: 'IPv6 ethertype with an IPv4 header is untouched', frame: eth(0x86dd, ipv4('10.244.1.5', '10.244.2.7', UDP, Buffer.alloc(40)).subarray(14)), markIn: 0, markOut: 0, counter: 'malformed' },
];

for (const c of podCases) {
  test.serial(`pod program: ${c.title}`, async (t) => {
    const before = bpf.readCounters();
    const r = await progRun(podPin, c.frame, c.markIn);
    const d = delta(before, bpf.readCounters());
    t.is(r.mark, c.markOut, `mark 0x${r.mark.toString(16)}`);
    t.is(r.retval, TC_ACT_UNSPEC);
    t.deepEqual(r.dataOut, c.frame, 'packet bytes unchanged');
    t.is(d.pod[c.counter], 1, `counter ${c.counter}: ${JSON.stringify(d.pod)}`);
    const others = Object.entries(d.pod).filter(([k, v]) => k !== c.counter && k !== 'ip' && v !== 0);
    t.deepEqual(others, []);
    t.is(d.pod.ip, c.counter === 'marked' || c.counter === 'missed' ? 1 : 0);
    t.deepEqual(d.node, { espSeen: 0, espMarked: 0, espUnknownPeer: 0, nonEsp: 0, malformed: 0 });
  });
}

// --- node program --------------------------------------------------------------------------

const FRAG: [number, Buffer] = [44, Buffer.from([0, 0, 0, 0, 0, 1])];
const HOP: [number, Buffer] = [0, Buffer.from([1, 4, 0, 0, 0, 0])]; // PadN option
const DST: [number, Buffer] = [60, Buffer.from([1, 12, ...Array<number>(12).fill(0)])];

const nodeCases: { title: string; frame: Buffer; markIn: number; markOut: number; counter: keyof Counters['node'] }[] = [
  { title: 'IPv4 ESP from a known peer', frame: ipv4('192.168.0.2', '192.168.0.1', ESP, espPayload()), markIn: 0, markOut: inboundStateMark(2), counter: 'espMarked' },
  { title: 'IPv4 ESP from a known peer replaces a foreign mark', frame: ipv4('192.168.0.2', '192.168.0.1', ESP, espPayload()), markIn: FOREIGN, markOut: inboundStateMark(2), counter: 'espMarked' },
  { title: 'IPv4 ESP, 802.1Q-tagged, from a known peer', frame: withVlan(ipv4('192.168.0.2', '192.168.0.1', ESP, espPayload()), 100), markIn: 0, markOut: inboundStateMark(2), counter: 'espMarked' },
  { title: 'IPv4 ESP from an unknown source', frame: ipv4('192.168.0.3', '192.168.0.1', ESP, espPayload()), markIn: FOREIGN, markOut: FOREIGN, counter: 'espUnknownPeer' },
  { title: 'IPv6 ESP from a known peer', frame: ipv6('fd00::2', 'fd00::1', ESP, espPayload()), markIn: 0, markOut: inboundStateMark(7), counter: 'espMarked' },
  { title: 'IPv6 ESP behind a fragment header', frame: ipv6('fd00::2', 'fd00::1', ESP, espPayload(), [FRAG]), markIn: 0, markOut: inboundStateMark(7), counter: 'espMarked' },
  { title: 'IPv6 ESP behind hop-by-hop, destination options and fragment headers', frame: ipv6('fd00::2', 'fd00::1', ESP, espPayload(), [HOP, DST, FRAG]), markIn: 0, markOut: inboundStateMark(7), counter: 'espMarked' },
  { title: 'IPv6 ESP behind more extension headers than we walk is left alone', frame: ipv6('fd00::2', 'fd00::1', ESP, espPayload(), [HOP, DST, DST, DST, FRAG]), markIn: FOREIGN, markOut: FOREIGN, counter: 'nonEsp' },
  { title: 'IPv6 ESP from an unknown source', frame: ipv6('fd00::3', 'fd00::1', ESP, espPayload()), markIn: 0, markOut: 0, counter: 'espUnknownPeer' },
  // The IPv4-mapped key of 192.168.0.2 must not match an IPv6 packet from ::ffff:192.168.0.2.
  { title: 'IPv6 ESP from ::ffff:192.168.0.2 is not the IPv4 peer', frame: ipv6('::ffff:c0a8:2', 'fd00::1', ESP, espPayload()), markIn: 0, markOut: 0, counter: 'espUnknownPeer' },
  { title: 'decrypted packet keeps the state output mark', frame: ipv4('10.244.2.7', '10.244.1.5', TCP, udpPayload()), markIn: DECRYPTED_MARK, markOut: DECRYPTED_MARK, counter: 'nonEsp' },
  { title: 'IPv4 UDP from a known peer keeps a foreign mark', frame: ipv4('192.168.0.2', '192.168.0.1', UDP, udpPayload()), markIn: FOREIGN, markOut: FOREIGN, counter: 'nonEsp' },
  { title: 'IPv6 UDP from a known peer is untouched', frame: ipv6('fd00::2', 'fd00::1', UDP, udpPayload(), [FRAG]), markIn: 0, markOut: 0, counter: 'nonEsp' },
  { title: 'ARP is untouched', frame: arpRequest(), markIn: FOREIGN, markOut: FOREIGN, counter: 'nonEsp' },
  { title: 'truncated IPv4 ESP behind a VLAN tag is untouched', frame: withVlan(ipv4('192.168.0.2', '192.168.0.1', ESP, espPayload()), 5).subarray(0, 18 + 14), markIn: FOREIGN, markOut: FOREIGN, counter: 'malformed' },
  { title: 'IPv6 extension header running past the end is untouched', frame: ipv6('fd00::2', 'fd00::1', 0, Buffer.from([60, 255])), markIn: FOREIGN, markOut: FOREIGN, counter: 'malformed' },
];

for (const c of nodeCases) {
  test.serial(`node program: ${c.title}`, async (t) => {
    const before = bpf.readCounters();
    const r = await progRun(nodePin, c.frame, c.markIn);
    const d = delta(before, bpf.readCounters());
    t.is(r.mark, c.markOut, `mark 0x${r.mark.toString(16)}`);
    t.is(r.retval, TC_ACT_UNSPEC);
    t.deepEqual(r.dataOut, c.frame, 'packet bytes unchanged');
    t.is(d.node[c.counter], 1, `counter ${c.counter}: ${JSON.stringify(d.node)}`);
    const others = Object.entries(d.node).filter(([k, v]) => k !== c.counter && k !== 'espSeen' && v !== 0);
    t.deepEqual(others, []);
    t.is(d.node.espSeen, c.counter === 'espMarked' || c.counter === 'espUnknownPeer' ? 1 : 0);
    t.deepEqual(d.pod, { ip: 0, marked: 0, missed: 0, nonIp: 0, malformed: 0 });
  });
}

test.serial('counters sum over CPUs and match bpftool', async (t) => {
  // With BTF (the maps come from the object), bpftool adds a decoded "formatted" view.
  const dump = JSON.parse(await sh(['bpftool', '-j', 'map', 'dump', 'pinned', bpf.pinPath('kmi_pod_stats')])) as
    { formatted: { key: number; values: { cpu: number; value: number }[] } }[];
  const sum = (slot: number) => dump.find((e) => e.formatted.key === slot)?.formatted.values.reduce((a, v) => a + v.value, 0);
  const c = bpf.readCounters();
  t.is(sum(1), c.pod.marked);
  t.is(sum(2), c.pod.missed);
  t.true(c.pod.marked >= 5);
});
