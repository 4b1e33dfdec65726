/**
 * NodeInfoPublisher against an in-memory API (fake-nodeinfo-api.ts) that answers 409, 404 and
 * network errors as client-node does, and a fake webhook that stamps every write with a real
 * stamp. The clock and the jitter's random draw are injected.
 */
import test from 'ava';
import { pino } from 'pino';
import { KMESH_NAMESPACE, KNI_API_VERSION, KNI_KIND, VALIDITY_ANNOTATION } from '../../../core/constants.js';
import type { KmeshNodeInfoSpec } from '../../../core/nodeinfo.js';
import { type StampKeyRing, type StampSigningKey, StampFailure, importStampJwks, signStamp } from '../../../core/stamp.js';
import { type Condition, computeConditions } from '../../../nodeplugin/daemon/conditions.js';
import type { NodeInfoObject } from '../../../nodeplugin/daemon/kube-api.js';
import { NodeInfoPublisher, type PublishInput, type PublishOutcome } from '../../../nodeplugin/daemon/publisher.js';
import { specFor, stampKey } from '../../helpers/node-infos.js';
import { FakeNodeInfoApi, apiError } from './fake-nodeinfo-api.js';

const NODE = 'node-1';
const UID = 'node-uid-1';
const T = 1_800_000_000_000;
const TTL = 3600;
const HALF_LIFE_MS = (TTL / 2) * 1000;
const S = 1000;

const webhookKey = await stampKey();
const otherKey = await stampKey();
async function ringOf(key: StampSigningKey): Promise<StampKeyRing> {
  const r = await importStampJwks({ keys: [key.publicJwk] });
  if (!r.ok) throw new Error('ring');
  return r.value;
}
const RING = await ringOf(webhookKey);
const OTHER_RING = await ringOf(otherKey);

const spec = (spi: number, index = 1): KmeshNodeInfoSpec => specFor({ spi, index });
const conditions = (errors: string[] | undefined): Condition[] =>
  computeConditions({ currentSpi: 1, advertisedSpi: 1, peers: [], withoutOutbound: [], refused: [], errors }, [], new Date(T));
const READY = conditions([]);
const FAILED = conditions(['add state: EEXIST']);

interface SetupOptions {
  readonly jitterMs?: number;
  readonly random?: () => number;
  /** false: no webhook, writes come back unstamped. */
  readonly webhook?: boolean;
}

function setup(options: SetupOptions = {}) {
  const clock = { now: T };
  const api = new FakeNodeInfoApi();
  /** The admission webhook stamps every create and replace, at the test's clock. */
  const startWebhook = () => {
    api.webhook = (name, s) => signStamp({ nodeName: name, spec: s }, webhookKey, { now: Math.floor(clock.now / 1000), ttlSeconds: TTL });
  };
  if (options.webhook !== false) startWebhook();
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push((JSON.parse(line) as { msg: string }).msg); } });
  const writes: string[] = [];
  let draws = 0;
  const random = options.random;
  const publisher = new NodeInfoPublisher(api, {
    nodeName: NODE,
    logger,
    jitterMs: options.jitterMs ?? 0,
    ...(random ? { random: () => { draws++; return random(); } } : {}),
    onWrite: (what, result) => writes.push(`${what}:${result}`),
  });
  const publish = (s: KmeshNodeInfoSpec, extra: Partial<PublishInput> = {}): Promise<PublishOutcome> =>
    publisher.publish({ spec: s, nodeUid: UID, conditions: READY, cached: undefined, ring: RING, now: clock.now, ...extra });
  /** What an informer in sync with the API holds. */
  const informer = (): NodeInfoObject | undefined => (api.object ? structuredClone(api.object) : undefined);
  /** The object as stored (a function, so narrowing after `api.object = undefined` does not stick). */
  const stored = (): NodeInfoObject | undefined => api.object;
  return { clock, api, publisher, publish, informer, stored, startWebhook, warnings, writes, draws: () => draws };
}

const stampOf = (obj: NodeInfoObject | undefined) => obj?.metadata?.annotations?.[VALIDITY_ANNOTATION];
const iatOf = (o: PublishOutcome) => (o.stamp?.ok ? o.stamp.claims.iat : undefined);

