/**
 * Managed pods and the tc attachment diff, against a fake TcPort that holds filters as the
 * kernel does (one per interface and program, attach replaces) and logs every call, so "zero
 * kernel writes in steady state" is a count.
 */
import test from 'ava';
import type { V1Pod } from '@kubernetes/client-node';
import type { ProgramKind } from '../../../nodeplugin/bpf/layout.js';
import { Attachments, DATAPLANE_MODE_LABEL, type ManagedPod, type TcPort, managedPods } from '../../../nodeplugin/daemon/attachments.js';
import type { PodLink } from '../../../nodeplugin/daemon/host-links.js';

class FakeTc implements TcPort {
  readonly filters = new Map<string, { ifname: string; program: ProgramKind; progId: number }>();
  readonly ids: Record<ProgramKind, number> = { pod: 10, node: 20 };
  readonly routes = new Map<string, PodLink>();
  readonly calls: string[] = [];

  attach(ifname: string, program: ProgramKind): Promise<void> {
    this.calls.push(`attach ${program} ${ifname}`);
    this.filters.set(`${program}|${ifname}`, { ifname, program, progId: this.ids[program] });
    return Promise.resolve();
  }
  detach(ifname: string, program: ProgramKind): Promise<boolean> {
    this.calls.push(`detach ${program} ${ifname}`);
    return Promise.resolve(this.filters.delete(`${program}|${ifname}`));
  }
  list() {
    this.calls.push('list');
    return Promise.resolve([...this.filters.values()]);
  }
  programId(program: ProgramKind): Promise<number> {
    return Promise.resolve(this.ids[program]);
  }
  podInterface(ip: string): Promise<PodLink> {
    this.calls.push(`lookup ${ip}`);
    return Promise.resolve(this.routes.get(ip) ?? { ok: false, reason: `no host route to ${ip}` });
  }
  /** Calls that change the kernel. */
  writes(): string[] {
    return this.calls.filter((c) => c.startsWith('attach') || c.startsWith('detach'));
  }
  clear(): void {
    this.calls.length = 0;
  }
  seed(ifname: string, program: ProgramKind, progId: number): void {
    this.filters.set(`${program}|${ifname}`, { ifname, program, progId });
  }
}

const pod = (ns: string, name: string, opts: { labels?: Record<string, string>; hostNetwork?: boolean; phase?: string; podIPs?: { ip?: string }[]; podIP?: string; uid?: string } = {}): V1Pod => ({
  metadata: { namespace: ns, name, uid: opts.uid ?? `uid-${name}`, ...(opts.labels ? { labels: opts.labels } : {}) },
  spec: { containers: [], ...(opts.hostNetwork === undefined ? {} : { hostNetwork: opts.hostNetwork }) },
  status: { phase: opts.phase ?? 'Running', ...(opts.podIPs ? { podIPs: opts.podIPs as { ip: string }[] } : {}), ...(opts.podIP ? { podIP: opts.podIP } : {}) },
});

const NAMESPACES: Record<string, Record<string, string>> = {
  mesh: { [DATAPLANE_MODE_LABEL]: 'Kmesh' },
  plain: { team: 'a' },
  other: { [DATAPLANE_MODE_LABEL]: 'ambient' },
};
const nsLabels = (ns: string) => NAMESPACES[ns];

test('managedPods: the namespace label enrols, the pod label overrides it either way', (t) => {
  const pods = [
    pod('mesh', 'a', { podIPs: [{ ip: '10.244.1.2' }] }),
    pod('mesh', 'opted-out', { labels: { [DATAPLANE_MODE_LABEL]: 'none' }, podIPs: [{ ip: '10.244.1.3' }] }),
    pod('plain', 'opted-in', { labels: { [DATAPLANE_MODE_LABEL]: 'Kmesh' }, podIPs: [{ ip: '10.244.1.4' }] }),
    pod('plain', 'b', { podIPs: [{ ip: '10.244.1.5' }] }),
    pod('other', 'c', { podIPs: [{ ip: '10.244.1.6' }] }),
    pod('unknown-ns', 'd', { podIPs: [{ ip: '10.244.1.7' }] }),
    pod('mesh', 'lowercase', { labels: { [DATAPLANE_MODE_LABEL]: 'kmesh' }, podIPs: [{ ip: '10.244.1.8' }] }),
  ];
  t.deepEqual(managedPods(pods, nsLabels).map((p) => p.key), ['mesh/a', 'plain/opted-in']);
});

