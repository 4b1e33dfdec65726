/**
 * KmeshNodeInfo admission over HTTPS: who may write which node's object, what it may claim,
 * and the validity stamp (written by mutation, checked by validation and by node plugins with
 * verifyStamp). Patches are applied with fast-json-patch.
 */
import test from 'ava';
import jsonpatch from 'fast-json-patch';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type StampSigningKey, importStampSigningKey, signStamp, verifyStamp } from '../../core/stamp.js';
import { StaticClusterView } from '../../webhook/cluster-view.js';
import { identityPolicy } from '../../webhook/identity.js';
import {
  ADMIN,
  NODE_A,
  NODE_B,
  NODE_C,
  type ReviewInput,
  type TestWebhook,
  advertised,
  decodePatch,
  kni,
  kniReview,
  kniSpec,
  makePki,
  nodeAgent,
  responseOf,
  startWebhook,
} from './helpers.js';

let hook: TestWebhook;
let signingKey: StampSigningKey;
const pki = makePki();
const NOW = (): number => Math.floor(Date.now() / 1000);

test.before(async () => {
  hook = await startWebhook({ pki });
  const imported = await importStampSigningKey(JSON.parse(await readFile(join(hook.dir, 'stamp-key.jwk'), 'utf8')));
  if (!imported.ok) throw new Error('stamp key');
  signingKey = imported.value;
});
test.after.always(async () => {
  await hook.close();
});

type Obj = Record<string, unknown>;

async function mutate(input: ReviewInput, target = hook) {
  const response = responseOf(await target.post('/mutate', kniReview(input)));
  const ops = decodePatch(response);
  const object = jsonpatch.applyPatch(structuredClone(input.object), ops as jsonpatch.Operation[], true, false).newDocument as Obj;
  return { response, ops, object };
}

async function validate(input: ReviewInput, target = hook) {
  return responseOf(await target.post('/validate', kniReview(input)));
}

/** Mutate then validate, as the API server does. */
async function admit(input: ReviewInput, target = hook) {
  const m = await mutate(input, target);
  const v = await validate({ ...input, object: m.object }, target);
  return { mutated: m, validated: v };
}

const stampOf = (o: Obj): string | undefined => (o.metadata as { annotations?: Record<string, string> }).annotations?.['kmesh.net/validity'];

test('a node plugin publishes its own KmeshNodeInfo: stamped, admitted, verifiable by peers', async (t) => {
  const input = { object: kni('node-a', kniSpec(NODE_A, 2)), user: nodeAgent('node-a') };
  const { mutated, validated } = await admit(input);
  t.true(mutated.response.allowed);
  t.deepEqual(mutated.ops.map((o) => [o.op, o.path]), [['add', '/metadata/annotations']]);
  t.true(validated.allowed, validated.status?.message);

  // What a peer's node plugin does with the stored object and the published JWKS.
  const ring = hook.running.stamps.current()?.ring;
  if (!ring) return t.fail('no ring');
  const v = await verifyStamp(stampOf(mutated.object), { nodeName: 'node-a', spec: kniSpec(NODE_A, 2) }, ring);
  t.true(v.ok);
  if (v.ok) {
    t.is(v.claims.sub, 'node-a');
    t.is(v.claims.spi, 2);
    t.is(v.claims.exp - v.claims.iat, 24 * 3600);
    t.true(Math.abs(v.claims.iat - NOW()) < 5);
  }
});

test('existing annotations are kept; only the stamp is added', async (t) => {
  const input = { object: kni('node-a', kniSpec(NODE_A), { team: 'net' }), user: nodeAgent('node-a') };
  const { mutated } = await admit(input);
  t.deepEqual(mutated.ops.map((o) => [o.op, o.path]), [['add', '/metadata/annotations/kmesh.net~1validity']]);
  t.is((mutated.object.metadata as { annotations: Record<string, string> }).annotations.team, 'net');
});

