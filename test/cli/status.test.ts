/**
 * `kmesh-ipsec status --cluster` and the rotation gate of `secret create`, end to end: the
 * compiled CLI against the Kubernetes API test double, seeded with KmeshNodeInfos carrying real
 * validity stamps and status conditions.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { AEAD_ALGORITHM, DEFAULT_ICV_BITS } from '../../core/constants.js';
import { keyFingerprint } from '../../core/fingerprint.js';
import { type IpsecKey, parseIpsecSecret, renderIpsecSecret } from '../../core/secret.js';
import { type LocalApi, type LocalApiOptions, startLocalApi } from '../../localapi/index.js';
import { cli } from '../helpers/cli.js';
import { type NodeInfoSeed, nodeInfo, stampKey } from '../helpers/node-infos.js';

const key = await stampKey();
const now = (): number => Math.floor(Date.now() / 1000);

type Seed = Partial<NodeInfoSeed> & { name: string; spi: number };

/** A double holding the Secret at `secretSpi` (none if undefined) and one KmeshNodeInfo per seed. */
async function cluster(t: { teardown: (fn: () => Promise<void>) => void }, secretSpi: number | undefined, seeds: readonly Seed[], options: LocalApiOptions = {}): Promise<{ double: LocalApi; secretKey?: IpsecKey }> {
  const double = await startLocalApi(options);
  t.teardown(() => double.close());
  let secretKey: IpsecKey | undefined;
  if (secretSpi !== undefined) {
    secretKey = { spi: secretSpi, aeadKeyName: AEAD_ALGORITHM, aeadKey: Uint8Array.from(randomBytes(36)), icvBits: DEFAULT_ICV_BITS };
    await double.store.put({ ...renderIpsecSecret(secretKey) });
  }
  for (const [i, seed] of seeds.entries()) await double.store.put(await nodeInfo({ index: i + 1, stampedAt: now() - 3600, ...seed }, key));
  return { double, ...(secretKey ? { secretKey } : {}) };
}

function secretState(double: LocalApi): { spi: number; resourceVersion: string } | undefined {
  const obj = double.store.get('secrets', 'kmesh-system', 'kmesh-ipsec');
  if (!obj) return undefined;
  const parsed = parseIpsecSecret(obj);
  if (!parsed.ok) throw new Error('stored secret invalid');
  return { spi: parsed.value.key.spi, resourceVersion: obj.metadata.resourceVersion ?? '' };
}

/** Lines of the table, split on runs of 2+ spaces (cells never contain two spaces). */
function rows(stdout: string): string[][] {
  return stdout.trimEnd().split('\n').slice(0, -1).map((l) => l.split(/ {2,}/));
}

function assertNoKey(t: { false: (v: boolean, m?: string) => void }, out: string, secretKey: IpsecKey | undefined): void {
  if (!secretKey) return;
  const k = Buffer.from(secretKey.aeadKey);
  t.false(out.includes(k.toString('base64')) || out.includes(k.toString('hex')), 'no key material in the output');
}

const IN_SYNC: readonly Seed[] = [{ name: 'node-a', spi: 5 }, { name: 'node-b', spi: 5 }, { name: 'node-c', spi: 5 }];

// ---- status --cluster -----------------------------------------------------------------------

