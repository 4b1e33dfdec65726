/**
 * core/cluster-keys.ts: every node state and every verdict, from KmeshNodeInfo objects with
 * real stamps; and decodeStampClaims, the unverified stamp reader it uses.
 */
import test from 'ava';
import { CompactSign } from 'jose';
import {
  ClusterVerdict,
  type NodeKeyStatus,
  NodeKeyState,
  StampState,
  clusterKeyView,
  nameList,
  observeNodeInfo,
  rotationHoldouts,
} from '../../core/cluster-keys.js';
import { MAX_STAMP_CHARS, STAMP_TYPE, StampFailure, decodeStampClaims, signStamp, specDigest } from '../../core/stamp.js';
import { type NodeInfoSeed, nodeInfo, specFor, stampKey } from '../helpers/node-infos.js';

const NOW = 1_800_000_000;
const HOUR = 3600;
const key = await stampKey();

async function observe(seed: Partial<NodeInfoSeed> & { name: string; spi: number }) {
  return observeNodeInfo(await nodeInfo({ stampedAt: NOW - HOUR, ...seed }, key));
}

async function view(secretSpi: number | undefined, ...seeds: (Partial<NodeInfoSeed> & { name: string; spi: number })[]) {
  const nodes = await Promise.all(seeds.map((s, i) => observe({ index: i + 1, ...s })));
  return clusterKeyView({ ...(secretSpi === undefined ? {} : { secretSpi }), nodes, now: NOW });
}

function only(nodes: readonly NodeKeyStatus[], name: string): NodeKeyStatus {
  const n = nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}

// ---- decodeStampClaims ----------------------------------------------------------------------

test('decodeStampClaims reads a real stamp, and does not verify it', async (t) => {
  const spec = specFor({ spi: 4 });
  const token = await signStamp({ nodeName: 'node-a', spec }, key, { now: NOW, ttlSeconds: 100 });
  const d = decodeStampClaims(token);
  t.true(d.ok);
  if (d.ok) {
    t.like(d.claims, { sub: 'node-a', spi: 4, spec: specDigest(spec), iat: NOW, nbf: NOW, exp: NOW + 100 });
    t.is(d.kid, key.kid);
  }
  // A token with a garbage signature decodes the same: this reader is for display only.
  const [h, p] = token.split('.');
  t.true(decodeStampClaims(`${h}.${p}.AAAA`).ok);
});

test('decodeStampClaims refuses what is not a stamp, with the reason', async (t) => {
  t.like(decodeStampClaims(undefined), { ok: false, reason: StampFailure.Missing });
  t.like(decodeStampClaims(''), { ok: false, reason: StampFailure.Missing });
  t.like(decodeStampClaims(42), { ok: false, reason: StampFailure.Malformed, message: 'must be a compact JWS string, got number 42' });
  t.like(decodeStampClaims('x'.repeat(MAX_STAMP_CHARS + 1)), { ok: false, reason: StampFailure.Malformed, message: `is ${MAX_STAMP_CHARS + 1} characters; a stamp is at most ${MAX_STAMP_CHARS}` });
  t.like(decodeStampClaims('a.b.c'), { ok: false, reason: StampFailure.Malformed });
  const sign = (header: Record<string, unknown>, payload: string) => new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: key.alg, ...header }).sign(key.privateKey);
  t.like(decodeStampClaims(await sign({ kid: key.kid, typ: 'JWT' }, '{}')), { ok: false, message: `has typ "JWT", expected "${STAMP_TYPE}"` });
  t.like(decodeStampClaims(await sign({ typ: STAMP_TYPE }, '{}')), { ok: false, message: 'has no kid in its header' });
  t.like(decodeStampClaims(await sign({ kid: key.kid, typ: STAMP_TYPE }, '{"iss":"someone"}')), { ok: false, reason: StampFailure.Malformed, message: 'has a payload that is not a kmesh-ipsec stamp (iss, sub, spi, spec, iat, nbf, exp)' });
  t.like(decodeStampClaims(await sign({ kid: key.kid, typ: STAMP_TYPE }, 'not json')), { ok: false, reason: StampFailure.Malformed });
  const good = await signStamp({ nodeName: 'n', spec: specFor({ spi: 1 }) }, key, { now: NOW });
  const [h, , s] = good.split('.');
  t.like(decodeStampClaims(`${h}.%%%.${s}`), { ok: false, reason: StampFailure.Malformed });
});

