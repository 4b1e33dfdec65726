/**
 * The /status document, built from a real NodeDatapath sync against the in-memory kernel
 * (test/fakes): node-2 on the new SPI, node-3 still on the old one, node-4 without a key
 * (skipped), node-5 encrypted before and now refused (its CIDRs blocked), node-6 refused with
 * nothing claimed.
 */
import test from 'ava';
import type { PeerNode } from '../../../core/plan.js';
import { STAMP_ISSUER, type StampClaims } from '../../../core/stamp.js';
import { computeConditions } from '../../../nodeplugin/daemon/conditions.js';
import type { PeerVerdict } from '../../../nodeplugin/daemon/peer-trust.js';
import { type StatusInput, buildStatus } from '../../../nodeplugin/daemon/status.js';
import { NodeDatapath, type SyncResult } from '../../../nodeplugin/node-datapath.js';
import { createFakePorts } from '../../fakes/index.js';
import { LOCAL, keys, node, syncInput } from '../datapath-fixture.js';

const T0 = 1_800_000_000_000;
const EXP = 1_800_086_400;

const claims = (p: PeerNode): StampClaims => ({ iss: STAMP_ISSUER, sub: p.name, spi: p.spec.spi, spec: 'sha256:x', iat: EXP - 86_400, nbf: EXP - 86_400, exp: EXP });
const used = (p: PeerNode): PeerVerdict => ({ name: p.name, used: true, peer: p, claims: claims(p) });

const N2 = node(2, { spi: 2 });
const N3 = node(3, { spi: 1 });
const N4 = node(4, { spi: 0 });
const N5 = node(5, { spi: 1 });

async function rotatingSync(): Promise<SyncResult> {
  const ports = createFakePorts({ clock: () => T0 });
  const datapath = new NodeDatapath(ports.xfrm, ports.maps, { drainMs: 0 });
  const first = await datapath.sync(syncInput([N2, N3, N5], [1, 2], T0));
  return datapath.sync({ local: LOCAL, peers: [N2, N3, N4], refused: [N5], keys: keys(1, 2), now: T0 + 1, graceMs: 60_000 }, first.memory);
}

const CONDITIONS = computeConditions({ currentSpi: 2, advertisedSpi: 2, peers: [], withoutOutbound: [], refused: [], errors: [] }, [], new Date(T0));

function statusInput(sync: SyncResult | undefined, extra: Partial<StatusInput> = {}): StatusInput {
  return {
    node: 'node-1', ready: true, strict: false, secret: 'kmesh-system/kmesh-ipsec',
    keys: keys(1, 2), advertisedSpi: 2, sync,
    verdicts: [used(N2), used(N3), used(N4),
      { name: 'node-5', used: false, reason: 'expired', message: 'stamp expired', claimed: N5 },
      { name: 'node-6', used: false, reason: 'invalid-spec', message: 'spec.spi: must be an integer' }],
    conditions: CONDITIONS, stampExpiresAt: undefined, lastRun: undefined, attachments: undefined,
    managedPods: 0, factsProblem: undefined, runs: 0, xfrmStat: {},
    ...extra,
  };
}

test('per peer: state, SPIs each way, stamp expiry, and CIDRs blocked instead of sent in clear', async (t) => {
  const sync = await rotatingSync();
  const status = buildStatus(statusInput(sync));
  const byName = Object.fromEntries(status.peers.map((p) => [p.name, p]));
  t.deepEqual(byName['node-2'], { name: 'node-2', state: 'used', addresses: N2.spec.addresses, advertisedSpi: 2, outSpi: 2, inSpis: [2], stampExpiresAt: new Date(EXP * 1000).toISOString() });
  t.like(byName['node-3'], { state: 'used', advertisedSpi: 1, outSpi: 1, inSpis: [2] });
  // Skipped outbound only: its inbound state on this node's SPI is in place for when it gets the key.
  t.like(byName['node-4'], { state: 'skipped', reason: 'peer has no key yet (advertises SPI 0)', advertisedSpi: 0, inSpis: [2] });
  t.false('outSpi' in (byName['node-4'] ?? {}));
  t.deepEqual(byName['node-5'], {
    name: 'node-5', state: 'refused', reason: 'expired: stamp expired', addresses: N5.spec.addresses, inSpis: [],
    protected: [{ cidr: 'fd00:10:244:5::/64', action: 'blocked' }, { cidr: '10.244.5.0/24', action: 'blocked' }],
  });
  t.deepEqual(byName['node-6'], { name: 'node-6', state: 'refused', reason: 'invalid-spec: spec.spi: must be an integer', addresses: [], inSpis: [] });
});

