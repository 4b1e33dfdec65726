/**
 * core/nodeinfo-claims.ts and the writer identity rules, as pure functions.
 */
import test from 'ava';
import fc from 'fast-check';
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

test('checkSpecAgainstPeers (indexed) refuses exactly what comparing with every peer refuses, naming a peer that really clashes', (t) => {
  const cidrArb = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.constantFrom(8, 16, 23, 24, 25, 32)).map(([a, b, len]) => `10.${a}.${b * 64}.0/${len}`),
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom(48, 56, 64, 72)).map(([a, len]) => `fd00:10:${a}::/${len}`),
  );
  const peerArb = fc.record({ name: fc.constantFrom('n1', 'n2', 'n3', 'n4'), addresses: fc.array(fc.constantFrom('10.0.0.1', '10.0.0.2', 'fd00::1', 'bad'), { maxLength: 2 }), podCIDRS: fc.array(cidrArb, { maxLength: 3 }) });
  fc.assert(fc.property(fc.array(peerArb, { maxLength: 6 }), peerArb, (peers, self) => {
    const spec = { spi: 1, addresses: self.addresses, bootID: '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b', podCIDRS: self.podCIDRS };
    const errors = checkSpecAgainstPeers(self.name, spec, peers);
    const others = peers.filter((p) => p.name !== self.name);
    const expected = [
      ...spec.addresses.flatMap((a, i) => (a !== 'bad' && others.some((p) => p.addresses.includes(a)) ? [`spec.addresses[${i}]`] : [])),
      ...spec.podCIDRS.flatMap((c, i) => (others.some((p) => p.podCIDRS.some((o) => cidrsOverlap(cidr(o), cidr(c)))) ? [`spec.podCIDRS[${i}]`] : [])),
    ];
    t.deepEqual(errors.map((e) => e.field), expected);
    for (const e of errors) {
      const named = /KmeshNodeInfo (\S+)$/.exec(e.message)?.[1];
      t.true(named !== undefined && named !== self.name && peers.some((p) => p.name === named), e.message);
    }
  }), { numRuns: 300 });
});