test('in sync: one aligned line per node, a verdict, exit 0; --json says the same', async (t) => {
  const { double, secretKey } = await cluster(t, 5, IN_SYNC);
  const r = await cli(double, 'status', '--cluster');
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  t.is(lines.length, 5);
  t.regex(lines[0] ?? '', /^NODE\s+SPI\s+STAMP EXPIRES\s+READY\s+KEY-IN-SYNC\s+MESSAGE$/);
  const spiColumn = (lines[0] ?? '').indexOf('SPI');
  const readyColumn = (lines[0] ?? '').indexOf('READY');
  for (const line of lines.slice(1, 4)) {
    t.is(line.indexOf(' 5 ') + 1, spiColumn, `SPI aligned: ${line}`);
    t.is(line.indexOf('True'), readyColumn, `READY aligned: ${line}`);
  }
  const table = rows(r.stdout);
  t.deepEqual(table.map((row) => [row[0], row[1], row[3], row[4], row.length]), [
    ['NODE', 'SPI', 'READY', 'KEY-IN-SYNC', 6],
    ['node-a', '5', 'True', 'True', 5],
    ['node-b', '5', 'True', 'True', 5],
    ['node-c', '5', 'True', 'True', 5],
  ], 'no message for a current node');
  for (const row of table.slice(1)) t.regex(row[2] ?? '', /^in 2[23]h\d*m?$/, 'stamped an hour ago for 24 h');
  t.is(lines[4], "in-sync: all 3 nodes on SPI 5, the Secret's");

  const j = await cli(double, 'status', '--cluster', '--json');
  t.is(j.code, 0);
  const data = JSON.parse(j.stdout) as { verdict: string; secret: unknown; targetSpi: number; nodes: Record<string, unknown>[] };
  t.is(data.verdict, 'in-sync');
  t.deepEqual(data.secret, { state: 'present', spi: 5 });
  t.is(data.targetSpi, 5);
  t.is(data.nodes.length, 3);
  t.like(data.nodes[0], { name: 'node-a', spi: 5, state: 'current', stamp: { state: 'valid' }, ready: { status: 'True', reason: 'Programmed', stale: false }, keyInSync: { status: 'True', reason: 'InSync' }, notes: [] });
  t.regex((data.nodes[0]?.stamp as { expiresAt: string }).expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assertNoKey(t, r.stdout + j.stdout, secretKey);
});

test('rotating: nodes behind are named, exit 3', async (t) => {
  const { double } = await cluster(t, 6, [{ name: 'node-a', spi: 6 }, { name: 'node-b', spi: 5 }, { name: 'node-c', spi: 6 }]);
  const r = await cli(double, 'status', '--cluster');
  t.is(r.code, 3, r.stderr);
  t.deepEqual(rows(r.stdout)[2]?.slice(0, 2), ['node-b', '5']);
  t.is(rows(r.stdout)[2]?.[5], 'behind: advertises SPI 5, target 6');
  t.is(r.stdout.trimEnd().split('\n').at(-1), "rotating: 1 of 3 nodes behind SPI 6, the Secret's: node-b");
  t.is((JSON.parse((await cli(double, 'status', '--cluster', '--json')).stdout) as { verdict: string }).verdict, 'rotating');
});

test('degraded: an expired stamp, Ready=False and SPI 0 are each named, exit 4', async (t) => {
  const { double } = await cluster(t, 5, [
    { name: 'node-a', spi: 5 },
    { name: 'node-expired', spi: 5, stampedAt: now() - 2 * 86_400 },
    { name: 'node-failing', spi: 5, conditions: [{ type: 'Ready', status: 'False', reason: 'ReconcileFailed', message: 'xfrm: operation not permitted' }, { type: 'KeyInSync', status: 'Unknown', reason: 'NotProgrammed' }] },
    { name: 'node-new', spi: 0, conditions: [{ type: 'Ready', status: 'True' }, { type: 'KeyInSync', status: 'False', reason: 'PeersBehind' }] },
  ]);
  const r = await cli(double, 'status', '--cluster');
  t.is(r.code, 4, r.stderr);
  const byName = new Map(rows(r.stdout).map((row) => [row[0], row]));
  t.regex(byName.get('node-expired')?.[2] ?? '', /^expired 1d ago$/);
  t.regex(byName.get('node-expired')?.[5] ?? '', /^validity stamp expired at \S+Z: peers refuse this node$/);
  t.deepEqual(byName.get('node-failing')?.slice(3), ['False', 'Unknown', 'Ready=False ReconcileFailed: xfrm: operation not permitted']);
  t.deepEqual(byName.get('node-new')?.slice(1, 2), ['0']);
  t.is(byName.get('node-new')?.[5], 'no key yet (advertises SPI 0)');
  t.is(r.stdout.trimEnd().split('\n').at(-1), 'degraded: 3 of 4 nodes failing: node-expired, node-failing, node-new');
});

test('no KmeshNodeInfo: exit 5; without --cluster and no local node plugin: exit 1 saying where it looked', async (t) => {
  const { double } = await cluster(t, 1, []);
  const r = await cli(double, 'status', '--cluster');
  t.is(r.code, 5);
  t.is(r.stdout, 'no-nodes: no KmeshNodeInfo found: no node plugin has published yet\n');
  const local = await cli(double, 'status', '--endpoint', 'http://127.0.0.1:9');
  t.is(local.code, 1);
  t.regex(local.stderr, /^kmesh-ipsec: cannot read the node plugin at http:\/\/127\.0\.0\.1:9\/status \(ECONNREFUSED\): is kmesh-ipsec node running here\?/);
  t.regex((await cli(double, 'status', '--help')).stdout, /3 {2}rotating/);
});

test('a Secret the user may not read: nodes are compared with each other, with a warning', async (t) => {
  const { double } = await cluster(t, 9, [{ name: 'node-a', spi: 5 }, { name: 'node-b', spi: 4 }], { authorizer: (req) => req.resource !== 'secrets' });
  const r = await cli(double, 'status', '--cluster', '--json');
  t.is(r.code, 3);
  t.regex(r.stderr, /^warning: cannot read secret kmesh-system\/kmesh-ipsec: the Kubernetes API answered 403: .*; comparing nodes with each other only\n$/);
  const data = JSON.parse(r.stdout) as { secret: { state: string }; targetSpi: number; summary: string };
  t.is(data.secret.state, 'unreadable');
  t.is(data.targetSpi, 5, 'the highest advertised SPI, not the unreadable Secret\'s 9');
  t.is(data.summary, "1 of 2 nodes behind SPI 5 (the highest advertised; the Secret's SPI is unknown): node-b");
});

test('KmeshNodeInfos the user may not list: exit 1 with one line', async (t) => {
  const { double } = await cluster(t, 5, IN_SYNC, { authorizer: (req) => req.resource !== 'kmeshnodeinfos' });
  const r = await cli(double, 'status', '--cluster');
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^kmesh-ipsec: cannot list KmeshNodeInfos in kmesh-system: the Kubernetes API answered 403: kmeshnodeinfos.kmesh.net is forbidden: User "[^"]+" cannot list resource "kmeshnodeinfos"[^\n]*\n$/);
});