// ---- observeNodeInfo ------------------------------------------------------------------------

test('observeNodeInfo reads garbage without throwing', (t) => {
  for (const garbage of [null, 'x', [], { metadata: 'x', spec: [], status: { conditions: 'x' } }]) {
    const o = observeNodeInfo(garbage);
    t.is(o.name, '(unnamed)');
    t.false(o.spec.ok);
    t.is(o.spi, undefined);
    t.like(o.stamp, { ok: false, reason: StampFailure.Missing });
    t.is(o.ready, undefined);
  }
  const o = observeNodeInfo({ metadata: { name: 'n', generation: 3 }, spec: { spi: 2.5 }, status: { conditions: [
    { type: 'Ready', status: 'maybe', reason: 'R'.repeat(500), message: 'm'.repeat(5000), observedGeneration: 2 },
    { type: 'KeyInSync', status: 'True', observedGeneration: 3 },
    'junk',
  ] } });
  t.is(o.spi, undefined, 'a fractional SPI is no SPI');
  t.deepEqual(o.ready, { status: 'Unknown', reason: 'R'.repeat(128), message: 'm'.repeat(1024), stale: true });
  t.deepEqual(o.keyInSync, { status: 'True', stale: false });
});

// ---- verdicts -------------------------------------------------------------------------------

test('no KmeshNodeInfo: no-nodes', (t) => {
  const v = clusterKeyView({ secretSpi: 3, nodes: [], now: NOW });
  t.is(v.verdict, ClusterVerdict.NoNodes);
  t.is(v.summary, 'no KmeshNodeInfo found: no node plugin has published yet');
});

test('every node on the Secret\'s SPI, healthy: in-sync', async (t) => {
  const v = await view(5, { name: 'node-b', spi: 5 }, { name: 'node-a', spi: 5 }, { name: 'node-c', spi: 5 });
  t.is(v.verdict, ClusterVerdict.InSync);
  t.deepEqual(v.nodes.map((n) => n.name), ['node-a', 'node-b', 'node-c'], 'sorted by name');
  t.true(v.nodes.every((n) => n.state === NodeKeyState.Current && n.notes.length === 0 && n.stamp.state === StampState.Valid));
  t.is(only(v.nodes, 'node-a').stamp.expiresAt, NOW - HOUR + 86_400);
  t.is(v.summary, "all 3 nodes on SPI 5, the Secret's");
  t.deepEqual(rotationHoldouts(v.nodes, 5), []);
});

test('without the Secret, the highest advertised SPI is the target', async (t) => {
  const same = await view(undefined, { name: 'a', spi: 7 }, { name: 'b', spi: 7 });
  t.is(same.verdict, ClusterVerdict.InSync);
  t.is(same.targetSpi, 7);
  t.is(same.secretSpi, undefined);
  t.is(same.summary, "all 2 nodes on SPI 7 (the highest advertised; the Secret's SPI is unknown)");
  const split = await view(undefined, { name: 'a', spi: 7 }, { name: 'b', spi: 6 });
  t.is(split.verdict, ClusterVerdict.Rotating);
  t.is(only(split.nodes, 'b').state, NodeKeyState.Behind);
});

test('nodes on an older SPI: rotating, and they hold up the next rotation', async (t) => {
  const v = await view(5, { name: 'a', spi: 5 }, { name: 'b', spi: 4 }, { name: 'c', spi: 3 });
  t.is(v.verdict, ClusterVerdict.Rotating);
  t.is(only(v.nodes, 'a').state, NodeKeyState.Current);
  t.like(only(v.nodes, 'b'), { state: NodeKeyState.Behind, notes: ['behind: advertises SPI 4, target 5'] });
  t.is(only(v.nodes, 'c').state, NodeKeyState.Behind);
  t.is(v.summary, "2 of 3 nodes behind SPI 5, the Secret's: b, c");
  t.deepEqual(rotationHoldouts(v.nodes, 5).map((n) => n.name), ['b', 'c']);
});

