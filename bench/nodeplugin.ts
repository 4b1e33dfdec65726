/**
 * The node plugin's kernel layer at scale, against baselines measured in the same run:
 *
 * - plan() for P peers, against the 2P SHA-512 key derivations it needs, and a Planner (what
 *   the daemon uses: it derives each pair key once) planning again after one peer rebooted;
 * - N out policies through the netlink adapter in a fresh process, and the encoding alone
 *   (warm), against `ip -batch` of the identical policies (rendered from the same plan);
 * - the BPF maps (LPM trie of pod CIDRs, hash of peer marks) through the adapter, against
 *   `bpftool batch` of the identical entries;
 * - NodeDatapath.sync at P peers: from empty, a no-change sync (an event that changes
 *   nothing: planned and diffed in full, as the first after a change is), the same facts again
 *   (answered from that settled sync), the periodic resync (reads the kernel back), and a
 *   one-peer change (a peer rebooted: new boot ID, new keys), with every kernel operation
 *   counted; against `ip xfrm policy list` of the same tables;
 * - the daemon's memory with P peers watched through the local Kubernetes API.
 *
 *   npm run bench:nodeplugin -- [--peers 100,1000,5000] [--runs 3] [--daemon-peers 5000]
 *
 * Needs root, iproute2 and bpftool. It re-runs itself under `unshare --net --mount`: a fresh
 * network namespace and a private bpffs, so the host's xfrm tables and pins are never touched.
 * This kernel has no ESP, so SAs live in an in-memory table behind the same XfrmPort (policies
 * and maps are the real kernel's); in the project VM, which has ESP, they are real too.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deriveKey } from '../core/derive.js';
import { type PeerNode, Planner, plan } from '../core/plan.js';
import type { IpsecKey } from '../core/secret.js';
import { type NodeBpf, ensureMaps } from '../nodeplugin/bpf/index.js';
import { LPM_FAMILY_VALUE, MAPS, encodeAddress, encodeCidr, u32Buf } from '../nodeplugin/bpf/layout.js';
import { BpfMapsPort } from '../nodeplugin/kernel-ports.js';
import { NodeDatapath, type SyncInput, type SyncMemory } from '../nodeplugin/node-datapath.js';
import type { ChangeOutcome, DatapathMapsPort, MapsWriteOptions, XfrmPort } from '../nodeplugin/reconciler/reconciler.js';
import { stateKey, toXfrmPolicy } from '../nodeplugin/reconciler/xfrm-diff.js';
import { encodeChange } from '../nodeplugin/xfrm/request-codec.js';
import { decodeState } from '../nodeplugin/xfrm/state-codec.js';
import { XfrmSocket } from '../nodeplugin/xfrm/index.js';
import type { XfrmChange, XfrmPolicy, XfrmPolicyInfo, XfrmStateInfo } from '../nodeplugin/xfrm/types.js';
import { cpuMs, fmt, machineLine, median, memoryMiB, table } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const LOCAL_IP = '10.255.255.1';
const LOCAL_CIDR = '10.254.0.0/24';
const KEY: IpsecKey = { spi: 3, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: randomBytes(36), icvBits: 128 };
const KEYS = new Map([[KEY.spi, KEY]]);
const local = { name: 'bench-node', addresses: [LOCAL_IP], bootID: randomUUID(), podCIDRS: [LOCAL_CIDR] };

function peerName(i: number): string {
  return `peer-${String(i).padStart(5, '0')}`;
}
function peerAddress(i: number): string {
  return `10.${(i >> 8) & 255}.${i & 255}.2`;
}
function peerCidr(i: number): string {
  return `10.${128 + ((i >> 8) & 127)}.${i & 255}.0/24`;
}
function peers(p: number): PeerNode[] {
  return Array.from({ length: p }, (_, i) => ({ name: peerName(i), spec: { spi: KEY.spi, addresses: [peerAddress(i)], bootID: randomUUID(), podCIDRS: [peerCidr(i)] } }));
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return [ms(t0), r];
}

// ---------------------------------------------------------------------------------------------
// Ports that count what reaches the kernel

/**
 * SAs in memory (this kernel has no ESP), policies through netlink. A state dump decodes each
 * SA's message as a real one does; the messages are made when the SA is added, as the kernel
 * would hold them, so that making them is not counted as part of the dump.
 */
