/**
 * The adapter against the real kernel: pins and their visibility to bpftool, map diffs checked
 * through `bpftool map dump` (raw bytes, independent of our decoders), per-node isolation, and
 * tc ownership rules checked through `tc filter show`.
 */
import '../helpers/require-root.js';
import test from 'ava';
import { appendFile, copyFile, mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { inboundStateMark } from '../../core/marks.js';
import { DEFAULT_OBJECT_DIR, ForeignFilterError, MapLayoutError, ensureMaps } from '../../nodeplugin/bpf/index.js';
import type { NodeBpf } from '../../nodeplugin/bpf/index.js';
import { BpfMapsPort } from '../../nodeplugin/kernel-ports.js';
import {
  OBJECT_DIR,
  addForeignFilter,
  addNetns,
  delNetns,
  foreignProgram,
  mountBpffs,
  sh,
  tcShow,
} from './helpers.js';
import type { Bpffs } from './helpers.js';

let fs: Bpffs;
const handles: NodeBpf[] = [];
const namespaces: string[] = [];

test.before(async () => {
  fs = await mountBpffs();
});

test.after.always(async () => {
  for (const ns of namespaces) await delNetns(ns);
  for (const h of handles) h.close();
  await (fs as Bpffs | undefined)?.cleanup();
});

async function open(name: string): Promise<NodeBpf> {
  // Default object dir: the package's own bpf/build, as the node plugin will use it.
  const h = await ensureMaps(join(fs.dir, name));
  handles.push(h);
  return h;
}

interface MapInfo { id: number; name: string; type: string; bytes_key: number; bytes_value: number; max_entries: number; flags: number }
interface ProgInfo { id: number; name: string; type: string; map_ids: number[] }

async function mapShow(path: string): Promise<MapInfo> {
  return JSON.parse(await sh(['bpftool', '-j', 'map', 'show', 'pinned', path])) as MapInfo;
}

async function progShow(path: string): Promise<ProgInfo> {
  return JSON.parse(await sh(['bpftool', '-j', 'prog', 'show', 'pinned', path])) as ProgInfo;
}

/** `bpftool map dump` as raw key hex -> raw value hex. */
async function dumpRaw(path: string): Promise<Record<string, string>> {
  const list = JSON.parse(await sh(['bpftool', '-j', 'map', 'dump', 'pinned', path])) as { key: string[]; value: string[] }[];
  const hex = (bytes: string[]) => bytes.map((b) => b.replace(/^0x/, '')).join('');
  return Object.fromEntries(list.map((e) => [hex(e.key), hex(e.value)]));
}

test('the default object dir is the build output of make -C bpf', (t) => {
  t.is(DEFAULT_OBJECT_DIR, `${OBJECT_DIR}/`);
});

test.serial('ensureMaps pins the maps and both programs in the pin dir, visible to bpftool', async (t) => {
  const bpf = await open('show');
  t.deepEqual(bpf.report.created.sort(), ['kmi_node_stats', 'kmi_peer_cidrs', 'kmi_peer_marks', 'kmi_pod_stats']);
  const maps = {
    cidrs: await mapShow(bpf.pinPath('kmi_peer_cidrs')),
    podStats: await mapShow(bpf.pinPath('kmi_pod_stats')),
    marks: await mapShow(bpf.pinPath('kmi_peer_marks')),
    nodeStats: await mapShow(bpf.pinPath('kmi_node_stats')),
  };
  t.like(maps.cidrs, { name: 'kmi_peer_cidrs', type: 'lpm_trie', bytes_key: 20, bytes_value: 4, max_entries: 8192, flags: 1 });
  t.like(maps.podStats, { name: 'kmi_pod_stats', type: 'percpu_array', bytes_key: 4, bytes_value: 8, max_entries: 16 });
  t.like(maps.marks, { name: 'kmi_peer_marks', type: 'hash', bytes_key: 16, bytes_value: 4, max_entries: 16384, flags: 1 });
  t.like(maps.nodeStats, { name: 'kmi_node_stats', type: 'percpu_array', bytes_key: 4, bytes_value: 8, max_entries: 16 });

  const pod = await progShow(bpf.programPin('pod'));
  const node = await progShow(bpf.programPin('node'));
  t.like(pod, { name: 'kmipsec_pod', type: 'sched_cls' });
  t.like(node, { name: 'kmipsec_node', type: 'sched_cls' });
  t.deepEqual([...pod.map_ids].sort(), [maps.cidrs.id, maps.podStats.id].sort());
  t.deepEqual([...node.map_ids].sort(), [maps.marks.id, maps.nodeStats.id].sort());
  // Nothing went to iproute2's shared location.
  t.false((await sh(['ls', '-A', fs.dir])).split('\n').includes('tc'));
});

test.serial('ensureMaps again reuses the maps with their contents and the programs of the same build', async (t) => {
  const first = await open('reuse');
  first.setPeerCidrs(['10.244.1.0/24']);
  first.setPeerMarks(new Map([['192.168.0.2', inboundStateMark(1)]]));
  const mapId = (await mapShow(first.pinPath('kmi_peer_cidrs'))).id;
  const progId = (await progShow(first.programPin('pod'))).id;

  const second = await open('reuse');
  t.deepEqual(second.report.created, []);
  t.deepEqual(second.listPeerCidrs(), ['10.244.1.0/24']);
  t.deepEqual([...second.listPeerMarks()], [['192.168.0.2', inboundStateMark(1)]]);
  t.is((await mapShow(second.pinPath('kmi_peer_cidrs'))).id, mapId);
  const reused = await progShow(second.programPin('pod'));
  t.is(reused.id, progId, 'same object file: the pinned program is reused, nothing reloaded');
  t.true(reused.map_ids.includes(mapId));
  t.regex(second.programPin('pod'), /\/kmipsec_pod_[0-9a-f]{12}$/, 'the pin is named after the object file content');
});

test.serial('a new build of a program is loaded next to the old one, which is unpinned', async (t) => {
  const first = await open('upgrade');
  const oldPin = first.programPin('pod');
  const oldId = (await progShow(oldPin)).id;
  const build = await newBuild();
  const second = await ensureMaps(first.pinDir, { objectDir: build.dir });
  try {
    t.not(second.programPin('pod'), oldPin);
    t.not((await progShow(second.programPin('pod'))).id, oldId);
    t.false((await readdir(first.pinDir)).includes(basename(oldPin)), 'the old build is unpinned');
    t.is(second.programPin('node'), first.programPin('node'), 'the unchanged program is kept');
  } finally {
    second.close();
    await build.cleanup();
  }
});

/** A "new build" of kmi_pod.o: the same object plus one byte of padding, so its content hash differs. */
async function newBuild(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kmi-objs-'));
  for (const f of ['kmi_pod.o', 'kmi_node.o']) await copyFile(join(DEFAULT_OBJECT_DIR, f), join(dir, f));
  await appendFile(join(dir, 'kmi_pod.o'), Buffer.alloc(1));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

test.serial('setPeerCidrs applies a diff (add, remove, replace), checked in bpftool dumps', async (t) => {
  const bpf = await open('lpm');
  const path = bpf.pinPath('kmi_peer_cidrs');
  const V4 = '04000000';
  const V6 = '06000000';
  // Key bytes as documented for Kmesh's km_nodeinfo.
  const k = {
    a: '18000000' + '0af40100' + '0'.repeat(24), // 10.244.1.0/24
    b: '40000000' + 'fd000010024400010000000000000000', // fd00:10:244:1::/64
    c: '18000000' + '0af40200' + '0'.repeat(24), // 10.244.2.0/24
    c25: '19000000' + '0af40200' + '0'.repeat(24), // 10.244.2.0/25
  };

  t.deepEqual(bpf.setPeerCidrs(['10.244.1.0/24', 'fd00:10:244:1::/64']), { added: ['10.244.1.0/24', 'fd00:10:244:1::/64'], removed: [] });
  t.deepEqual(await dumpRaw(path), { [k.a]: V4, [k.b]: V6 });

  t.deepEqual(bpf.setPeerCidrs(['fd00:10:244:1::/64', '10.244.2.0/24']), { added: ['10.244.2.0/24'], removed: ['10.244.1.0/24'] });
  t.deepEqual(await dumpRaw(path), { [k.b]: V6, [k.c]: V4 });

  t.deepEqual(bpf.setPeerCidrs(['fd00:10:244:1::/64', '10.244.2.0/25']), { added: ['10.244.2.0/25'], removed: ['10.244.2.0/24'] });
  t.deepEqual(await dumpRaw(path), { [k.b]: V6, [k.c25]: V4 });

  t.deepEqual(bpf.setPeerCidrs(['fd00:10:244:1::/64', '10.244.2.0/25']), { added: [], removed: [] }, 'no-op');
  t.deepEqual(bpf.listPeerCidrs(), ['10.244.2.0/25', 'fd00:10:244:1::/64']);

  // An entry we did not write (Kmesh's constant value 1) is cleaned up by the next diff.
  await sh(['bpftool', 'map', 'update', 'pinned', path, 'key', 'hex', ...k.a.match(/../g)!, 'value', 'hex', '01', '00', '00', '00']);
  t.throws(() => bpf.listPeerCidrs(), { message: /value 1, expected 4 or 6/ });
  t.deepEqual(bpf.setPeerCidrs(['fd00:10:244:1::/64', '10.244.2.0/25']).removed, [`invalid:${k.a}`]);

  t.deepEqual(bpf.setPeerCidrs([]), { added: [], removed: ['10.244.2.0/25', 'fd00:10:244:1::/64'] });
  t.deepEqual(await dumpRaw(path), {});
});

test.serial('setPeerCidrs rejects non-canonical input and then changes nothing', async (t) => {
  const bpf = await open('lpmbad');
  bpf.setPeerCidrs(['10.244.1.0/24']);
  const bad: [string, RegExp][] = [
    ['10.244.1.5/24', /not canonical, expected "10.244.1.0\/24"/],
    ['10.244.1.0', /not an IPv4 or IPv6 CIDR/],
    ['10.244.01.0/24', /not an IPv4 or IPv6 CIDR/],
    ['10.244.1.0/33', /not an IPv4 or IPv6 CIDR/],
    ['10.244.1.0/024', /not an IPv4 or IPv6 CIDR/],
    [' 10.244.1.0/24', /not an IPv4 or IPv6 CIDR/],
    ['FD00:10:244:1::/64', /not canonical, expected "fd00:10:244:1::\/64"/],
    ['fd00:0010:244:1::/64', /not canonical/],
    ['fd00:10:244:1:0:0:0:0/64', /not canonical/],
    ['::ffff:10.0.0.0/104', /IPv4-mapped IPv6 is not accepted/],
    ['fe80::%eth0/64', /not an IPv4 or IPv6 CIDR/],
  ];
  for (const [input, message] of bad) {
    t.throws(() => bpf.setPeerCidrs(['10.244.9.0/24', input]), { instanceOf: TypeError, message }, input);
  }
  t.deepEqual(bpf.listPeerCidrs(), ['10.244.1.0/24']);
});

test.serial('setPeerMarks applies a diff; IPv4 keys are ::ffff:a.b.c.d; invalid input changes nothing', async (t) => {
  const bpf = await open('marks');
  const path = bpf.pinPath('kmi_peer_marks');
  const le = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n, 0); return b.toString('hex'); };
  const key4 = '00000000000000000000ffff' + 'c0a80002';
  const key6 = 'fd000000000000000000000000000002';
  const key4b = '00000000000000000000ffff' + 'c0a80004';

  t.deepEqual(bpf.setPeerMarks(new Map([['192.168.0.2', inboundStateMark(1)], ['fd00::2', inboundStateMark(2)]])),
    { added: ['192.168.0.2', 'fd00::2'], removed: [] });
  t.deepEqual(await dumpRaw(path), { [key4]: le(0x100d0), [key6]: le(0x200d0) });

  t.deepEqual(bpf.setPeerMarks(new Map([['192.168.0.2', inboundStateMark(3)], ['192.168.0.4', inboundStateMark(4)]])),
    { added: ['192.168.0.2', '192.168.0.4'], removed: ['fd00::2'] });
  t.deepEqual(await dumpRaw(path), { [key4]: le(0x300d0), [key4b]: le(0x400d0) });
  t.deepEqual([...bpf.listPeerMarks()], [['192.168.0.2', 0x300d0], ['192.168.0.4', 0x400d0]]);

  const badMarks: [string, number, RegExp][] = [
    ['192.168.0.9', 0xe0, /not an inbound state mark/],
    ['192.168.0.9', 0x100d1, /not an inbound state mark/],
    ['192.168.0.9', 0xd0, /not an inbound state mark/],
    ['192.168.0.9', -1, /not an inbound state mark/],
    ['192.168.0.9', 2 ** 32, /not an inbound state mark/],
    ['192.168.000.9', 0x100d0, /not an IPv4 or IPv6 address/],
    ['::ffff:192.168.0.9', 0x100d0, /IPv4-mapped IPv6 is not accepted/],
    ['FD00::9', 0x100d0, /not canonical, expected "fd00::9"/],
    ['fd00::9/128', 0x100d0, /not an IPv4 or IPv6 address/],
  ];
  for (const [address, mark, message] of badMarks) {
    t.throws(() => bpf.setPeerMarks(new Map([['192.168.0.7', 0x700d0], [address, mark]])), { message }, `${address} ${String(mark)}`);
  }
  t.deepEqual(await dumpRaw(path), { [key4]: le(0x300d0), [key4b]: le(0x400d0) });
});

