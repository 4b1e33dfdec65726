/**
 * Webhook throughput, tail latency, CPU and memory, against two baselines measured in the same
 * run on the same machine: a bare Node `https` server that answers a fixed "allowed" review, and
 * a bare express + express.json echo (express is the webhook's framework). Every server is its
 * own process with the same certificate and TLS options; the webhook is the real
 * `kmesh-ipsec webhook` command, at its default log level (one line per admission, to
 * /dev/null), connected to the local Kubernetes API with Nodes and KmeshNodeInfos seeded.
 *
 *   npm run bench:webhook -- [--duration 4] [--runs 3] [--nodes 500] [--connections 10]
 *                            [--cases <substring>] [--profile <dir>] [--node-options="<flags>"]
 *                            [--webhook-output <file>]
 *
 * --profile writes a V8 CPU profile of the webhook process (node --cpu-prof) into <dir>;
 * --node-options passes more flags to the webhook's node (e.g. --trace-gc); --webhook-output
 * keeps its standard output (the log, and what --trace-gc prints) instead of discarding it.
 *
 * Maximum throughput comes from autocannon over HTTPS with keep-alive. The steady 200, 500 and
 * 1,000 req/s are paced here instead (`paced`): autocannon's rate option lets each connection
 * send its quota for the second back to back and then wait for the next second, so its "500
 * req/s" is a burst at full speed every second, and its p99 that of maximum throughput. Paced
 * requests start evenly spaced (open loop, over keep-alive connections); a latency runs from a
 * request's start to the end of its answer. Each figure is the median of `runs` runs; the runs
 * interleave the servers so that load from other processes on the machine hits all of them
 * alike.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { openSync } from 'node:fs';
import { Agent, createServer as createHttpsServer, request } from 'node:https';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { generateDevPki, writeDevPki } from '../certs/dev-pki.js';
import { generateStampKey } from '../certs/stamp-keygen.js';
import { cpuMs, fmt, machineLine, median, memoryMiB, percentile, table } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const BOOT = '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b';
const AGENT = 'system:serviceaccount:kmesh-system:kmesh-ipsec-node';

// ---------------------------------------------------------------------------------------------
// Child roles: the two baselines and the local Kubernetes API, each in its own process.

/** Serves HTTPS with the webhook's TLS options until killed; prints its port. */
async function baseline(kind: string): Promise<void> {
  const [cert, key] = [Buffer.from(process.env.BENCH_CERT ?? ''), Buffer.from(process.env.BENCH_KEY ?? '')];
  // Only the TLS options module: the baseline's memory must not include the webhook's stack.
  const { secureContextOptions } = await import('../webhook/serving-cert.js');
  const tls = secureContextOptions({ cert, key });
  let server;
  if (kind === 'bare-https') {
    const allow = (uid: string): string => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } });
    server = createHttpsServer(tls, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // A fixed answer, but the body is still read and the uid found, as any webhook must.
        const text = Buffer.concat(chunks).toString('utf8');
        const uid = /"uid":"([^"]*)"/.exec(text)?.[1] ?? '';
        res.writeHead(200, { 'content-type': 'application/json' }).end(allow(uid));
      });
    });
  } else {
    const { default: express } = await import('express');
    const app = express();
    app.post('/echo', express.json({ limit: 4 * 1024 * 1024, type: () => true }), (req, res) => {
      res.json(req.body);
    });
    server = createHttpsServer(tls, app);
  }
  server.keepAliveTimeout = Number(process.env.BENCH_KEEP_ALIVE_MS);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
}

/** The local Kubernetes API with `nodes` Nodes (realistic size) and their KmeshNodeInfos. */
async function apiDouble(): Promise<void> {
  const nodes = Number(process.env.BENCH_NODES ?? 500);
  const { startLocalApi } = await import('../localapi/index.js');
  const objects: Record<string, unknown>[] = [];
  for (let i = 0; i < nodes; i++) {
    const name = i === 0 ? 'node-a' : `node-${i}`;
    const ip = `10.${(i >> 8) & 255}.${i & 255}.1`;
    const cidr = `10.${128 + ((i >> 8) & 127)}.${i & 255}.0/24`;
    objects.push(nodeObject(name, ip, cidr));
    // node-a's own KmeshNodeInfo is what the benchmark writes; the others are its peers.
    if (i > 0) objects.push({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name, namespace: 'kmesh-system' }, spec: { spi: 3, addresses: [ip], bootID: BOOT, podCIDRS: [cidr] } });
  }
  const api = await startLocalApi({ objects: objects as never });
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-bench-api-'));
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  process.stdout.write(`${JSON.stringify({ kubeconfig })}\n`);
}