test('managedPods: host-network and non-running pods are never managed', (t) => {
  const pods = [
    pod('mesh', 'host', { hostNetwork: true, podIPs: [{ ip: '192.168.0.1' }] }),
    pod('mesh', 'not-host', { hostNetwork: false, podIPs: [{ ip: '10.244.1.9' }] }),
    ...['Pending', 'Succeeded', 'Failed', 'Unknown'].map((phase) => pod('mesh', phase, { phase, podIPs: [{ ip: '10.244.1.10' }] })),
    { metadata: { namespace: 'mesh', name: 'no-status' }, spec: { containers: [] } },
  ];
  t.deepEqual(managedPods(pods, nsLabels).map((p) => p.key), ['mesh/not-host']);
});

test('managedPods: IPs from podIPs, else podIP; pods without an IP are left out; sorted by key', (t) => {
  const pods = [
    pod('mesh', 'z-dual', { podIPs: [{ ip: '10.244.1.2' }, { ip: 'fd00:10:244:1::2' }], podIP: '10.244.1.2' }),
    pod('mesh', 'm-legacy', { podIP: '10.244.1.3' }),
    pod('mesh', 'n-empty-entries', { podIPs: [{}, { ip: '' }], podIP: '10.244.1.4' }),
    pod('mesh', 'b-none', {}),
    pod('mesh', 'c-empty', { podIPs: [] }),
  ];
  const managed: ManagedPod[] = managedPods(pods, nsLabels);
  t.deepEqual(managed, [
    { key: 'mesh/m-legacy', uid: 'uid-m-legacy', ips: ['10.244.1.3'] },
    { key: 'mesh/n-empty-entries', uid: 'uid-n-empty-entries', ips: ['10.244.1.4'] },
    { key: 'mesh/z-dual', uid: 'uid-z-dual', ips: ['10.244.1.2', 'fd00:10:244:1::2'] },
  ]);
  // Missing metadata: an empty key part and uid, never a throw.
  const bare: V1Pod = { metadata: { labels: { [DATAPLANE_MODE_LABEL]: 'Kmesh' } }, status: { phase: 'Running', podIP: '10.244.1.5' } };
  t.deepEqual(managedPods([bare], nsLabels), [{ key: '/', uid: '', ips: ['10.244.1.5'] }]);
  const noMetadata: V1Pod = { status: { phase: 'Running', podIP: '10.244.1.6' } };
  t.deepEqual(managedPods([noMetadata], () => ({ [DATAPLANE_MODE_LABEL]: 'Kmesh' })), [{ key: '/', uid: '', ips: ['10.244.1.6'] }]);
});

const managed = (name: string, ...ips: string[]): ManagedPod => ({ key: `mesh/${name}`, uid: `uid-${name}`, ips });

function cluster() {
  const tc = new FakeTc();
  tc.routes.set('10.244.1.2', { ok: true, ifname: 'veth-a' });
  tc.routes.set('fd00:10:244:1::2', { ok: true, ifname: 'veth-a' });
  tc.routes.set('10.244.1.3', { ok: true, ifname: 'veth-b' });
  tc.routes.set('10.244.1.9', { ok: true, ifname: 'eth0' });
  return { tc, attachments: new Attachments(tc) };
}

test('first reconcile attaches the pod program to each pod veth and the node program to each node interface', async (t) => {
  const { tc, attachments } = cluster();
  const report = await attachments.reconcile([managed('b', '10.244.1.3'), managed('a', '10.244.1.2', 'fd00:10:244:1::2')], ['eth1', 'eth0'], false);
  t.deepEqual(report, { attached: 4, detached: 0, problems: [], podInterfaces: ['veth-a', 'veth-b'], nodeInterfaces: ['eth0', 'eth1'] });
  t.deepEqual(tc.writes().sort(), ['attach node eth0', 'attach node eth1', 'attach pod veth-a', 'attach pod veth-b']);
  t.is(tc.calls.filter((c) => c === 'list').length, 1, 'the kernel is read once, at adoption');
});

test('steady state: zero kernel writes and no lookups; verify re-reads and looks up again but still writes nothing', async (t) => {
  const { tc, attachments } = cluster();
  const pods = [managed('a', '10.244.1.2'), managed('b', '10.244.1.3')];
  await attachments.reconcile(pods, ['eth0'], false);
  tc.clear();
  const quiet = await attachments.reconcile(pods, ['eth0'], false);
  t.deepEqual(tc.calls, []);
  t.like(quiet, { attached: 0, detached: 0, podInterfaces: ['veth-a', 'veth-b'] });
  const verified = await attachments.reconcile(pods, ['eth0'], true);
  t.deepEqual(tc.calls.sort(), ['list', 'lookup 10.244.1.2', 'lookup 10.244.1.3']);
  t.like(verified, { attached: 0, detached: 0 });
});