test.serial('BpfMapsPort: without verify it writes only what differs from what it wrote, reading nothing; verify reads the maps back', async (t) => {
  const bpf = await open('port');
  const port = new BpfMapsPort(bpf);
  const cidrs = bpf.pinPath('kmi_peer_cidrs');
  t.is(await port.setPeerCidrsCounted(['10.244.2.0/24', '10.244.3.0/24'], { verify: false }), 2, 'nothing known yet: reads the map, writes both');
  t.is(await port.setPeerCidrsCounted(['10.244.2.0/24', '10.244.3.0/24'], { verify: false }), 0);
  t.is(await port.setPeerCidrsCounted(['10.244.2.0/24', '10.244.4.0/24'], { verify: false }), 2, 'one in, one out');
  t.deepEqual(bpf.listPeerCidrs(), ['10.244.2.0/24', '10.244.4.0/24']);

  // Another writer (a second process, an operator with bpftool) changes the map behind the port's back.
  bpf.setPeerCidrs(['10.244.2.0/24', '10.244.4.0/24', '10.244.9.0/24']);
  t.is(await port.setPeerCidrsCounted(['10.244.2.0/24', '10.244.4.0/24'], { verify: false }), 0, 'without verify the map is not read');
  t.is(Object.keys(await dumpRaw(cidrs)).length, 3, 'so the stranger stays');
  t.is(await port.setPeerCidrsCounted(['10.244.2.0/24', '10.244.4.0/24'], { verify: true }), 1, 'verify reads the map and removes it');
  t.deepEqual(bpf.listPeerCidrs(), ['10.244.2.0/24', '10.244.4.0/24']);

  t.is(await port.setPeerMarksCounted(new Map([['192.168.0.2', inboundStateMark(1)]]), { verify: false }), 1);
  bpf.setPeerMarks(new Map());
  t.is(await port.setPeerMarksCounted(new Map([['192.168.0.2', inboundStateMark(1)]]), { verify: false }), 0, 'the emptied map is not noticed');
  t.is(await port.setPeerMarksCounted(new Map([['192.168.0.2', inboundStateMark(1)]]), { verify: true }), 1, 'until verify');
  t.is(await port.setPeerMarksCounted(new Map([['192.168.0.2', inboundStateMark(2)]]), { verify: false }), 1, 'a changed mark is rewritten');
  t.deepEqual([...bpf.listPeerMarks()], [['192.168.0.2', inboundStateMark(2)]]);

  await t.throwsAsync(port.setPeerMarksCounted(new Map([['192.168.0.3', 0xe0]]), { verify: false }), { message: /not an inbound state mark/ });
  bpf.setPeerMarks(new Map([['192.168.0.2', inboundStateMark(2)], ['192.168.0.8', inboundStateMark(8)]]));
  t.is(await port.setPeerMarksCounted(new Map([['192.168.0.2', inboundStateMark(2)]]), { verify: false }), 1, 'after a refused write it knows nothing, so it reads the map again');
});