/** A Node as a kubelet reports it: labels, conditions, images; about 8 KB of JSON. */
function nodeObject(name: string, ip: string, podCidr: string): Record<string, unknown> {
  const images = Array.from({ length: 40 }, (_, i) => ({
    names: [`registry.example/team-${i}/service-${i}@sha256:${randomBytes(32).toString('hex')}`, `registry.example/team-${i}/service-${i}:v1.${i}.0`],
    sizeBytes: 10_000_000 + i * 1_000_003,
  }));
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'node.kubernetes.io/instance-type': 'm5.large', 'topology.kubernetes.io/zone': 'zone-a' } },
    spec: { podCIDR: podCidr, podCIDRs: [podCidr], providerID: `bench://${name}` },
    status: {
      addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }],
      conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({ type, status: type === 'Ready' ? 'True' : 'False', reason: `Kubelet${type}`, message: `kubelet reports ${type}`, lastHeartbeatTime: '2026-01-01T00:00:00Z', lastTransitionTime: '2026-01-01T00:00:00Z' })),
      capacity: { cpu: '2', memory: '8Gi', pods: '110' }, allocatable: { cpu: '2', memory: '7Gi', pods: '110' },
      nodeInfo: { kubeletVersion: 'v1.32.0', containerRuntimeVersion: 'containerd://2.0.0', kernelVersion: '6.1.0', osImage: 'Debian GNU/Linux 12', architecture: 'amd64', operatingSystem: 'linux', bootID: BOOT, machineID: randomBytes(16).toString('hex'), systemUUID: BOOT },
      images,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The driver

interface Server {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
}

interface Case {
  readonly name: string;
  readonly server: string;
  readonly path: string;
  readonly body: string;
  /** The answer must say this, or the case is broken (not slow). */
  readonly expect: (json: { response?: { allowed?: boolean; patch?: string } }) => boolean;
}

interface Sample {
  maxRps: number;
  cpuUsPerReq: number;
  apiCpuUsPerReq: number;
  steady: Map<number, { rps: number; p50: number; p99: number; max: number }>;
}