class BenchXfrmPort implements XfrmPort {
  /** stateKey -> the SA's netlink message (XFRM_MSG_NEWSA payload). */
  readonly states = new Map<string, Uint8Array>();
  readonly #socket: XfrmSocket;
  counts = { dumps: 0, states: 0, policies: 0 };

  constructor(socket: XfrmSocket) {
    this.#socket = socket;
  }

  dumpStates(): Promise<readonly XfrmStateInfo[]> {
    this.counts.dumps++;
    // What a real dump costs us besides the kernel: decoding every SA's message.
    return Promise.resolve([...this.states.values()].map((message) => decodeState(message)));
  }

  dumpPolicies(): Promise<readonly XfrmPolicyInfo[]> {
    this.counts.dumps++;
    return this.#socket.dumpPolicies();
  }

  async apply(changes: readonly XfrmChange[]): Promise<readonly ChangeOutcome[]> {
    const policyChanges = changes.filter((c) => c.op === 'addPolicy' || c.op === 'updatePolicy' || c.op === 'deletePolicy');
    const results = await this.#socket.applyBatch(policyChanges);
    const policyOutcome = new Map<XfrmChange, (typeof results)[number] | undefined>(policyChanges.map((c, i) => [c, results[i]]));
    this.counts.policies += policyChanges.length;
    return changes.map((change) => {
      const r = policyOutcome.get(change);
      if (r) return r.ok ? { change } : { change, error: r.error };
      this.counts.states++;
      if (change.op === 'addState') {
        const key = stateKey(change.state);
        if (this.states.has(key)) return { change, error: new Error('EEXIST') };
        this.states.set(key, encodeChange(change).payload);
      } else if (change.op === 'deleteState') {
        const key = stateKey(change.id);
        if (!this.states.delete(key)) return { change, error: new Error('ESRCH') };
      }
      return { change };
    });
  }
}