test.serial('two nodes with different pin dirs do not see each other', async (t) => {
  const a = await open('node-a');
  const b = await open('node-b');
  a.setPeerCidrs(['10.244.2.0/24', '10.244.3.0/24']);
  b.setPeerCidrs(['10.244.1.0/24']);
  a.setPeerMarks(new Map([['192.168.0.2', inboundStateMark(2)]]));
  b.setPeerMarks(new Map([['192.168.0.1', inboundStateMark(9)]]));
  t.deepEqual(a.listPeerCidrs(), ['10.244.2.0/24', '10.244.3.0/24']);
  t.deepEqual(b.listPeerCidrs(), ['10.244.1.0/24']);
  t.deepEqual([...a.listPeerMarks().keys()], ['192.168.0.2']);
  t.deepEqual([...b.listPeerMarks().keys()], ['192.168.0.1']);
  t.is(Object.keys(await dumpRaw(a.pinPath('kmi_peer_cidrs'))).length, 2);
  t.is(Object.keys(await dumpRaw(b.pinPath('kmi_peer_cidrs'))).length, 1);
  const pa = await progShow(a.programPin('pod'));
  const pb = await progShow(b.programPin('pod'));
  t.deepEqual(pa.map_ids.filter((id) => pb.map_ids.includes(id)), [], 'programs share no map');
  // Diffs on one node leave the other alone.
  b.setPeerCidrs([]);
  t.deepEqual(a.listPeerCidrs(), ['10.244.2.0/24', '10.244.3.0/24']);
});