test('first publish creates the object with an ownerReference to the Node, then writes the conditions', async (t) => {
  const s = setup();
  const out = await s.publish(spec(1));
  t.deepEqual(out.wrote, ['create', 'status']);
  const obj = s.api.object;
  t.like(obj, { apiVersion: KNI_API_VERSION, kind: KNI_KIND, metadata: { name: NODE, namespace: KMESH_NAMESPACE }, spec: spec(1) });
  t.deepEqual(obj?.metadata?.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: UID }]);
  t.deepEqual(obj?.status?.conditions, READY);
  t.deepEqual(s.writes, ['create:success', 'status:success']);
  t.true(out.stamp?.ok);
  t.is(out.nextAt, T + HALF_LIFE_MS, 'called again at the stamp\'s half-life');
  t.deepEqual(out.published, obj);
  t.is(s.publisher.publishedSpi(undefined), 1);
});

test('no conditions to write and no JWKS: only the create, no stamp, no wake-up', async (t) => {
  const s = setup();
  const out = await s.publish(spec(1), { conditions: [], ring: undefined });
  t.deepEqual(out.wrote, ['create']);
  t.is(out.stamp, undefined);
  t.is(out.nextAt, undefined);
});

test('nothing changed: no write at all', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  const calls = s.api.calls.length;
  s.clock.now += 60 * S;
  const out = await s.publish(spec(1), { cached: s.informer() });
  t.deepEqual(out.wrote, []);
  t.is(s.api.calls.length, calls);
  t.is(out.nextAt, T + HALF_LIFE_MS);
});

test('409 on create (the object exists, the informer has not seen it): read, then update it', async (t) => {
  const s = setup();
  s.api.seed({ apiVersion: KNI_API_VERSION, kind: KNI_KIND, metadata: { name: NODE, namespace: KMESH_NAMESPACE }, spec: spec(1, 7) });
  const out = await s.publish(spec(1));
  t.deepEqual(out.wrote, ['update', 'status']);
  t.deepEqual(s.api.calls.map((c) => c.op), ['create', 'read', 'replace', 'status']);
  t.deepEqual(s.writes, ['create:409', 'update:success', 'status:success']);
  t.deepEqual(s.api.object?.spec, spec(1));
  t.deepEqual(s.api.object?.metadata?.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: UID }]);
});

test('an object without a spec (written by hand) is given ours', async (t) => {
  const s = setup({ jitterMs: 10_000, random: () => 0.5 });
  s.api.seed({ apiVersion: KNI_API_VERSION, kind: KNI_KIND, metadata: { name: NODE, namespace: KMESH_NAMESPACE } });
  const out = await s.publish(spec(1), { cached: s.informer() });
  t.deepEqual(out.wrote, ['update', 'status']);
  t.deepEqual(s.api.object?.spec, spec(1));
  t.is(s.draws(), 0, 'more than the SPI changed: no jitter');
});

test('409 on replace (someone wrote since our read): re-read and write again on the new version', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  const stale = s.informer();
  s.api.touch();
  const out = await s.publish(spec(1, 2), { cached: stale });
  t.deepEqual(out.wrote, ['update']);
  t.deepEqual(s.writes.slice(2), ['update:409', 'update:success']);
  t.deepEqual(s.api.object?.spec, spec(1, 2));
  t.truthy(s.api.object?.metadata?.labels?.touched, 'the other writer\'s change is kept');
});

test('conflicts are retried a bounded number of times, then the 409 is thrown', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  s.api.failNext('replace', apiError(409, 'Conflict'), 10);
  const err = await t.throwsAsync(s.publish(spec(1, 2)));
  t.is((err as { code?: number }).code, 409);
  t.is(s.api.count('replace'), 4, 'one try and three retries');
  t.is(s.api.count('read'), 3);
});

test('other API errors and unreachable servers are thrown at once, and counted', async (t) => {
  const s = setup();
  s.api.failNext('create', apiError(500, 'InternalError'));
  t.is((await t.throwsAsync(s.publish(spec(1))) as { code?: number }).code, 500);
  s.api.failNext('create', new Error('connect ECONNREFUSED'));
  await t.throwsAsync(s.publish(spec(1)), { message: 'connect ECONNREFUSED' });
  t.is(s.api.count('read'), 0);
  t.deepEqual(s.writes, ['create:500', 'create:unreachable']);
  t.deepEqual((await s.publish(spec(1))).wrote, ['create', 'status']);
});

test('the object was deleted behind our back: the 404 on replace re-reads and creates it again', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  s.api.object = undefined;
  const out = await s.publish(spec(1, 2));
  t.deepEqual(out.wrote, ['create', 'status']);
  t.deepEqual(s.stored()?.spec, spec(1, 2));
});

