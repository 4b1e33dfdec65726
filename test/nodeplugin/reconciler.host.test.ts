/**
 * The reconciler against the host's real kernel: xfrm policies over netlink and the pinned BPF
 * maps, inside a throw-away network namespace. The plans here carry policies and map entries
 * only, and a failed SA install is injected through the worker's xfrm port, so the suite means
 * the same whether this kernel has ESP or not; real SAs are covered by the VM suite (test/vm).
 */
import '../helpers/require-root.js';
import anyTest from 'ava';
import type { TestFn } from 'ava';
import { type PeerNode, type Plan, plan } from '../../core/plan.js';
import type { IpsecKey } from '../../core/secret.js';
import { mountBpffs, type Bpffs } from '../bpf/helpers.js';
import { runCommand } from '../../nodeplugin/command.js';
import { NetnsWorker, createVethPair, useNetns, type Netns } from '../helpers/netns.js';
import type { NodeWorkerApi } from '../vm/node-worker.js';

interface Ctx { ns: Netns; bpffs: Bpffs; pinDir: string }
/** The current plugin process (replaced by the restart step; ava copies t.context per test). */
let agent: NetnsWorker<NodeWorkerApi>;
const test = anyTest as TestFn<Ctx>;
const netns = useNetns(anyTest);
const WORKER = new URL('../vm/node-worker.js', import.meta.url);

const K1: IpsecKey = { spi: 1, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: Uint8Array.from({ length: 36 }, (_, i) => 200 - i), icvBits: 128 };
const boot = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const peer = (n: number): PeerNode => ({ name: `node${n}`, spec: { spi: 1, addresses: [`192.168.0.${n}`], bootID: boot(n), podCIDRS: [`10.244.${n}.0/24`] } });
/** The plan node1 would compute, without SAs (the kernel may lack ESP). */
const policyPlan = (peers: PeerNode[], keys = new Map([[1, K1]])): Plan => {
  const p = plan({ local: { name: 'node1', addresses: ['192.168.0.1'], bootID: boot(1), podCIDRS: ['10.244.1.0/24'] }, peers, keys, inboundSpis: [1], peerIds: new Map() });
  return { ...p, states: [] };
};

test.before(async (t) => {
  const ns = await netns.create('rec');
  await createVethPair({ ns, name: 'eth0', addresses: ['192.168.0.1/24'] }, { ns, name: 'vpod', addresses: ['10.244.1.1/24'] });
  const bpffs = await mountBpffs();
  const pinDir = `${bpffs.dir}/node1`;
  agent = await NetnsWorker.start<NodeWorkerApi>(ns, WORKER);
  await agent.call('setup', pinDir, ['vpod'], ['eth0']);
  t.context = { ns, bpffs, pinDir };
});
test.after.always(async (t) => {
  await agent.close();
  await t.context.bpffs.cleanup();
});

const ourPolicies = async (ns: Netns) => (await ns.exec(['ip', 'xfrm', 'policy', 'list'])).stdout.split(/\n(?=src )/).filter((b) => b.includes('reqid 27501 ')).map((b) => b.trim());
const lpmEntries = async (pinDir: string) => JSON.parse((await runCommand(['bpftool', '-j', 'map', 'dump', 'pinned', `${pinDir}/kmi_peer_cidrs`])).stdout) as unknown[];

test.serial('install, repeat (no change), restart (adopted, no change), peer leaves, key gone; foreign policy untouched', async (t) => {
  const { ns, pinDir } = t.context;
  await ns.exec(['ip', 'xfrm', 'policy', 'add', 'src', '0.0.0.0/0', 'dst', '10.99.0.0/16', 'dir', 'out', 'mark', '0xe0', 'mask', '0xffffffff',
    'tmpl', 'src', '192.168.0.1', 'dst', '192.168.0.9', 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel']);

  const three = policyPlan([peer(1), peer(2), peer(3)]);
  const first = await agent.call('reconcilePlan', three);
  t.deepEqual([first.installed, first.removed, first.errors], [4, 0, []]);
  const shown = await ourPolicies(ns);
  t.is(shown.length, 4);
  t.true(shown.some((p) => /dst 10\.244\.2\.0\/24[\s\S]*dir out[\s\S]*mark 0xe0\/0xffffffff[\s\S]*tmpl src 192\.168\.0\.1 dst 192\.168\.0\.2[\s\S]*spi 0x00000001 reqid 27501 mode tunnel/.test(p)));
  t.true(shown.some((p) => /dst 10\.244\.1\.0\/24[\s\S]*dir fwd[\s\S]*mark 0xd0\/0xffffffff[\s\S]*tmpl src 0\.0\.0\.0 dst 192\.168\.0\.1/.test(p)));
  t.is((await lpmEntries(pinDir)).length, 2, 'both peer pod CIDRs in the LPM map');

  const again = await agent.call('reconcilePlan', three);
  t.deepEqual([again.installed, again.removed, again.unchanged], [0, 0, 4], 'idempotent');

  await agent.close();
  agent = await NetnsWorker.start<NodeWorkerApi>(ns, WORKER);
  await agent.call('setup', pinDir, ['vpod'], ['eth0']);
  const adopted = await agent.call('reconcilePlan', three);
  t.deepEqual([adopted.installed, adopted.removed, adopted.unchanged], [0, 0, 4], 'a new process adopts what the kernel holds');

  const left = await agent.call('reconcilePlan', policyPlan([peer(1), peer(2)]));
  t.deepEqual([left.installed, left.removed], [0, 1], 'only the departed peer\'s out policy goes');
  t.false((await ourPolicies(ns)).some((p) => p.includes('10.244.3.0/24')));
  t.is((await lpmEntries(pinDir)).length, 1);

  const none = await agent.call('reconcilePlan', policyPlan([], new Map()));
  t.is(none.removed, 3, 'no key left: the in/fwd policies and the last out policy go');
  t.deepEqual(await ourPolicies(ns), []);
  t.is((await lpmEntries(pinDir)).length, 0);
  t.regex((await ns.exec(['ip', 'xfrm', 'policy', 'list', 'dst', '10.99.0.0/16'])).stdout, /reqid 1 /, 'the foreign policy is still there');
});

test.serial('an SA the kernel refuses is reported, and nothing is removed that round', async (t) => {
  const { ns } = t.context;
  await agent.call('reconcilePlan', policyPlan([peer(1), peer(2)]));
  // node2 left (its out policy is stale) while SAs are to be added and the kernel refuses
  // every SA add: the stale policy must survive the round.
  await agent.call('refuseStateAdds', true);
  t.teardown(() => agent.call('refuseStateAdds', false));
  const withSas = plan({ local: { name: 'node1', addresses: ['192.168.0.1'], bootID: boot(1), podCIDRS: ['10.244.1.0/24'] }, peers: [peer(3)], keys: new Map([[1, K1]]), inboundSpis: [1], peerIds: new Map() });
  const withBadSa = { ...policyPlan([peer(1)]), states: withSas.states };
  const r = await agent.call('reconcilePlan', withBadSa);
  t.is(r.errors.length, withSas.states.length, r.errors.join('\n'));
  t.true(r.errors.every((e) => e.startsWith('addState: injected refusal')), r.errors.join('\n'));
  t.true(r.removalsDeferred, 'the stale out policy for node2 stays until the next good round');
  t.true((await ourPolicies(ns)).some((p) => p.includes('10.244.2.0/24')));
  t.is((await ns.exec(['ip', 'xfrm', 'state', 'list'])).stdout.trim(), '', 'no SA reached the kernel');
});