test.serial('attach is idempotent, keeps foreign filters and qdiscs; list and detach touch only ours', async (t) => {
  const a = await open('tc-a');
  const b = await open('tc-b');
  const ns = await addNetns('t');
  namespaces.push(ns);
  await sh(['ip', 'link', 'add', 'vethx', 'type', 'veth', 'peer', 'name', 'vethy'], ns);
  await sh(['ip', 'link', 'set', 'vethx', 'up'], ns);
  await sh(['ip', 'link', 'set', 'vethy', 'up'], ns);
  const foreign = await foreignProgram(fs.dir, 0x77);
  // Someone else's clsact with filters before ours and at our priority (other handle).
  await addForeignFilter(ns, 'vethx', foreign, 1);
  await addForeignFilter(ns, 'vethx', foreign, 107, 5);
  const foreignFilters = [{ pref: 1, handle: '0x1', progName: 'foreign_mark' }, { pref: 107, handle: '0x5', progName: 'foreign_mark' }];

  const f1 = await a.attachPodProgram('vethx', { netns: ns });
  t.like(f1, { ifname: 'vethx', program: 'pod', prio: 107, handle: 0x6b6d0001, progName: 'kmipsec_pod' });
  const show1 = await tcShow(ns, 'vethx');
  t.deepEqual(show1.filter((f) => f.progName === 'foreign_mark'), foreignFilters);
  t.deepEqual(show1.filter((f) => f.progName === 'kmipsec_pod'), [{ pref: 107, handle: '0x6b6d0001', progName: 'kmipsec_pod' }]);

  // Same program again: still one filter of ours.
  const f2 = await a.attachPodProgram('vethx', { netns: ns });
  t.is(f2.progId, f1.progId);
  t.is((await tcShow(ns, 'vethx')).length, 3);
  // A new build's program (an upgrade): swapped in place.
  const build = await newBuild();
  const a2 = await ensureMaps(a.pinDir, { objectDir: build.dir });
  t.teardown(async () => {
    a2.close();
    await build.cleanup();
  });
  const f3 = await a2.attachPodProgram('vethx', { netns: ns });
  t.not(f3.progId, f1.progId);
  t.deepEqual((await tcShow(ns, 'vethx')).filter((f) => f.progName === 'kmipsec_pod').length, 1);

  // vethy had no qdisc: we add clsact.
  await a2.attachNodeProgram('vethy', { netns: ns });
  t.true((await sh(['tc', 'qdisc', 'show', 'dev', 'vethy'], ns)).includes('clsact'));
  const text = await sh(['tc', 'filter', 'show', 'dev', 'vethy', 'ingress'], ns);
  t.regex(text, /pref 107 bpf chain 0 handle 0x6b6d0002 kmipsec_node_[0-9a-f]{12}:\[\*fsobj\] direct-action .* name kmipsec_node/);

  const listed = await a2.listAttached({ netns: ns });
  t.deepEqual(listed.map((f) => [f.ifname, f.program, f.usesOurMaps]), [['vethx', 'pod', true], ['vethy', 'node', true]]);
  const fromB = await b.listAttached({ netns: ns });
  t.deepEqual(fromB.map((f) => [f.ifname, f.program, f.usesOurMaps]), [['vethx', 'pod', false], ['vethy', 'node', false]]);
  t.deepEqual((await a2.listAttached({ netns: ns, ifname: 'vethy' })).map((f) => f.program), ['node']);
  t.deepEqual(await a2.listAttached(), [], 'nothing of ours in the test runner namespace');

  t.deepEqual(await a2.detach('vethx', { netns: ns }), ['pod']);
  t.deepEqual(await tcShow(ns, 'vethx'), foreignFilters, 'foreign filters untouched');
  t.true((await sh(['tc', 'qdisc', 'show', 'dev', 'vethx'], ns)).includes('clsact'), 'qdisc kept');
  t.deepEqual(await a2.detach('vethx', { netns: ns }), []);
  t.deepEqual(await a2.detach('vethy', { netns: ns, program: 'pod' }), []);
  t.deepEqual((await tcShow(ns, 'vethy')).map((f) => f.progName), ['kmipsec_node']);
  t.deepEqual(await a2.detach('vethy', { netns: ns }), ['node']);
  t.deepEqual(await tcShow(ns, 'vethy'), []);
  t.deepEqual(await a2.detach('nosuchdev', { netns: ns }), []);
  t.deepEqual(await a2.listAttached({ netns: ns }), []);
});