class CountingMaps implements DatapathMapsPort {
  readonly #inner: BpfMapsPort;
  writes = 0;
  constructor(inner: BpfMapsPort) {
    this.#inner = inner;
  }
  async setPeerMarks(marks: ReadonlyMap<string, number>, options?: MapsWriteOptions): Promise<void> {
    this.writes += await this.#inner.setPeerMarksCounted(marks, options);
  }
  async setPeerCidrs(cidrs: readonly string[], options?: MapsWriteOptions): Promise<void> {
    this.writes += await this.#inner.setPeerCidrsCounted(cidrs, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Sections

function planSection(sizes: readonly number[], runs: number): string[][] {
  const rows = [['P peers', 'plan() ms', '2P derivations ms', 'ratio', 'Planner, one peer rebooted ms', 'ratio']];
  for (const p of sizes) {
    const list = peers(p);
    const input = { local, peers: list, keys: KEYS, inboundSpis: [KEY.spi], peerIds: new Map<string, number>() };
    plan(input); // warm the code, not the data
    const planMs: number[] = [], deriveMs: number[] = [], replanMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const fresh = { ...input, peers: peers(p) };
      planMs.push(timedSync(() => plan(fresh)));
      // What the daemon runs: a Planner that planned these peers before, after one rebooted.
      const planner = new Planner();
      planner.plan(fresh);
      const rebooted = fresh.peers.map((peer, i) => (i === 0 ? { ...peer, spec: { ...peer.spec, bootID: randomUUID() } } : peer));
      replanMs.push(timedSync(() => planner.plan({ ...fresh, peers: rebooted })));
      deriveMs.push(timedSync(() => {
        for (const peer of fresh.peers) {
          const a = peer.spec.addresses[0] ?? '';
          deriveKey(KEY.aeadKey, a, LOCAL_IP, peer.spec.bootID, local.bootID);
          deriveKey(KEY.aeadKey, LOCAL_IP, a, local.bootID, peer.spec.bootID);
        }
      }));
    }
    const pm = median(planMs), dm = median(deriveMs), rm = median(replanMs);
    rows.push([String(p), fmt(pm), fmt(dm), fmt(pm / dm, 2), fmt(rm), fmt(rm / dm, 2)]);
  }
  return rows;
}

function timedSync(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return ms(t0);
}

function ipBatchLine(p: XfrmPolicy): string {
  const t = p.tmpls[0];
  if (!t || !p.mark) throw new Error('policy without template or mark');
  return `xfrm policy add src ${p.selector.src} dst ${p.selector.dst} dir ${p.dir} mark ${p.mark.value} mask ${p.mark.mask} tmpl src ${t.src} dst ${t.dst} proto esp spi ${t.spi} reqid ${t.reqid} mode tunnel`;
}

function outPolicies(n: number): XfrmPolicy[] {
  const planned = plan({ local, peers: peers(n), keys: KEYS, inboundSpis: [KEY.spi], peerIds: new Map() });
  return planned.policies.filter((p) => p.dir === 'out').map(toXfrmPolicy);
}

function policySection(sizes: readonly number[], runs: number, dir: string): string[][] {
  const rows = [['N out policies', 'adapter, fresh process ms', 'encode only, warm ms', 'ip -batch ms', 'adapter / ip', 'encode / ip']];
  for (const n of sizes) {
    const policies = outPolicies(n);
    const file = join(dir, `policies-${n}.json`);
    writeFileSync(file, JSON.stringify(policies));
    const batch = join(dir, `policies-${n}.ip`);
    writeFileSync(batch, `${policies.map(ipBatchLine).join('\n')}\n`);
    const ours: number[] = [], encode: number[] = [], ip: number[] = [];
    const changes: XfrmChange[] = policies.map((policy) => ({ op: 'addPolicy', policy }));
    for (let w = 0; w < 3; w++) for (const c of changes) encodeChange(c);
    for (let r = 0; r < runs; r++) {
      sh(['ip', 'xfrm', 'policy', 'flush']);
      ours.push(freshProcessProgram(file));
      sh(['ip', 'xfrm', 'policy', 'flush']);
      const t0 = process.hrtime.bigint();
      sh(['ip', '-batch', batch]);
      ip.push(ms(t0));
      encode.push(timedSync(() => {
        for (const c of changes) encodeChange(c);
      }));
    }
    sh(['ip', 'xfrm', 'policy', 'flush']);
    const o = median(ours), e = median(encode), i = median(ip);
    rows.push([String(n), fmt(o), fmt(e), fmt(i), fmt(o / i, 2), fmt(e / i, 2)]);
  }
  return rows;
}

/** Child: open a socket and install the policies in `file`; prints the time taken (after imports). */
async function programRole(file: string): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const policies = JSON.parse(readFileSync(file, 'utf8')) as XfrmPolicy[];
  const t0 = process.hrtime.bigint();
  const socket = XfrmSocket.open();
  const results = await socket.applyBatch(policies.map((policy) => ({ op: 'addPolicy', policy })));
  const took = ms(t0);
  socket.close();
  if (!results.every((r) => r.ok)) throw new Error('a policy was refused');
  process.stdout.write(`${JSON.stringify({ ms: took })}\n`);
}