test('reinvocation: a freshly stamped object is left alone', async (t) => {
  const input = { object: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a') };
  const first = await mutate(input);
  const second = await mutate({ ...input, object: first.object });
  t.is(second.response.patch, undefined);
  t.true(second.response.allowed);
});

test('an update that changes the spec gets a new stamp', async (t) => {
  const first = await mutate({ object: kni('node-a', kniSpec(NODE_A, 1)), user: nodeAgent('node-a') });
  const changed = structuredClone(first.object);
  (changed.spec as { spi: number }).spi = 2;
  const { mutated, validated } = await admit({ operation: 'UPDATE', object: changed, oldObject: first.object, user: nodeAgent('node-a') });
  t.deepEqual(mutated.ops.map((o) => o.path), ['/metadata/annotations/kmesh.net~1validity']);
  t.not(stampOf(mutated.object), stampOf(first.object));
  t.true(validated.allowed, validated.status?.message);
});

test('past half its life, any write renews the stamp (how plugins keep it fresh)', async (t) => {
  const old = await signStamp({ nodeName: 'node-a', spec: kniSpec(NODE_A) }, signingKey, { now: NOW() - 13 * 3600 });
  const young = await signStamp({ nodeName: 'node-a', spec: kniSpec(NODE_A) }, signingKey, { now: NOW() - 11 * 3600 });
  const renewed = await mutate({ operation: 'UPDATE', object: kni('node-a', kniSpec(NODE_A), { 'kmesh.net/validity': old }), oldObject: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a') });
  t.is(renewed.ops.length, 1);
  t.not(stampOf(renewed.object), old);
  const kept = await mutate({ operation: 'UPDATE', object: kni('node-a', kniSpec(NODE_A), { 'kmesh.net/validity': young }), oldObject: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a') });
  t.is(kept.response.patch, undefined);
});

test('validation refuses a stamp that no longer matches the object', async (t) => {
  const { object } = await mutate({ object: kni('node-a', kniSpec(NODE_A, 1)), user: nodeAgent('node-a') });
  const tampered = structuredClone(object);
  (tampered.spec as { spi: number }).spi = 9;
  const v = await validate({ object: tampered, user: nodeAgent('node-a') });
  t.false(v.allowed);
  t.is(v.status?.code, 403);
  t.regex(v.status?.message ?? '', /kmesh\.net\/validity"\]: was issued for a different spec.*mutating webhook kmeshnodeinfos\.ipsec\.kmesh\.net/);
});

test('validation refuses an expired stamp, another node\'s stamp and a stamp by an unknown key', async (t) => {
  const spec = kniSpec(NODE_A);
  const expired = await signStamp({ nodeName: 'node-a', spec }, signingKey, { now: NOW() - 25 * 3600 });
  const forB = await signStamp({ nodeName: 'node-b', spec }, signingKey, { now: NOW() });
  const stranger = await signStamp({ nodeName: 'node-a', spec }, { ...signingKey, kid: 'someone-else' }, { now: NOW() });
  for (const [token, pattern] of [[expired, /expired at/], [forB, /issued for node "node-b", not "node-a"/], [stranger, /key someone-else, which is not in the trusted JWKS/]] as const) {
    const v = await validate({ object: kni('node-a', spec, { 'kmesh.net/validity': token }), user: nodeAgent('node-a') });
    t.false(v.allowed);
    t.regex(v.status?.message ?? '', pattern);
  }
});

test('mutation replaces a stamp it cannot verify', async (t) => {
  const { object, ops } = await mutate({ object: kni('node-a', kniSpec(NODE_A), { 'kmesh.net/validity': 'forged.forged.forged' }), user: nodeAgent('node-a') });
  t.is(ops.length, 1);
  t.not(stampOf(object), 'forged.forged.forged');
});

// ---- who may write -----------------------------------------------------------------------------

const identityRows: { name: string; user: ReviewInput['user']; node: string; allowed: boolean; message?: RegExp; warning?: RegExp }[] = [
  { name: 'own node, node-bound token', user: nodeAgent('node-b'), node: 'node-b', allowed: true },
  { name: "Kmesh daemon's service account, own node", user: { username: 'system:serviceaccount:kmesh-system:kmesh', extra: { 'authentication.kubernetes.io/node-name': ['node-b'] } }, node: 'node-b', allowed: true },
  { name: 'another node', user: nodeAgent('node-a'), node: 'node-b', allowed: false, message: /is on node node-a \(by its token\) and may write only KmeshNodeInfo node-a/ },
  { name: 'mapped user, its node', user: { username: 'mapped-user' }, node: 'node-b', allowed: true },
  { name: 'mapped user, another node', user: { username: 'mapped-user' }, node: 'node-a', allowed: false, message: /mapped-user is on node node-b \(by the configured user mapping\)/ },
  { name: 'privileged group', user: ADMIN, node: 'node-b', allowed: true, warning: /written by privileged group system:masters, not by the node's plugin/ },
  { name: 'node-name extra on a non-agent account', user: { username: 'system:serviceaccount:default:default', extra: { 'authentication.kubernetes.io/node-name': ['node-b'] } }, node: 'node-b', allowed: false, message: /system:serviceaccount:default:default is not a node plugin service account/ },
  { name: 'the kubelet itself', user: { username: 'system:node:node-b', groups: ['system:nodes'] }, node: 'node-b', allowed: false, message: /not a node plugin service account/ },
  { name: 'anonymous', user: { username: 'system:anonymous', groups: ['system:unauthenticated'] }, node: 'node-b', allowed: false },
];

for (const row of identityRows) {
  test(`writer ${row.allowed ? 'allowed' : 'denied'}: ${row.name}`, async (t) => {
    const facts = row.node === 'node-a' ? NODE_A : NODE_B;
    const { mutated, validated } = await admit({ object: kni(row.node, kniSpec(facts)), user: row.user });
    t.is(validated.allowed, row.allowed, validated.status?.message);
    // Never a stamp for a writer validation refuses.
    t.is(mutated.response.patch !== undefined, row.allowed);
    if (row.message) t.regex(validated.status?.message ?? '', row.message);
    if (!row.allowed) t.is(validated.status?.code, 403);
    if (row.warning) t.regex((validated.warnings ?? []).join('\n'), row.warning);
  });
}

test('DELETE: own node and admins yes, other nodes no', async (t) => {
  const old = kni('node-b', kniSpec(NODE_B));
  t.true((await validate({ operation: 'DELETE', oldObject: old, user: nodeAgent('node-b') })).allowed);
  t.true((await validate({ operation: 'DELETE', oldObject: old, user: ADMIN })).allowed);
  const denied = await validate({ operation: 'DELETE', oldObject: old, user: nodeAgent('node-c') });
  t.false(denied.allowed);
  t.regex(denied.status?.message ?? '', /^KmeshNodeInfo kmesh-system\/node-b: metadata\.name: .* may write only KmeshNodeInfo node-c$/);
  const m = responseOf(await hook.post('/mutate', kniReview({ operation: 'DELETE', oldObject: old, user: nodeAgent('node-b') })));
  t.is(m.patch, undefined);
});

test('DELETE by the garbage collector (the Node is gone) and the namespace controller: allowed; they may write nothing', async (t) => {
  const old = kni('node-b', kniSpec(NODE_B));
  for (const username of ['system:serviceaccount:kube-system:generic-garbage-collector', 'system:serviceaccount:kube-system:namespace-controller']) {
    const user = { username, groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] };
    t.true((await validate({ operation: 'DELETE', oldObject: old, user })).allowed, `${username} deletes`);
    const write = await validate({ operation: 'UPDATE', object: old, oldObject: old, user });
    t.false(write.allowed, `${username} may not write`);
  }
});

test('status subresource: identity still applies, nothing is stamped', async (t) => {
  const object = kni('node-b', kniSpec(NODE_B));
  const own = await admit({ operation: 'UPDATE', subResource: 'status', object, oldObject: object, user: nodeAgent('node-b') });
  t.true(own.validated.allowed);
  t.is(own.mutated.response.patch, undefined);
  const other = await validate({ operation: 'UPDATE', subResource: 'status', object, oldObject: object, user: nodeAgent('node-a') });
  t.false(other.allowed);
});

// ---- what may be claimed ---------------------------------------------------------------------

test('IPv6 addresses compare by value, not text', async (t) => {
  const spec = { ...kniSpec(NODE_B), addresses: ['10.0.0.2', 'fd00:0:0:0:0:0:0:2'] };
  const { validated } = await admit({ object: kni('node-b', spec), user: nodeAgent('node-b') });
  t.true(validated.allowed, validated.status?.message);
});

test('a subset of the node\'s addresses and a sub-range of its pod CIDR are fine', async (t) => {
  const spec = { ...kniSpec(NODE_B), addresses: ['fd00::2'], podCIDRS: ['10.244.2.128/25'] };
  const { validated } = await admit({ object: kni('node-b', spec), user: nodeAgent('node-b') });
  t.true(validated.allowed, validated.status?.message);
});

test('claims already advertised by another KmeshNodeInfo are refused, even if the Node agrees', async (t) => {
  // node-d's Node says it has 10.0.0.3 (say the IP moved), but node-c still advertises it.
  hook.view.setNode({ name: 'node-d', internalIPs: ['10.0.0.3', '10.0.0.4'], podCIDRs: ['10.244.3.0/24', '10.244.4.0/24'] });
  const spec = { spi: 1, addresses: ['10.0.0.4', '10.0.0.3'], bootID: '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b', podCIDRS: ['10.244.4.0/24', '10.244.3.128/25'] };
  const v = await validate({ object: kni('node-d', spec), user: nodeAgent('node-d') });
  t.false(v.allowed);
  t.regex(v.status?.message ?? '', /spec\.addresses\[1\]: 10\.0\.0\.3 is already advertised by KmeshNodeInfo node-c; spec\.podCIDRS\[1\]: 10\.244\.3\.128\/25 overlaps 10\.244\.3\.0\/24 advertised by KmeshNodeInfo node-c/);
});

test('a KmeshNodeInfo for a node that does not exist is refused', async (t) => {
  const v = await validate({ object: kni('ghost', kniSpec(NODE_C)), user: ADMIN });
  t.false(v.allowed);
  t.regex(v.status?.message ?? '', /there is no Node "ghost"/);
});

test('while the cluster view is not synced: no stamp, and validation fails closed with 503', async (t) => {
  const view = new StaticClusterView({ synced: false, nodes: [NODE_A] });
  const cold = await startWebhook({ pki, view });
  try {
    const input = { object: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a') };
    const { mutated, validated } = await admit(input, cold);
    t.true(mutated.response.allowed);
    t.is(mutated.response.patch, undefined);
    t.false(validated.allowed);
    t.is(validated.status?.code, 503);
    t.is(validated.status?.reason, 'ServiceUnavailable');
    t.regex(validated.status?.message ?? '', /cannot be checked against the cluster yet .*retry in a few seconds/);
    view.setNodeInfos([advertised('node-c', 3)]);
    t.true((await admit(input, cold)).validated.allowed);
  } finally {
    await cold.close();
  }
});

test('--no-node-facts: only peers are compared, not the Node object', async (t) => {
  const lax = await startWebhook({ pki, checkNodeFacts: false, identity: identityPolicy() });
  try {
    const spec = { ...kniSpec(NODE_A), addresses: ['10.9.9.9'] };
    const { validated } = await admit({ object: kni('node-a', spec), user: nodeAgent('node-a') }, lax);
    t.true(validated.allowed, validated.status?.message);
    const clash = await validate({ object: kni('node-a', { ...spec, addresses: ['10.0.0.3'] }), user: nodeAgent('node-a') }, lax);
    t.false(clash.allowed);
  } finally {
    await lax.close();
  }
});

test('dryRun is stamped like a real request (no side effects to skip)', async (t) => {
  const { mutated, validated } = await admit({ object: kni('node-a', kniSpec(NODE_A)), user: nodeAgent('node-a'), dryRun: true });
  t.is(mutated.ops.length, 1);
  t.true(validated.allowed);
});