test('just after a rotation every node is behind: rotating', async (t) => {
  const v = await view(6, { name: 'a', spi: 5 }, { name: 'b', spi: 5 });
  t.is(v.verdict, ClusterVerdict.Rotating);
  t.true(v.nodes.every((n) => n.state === NodeKeyState.Behind));
});

test('KeyInSync=False PeersBehind on the current SPI is converging, not a failure', async (t) => {
  const v = await view(5, { name: 'a', spi: 5, conditions: [
    { type: 'Ready', status: 'True' },
    { type: 'KeyInSync', status: 'False', reason: 'PeersBehind', message: 'node-b still sends SPI 4' },
  ] }, { name: 'b', spi: 5 });
  t.is(v.verdict, ClusterVerdict.Rotating);
  t.like(only(v.nodes, 'a'), { state: NodeKeyState.Converging, notes: ['waiting for peers to use SPI 5 (KeyInSync=False PeersBehind)'] });
  t.is(v.summary, '1 waiting for peers or status: a');
});

test('the summary lists every kind of trouble, worst first', async (t) => {
  const peersBehind = [{ type: 'KeyInSync', status: 'False', reason: 'PeersBehind' }] as const;
  const rotating = await view(5, { name: 'w', spi: 5, conditions: peersBehind }, { name: 'b', spi: 4 });
  t.is(rotating.summary, "1 of 2 nodes behind SPI 5, the Secret's: b; 1 waiting for peers or status: w");
  const degraded = await view(5, { name: 'w', spi: 5, conditions: peersBehind }, { name: 'b', spi: 4 }, { name: 'f', spi: 0 });
  t.is(degraded.summary, "1 of 3 nodes failing: f; 1 of 3 nodes behind SPI 5, the Secret's: b; 1 waiting for peers or status: w");
});

test('conditions written for an older generation: converging, and a stale failure does not count', async (t) => {
  const v = await view(5, { name: 'a', spi: 5, generation: 2, conditions: [
    { type: 'Ready', status: 'False', reason: 'ReconcileFailed', observedGeneration: 1 },
    { type: 'KeyInSync', status: 'True', observedGeneration: 2 },
  ] });
  t.is(v.verdict, ClusterVerdict.Rotating);
  t.like(only(v.nodes, 'a'), { state: NodeKeyState.Converging, notes: ['Ready not yet reported for the current spec'] });
  t.true(only(v.nodes, 'a').ready?.stale);
});

test('absent or Unknown conditions do not count against a node (Kmesh agents write none)', async (t) => {
  const v = await view(5, { name: 'kmesh-agent', spi: 5, conditions: [] }, { name: 'starting', spi: 5, conditions: [{ type: 'Ready', status: 'Unknown', reason: 'Starting' }] });
  t.is(v.verdict, ClusterVerdict.InSync);
});