test.serial('a foreign filter at our priority and handle is neither replaced nor deleted', async (t) => {
  const bpf = await open('tc-foreign');
  const ns = await addNetns('f');
  namespaces.push(ns);
  await sh(['ip', 'link', 'add', 'vethx', 'type', 'veth', 'peer', 'name', 'vethy'], ns);
  await addForeignFilter(ns, 'vethx', await foreignProgram(fs.dir, 0x78), 107, 0x6b6d0001);
  await t.throwsAsync(bpf.attachPodProgram('vethx', { netns: ns }), { instanceOf: ForeignFilterError, message: /belongs to program "foreign_mark"/ });
  await t.throwsAsync(bpf.detach('vethx', { netns: ns }), { instanceOf: ForeignFilterError });
  t.deepEqual(await tcShow(ns, 'vethx'), [{ pref: 107, handle: '0x6b6d0001', progName: 'foreign_mark' }]);
  t.deepEqual(await bpf.listAttached({ netns: ns }), []);
  // The node handle is free: attaching there works next to it.
  await bpf.attachNodeProgram('vethx', { netns: ns });
  t.is((await tcShow(ns, 'vethx')).length, 2);
});

test.serial('interface names are validated before running tc', async (t) => {
  const bpf = await open('ifname');
  for (const bad of ['', 'a/b', 'x'.repeat(16), 'has space', 'eth0:1']) {
    await t.throwsAsync(bpf.attachPodProgram(bad), { instanceOf: TypeError, message: /not a valid Linux interface name/ }, bad);
  }
});