// ---- secret create: the rotation gate ------------------------------------------------------

test('rotation is refused while a node is behind; --dry-run previews and writes nothing; --force rotates', async (t) => {
  const { double, secretKey } = await cluster(t, 5, [{ name: 'node-a', spi: 5 }, { name: 'node-b', spi: 4 }, { name: 'node-c', spi: 0 }]);
  const before = secretState(double);

  const refused = await cli(double, 'secret', 'create');
  t.is(refused.code, 3);
  t.is(refused.stdout, '');
  t.is(refused.stderr, "kmesh-ipsec: refusing to rotate: not every node is on SPI 5 yet (node-b on SPI 4, node-c has no key); wait until 'kmesh-ipsec status --cluster' says in-sync, or pass --force\n");
  t.deepEqual(secretState(double), before, 'nothing written');

  const preview = await cli(double, 'secret', 'create', '--dry-run');
  t.is(preview.code, 3, 'a dry run exits as the real run would');
  t.is(preview.stdout, 'dry run: nothing written\ncurrent SPI:      5\nnext SPI:         6\nnodes behind:     node-b on SPI 4, node-c has no key\n');
  t.deepEqual(secretState(double), before);

  const json = await cli(double, 'secret', 'create', '--dry-run', '--force', '-o', 'json');
  t.is(json.code, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), {
    action: 'rotate', result: 'would-write', dryRun: true, secret: 'kmesh-system/kmesh-ipsec', currentSpi: 5, nextSpi: 6,
    nodesBehind: [{ name: 'node-b', spi: 4 }, { name: 'node-c', spi: 0 }],
    warnings: ['--force: rotating although not every node is on SPI 5 (node-b on SPI 4, node-c has no key)'],
  });
  t.deepEqual(secretState(double), before, 'a forced dry run writes nothing either');

  const forced = await cli(double, 'secret', 'create', '--force');
  t.is(forced.code, 0, forced.stderr);
  t.regex(forced.stdout, /^secret kmesh-system\/kmesh-ipsec rotated: SPI 5 -> 6, key fingerprint [0-9a-f]{16}\n/);
  t.is(forced.stderr, 'warning: --force: rotating although not every node is on SPI 5 (node-b on SPI 4, node-c has no key)\n');
  t.is(secretState(double)?.spi, 6);
  assertNoKey(t, refused.stdout + preview.stdout + json.stdout + forced.stdout, secretKey);
});