test('deleted between our writes: a 404 on /status with no object re-creates it', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  s.api.object = undefined;
  // Same spec: no spec write, so the first write to notice is the status one.
  const out = await s.publish(spec(1), { conditions: FAILED });
  t.deepEqual(out.wrote, ['create', 'status']);
  t.deepEqual(s.stored()?.status?.conditions, FAILED);
  t.deepEqual(s.warnings, [], 'not mistaken for a missing status subresource');
});

test('a spec change other than the SPI is written at once, whatever the jitter', async (t) => {
  const s = setup({ jitterMs: 10_000, random: () => 0.99 });
  await s.publish(spec(1));
  t.deepEqual((await s.publish(spec(1, 2))).wrote, ['update']);
  // SPI and addresses together: not "only the SPI", so no delay either.
  t.deepEqual((await s.publish(spec(2, 3))).wrote, ['update']);
  t.deepEqual(s.api.object?.spec, spec(2, 3));
  t.is(s.draws(), 0);
});

test('a new SPI waits for the random jitter, keeps the old one advertised meanwhile, then is published', async (t) => {
  const s = setup({ jitterMs: 10_000, random: () => 0.5 });
  await s.publish(spec(1));
  const delayed = await s.publish(spec(2));
  t.deepEqual(delayed.wrote, []);
  t.is(delayed.nextAt, T + 5000);
  t.is(s.api.object?.spec && (s.api.object.spec as KmeshNodeInfoSpec).spi, 1);
  t.is(s.publisher.publishedSpi(undefined), 1);
  // Still waiting; conditions are written meanwhile; no new draw.
  s.clock.now = T + 4999;
  const waiting = await s.publish(spec(2), { conditions: FAILED });
  t.deepEqual(waiting.wrote, ['status']);
  t.is(waiting.nextAt, T + 5000);
  t.is(s.draws(), 1);
  s.clock.now = T + 5000;
  const out = await s.publish(spec(2), { conditions: FAILED });
  t.deepEqual(out.wrote, ['update']);
  t.is(s.publisher.publishedSpi(undefined), 2);
  t.is(out.nextAt, T + 5000 + HALF_LIFE_MS);
  // The next SPI draws again; an SPI that changes during its delay draws anew.
  s.clock.now = T + 6000;
  t.is((await s.publish(spec(3))).nextAt, T + 11_000);
  s.clock.now = T + 7000;
  t.is((await s.publish(spec(4))).nextAt, T + 12_000);
  t.is(s.draws(), 3);
});

test('no jitter for SPI 0, for a zero jitter, or when only the ownerReference is wrong', async (t) => {
  const zero = setup({ jitterMs: 10_000, random: () => 0.5 });
  await zero.publish(spec(1));
  t.deepEqual((await zero.publish(spec(0))).wrote, ['update']);

  const none = setup({ jitterMs: 0, random: () => 0.5 });
  await none.publish(spec(1));
  t.deepEqual((await none.publish(spec(2))).wrote, ['update']);

  const owner = setup({ jitterMs: 10_000, random: () => 0.5 });
  const other = { apiVersion: 'apps/v1', kind: 'Foo', name: 'x', uid: 'foo-uid' };
  owner.api.seed({
    apiVersion: KNI_API_VERSION, kind: KNI_KIND, spec: spec(1),
    metadata: { name: NODE, namespace: KMESH_NAMESPACE, ownerReferences: [other, { apiVersion: 'v1', kind: 'Node', name: NODE, uid: 'old-node-uid' }] },
  });
  const out = await owner.publish(spec(1), { cached: owner.informer() });
  t.deepEqual(out.wrote, ['update', 'status']);
  t.deepEqual(owner.api.object?.metadata?.ownerReferences, [other, { apiVersion: 'v1', kind: 'Node', name: NODE, uid: UID }], 'the re-created Node\'s uid replaces the old one; other owners stay');
  t.is(zero.draws() + none.draws() + owner.draws(), 0);
});

