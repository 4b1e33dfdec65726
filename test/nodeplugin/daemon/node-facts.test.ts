/**
 * ownNodeFrom: this node's facts from its Node object, with the boot ID cross-check.
 */
import test from 'ava';
import type { V1Node } from '@kubernetes/client-node';
import { formatErrors } from '../../../core/result.js';
import { ownNodeFrom } from '../../../nodeplugin/daemon/node-facts.js';

const BOOT = '5b3c8a62-1f0e-4a8e-9d2b-7c6f4e3a2b10';
const FILE = '/proc/sys/kernel/random/boot_id';

const nodeObject = (overrides: { uid?: string | null; addresses?: { type: string; address: string }[]; bootID?: string; podCIDRs?: string[] } = {}): V1Node => ({
  metadata: { name: 'node-1', ...(overrides.uid === null ? {} : { uid: overrides.uid ?? 'uid-1' }) },
  spec: { podCIDRs: overrides.podCIDRs ?? ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
  status: {
    addresses: overrides.addresses ?? [
      { type: 'Hostname', address: 'node-1' },
      { type: 'InternalIP', address: '192.168.0.1' },
      { type: 'ExternalIP', address: '203.0.113.1' },
      { type: 'InternalIP', address: 'fd00:0:0:0::1' },
    ],
    nodeInfo: { bootID: overrides.bootID ?? BOOT } as V1Node['status'] extends infer S ? S extends { nodeInfo?: infer N } ? N : never : never,
  },
});

function errors(r: ReturnType<typeof ownNodeFrom>): string {
  if (r.ok) throw new Error('expected a failure');
  return formatErrors(r.errors);
}

test('the facts: uid, InternalIPs in Node order (canonical), pod CIDRs, the boot ID as the kubelet reports it', (t) => {
  const upper = BOOT.toUpperCase();
  const r = ownNodeFrom('node-1', nodeObject({ bootID: upper }), `${BOOT}\n`, FILE);
  if (!r.ok) return t.fail(formatErrors(r.errors));
  t.deepEqual(r.value, {
    uid: 'uid-1',
    local: { name: 'node-1', addresses: ['192.168.0.1', 'fd00::1'], bootID: upper, podCIDRS: ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
  });
  // The kernel's file in upper case (or with spaces) is the same boot.
  t.true(ownNodeFrom('node-1', nodeObject(), ` ${upper} `, FILE).ok);
});

test('a missing Node says so and points at --node-name', (t) => {
  t.is(errors(ownNodeFrom('node-9', undefined, BOOT, FILE)), 'Node node-9: does not exist (is --node-name right? it defaults to $NODE_NAME)');
});

test('a Node without uid or name is refused', (t) => {
  t.regex(errors(ownNodeFrom('node-1', nodeObject({ uid: null }), BOOT, FILE)), /^Node node-1: has no metadata\.name or metadata\.uid$/);
  t.regex(errors(ownNodeFrom('node-1', { metadata: { uid: 'u' } }, BOOT, FILE)), /has no metadata\.name or metadata\.uid/);
});

test('no InternalIP yet: the field and why', (t) => {
  const msg = errors(ownNodeFrom('node-1', nodeObject({ addresses: [{ type: 'Hostname', address: 'node-1' }] }), BOOT, FILE));
  t.is(msg, 'Node node-1 status.addresses: has no InternalIP address; the kubelet reports them once it runs');
});

test('a boot ID mismatch says which value came from where', (t) => {
  const kernel = '0f1e2d3c-4b5a-4968-8776-655443322110';
  const msg = errors(ownNodeFrom('node-1', nodeObject(), kernel, FILE));
  t.is(msg, `Node node-1 status.nodeInfo.bootID: is "${BOOT}" but this kernel's boot ID (${FILE}) is ${kernel}: the kubelet has not reported this boot yet, or --node-name names another node`);
  t.regex(errors(ownNodeFrom('node-1', nodeObject({ bootID: '' }), kernel, FILE)), /bootID: is "" but/);
});

test('a boot ID file that is not a UUID is named with its length, not its content', (t) => {
  const msg = errors(ownNodeFrom('node-1', nodeObject(), 'not-a-uuid\n', '/tmp/boot_id'));
  t.is(msg, "/tmp/boot_id: must hold the kernel's boot ID (a 36-character UUID), got 10 characters");
});

test('a Node without status has neither addresses nor a reported boot ID', (t) => {
  const r = ownNodeFrom('node-1', { metadata: { name: 'node-1', uid: 'u' } }, BOOT, FILE);
  if (r.ok) return t.fail('accepted');
  t.deepEqual(r.errors.map((e) => e.field), ['Node node-1 status.addresses', 'Node node-1 status.nodeInfo.bootID']);
  t.regex(r.errors[1]?.message ?? '', /^is "" but/);
});

test('every problem at once', (t) => {
  const r = ownNodeFrom('node-1', nodeObject({ addresses: [] }), 'x', FILE);
  t.false(r.ok);
  if (!r.ok) t.deepEqual(r.errors.map((e) => e.field), ['Node node-1 status.addresses', FILE]);
});