test('in sync: rotation goes ahead; -o json reports it with the fingerprint and no key', async (t) => {
  const { double } = await cluster(t, 5, IN_SYNC);
  const before = secretState(double);
  const dry = await cli(double, 'secret', 'create', '--dry-run', '-o', 'json');
  t.is(dry.code, 0, dry.stderr);
  t.like(JSON.parse(dry.stdout), { action: 'rotate', result: 'would-write', currentSpi: 5, nextSpi: 6, nodesBehind: [], warnings: [] });
  t.false('keyFingerprint' in (JSON.parse(dry.stdout) as object), 'no fingerprint of a random key that will never be written');
  t.deepEqual(secretState(double), before, 'resourceVersion unchanged');

  const hex = randomBytes(36).toString('hex');
  const keyed = await cli(double, 'secret', 'create', '--dry-run', '--key', hex);
  t.regex(keyed.stdout, new RegExp(`key fingerprint:  ${keyFingerprint(Buffer.from(hex, 'hex'))}\nnodes behind:     none\n$`));

  const r = await cli(double, 'secret', 'create', '--key', hex, '-o', 'json');
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  t.deepEqual(report, {
    action: 'rotate', result: 'written', dryRun: false, secret: 'kmesh-system/kmesh-ipsec', currentSpi: 5, nextSpi: 6,
    keyFingerprint: keyFingerprint(Buffer.from(hex, 'hex')), nodesBehind: [], warnings: [],
  });
  t.false(r.stdout.includes(hex) || r.stdout.includes(Buffer.from(hex, 'hex').toString('base64')));
  t.is(secretState(double)?.spi, 6);
});

test('a fresh cluster: --dry-run creates nothing; -o json on create and delete', async (t) => {
  const { double } = await cluster(t, undefined, [{ name: 'node-a', spi: 3 }]);
  const status = await cli(double, 'status', '--cluster');
  t.is(status.code, 0, 'nodes agree among themselves');
  t.is(status.stderr, 'warning: the Secret does not exist; nodes keep their keys but cannot rotate\n');
  t.regex(status.stdout, /\nin-sync: the only node on SPI 3 \(the highest advertised; the Secret's SPI is unknown\)\n$/);
  const dry = await cli(double, 'secret', 'create', '--dry-run');
  t.is(dry.code, 0, dry.stderr);
  t.is(dry.stdout, 'dry run: nothing written\ncurrent SPI:      none (secret kmesh-system/kmesh-ipsec does not exist)\nnext SPI:         4\n');
  t.is(secretState(double), undefined);

  const created = await cli(double, 'secret', 'create', '-o', 'json');
  t.is(created.code, 0, created.stderr);
  const report = JSON.parse(created.stdout) as Record<string, unknown>;
  t.like(report, { action: 'create', result: 'written', dryRun: false, currentSpi: null, nextSpi: 4, nodesBehind: [] });
  t.regex(String(report.keyFingerprint), /^[0-9a-f]{16}$/);

  const deleted = await cli(double, 'secret', 'delete', '--yes', '-o', 'json');
  t.is(deleted.code, 0, deleted.stderr);
  t.deepEqual(JSON.parse(deleted.stdout), { action: 'delete', result: 'deleted', secret: 'kmesh-system/kmesh-ipsec', spi: 4 });
  t.regex(deleted.stderr, /must NOT restart at SPI 1/);
});

test('when the nodes cannot be read, rotation stops unless --force', async (t) => {
  const { double } = await cluster(t, 5, IN_SYNC, { authorizer: (req) => req.resource !== 'kmeshnodeinfos' });
  const r = await cli(double, 'secret', 'create');
  t.is(r.code, 1);
  t.regex(r.stderr, /^kmesh-ipsec: cannot check that SPI 5 reached every node \(cannot list KmeshNodeInfos in kmesh-system: the Kubernetes API answered 403: [^\n]*\); pass --force to rotate without checking\n$/);
  t.is(secretState(double)?.spi, 5);
  const forced = await cli(double, 'secret', 'create', '--force');
  t.is(forced.code, 0, forced.stderr);
  t.regex(forced.stderr, /^warning: rotating without checking the nodes: cannot list KmeshNodeInfos/);
  t.is(secretState(double)?.spi, 6);
});