test('the stamp is renewed at half-life: a restamp write, then the new stamp\'s half-life', async (t) => {
  const s = setup();
  const first = await s.publish(spec(1));
  t.is(iatOf(first), T / 1000);
  s.clock.now = T + HALF_LIFE_MS - 1;
  const before = await s.publish(spec(1));
  t.deepEqual(before.wrote, []);
  t.is(before.nextAt, T + HALF_LIFE_MS);
  s.clock.now = T + HALF_LIFE_MS;
  const renewed = await s.publish(spec(1));
  t.deepEqual(renewed.wrote, ['restamp']);
  t.deepEqual(s.writes.at(-1), 'restamp:success');
  t.is(iatOf(renewed), (T + HALF_LIFE_MS) / 1000, 'the outcome carries the new stamp, verified');
  t.not(stampOf(s.api.object), stampOf(first.published));
  t.is(renewed.nextAt, T + HALF_LIFE_MS + 30 * S, 'checked again after the minimum restamp interval');
  s.clock.now = T + HALF_LIFE_MS + 30 * S;
  const after = await s.publish(spec(1));
  t.deepEqual(after.wrote, []);
  t.is(after.nextAt, T + 2 * HALF_LIFE_MS);
});

test('restamp conflicts like any write: re-read and renew on the new version', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  const stale = s.informer();
  s.api.touch();
  s.clock.now = T + HALF_LIFE_MS;
  const out = await s.publish(spec(1), { cached: stale });
  t.deepEqual(out.wrote, ['restamp']);
  t.deepEqual(s.writes.slice(2), ['restamp:409', 'restamp:success']);
  t.is(iatOf(out), (T + HALF_LIFE_MS) / 1000);
});

test('a stamp that stays missing (no webhook) is re-published with a doubling backoff capped at 10 minutes', async (t) => {
  const s = setup({ webhook: false });
  const created = await s.publish(spec(1));
  t.like(created.stamp, { ok: false, reason: StampFailure.Missing });
  t.deepEqual(created.wrote, ['create', 'status'], 'no restamp right after a write that came back unstamped');
  let at = T;
  t.is(created.nextAt, at + 30 * S);
  for (const interval of [30, 60, 120, 240, 480, 600, 600]) {
    s.clock.now = at + interval * S - 1;
    const early = await s.publish(spec(1));
    t.deepEqual(early.wrote, [], `1 ms before ${interval} s`);
    t.is(early.nextAt, at + interval * S);
    at += interval * S;
    s.clock.now = at;
    const out = await s.publish(spec(1));
    t.deepEqual(out.wrote, ['restamp'], `after ${interval} s`);
    t.like(out.stamp, { ok: false, reason: StampFailure.Missing });
  }
  t.is(s.api.count('replace'), 7);
});

test('once the webhook stamps again the backoff resets to the minimum', async (t) => {
  const s = setup({ webhook: false });
  await s.publish(spec(1));
  for (const interval of [30, 60]) {
    s.clock.now += interval * S;
    t.deepEqual((await s.publish(spec(1))).wrote, ['restamp']);
  }
  // The webhook is back: the next restamp (after 120 s) gets a stamp.
  s.startWebhook();
  s.clock.now += 120 * S;
  const back = await s.publish(spec(1));
  t.deepEqual(back.wrote, ['restamp']);
  t.true(back.stamp?.ok);
  s.clock.now += 1;
  const renewedAt = s.clock.now;
  t.is((await s.publish(spec(1))).nextAt, renewedAt - 1 + HALF_LIFE_MS);
  // The stamp goes bad again (the JWKS lost the webhook's key): renewed at once, then after 30 s.
  const bad = await s.publish(spec(1), { ring: OTHER_RING });
  t.like(bad, { wrote: ['restamp'], stamp: { ok: false, reason: StampFailure.UnknownKid }, nextAt: renewedAt + 30 * S });
});

test('a spec write that comes back with a bad stamp starts the backoff instead of restamping at once', async (t) => {
  const s = setup();
  await s.publish(spec(1), { ring: OTHER_RING });
  s.clock.now += 30 * S;
  const out = await s.publish(spec(1, 2), { ring: OTHER_RING });
  t.deepEqual(out.wrote, ['update']);
  t.like(out.stamp, { ok: false, reason: StampFailure.UnknownKid });
  t.is(out.nextAt, s.clock.now + 60 * S);
});