const failures: { title: string; seed: Partial<NodeInfoSeed> & { spi: number }; secretSpi?: number; note: RegExp; stamp?: StampState }[] = [
  { title: 'Ready=False', seed: { spi: 5, conditions: [{ type: 'Ready', status: 'False', reason: 'ReconcileFailed', message: 'xfrm: EPERM\n\u001b[31mred' }] }, note: /^Ready=False ReconcileFailed: xfrm: EPERM\\n\\u\{1b\}\[31mred$/ },
  { title: 'KeyInSync=False for another reason than PeersBehind', seed: { spi: 5, conditions: [{ type: 'KeyInSync', status: 'False', reason: 'NoKey' }] }, note: /^KeyInSync=False NoKey$/ },
  { title: 'SPI 0', seed: { spi: 0 }, note: /^no key yet \(advertises SPI 0\)$/ },
  { title: 'an SPI above the Secret\'s', seed: { spi: 6 }, note: /^advertises SPI 6, above the Secret's 5$/ },
  { title: 'no stamp', seed: { spi: 5, stamp: false }, note: /^no validity stamp: peers refuse this node$/, stamp: StampState.Missing },
  { title: 'an unreadable stamp', seed: { spi: 5, stamp: 'a.b.c' }, note: /^validity stamp unreadable \(is not a compact JWS .*\): peers refuse this node$/, stamp: StampState.Malformed },
  { title: 'an expired stamp', seed: { spi: 5, stampedAt: NOW - 2 * 86_400 }, note: /^validity stamp expired at 2027-01-14T08:00:00Z: peers refuse this node$/, stamp: StampState.Expired },
  { title: 'a stamp expiring this very second', seed: { spi: 5, stampedAt: NOW - 100, ttlSeconds: 100 }, note: /^validity stamp expired at/, stamp: StampState.Expired },
  { title: 'a stamp from the future', seed: { spi: 5, stampedAt: NOW + 61 }, note: /^validity stamp not valid before 2027-01-15T08:01:01Z \(check clocks\)/, stamp: StampState.NotYetValid },
  { title: 'an invalid spec', seed: { spi: 5, index: 300 }, note: /^spec invalid: spec\.bootID: must be a 36-character UUID/ },
];

for (const f of failures) {
  test(`a node with ${f.title} is failing and the cluster degraded`, async (t) => {
    const v = await view(f.secretSpi ?? 5, { name: 'bad', ...f.seed }, { name: 'good', spi: 5 }, { name: 'late', spi: 4 });
    t.is(v.verdict, ClusterVerdict.Degraded, 'a failure outranks a node behind');
    const bad = only(v.nodes, 'bad');
    t.is(bad.state, NodeKeyState.Failing);
    t.is(bad.notes.length, 1, bad.notes.join(' | '));
    t.regex(bad.notes[0] ?? '', f.note);
    t.is(bad.stamp.state, f.stamp ?? StampState.Valid);
    t.is(v.summary, "1 of 3 nodes failing: bad; 1 of 3 nodes behind SPI 5, the Secret's: late");
  });
}

test('a stamp from the future within the clock skew is fine', async (t) => {
  t.is((await view(5, { name: 'a', spi: 5, stampedAt: NOW + 60 })).verdict, ClusterVerdict.InSync);
});

test('a stamp issued for another node or another spec is a mismatch', async (t) => {
  const spec = specFor({ spi: 5, index: 1 });
  const forB = await signStamp({ nodeName: 'b', spec }, key, { now: NOW });
  const forOldSpec = await signStamp({ nodeName: 'a', spec: { ...spec, spi: 4 } }, key, { now: NOW });
  const sameSpiOtherAddresses = await signStamp({ nodeName: 'a', spec: specFor({ spi: 5, index: 9 }) }, key, { now: NOW });
  const v = await view(5, { name: 'a', spi: 5, stamp: forB });
  t.like(only(v.nodes, 'a'), { state: NodeKeyState.Failing, stamp: { state: StampState.Mismatch, expiresAt: NOW + 86_400 }, notes: ['validity stamp was issued for node "b": peers refuse this node'] });
  t.like(only((await view(5, { name: 'a', spi: 5, stamp: forOldSpec })).nodes, 'a').notes, ['validity stamp was issued for another spec (SPI 4): peers refuse this node']);
  t.is(only((await view(5, { name: 'a', spi: 5, stamp: sameSpiOtherAddresses })).nodes, 'a').stamp.state, StampState.Mismatch);
});

test('a node can fail several ways at once; each is a note', async (t) => {
  const v = await view(5, { name: 'a', spi: 0, stamp: false, conditions: [{ type: 'Ready', status: 'False', reason: 'NoKey' }] });
  t.deepEqual(only(v.nodes, 'a').notes, ['no key yet (advertises SPI 0)', 'no validity stamp: peers refuse this node', 'Ready=False NoKey']);
});

test('rotation holdouts: every node not on exactly the Secret\'s SPI', async (t) => {
  const v = await view(5, { name: 'on', spi: 5 }, { name: 'old', spi: 4 }, { name: 'none', spi: 0 }, { name: 'ahead', spi: 9 });
  t.deepEqual(rotationHoldouts(v.nodes, 5).map((n) => n.name), ['ahead', 'none', 'old']);
});

test('long lists of names are bounded', (t) => {
  const nodes = Array.from({ length: 8 }, (_, i) => ({ name: `n${i}` }));
  t.is(nameList(nodes), 'n0, n1, n2, n3, n4 and 3 more');
  t.is(nameList(nodes.slice(0, 2), (n) => `${n.name}!`), 'n0!, n1!');
});