const RATES = [200, 500, 1000];
/** Idle time before the last memory reading. */
const SETTLE_MS = 15_000;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    duration: { type: 'string', default: '4' }, runs: { type: 'string', default: '3' }, nodes: { type: 'string', default: '500' }, connections: { type: 'string', default: '10' },
    cases: { type: 'string' }, profile: { type: 'string' }, 'node-options': { type: 'string' }, 'webhook-output': { type: 'string' },
  } });
  const duration = Number(values.duration), runs = Number(values.runs), connections = Number(values.connections);
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-bench-webhook-'));
  const pki = generateDevPki({ service: 'kmesh-ipsec-webhook', namespace: 'kmesh-system', ipAddresses: ['127.0.0.1'] });
  const tls = await writeDevPki(join(dir, 'tls'), pki);
  const stamp = await generateStampKey();
  await writeFile(join(dir, 'stamp.jwk'), JSON.stringify(stamp.privateJwk), { mode: 0o600 });
  const children: ChildProcess[] = [];
  const started = (c: ChildProcess): ChildProcess => {
    children.push(c);
    return c;
  };

  try {
    const { KEEP_ALIVE_TIMEOUT_MS } = await import('../webhook/server.js');
    const env = { ...process.env, BENCH_CERT: pki.serving.certPem, BENCH_KEY: pki.serving.keyPem, BENCH_NODES: values.nodes, BENCH_KEEP_ALIVE_MS: String(KEEP_ALIVE_TIMEOUT_MS) };
    const api = started(spawn(process.execPath, [SELF, 'api'], { env, stdio: ['ignore', 'pipe', 'inherit'] }));
    const { kubeconfig } = await firstJsonLine<{ kubeconfig: string }>(api);
    const servers: Server[] = [];
    for (const kind of ['bare-https', 'bare-express'] as const) {
      const child = started(spawn(process.execPath, [SELF, kind], { env, stdio: ['ignore', 'pipe', 'inherit'] }));
      const { port } = await firstJsonLine<{ port: number }>(child);
      servers.push({ name: kind, url: `https://127.0.0.1:${port}`, pid: child.pid ?? 0, child });
    }
    const port = await freePort();
    const log = openSync(values['webhook-output'] ?? '/dev/null', 'w');
    const profile = values.profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values.profile];
    const nodeOptions = values['node-options']?.split(' ').filter((o) => o !== '') ?? [];
    const webhook = started(spawn(process.execPath, [...profile, ...nodeOptions, CLI, 'webhook', '--kubeconfig', kubeconfig, '--host', '127.0.0.1', '--port', String(port),
      '--tls-cert', tls.tlsCert, '--tls-key', tls.tlsKey, '--stamp-key', join(dir, 'stamp.jwk'), '--privileged-group', 'system:masters', '--shutdown-delay', '0s'], { stdio: ['ignore', log, 'inherit'] }));
    const webhookUrl = `https://127.0.0.1:${port}`;
    await waitReady(`${webhookUrl}/readyz`, pki.ca.certPem);
    servers.push({ name: 'webhook', url: webhookUrl, pid: webhook.pid ?? 0, child: webhook });
    const byName = new Map(servers.map((s) => [s.name, s]));
    // Let the caches settle, then read the idle footprint.
    await sleep(1000);
    const idle = new Map(servers.map((s) => [s.name, memoryMiB(s.pid)]));

    const filter = values.cases;
    const cases = (await buildCases(webhookUrl, pki.ca.certPem)).filter((c) => filter === undefined || c.server !== 'webhook' || c.name.includes(filter));
    for (const c of cases) {
      const target = byName.get(c.server);
      if (!target) throw new Error(`no server ${c.server}`);
      const text = await post(`${target.url}${c.path}`, c.body, pki.ca.certPem);
      if (!c.expect(JSON.parse(text) as never)) throw new Error(`${c.name}: unexpected answer ${text.slice(0, 300)}`);
    }

    const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
    const apiPid = api.pid ?? 0;
    console.log(machineLine());
    console.log(`${runs} runs x ${cases.length} cases: max throughput (${connections} connections, ${duration} s) and steady ${RATES.join('/')} req/s (${duration} s each); ${values.nodes} Nodes seeded`);
    for (let run = 0; run < runs; run++) {
      for (const c of cases) {
        const target = byName.get(c.server) as Server;
        const url = `${target.url}${c.path}`;
        const cpu0 = cpuMs(target.pid), api0 = cpuMs(apiPid);
        const max = await load(url, c.body, { connections, duration });
        const reqs = max.count;
        const sample: Sample = {
          maxRps: max.count / duration,
          cpuUsPerReq: ((cpuMs(target.pid) - cpu0) * 1000) / reqs,
          apiCpuUsPerReq: ((cpuMs(apiPid) - api0) * 1000) / reqs,
          steady: new Map(),
        };
        for (const rate of RATES) {
          const r = await paced(url, c.body, { connections, duration, rate, ca: pki.ca.certPem });
          sample.steady.set(rate, { rps: r.rps, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), max: Math.max(...r.latencies) });
        }
        samples.get(c.name)?.push(sample);
        process.stderr.write(`run ${run + 1}/${runs} ${c.name}: ${fmt(sample.maxRps, 0)} req/s\n`);
      }
    }
    const after = new Map(servers.map((s) => [s.name, memoryMiB(s.pid)]));
    // And once the load has been gone a while: what V8 gives back takes some idle seconds.
    await sleep(SETTLE_MS);
    const settled = new Map(servers.map((s) => [s.name, memoryMiB(s.pid)]));
    report(cases, samples, servers, idle, after, settled);
    // A clean exit, so that --cpu-prof writes its profile.
    await new Promise((resolve) => {
      webhook.once('exit', resolve);
      webhook.kill('SIGTERM');
    });
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

type Memory = ReadonlyMap<string, { rss: number; peak: number }>;

