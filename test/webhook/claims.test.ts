/**
 * core/nodeinfo-claims.ts and the writer identity rules, as pure functions.
 */
import test from 'ava';
import { checkSpecAgainstNode, checkSpecAgainstPeers, cidrContains, cidrsOverlap, nodeFactsFromNode } from '../../core/nodeinfo-claims.js';
import { parseCidr } from '../../core/ip.js';
import { NODE_NAME_EXTRA, identifyWriter, identityPolicy } from '../../webhook/identity.js';

const cidr = (s: string) => {
  const c = parseCidr(s);
  if (!c) throw new Error(s);
  return c;
};

test('CIDR containment and overlap', (t) => {
  t.true(cidrContains(cidr('10.244.0.0/16'), cidr('10.244.3.0/24')));
  t.false(cidrContains(cidr('10.244.3.0/24'), cidr('10.244.0.0/16')));
  t.true(cidrContains(cidr('10.244.3.0/24'), cidr('10.244.3.0/24')));
  t.false(cidrContains(cidr('10.244.3.0/24'), cidr('10.244.4.0/24')));
  t.false(cidrContains(cidr('0.0.0.0/0'), cidr('::/0')), 'families never contain each other');
  t.true(cidrContains(cidr('fd00:10:244::/48'), cidr('fd00:10:244:1::/64')));
  t.true(cidrsOverlap(cidr('10.244.3.128/25'), cidr('10.244.3.0/24')));
  t.false(cidrsOverlap(cidr('10.244.3.0/25'), cidr('10.244.3.128/25')));
});

test('Node facts: InternalIPs and pod CIDRs, canonical; podCIDR as a fallback', (t) => {
  t.deepEqual(
    nodeFactsFromNode({ metadata: { name: 'n' }, spec: { podCIDR: '10.1.0.0/24' }, status: { addresses: [{ type: 'InternalIP', address: 'FD00:0::1' }, { type: 'ExternalIP', address: '1.2.3.4' }, { type: 'InternalIP', address: 'nonsense' }] } }),
    { name: 'n', internalIPs: ['fd00::1'], podCIDRs: ['10.1.0.0/24'] },
  );
  t.is(nodeFactsFromNode({ metadata: {} }), undefined);
  t.deepEqual(nodeFactsFromNode({ metadata: { name: 'bare' } }), { name: 'bare', internalIPs: [], podCIDRs: [] });
});

test('spec against its Node: every address and CIDR must be the node\'s own', (t) => {
  const node = { name: 'n1', internalIPs: ['10.0.0.1'], podCIDRs: ['10.244.1.0/24'] };
  const spec = { spi: 1, addresses: ['10.0.0.1', '10.0.0.9'], bootID: 'x', podCIDRS: ['10.244.1.0/25', '10.244.9.0/24'] };
  t.deepEqual(checkSpecAgainstNode(spec, node).map((e) => e.field), ['spec.addresses[1]', 'spec.podCIDRS[1]']);
  t.deepEqual(checkSpecAgainstNode(spec, { ...node, internalIPs: [], podCIDRs: [] }).map((e) => e.message), [
    '10.0.0.1 is not an InternalIP of node n1 (it has none)',
    '10.0.0.9 is not an InternalIP of node n1 (it has none)',
    '10.244.1.0/25 is not within the pod CIDRs of node n1 (it has none)',
    '10.244.9.0/24 is not within the pod CIDRs of node n1 (it has none)',
  ]);
});

test('spec against peers: its own previous object does not count', (t) => {
  const spec = { spi: 1, addresses: ['10.0.0.1'], bootID: 'x', podCIDRS: ['10.244.1.0/24'] };
  t.deepEqual(checkSpecAgainstPeers('n1', spec, [{ name: 'n1', addresses: ['10.0.0.1'], podCIDRS: ['10.244.1.0/24'] }]), []);
  t.is(checkSpecAgainstPeers('n1', spec, [{ name: 'n2', addresses: ['10.0.0.1'], podCIDRS: ['10.0.0.0/8'] }]).length, 2);
  t.deepEqual(checkSpecAgainstPeers('n1', spec, [{ name: 'n2', addresses: ['garbage'], podCIDRS: ['garbage'] }]), [], 'unreadable peer entries are ignored');
});

test('writer identity: privilege first, then mapping, then the node-bound token of an agent', (t) => {
  const policy = identityPolicy({ privilegedUsernames: ['ops'], privilegedGroups: ['admins'], userNodes: [['legacy-agent', 'n7']] });
  const bound = (username: string, nodes: string[]) => ({ username, groups: [], extra: { [NODE_NAME_EXTRA]: nodes } });
  t.is(identifyWriter({ username: 'ops', groups: [], extra: {} }, policy).kind, 'privileged');
  t.deepEqual(identifyWriter({ username: 'x', groups: ['admins'], extra: {} }, policy), { kind: 'privileged', username: 'x', via: 'group admins' });
  t.deepEqual(identifyWriter({ username: 'legacy-agent', groups: [], extra: {} }, policy), { kind: 'node', username: 'legacy-agent', node: 'n7', via: 'mapping' });
  t.deepEqual(identifyWriter(bound('system:serviceaccount:kmesh-system:kmesh', ['n1']), policy), { kind: 'node', username: 'system:serviceaccount:kmesh-system:kmesh', node: 'n1', via: 'token' });
  t.is(identifyWriter(bound('system:serviceaccount:kmesh-system:kmesh', ['']), policy).kind, 'unknown');
  t.is(identifyWriter(bound('system:serviceaccount:other:agent', ['n1']), policy).kind, 'unknown');
  const custom = identityPolicy({ agentUsernames: ['system:serviceaccount:other:agent'] });
  t.is(identifyWriter(bound('system:serviceaccount:other:agent', ['n1']), custom).kind, 'node');
  t.is(identifyWriter(bound('system:serviceaccount:kmesh-system:kmesh', ['n1']), custom).kind, 'unknown', 'the defaults are replaced, not extended');
});