function freshProcessProgram(file: string): number {
  const r = spawnSync(process.execPath, [SELF, 'program', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`program child failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { ms: number }).ms;
}

function mapsSection(sizes: readonly number[], runs: number, bpf: NodeBpf, dir: string): string[][] {
  const rows = [['N peers', 'adapter ms (LPM + marks)', 'bpftool batch ms', 'ratio']];
  for (const n of sizes) {
    const cidrs = Array.from({ length: n }, (_, i) => peerCidr(i));
    const marks = new Map(Array.from({ length: n }, (_, i) => [peerAddress(i), (((i % 0xffff) + 1) << 16 | 0xd0) >>> 0]));
    const hex = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const lines = [
      ...cidrs.map((c) => `map update pinned ${bpf.pinPath(MAPS.peerCidrs.name)} key hex ${hex(encodeCidr(c).key)} value hex ${hex(u32Buf(LPM_FAMILY_VALUE[4]))}`),
      ...[...marks].map(([a, m]) => `map update pinned ${bpf.pinPath(MAPS.peerMarks.name)} key hex ${hex(encodeAddress(a).key)} value hex ${hex(u32Buf(m))}`),
    ];
    const batch = join(dir, `maps-${n}.txt`);
    writeFileSync(batch, `${lines.join('\n')}\n`);
    const ours: number[] = [], tool: number[] = [];
    for (let r = 0; r < runs; r++) {
      bpf.setPeerCidrs([]);
      bpf.setPeerMarks(new Map());
      ours.push(timedSync(() => {
        bpf.setPeerCidrs(cidrs);
        bpf.setPeerMarks(marks);
      }));
      bpf.setPeerCidrs([]);
      bpf.setPeerMarks(new Map());
      const t0 = process.hrtime.bigint();
      sh(['bpftool', 'batch', 'file', batch]);
      tool.push(ms(t0));
    }
    bpf.setPeerCidrs([]);
    bpf.setPeerMarks(new Map());
    const o = median(ours), t = median(tool);
    rows.push([String(n), fmt(o), fmt(t), fmt(o / t, 2)]);
  }
  return rows;
}

interface SyncCounts {
  ms: number;
  states: number;
  policies: number;
  mapWrites: number;
  dumps: number;
}

async function syncSection(sizes: readonly number[], runs: number, bpf: NodeBpf): Promise<string[][]> {
  const rows = [['P peers', 'step', 'ms', 'SA changes', 'policy changes', 'map writes', 'dumps', 'ip xfrm policy list ms', 'ratio']];
  for (const p of sizes) {
    const results = new Map<string, SyncCounts[]>();
    const listMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      sh(['ip', 'xfrm', 'policy', 'flush']);
      bpf.setPeerCidrs([]);
      bpf.setPeerMarks(new Map());
      const socket = XfrmSocket.open();
      const xfrm = new BenchXfrmPort(socket);
      const maps = new CountingMaps(new BpfMapsPort(bpf));
      const datapath = new NodeDatapath(xfrm, maps, { drainMs: 0 });
      const list = peers(p);
      const input = (ps: readonly PeerNode[]): SyncInput => ({ local, peers: ps, keys: KEYS, now: Date.now(), graceMs: 300_000 });
      let memory: SyncMemory | undefined;
      const step = async (name: string, ps: readonly PeerNode[], verify: boolean): Promise<void> => {
        const before = { ...xfrm.counts }, writes = maps.writes;
        const [took, result] = await timed(() => datapath.sync({ ...input(ps), verify }, memory));
        if (result.report.errors.length > 0) throw new Error(`${name}: ${result.report.errors[0] ?? ''}`);
        memory = result.memory;
        const counts = { ms: took, states: xfrm.counts.states - before.states, policies: xfrm.counts.policies - before.policies, mapWrites: maps.writes - writes, dumps: xfrm.counts.dumps - before.dumps };
        results.set(name, [...(results.get(name) ?? []), counts]);
      };
      await step('from empty', list, true);
      await step('no change (event)', list, false);
      // The first found nothing to do, so the same facts again are answered from it.
      await step('no change again (event)', list.map((p) => ({ ...p })), false);
      await step('periodic resync', list, true);
      const rebooted = list.map((peer, i) => (i === 0 ? { ...peer, spec: { ...peer.spec, bootID: randomUUID() } } : peer));
      await step('one peer rebooted', rebooted, false);
      const t0 = process.hrtime.bigint();
      sh(['ip', 'xfrm', 'policy', 'list'], true);
      listMs.push(ms(t0));
      socket.close();
    }
    const list = median(listMs);
    for (const [name, samples] of results) {
      const m = median(samples.map((s) => s.ms));
      const last = samples[samples.length - 1] as SyncCounts;
      rows.push([String(p), name, fmt(m), String(last.states), String(last.policies), String(last.mapWrites), String(last.dumps), fmt(list), fmt(m / list, 2)]);
    }
  }
  sh(['ip', 'xfrm', 'policy', 'flush']);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// The daemon with P peers through the local Kubernetes API

async function daemonSection(p: number, dir: string, bpffs: string): Promise<string[][]> {
  const { startLocalApi } = await import('../localapi/index.js');
  const { generateStampKey } = await import('../certs/stamp-keygen.js');
  const { importStampSigningKey, signStamp } = await import('../core/stamp.js');
  const { encodeIpsecValue } = await import('../core/secret.js');
  const stamp = await generateStampKey();
  const signer = await importStampSigningKey(stamp.privateJwk);
  if (!signer.ok) throw new Error('stamp key refused');
  const bootID = local.bootID;
  const objects: Record<string, unknown>[] = [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: local.name, uid: randomUUID() }, spec: { podCIDRs: [LOCAL_CIDR] }, status: { addresses: [{ type: 'InternalIP', address: LOCAL_IP }], nodeInfo: { bootID } } },
  ];
  for (const peer of peers(p)) {
    const token = await signStamp({ nodeName: peer.name, spec: peer.spec }, signer.value, { ttlSeconds: 86_400 });
    objects.push({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: peer.name, namespace: 'kmesh-system', annotations: { 'kmesh.net/validity': token } }, spec: peer.spec });
  }
  const api = await startLocalApi({ objects: objects as never });
  const files = join(dir, 'daemon');
  mkdirSync(join(files, 'secret'), { recursive: true });
  writeFileSync(join(files, 'secret', 'ipSec'), encodeIpsecValue(KEY));
  writeFileSync(join(files, 'jwks.json'), JSON.stringify({ keys: [stamp.publicJwk] }));
  writeFileSync(join(files, 'boot_id'), `${bootID}\n`);
  api.writeKubeconfig(join(files, 'kubeconfig'));
  sh(['ip', 'link', 'add', 'kmb0', 'type', 'veth', 'peer', 'name', 'kmb1']);
  sh(['ip', 'addr', 'add', `${LOCAL_IP}/8`, 'dev', 'kmb0']);
  sh(['ip', 'link', 'set', 'kmb0', 'up']);
  const port = 19478;
  const child = spawn(process.execPath, [SELF, 'daemon', JSON.stringify({ files, pinDir: join(bpffs, 'daemon'), port })], { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    const t0 = process.hrtime.bigint();
    let status: { lastRun?: { ok?: boolean; durationMs?: number }; peers?: unknown[] } | undefined;
    for (;;) {
      status = await getJson(`http://127.0.0.1:${port}/status`).catch(() => undefined) as typeof status;
      if (status?.lastRun?.ok === true) break;
      if (ms(t0) > 600_000) throw new Error('the daemon did not finish its first reconcile in 10 min');
      await new Promise((r) => setTimeout(r, 500));
    }
    const first = ms(t0);
    const pid = child.pid ?? 0;
    const cpu0 = cpuMs(pid);
    await new Promise((r) => setTimeout(r, 5000));
    const idleCpu = cpuMs(pid) - cpu0;
    const mem = memoryMiB(pid);
    return [
      ['daemon, P peers', 'first reconcile done s', 'RSS MiB', 'peak MiB', 'CPU in 5 s idle ms'],
      [String(p), fmt(first / 1000, 1), fmt(mem.rss), fmt(mem.peak), fmt(idleCpu, 0)],
    ];
  } finally {
    child.kill('SIGKILL');
    await api.close();
    sh(['ip', 'link', 'del', 'kmb0'], true);
  }
}