test.serial('pin dir checks: bpffs only, no dots, incompatible maps refused, half-pinned sets rebuilt', async (t) => {
  const plain = await mkdtemp(join(tmpdir(), 'kmi-notbpf-'));
  try {
    await t.throwsAsync(ensureMaps(join(plain, 'n', 'm'), { objectDir: OBJECT_DIR }), { message: /is not on a bpf filesystem/ });
    t.deepEqual(await readdir(plain), [], 'nothing created outside bpffs');
  } finally {
    await rm(plain, { recursive: true, force: true });
  }
  await t.throwsAsync(ensureMaps(join(fs.dir, 'node.example'), { objectDir: OBJECT_DIR }), { instanceOf: TypeError, message: /must not contain '\.'/ });
  await t.throwsAsync(ensureMaps('relative/dir'), { instanceOf: TypeError, message: /must be absolute/ });

  // A map of the wrong shape where ours should be (an old, incompatible version).
  await sh(['mkdir', '-p', join(fs.dir, 'wrong')]);
  await sh(['bpftool', 'map', 'create', join(fs.dir, 'wrong', 'kmi_peer_cidrs'), 'type', 'hash', 'key', '20', 'value', '4', 'entries', '16', 'name', 'kmi_peer_cidrs']);
  await t.throwsAsync(ensureMaps(join(fs.dir, 'wrong'), { objectDir: OBJECT_DIR }), { instanceOf: MapLayoutError, message: /type is 1, this build expects 11/ });

  // One of an object's two maps lost: both are recreated (contents are rebuilt by the caller).
  const first = await open('half');
  first.setPeerCidrs(['10.244.1.0/24']);
  await unlink(first.pinPath('kmi_pod_stats'));
  const second = await open('half');
  t.deepEqual(second.report.created.sort(), ['kmi_peer_cidrs', 'kmi_pod_stats']);
  t.deepEqual(second.listPeerCidrs(), []);

  await second.removePins();
  t.is((await sh(['ls', '-A', fs.dir])).split('\n').includes('half'), false);
});