function report(cases: readonly Case[], samples: ReadonlyMap<string, Sample[]>, servers: readonly Server[], idle: Memory, after: Memory, settled: Memory): void {
  const med = (name: string, pick: (s: Sample) => number): number => median((samples.get(name) ?? []).map(pick));
  // Ratios are taken within each run (the baselines ran minutes, not seconds, apart from the
  // case), then the median of those: load from elsewhere on the machine cancels out better.
  const ratio = (name: string, base: string): number => {
    const bases = samples.get(base) ?? [];
    return median((samples.get(name) ?? []).map((s, i) => s.maxRps / (bases[i]?.maxRps ?? Number.NaN)));
  };
  const echo = 'bare express echo', bare = 'bare https fixed allow';
  const rows: string[][] = [['case', 'max req/s', 'x echo', 'x https', 'CPU us/req', 'API us/req', ...RATES.flatMap((r) => [`p50@${r}`, `p99@${r}`])]];
  for (const c of cases) {
    const max = med(c.name, (s) => s.maxRps);
    rows.push([
      c.name, fmt(max, 0), fmt(ratio(c.name, echo), 2), fmt(ratio(c.name, bare), 2), fmt(med(c.name, (s) => s.cpuUsPerReq), 0),
      c.server === 'webhook' ? fmt(med(c.name, (s) => s.apiCpuUsPerReq), 0) : '-',
      ...RATES.flatMap((r) => {
        const reached = med(c.name, (s) => s.steady.get(r)?.rps ?? 0) >= r * 0.95;
        const suffix = reached ? '' : '*';
        return [fmt(med(c.name, (s) => s.steady.get(r)?.p50 ?? Number.NaN), 2) + suffix, fmt(med(c.name, (s) => s.steady.get(r)?.p99 ?? Number.NaN), 2) + suffix];
      }),
    ]);
  }
  console.log('\nthroughput (median), CPU per request, latency in ms at a steady rate (* = rate not reached)');
  console.log(table(rows));
  const mem: string[][] = [['process', 'RSS idle MiB', 'RSS after MiB', `RSS ${SETTLE_MS / 1000} s after MiB`, 'peak MiB']];
  for (const s of servers) {
    mem.push([s.name, fmt(idle.get(s.name)?.rss ?? Number.NaN), fmt(after.get(s.name)?.rss ?? Number.NaN), fmt(settled.get(s.name)?.rss ?? Number.NaN), fmt(settled.get(s.name)?.peak ?? Number.NaN)]);
  }
  console.log(`\n${table(mem)}`);
  console.log('\nratios (target: every webhook case >= 0.80 x the express echo; p99 < 5 ms at 500 req/s; RSS < 150 MiB after load)');
  for (const c of cases.filter((x) => x.server === 'webhook')) {
    console.log(`  ${c.name}: ${fmt(ratio(c.name, echo), 2)} x express echo, ${fmt(ratio(c.name, bare), 2)} x bare https; p99@500 ${fmt(med(c.name, (s) => s.steady.get(500)?.p99 ?? Number.NaN), 2)} ms`);
  }
}

async function buildCases(webhookUrl: string, ca: string): Promise<Case[]> {
  const key = randomBytes(36);
  const ipsec = (spi: number, aeadKey: string): string => Buffer.from(JSON.stringify({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey, length: 128 })).toString('base64');
  const secret = (data: string): object => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kmesh-ipsec', namespace: 'kmesh-system', uid: 'a8f3c1d2-0000-4000-8000-000000000001', resourceVersion: '12345', creationTimestamp: '2026-01-01T00:00:00Z', managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { '.': {}, 'f:ipSec': {} }, 'f:type': {} } }] }, type: 'Opaque', data: { ipSec: data } });
  const spec = { spi: 3, addresses: ['10.0.0.1'], bootID: BOOT, podCIDRS: ['10.128.0.0/24'] };
  const kni = (annotations?: Record<string, string>): object => ({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'node-a', namespace: 'kmesh-system', ...(annotations ? { annotations } : {}) }, spec });
  const admin = { username: 'kubernetes-admin', uid: 'admin-uid', groups: ['system:masters', 'system:authenticated'] };
  const agent = { username: AGENT, uid: 'agent-uid', groups: ['system:serviceaccounts', 'system:serviceaccounts:kmesh-system', 'system:authenticated'], extra: { 'authentication.kubernetes.io/node-name': ['node-a'], 'authentication.kubernetes.io/pod-name': ['kmesh-ipsec-node-abcde'] } };
  const review = (kind: object, object: object, oldObject: object | null, userInfo: object, name: string, operation: string): string => JSON.stringify({
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', kind, resource: { group: '', version: 'v1', resource: 'secrets' }, requestKind: kind, name, namespace: 'kmesh-system', operation, userInfo, object, oldObject, dryRun: false, options: { apiVersion: 'meta.k8s.io/v1', kind: operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions' } },
  });
  const secretKind = { group: '', version: 'v1', kind: 'Secret' };
  const kniKind = { group: 'kmesh.net', version: 'v1alpha1', kind: 'KmeshNodeInfo' };
  // A rotation (SPI 3 -> 4): the validation checks the transition and every advertised SPI.
  const rotate = review(secretKind, secret(ipsec(4, key.toString('base64'))), secret(ipsec(3, randomBytes(36).toString('base64'))), admin, 'kmesh-ipsec', 'UPDATE');
  const hex = review(secretKind, secret(ipsec(4, key.toString('hex'))), null, admin, 'kmesh-ipsec', 'CREATE');
  const kniCreate = review(kniKind, kni(), null, agent, 'node-a', 'CREATE');
  const stamped = JSON.parse(await post(`${webhookUrl}/mutate`, kniCreate, ca)) as { response: { patch?: string } };
  const [op] = JSON.parse(Buffer.from(stamped.response.patch ?? '', 'base64').toString()) as { value: Record<string, string> }[];
  const kniValidate = review(kniKind, kni(op?.value), null, agent, 'node-a', 'CREATE');
  const allowed = (j: { response?: { allowed?: boolean } }): boolean => j.response?.allowed === true;
  const patched = (j: { response?: { patch?: string } }): boolean => typeof j.response?.patch === 'string';
  return [
    { name: 'bare https fixed allow', server: 'bare-https', path: '/', body: rotate, expect: allowed },
    { name: 'bare express echo', server: 'bare-express', path: '/echo', body: rotate, expect: () => true },
    { name: 'Secret validate (rotation)', server: 'webhook', path: '/validate', body: rotate, expect: allowed },
    { name: 'Secret mutate (hex key)', server: 'webhook', path: '/mutate', body: hex, expect: patched },
    { name: 'KmeshNodeInfo mutate (stamp)', server: 'webhook', path: '/mutate', body: kniCreate, expect: patched },
    { name: 'KmeshNodeInfo validate', server: 'webhook', path: '/validate', body: kniValidate, expect: allowed },
  ];
}