async function daemonRole(config: { files: string; pinDir: string; port: number }): Promise<void> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { pino } = await import('pino');
  const { NodePlugin } = await import('../nodeplugin/daemon/node-plugin.js');
  const kc = new KubeConfig();
  kc.loadFromFile(join(config.files, 'kubeconfig'));
  const socket = XfrmSocket.open();
  const plugin = new NodePlugin({
    nodeName: local.name, secretDir: join(config.files, 'secret'), stampJwksFile: join(config.files, 'jwks.json'), pinDir: config.pinDir,
    graceMs: 300_000, publishJitterMs: 0, resyncIntervalMs: 300_000, strict: false, bootIdFile: join(config.files, 'boot_id'),
    listen: { host: '127.0.0.1', port: config.port }, drainMs: 0,
  }, { kubeConfig: kc, logger: pino({ level: 'warn' }), xfrm: new BenchXfrmPort(socket) });
  await plugin.start();
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (err: unknown) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    }).on('error', reject).end();
  });
}

function sh(argv: readonly string[], quiet = false): void {
  const r = spawnSync(argv[0] as string, argv.slice(1), { stdio: quiet ? 'ignore' : ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0 && !quiet) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    peers: { type: 'string', default: '100,1000,5000' }, runs: { type: 'string', default: '3' }, 'daemon-peers': { type: 'string', default: '5000' },
    only: { type: 'string', default: 'plan,policies,maps,sync,daemon' },
  } });
  const only = new Set(values.only.split(','));
  const sizes = values.peers.split(',').map(Number);
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-bench-node-'));
  const bpffs = join(dir, 'bpffs');
  mkdirSync(bpffs);
  sh(['ip', 'link', 'set', 'lo', 'up']);
  sh(['mount', '-t', 'bpf', 'bpf', bpffs]);
  const bpf = await ensureMaps(join(bpffs, 'bench'));
  try {
    console.log(machineLine());
    console.log(`median of ${runs} runs; a fresh network namespace and bpffs; SAs in memory (no ESP on this kernel)`);
    if (only.has('plan')) console.log(`\nplan() against the key derivations it needs\n${table(planSection(sizes, runs))}`);
    const programSizes = sizes.filter((n) => n >= 1000);
    if (only.has('policies')) console.log(`\nout policies: adapter vs ip -batch\n${table(policySection(programSizes, runs, dir))}`);
    if (only.has('maps')) console.log(`\nBPF maps: adapter vs bpftool batch\n${table(mapsSection(programSizes, runs, bpf, dir))}`);
    if (only.has('sync')) console.log(`\nNodeDatapath.sync\n${table(await syncSection(programSizes, runs, bpf))}`);
    const dp = Number(values['daemon-peers']);
    if (dp > 0 && only.has('daemon')) console.log(`\ndaemon memory\n${table(await daemonSection(dp, dir, bpffs))}`);
  } finally {
    bpf.close();
    sh(['umount', bpffs], true);
    rmSync(dir, { recursive: true, force: true });
  }
}

const role = process.argv[2];
if (role === 'program') await programRole(process.argv[3] ?? '');
else if (role === 'daemon') await daemonRole(JSON.parse(process.argv[3] ?? '{}') as { files: string; pinDir: string; port: number });
else if (process.env.KMESH_BENCH_NETNS !== '1') {
  // execArgv passes through, so `node --cpu-prof dist/bench/nodeplugin.js` profiles the measurements.
  const r = spawnSync('unshare', ['--net', '--mount', process.execPath, ...process.execArgv, SELF, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, KMESH_BENCH_NETNS: '1' } });
  process.exit(r.status ?? 1);
} else await main();