test('status is written only when the conditions change', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  t.deepEqual((await s.publish(spec(1), { cached: s.informer() })).wrote, []);
  const failed = await s.publish(spec(1), { conditions: FAILED, cached: s.informer() });
  t.deepEqual(failed.wrote, ['status']);
  t.deepEqual(s.api.object?.status?.conditions, FAILED);
  t.deepEqual(failed.published, s.api.object);
  // Only the transition times differ: the same status on the API, no write.
  const later = computeConditions({ currentSpi: 1, advertisedSpi: 1, peers: [], withoutOutbound: [], refused: [], errors: ['add state: EEXIST'] }, [], new Date(T + 99 * S));
  t.deepEqual((await s.publish(spec(1), { conditions: later, cached: s.informer() })).wrote, []);
  t.is(s.api.count('status'), 2);
});

test('other status fields are kept when the conditions are written', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  s.api.object = { ...s.api.object, status: { ...s.api.object?.status, extra: 'kept' } };
  await s.publish(spec(1), { conditions: FAILED, cached: s.informer() });
  t.like(s.stored()?.status, { extra: 'kept', conditions: FAILED });
});

test('404 on /status while the object exists (no status subresource): conditions are dropped with one warning', async (t) => {
  const s = setup();
  s.api.statusSubresource = false;
  const out = await s.publish(spec(1));
  t.deepEqual(out.wrote, ['create']);
  t.is(s.warnings.length, 1);
  t.regex(s.warnings[0] ?? '', /no status subresource/);
  t.deepEqual((await s.publish(spec(1), { conditions: FAILED })).wrote, []);
  t.deepEqual((await s.publish(spec(1, 2), { conditions: READY })).wrote, ['update']);
  t.is(s.api.count('status'), 1, 'never tried again');
  t.is(s.warnings.length, 1);
  t.deepEqual(s.writes, ['create:success', 'status:404', 'update:success']);
});

test('a status write that fails otherwise is thrown', async (t) => {
  const s = setup();
  s.api.failNext('status', apiError(403, 'Forbidden'));
  t.is((await t.throwsAsync(s.publish(spec(1))) as { code?: number }).code, 403);
  t.deepEqual((await s.publish(spec(1))).wrote, ['status'], 'the create went through; the next call only writes the status');
});

test('an informer copy older than our last write is not trusted', async (t) => {
  const s = setup({ jitterMs: 0 });
  await s.publish(spec(1));
  const stale = s.informer();
  await s.publish(spec(2), { cached: stale, conditions: FAILED });
  t.is(s.api.count('read'), 0, 'the stale copy did not cause a conflict');
  t.deepEqual(s.writes.filter((w) => !w.endsWith('success')), []);
  t.is(s.publisher.publishedSpi(stale), 2, 'the SPI we wrote, not the stale copy\'s');
  // A newer copy written by someone else is trusted.
  s.api.touch();
  const newer = s.informer();
  t.deepEqual((await s.publish(spec(2), { cached: newer, conditions: READY })).wrote, ['status']);
  t.is(s.api.count('read'), 0);
});

test('an informer one write behind never costs a write, however many writes were made', async (t) => {
  const s = setup();
  await s.publish(spec(1));
  // Conditions flip every call, so the copy one write behind holds exactly what is wanted next:
  // trusted, it would make the publisher skip a write the API does not have.
  let behind = s.informer();
  for (let i = 0; i < 150; i++) {
    const wanted = i % 2 === 0 ? FAILED : READY;
    const now = s.informer();
    const out = await s.publish(spec(1), { cached: behind, conditions: wanted });
    t.deepEqual(out.wrote, ['status'], `write ${i}`);
    t.deepEqual(s.api.object?.status?.conditions, wanted, `write ${i}`);
    behind = now;
  }
  t.is(s.api.count('read'), 0, 'no conflict either');
});

test('publishedSpi is 0 before anything was published or when the spec has no integer SPI', (t) => {
  const s = setup();
  t.is(s.publisher.publishedSpi(undefined), 0);
  const odd = { apiVersion: KNI_API_VERSION, kind: KNI_KIND, metadata: { name: NODE, resourceVersion: '5' }, spec: { spi: '3' } };
  t.is(s.publisher.publishedSpi(odd), 0);
  t.is(s.publisher.publishedSpi({ ...odd, metadata: { name: NODE, resourceVersion: '6' }, spec: { spi: 1.5 } }), 0);
  t.is(s.publisher.publishedSpi({ ...odd, metadata: { name: NODE, resourceVersion: '7' }, spec: { spi: 4 } }), 4);
  t.is(s.publisher.publishedSpi({ ...odd, metadata: { name: NODE } }), 4, 'a copy without resourceVersion is not adopted');
});