test('pods and node interfaces that go away are detached; an already missing filter is not counted', async (t) => {
  const { tc, attachments } = cluster();
  await attachments.reconcile([managed('a', '10.244.1.2'), managed('b', '10.244.1.3')], ['eth0', 'eth1'], false);
  tc.filters.delete('node|eth1'); // the interface vanished with its filter
  tc.clear();
  const report = await attachments.reconcile([managed('a', '10.244.1.2')], ['eth0'], false);
  t.deepEqual(tc.writes().sort(), ['detach node eth1', 'detach pod veth-b']);
  t.like(report, { attached: 0, detached: 1, podInterfaces: ['veth-a'], nodeInterfaces: ['eth0'] });
  tc.clear();
  await attachments.reconcile([managed('a', '10.244.1.2')], ['eth0'], false);
  t.deepEqual(tc.calls, [], 'forgotten after the detach');
});

test('verify re-reads the kernel: a filter removed behind our back is re-attached, a stray one of ours detached', async (t) => {
  const { tc, attachments } = cluster();
  const pods = [managed('a', '10.244.1.2')];
  await attachments.reconcile(pods, ['eth0'], false);
  tc.filters.delete('pod|veth-a');
  tc.seed('veth-stale', 'pod', tc.ids.pod);
  tc.clear();
  await attachments.reconcile(pods, ['eth0'], false);
  t.deepEqual(tc.writes(), [], 'without verify the belief stands');
  const report = await attachments.reconcile(pods, ['eth0'], true);
  t.deepEqual(tc.writes().sort(), ['attach pod veth-a', 'detach pod veth-stale']);
  t.like(report, { attached: 1, detached: 1 });
});

test('a pod whose interface cannot be found, or that resolves to a node interface, is reported and not attached', async (t) => {
  const { tc, attachments } = cluster();
  const report = await attachments.reconcile([managed('a', '10.244.1.2'), managed('lost', '10.244.1.99'), managed('hostish', '10.244.1.9')], ['eth0'], false);
  t.deepEqual(report.problems, [
    { pod: 'mesh/lost', reason: 'no host route to 10.244.1.99' },
    { pod: 'mesh/hostish', reason: '10.244.1.9 is reached through node interface eth0, not a pod veth' },
  ]);
  t.deepEqual(report.podInterfaces, ['veth-a']);
  t.false(tc.writes().includes('attach pod eth0'));
  // The failed lookup is cached like a good one until the next verify.
  tc.routes.set('10.244.1.99', { ok: true, ifname: 'veth-lost' });
  tc.clear();
  t.is((await attachments.reconcile([managed('a', '10.244.1.2'), managed('lost', '10.244.1.99')], ['eth0'], false)).problems.length, 1);
  t.deepEqual(tc.calls, []);
  const verified = await attachments.reconcile([managed('a', '10.244.1.2'), managed('lost', '10.244.1.99')], ['eth0'], true);
  t.deepEqual(verified.problems, []);
  t.deepEqual(verified.podInterfaces, ['veth-a', 'veth-lost']);
});

test('lookups are per pod uid and IP: a new pod with a reused IP, or a pod that came back, is looked up again', async (t) => {
  const { tc, attachments } = cluster();
  await attachments.reconcile([managed('a', '10.244.1.2')], [], false);
  tc.clear();
  const reborn: ManagedPod = { key: 'mesh/a', uid: 'uid-a-2', ips: ['10.244.1.2'] };
  await attachments.reconcile([reborn], [], false);
  t.deepEqual(tc.calls, ['lookup 10.244.1.2']);
  tc.clear();
  await attachments.reconcile([], [], false);
  await attachments.reconcile([reborn], [], false);
  t.deepEqual(tc.calls.filter((c) => c.startsWith('lookup')), ['lookup 10.244.1.2'], 'dropped while the pod was gone');
});

test('at start-up, filters running an older program are re-attached; later verifies leave them', async (t) => {
  const { tc, attachments } = cluster();
  tc.seed('veth-a', 'pod', 7);
  tc.seed('eth0', 'node', 8);
  tc.seed('veth-b', 'pod', tc.ids.pod);
  const report = await attachments.reconcile([managed('a', '10.244.1.2'), managed('b', '10.244.1.3')], ['eth0'], false);
  t.deepEqual(tc.writes().sort(), ['attach node eth0', 'attach pod veth-a'], 'only the outdated ones, each once');
  t.is(report.attached, 2);
  t.is(tc.filters.get('pod|veth-a')?.progId, tc.ids.pod);
  // A program id that differs later (another instance loaded one) is not chased on verify.
  tc.seed('veth-b', 'pod', 99);
  tc.clear();
  const again = await attachments.reconcile([managed('a', '10.244.1.2'), managed('b', '10.244.1.3')], ['eth0'], true);
  t.deepEqual(tc.writes(), []);
  t.is(again.attached, 0);
});