test('keys, rotation, kernel counts and the rest of the document', async (t) => {
  const sync = await rotatingSync();
  const lastRun = { at: T0, durationMs: 12, reasons: ['secret'], ok: true, kernelWrites: { xfrm: 3, map: 1, tc: 0 }, kernelReads: { xfrmDumps: 0, mapReads: 0 } };
  const attachments = { attached: 1, detached: 0, problems: [{ pod: 'mesh/x', reason: 'no route' }], podInterfaces: ['veth-a'], nodeInterfaces: ['eth0'] };
  const status = buildStatus(statusInput(sync, {
    strict: true, stampExpiresAt: EXP * 1000, lastRun, attachments, managedPods: 2, factsProblem: 'boot ID mismatch', runs: 7,
    xfrmStat: { XfrmInError: 0, XfrmInNoStates: 4, XfrmOutPolBlock: 2 },
  }));
  t.deepEqual(status.keys, { current: 2, known: [1, 2], advertised: 2, accepted: sync.acceptedSpis });
  t.true(status.rotationInProgress, 'node-3 is still on SPI 1');
  const states = sync.plan.states;
  const policies = sync.plan.policies;
  t.deepEqual(status.kernel, {
    states: { in: states.filter((s) => s.direction === 'in').length, out: states.filter((s) => s.direction === 'out').length },
    policies: {
      in: policies.filter((p) => p.dir === 'in').length,
      out: policies.filter((p) => p.dir === 'out' && p.action !== 'block').length,
      fwd: policies.filter((p) => p.dir === 'fwd').length,
      block: policies.filter((p) => p.action === 'block').length,
    },
  });
  t.true(status.kernel.policies.block > 0, 'node-5\'s CIDRs are blocked by policies');
  t.true(status.kernel.states.in > 0 && status.kernel.states.out > 0);
  t.like(status, {
    node: 'node-1', ready: true, strict: true, secret: 'kmesh-system/kmesh-ipsec',
    pods: { managed: 2, podInterfaces: ['veth-a'], problems: [{ pod: 'mesh/x', reason: 'no route' }] },
    nodeInterfaces: ['eth0'],
    xfrmErrors: { XfrmInNoStates: 4, XfrmOutPolBlock: 2 },
    stampExpiresAt: new Date(EXP * 1000).toISOString(),
    factsProblem: 'boot ID mismatch',
    runs: 7,
    lastRun,
  });
  t.false('XfrmInError' in status.xfrmErrors);
  t.deepEqual(status.conditions, CONDITIONS);
});

test('before the first reconcile: no kernel view, no optional fields', (t) => {
  const status = buildStatus(statusInput(undefined, { keys: new Map(), advertisedSpi: 0, verdicts: [used(N2)], ready: false }));
  t.deepEqual(status.peers, [{ name: 'node-2', state: 'used', addresses: N2.spec.addresses, advertisedSpi: 2, inSpis: [], stampExpiresAt: new Date(EXP * 1000).toISOString() }]);
  t.deepEqual(status.keys, { current: 0, known: [], advertised: 0, accepted: [] });
  t.true(status.rotationInProgress, 'a used peer advertises an SPI this node does not have yet');
  t.deepEqual(status.kernel, { states: { in: 0, out: 0 }, policies: { in: 0, out: 0, fwd: 0, block: 0 } });
  t.deepEqual(status.pods, { managed: 0, podInterfaces: [], problems: [] });
  t.deepEqual(status.nodeInterfaces, []);
  for (const k of ['stampExpiresAt', 'factsProblem', 'lastRun']) t.false(k in status, k);
});

test('no rotation when one SPI is accepted and every used peer is on it', async (t) => {
  const ports = createFakePorts({ clock: () => T0 });
  const sync = await new NodeDatapath(ports.xfrm, ports.maps, { drainMs: 0 }).sync(syncInput([node(2, { spi: 2 })], [2], T0));
  const status = buildStatus(statusInput(sync, { keys: keys(2), verdicts: [used(node(2, { spi: 2 }))] }));
  t.deepEqual(status.keys.accepted, [2]);
  t.false(status.rotationInProgress);
});

test('the document carries no key material', async (t) => {
  const sync = await rotatingSync();
  const text = JSON.stringify(buildStatus(statusInput(sync)));
  for (const k of keys(1, 2).values()) {
    const bytes = Buffer.from(k.aeadKey);
    for (const enc of [bytes.toString('base64'), bytes.toString('hex')]) t.false(text.includes(enc.slice(0, 16)));
  }
});
