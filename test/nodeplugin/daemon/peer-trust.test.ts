/**
 * PeerTrust with real stamps (signed by a throwaway webhook key): which peers are used, every
 * refusal reason, and the verification cache. The key ring is wrapped to count lookups: every
 * signature verification looks its kid up exactly once, so the count is the number of
 * verifications.
 */
import test from 'ava';
import { VALIDITY_ANNOTATION } from '../../../core/constants.js';
import type { KmeshNodeInfoSpec } from '../../../core/nodeinfo.js';
import { type StampSigningKey, type StampVerificationKey, StampFailure, importStampJwks, signStamp } from '../../../core/stamp.js';
import { PeerTrust, type PeerVerdict, type TrustInput } from '../../../nodeplugin/daemon/peer-trust.js';
import { nodeInfo, specFor, stampKey } from '../../helpers/node-infos.js';

const NOW = 1_800_000_000;
const TTL = 3600;

class CountingRing extends Map<string, StampVerificationKey> {
  lookups = 0;
  override get(kid: string): StampVerificationKey | undefined {
    this.lookups++;
    return super.get(kid);
  }
}

async function ringOf(...keys: StampSigningKey[]): Promise<CountingRing> {
  const imported = await importStampJwks({ keys: keys.map((k) => k.publicJwk) });
  if (!imported.ok) throw new Error('ring did not import');
  return new CountingRing(imported.value);
}

const webhook = await stampKey();
const stranger = await stampKey();

/** node-N with a real stamp issued at `stampedAt` (default NOW), or the given annotation. */
const peer = (n: number, options: { stampedAt?: number; stamp?: string | false; ttlSeconds?: number } = {}) =>
  nodeInfo({ name: `node-${n}`, spi: 1, index: n, stampedAt: options.stampedAt ?? NOW, ttlSeconds: options.ttlSeconds ?? TTL, ...(options.stamp === undefined ? {} : { stamp: options.stamp }) }, webhook);

const withToken = async (n: number, token: string) => peer(n, { stamp: token });
const sign = (nodeName: string, spec: KmeshNodeInfoSpec, key = webhook, now = NOW) => signStamp({ nodeName, spec }, key, { now, ttlSeconds: TTL });

function input(objects: readonly unknown[], ring: CountingRing | undefined, extra: Partial<TrustInput> = {}): TrustInput {
  return { objects, localName: 'node-1', ring, ringVersion: 1, now: NOW + 10, ...extra };
}

function byName(verdicts: readonly PeerVerdict[], name: string): PeerVerdict {
  const v = verdicts.find((x) => x.name === name);
  if (!v) throw new Error(`no verdict for ${name}`);
  return v;
}

test('peers with a valid stamp are used, sorted by name; the local node, nameless entries and duplicates are skipped', async (t) => {
  const ring = await ringOf(webhook);
  const node3 = await peer(3);
  const node2 = await peer(2);
  const duplicate = { ...(await peer(2)), spec: { ...specFor({ spi: 9, index: 2 }) } };
  const objects = [node3, await peer(1), null, 'text', { metadata: {} }, { metadata: { name: 7 } }, node2, duplicate];
  const verdicts = await new PeerTrust().classify(input(objects, ring));
  t.deepEqual(verdicts.map((v) => v.name), ['node-2', 'node-3']);
  const v2 = byName(verdicts, 'node-2');
  if (!v2.used) return t.fail(`${v2.reason}: ${v2.message}`);
  t.deepEqual(v2.peer, { name: 'node-2', spec: specFor({ spi: 1, index: 2 }) }, 'the first copy of a name is the one used');
  t.like(v2.claims, { sub: 'node-2', spi: 1, iat: NOW, exp: NOW + TTL });
  t.is(ring.lookups, 2, 'one verification per distinct peer; none for the local node');
});

test('every refusal reason, with the claimed peer passed on', async (t) => {
  const ring = await ringOf(webhook);
  const valid = await peer(9);
  const token9 = valid.metadata.annotations?.[VALIDITY_ANNOTATION] ?? '';
  const [h, , s] = token9.split('.');
  const otherPayload = (await sign('node-9', specFor({ spi: 2, index: 9 }))).split('.')[1];
  const spec4 = specFor({ spi: 1, index: 4 });
  const objects = [
    await peer(2, { stamp: false }),
    await peer(3, { stamp: 'not.a.jws' }),
    await withToken(4, await sign('node-4', spec4, stranger)),
    await withToken(5, `${h}.${otherPayload}.${s}`),
    await withToken(6, await sign('node-7', specFor({ spi: 1, index: 6 }))),
    await withToken(7, await sign('node-7', specFor({ spi: 1, index: 8 }))),
    await peer(10, { stampedAt: NOW - 2 * TTL }),
    await peer(11, { stampedAt: NOW + 600 }),
    { metadata: { name: 'node-12' }, spec: { spi: 'one', addresses: [], bootID: 'x', podCIDRS: ['10.244.12.0/24', 42, 'junk'] } },
  ];
  const verdicts = await new PeerTrust().classify(input(objects, ring));
  const reasons = Object.fromEntries(verdicts.map((v) => [v.name, v.used ? 'used' : v.reason]));
  t.deepEqual(reasons, {
    'node-2': StampFailure.Missing,
    'node-3': StampFailure.Malformed,
    'node-4': StampFailure.UnknownKid,
    'node-5': StampFailure.BadSignature,
    'node-6': StampFailure.NodeMismatch,
    'node-7': StampFailure.SpecMismatch,
    'node-10': StampFailure.Expired,
    'node-11': StampFailure.NotYetValid,
    'node-12': 'invalid-spec',
  });
  for (const v of verdicts) {
    if (v.used) continue;
    t.true(v.message.length > 0, v.name);
    const n = Number(v.name.slice(5));
    // A valid spec that fails its stamp is passed on whole; an invalid one only as its CIDR strings.
    t.deepEqual(v.claimed, n === 12
      ? { name: 'node-12', spec: { spi: 0, addresses: [], bootID: '', podCIDRS: ['10.244.12.0/24', 'junk'] } }
      : { name: v.name, spec: specFor({ spi: 1, index: n }) }, v.name);
  }
  t.regex((byName(verdicts, 'node-12') as { message: string }).message, /spec\.spi/);
  t.regex((byName(verdicts, 'node-10') as { message: string }).message, /^stamp expired at .*re-publish/);
  t.regex((byName(verdicts, 'node-11') as { message: string }).message, /^stamp not valid before .*clocks/);
});