/**
 * `rate` requests per second for `duration` seconds, each started on its own schedule (every
 * 1/rate s), whatever happened to the ones before: at most `connections` keep-alive
 * connections, further requests wait for one. Latencies in ms.
 */
async function paced(url: string, body: string, o: { connections: number; duration: number; rate: number; ca: string }): Promise<{ rps: number; latencies: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections, ca: o.ca });
  const total = Math.round(o.rate * o.duration);
  const periodMs = 1000 / o.rate;
  const latencies: number[] = [];
  const failures: string[] = [];
  const one = (): Promise<void> => new Promise((resolve) => {
    const started = performance.now();
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) latencies.push(performance.now() - started);
        else failures.push(`HTTP ${res.statusCode ?? 0}`);
        resolve();
      });
    });
    req.on('error', (err) => {
      failures.push(err.message);
      resolve();
    });
    req.end(body);
  });
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    // Start every request that is due; a late timer starts the missed ones at once.
    const due = Math.min(total, Math.floor((performance.now() - t0) / periodMs) + 1);
    for (; sent < due; sent++) pending.push(one());
    await sleep(Math.max(0, t0 + sent * periodMs - performance.now()));
  }
  await Promise.all(pending);
  // Answered per second until the last answer: below `rate` when the server fell behind.
  const rps = (latencies.length * 1000) / (performance.now() - t0);
  agent.destroy();
  if (failures.length > 0) throw new Error(`${url}: ${failures.length} failed requests, e.g. ${failures[0] ?? ''}`);
  return { rps, latencies };
}

/** autocannon against one URL at full speed; latencies (ms) are taken per response. */
async function load(url: string, body: string, o: { connections: number; duration: number }): Promise<{ count: number; latencies: number[] }> {
  const latencies: number[] = [];
  let count = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url, method: 'POST', body, headers: { 'content-type': 'application/json' }, connections: o.connections, duration: o.duration,
    }, (err: unknown, r: autocannon.Result) => {
      if (err) reject(err instanceof Error ? err : new Error('autocannon failed'));
      else resolve(r);
    });
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode === 200) {
        count++;
        latencies.push(responseTime);
      }
    });
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { count, latencies };
}

function post(url: string, body: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(text);
        else reject(new Error(`${url}: HTTP ${res.statusCode ?? 0}: ${text.slice(0, 300)}`));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function waitReady(url: string, ca: string): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      request(url, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      }).on('error', () => {
        resolve(false);
      }).end();
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${url} did not become ready in 60 s`);
    await sleep(200);
  }
}

function firstJsonLine<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      text += s;
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(text.slice(0, nl)) as T);
    });
    child.once('exit', (code) => {
      reject(new Error(`child exited with ${String(code)} before it was ready`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const role = process.argv[2];
if (role === 'bare-https' || role === 'bare-express') await baseline(role);
else if (role === 'api') await apiDouble();
else await main();