test('without a JWKS every peer is refused as no-jwks, claiming only its CIDRs', async (t) => {
  const verdicts = await new PeerTrust().classify(input([await peer(2)], undefined));
  const v = verdicts[0];
  t.like(v, { name: 'node-2', used: false, reason: 'no-jwks' });
  // Nothing of an unverified spec but its CIDR strings is passed on (for blocking only).
  t.deepEqual(v && !v.used ? v.claimed : undefined, { name: 'node-2', spec: { spi: 0, addresses: [], bootID: '', podCIDRS: ['10.244.2.0/24'] } });
});

test('claimed CIDRs of a refused peer are bounded; no spec object or no CIDR list claims nothing', async (t) => {
  const many = Array.from({ length: 200 }, (_, i) => `10.${i}.0.0/16`);
  const verdicts = await new PeerTrust().classify(input([
    { metadata: { name: 'a' }, spec: { podCIDRS: many } },
    { metadata: { name: 'b' }, spec: 'text' },
    { metadata: { name: 'c' }, spec: { podCIDRS: '10.0.0.0/8' } },
    { metadata: { name: 'd' } },
  ], await ringOf(webhook)));
  const a = byName(verdicts, 'a');
  t.deepEqual(!a.used && a.claimed?.spec.podCIDRS, many.slice(0, 64));
  for (const name of ['b', 'c', 'd']) {
    const v = byName(verdicts, name);
    t.like(v, { used: false, reason: 'invalid-spec' });
    t.false('claimed' in v, name);
  }
});

test('a second classify with the same objects verifies nothing again, also for cached refusals', async (t) => {
  const ring = await ringOf(webhook);
  const trust = new PeerTrust();
  const objects = [await peer(2), await peer(3), await withToken(4, await sign('node-4', specFor({ spi: 1, index: 4 }), stranger))];
  const first = await trust.classify(input(objects, ring));
  t.is(ring.lookups, 3);
  const second = await trust.classify(input(objects, ring, { now: NOW + 20 }));
  t.is(ring.lookups, 3, 'nothing verified again');
  t.deepEqual(second, first);
});

test('a new ring version, a new stamp or a new spec is verified again; only that object', async (t) => {
  const ring = await ringOf(webhook);
  const trust = new PeerTrust();
  const node2 = await peer(2);
  const node3 = await peer(3);
  await trust.classify(input([node2, node3], ring));
  t.is(ring.lookups, 2);
  // The JWKS changed: every cached verdict is dropped.
  await trust.classify(input([node2, node3], ring, { ringVersion: 2 }));
  t.is(ring.lookups, 4);
  // node-3 got a new stamp.
  const restamped = await peer(3, { stampedAt: NOW + 5 });
  const v = await trust.classify(input([node2, restamped], ring, { ringVersion: 2 }));
  t.is(ring.lookups, 5);
  t.like(byName(v, 'node-3'), { used: true, claims: { iat: NOW + 5 } });
  // node-2's spec changed under the same stamp: verified again, and refused.
  const edited = { ...node2, spec: specFor({ spi: 1, index: 20 }) };
  const w = await trust.classify(input([edited, restamped], ring, { ringVersion: 2 }));
  t.is(ring.lookups, 6);
  t.like(byName(w, 'node-2'), { used: false, reason: StampFailure.SpecMismatch });
});

test('a peer that disappears is forgotten: when it comes back it is verified again', async (t) => {
  const ring = await ringOf(webhook);
  const trust = new PeerTrust();
  const node2 = await peer(2);
  const node3 = await peer(3);
  await trust.classify(input([node2, node3], ring));
  await trust.classify(input([node3], ring));
  t.is(ring.lookups, 2);
  await trust.classify(input([node2, node3], ring));
  t.is(ring.lookups, 3);
});

test('the lifetime is checked on every use: a cached stamp expires without being verified again', async (t) => {
  const ring = await ringOf(webhook);
  const trust = new PeerTrust();
  const objects = [await peer(2)];
  const exp = NOW + TTL;
  const at = (now: number, skew?: number) => trust.classify(input(objects, ring, { now, ...(skew === undefined ? {} : { clockSkewSeconds: skew }) }));
  t.like((await at(NOW))[0], { used: true });
  // Default skew: 60 s.
  t.like((await at(exp + 60))[0], { used: true });
  t.like((await at(exp + 61))[0], { used: false, reason: StampFailure.Expired, claimed: { name: 'node-2' } });
  t.like((await at(exp + 1, 0))[0], { used: false, reason: StampFailure.Expired });
  // Before nbf (clock behind the webhook's): the same cached verdict is refused, then used again.
  t.like((await at(NOW - 61))[0], { used: false, reason: StampFailure.NotYetValid });
  t.like((await at(NOW - 60))[0], { used: true });
  t.like((await at(NOW - 1, 0))[0], { used: false, reason: StampFailure.NotYetValid });
  t.is(ring.lookups, 1, 'one verification for all of these');
});
