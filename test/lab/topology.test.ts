import test from 'ava';
import { checkLabOptions, planLab, planNetns, topologyOf } from '../../lab/topology.js';

test('the plan: node i on 192.168.77.i with pod CIDR 10.244.i.0/24, pods from .2, one unlabelled pod on node1', (t) => {
  const plan = planLab('ab12', { nodes: 3, podsPerNode: 2, dualStack: false });
  t.deepEqual(plan.wire, { netns: 'kml-ab12-wire', bridge: 'br0' });
  t.deepEqual(plan.nodes.map((n) => [n.name, n.netns, n.ip, n.podCIDR, n.gateway, n.mac]), [
    ['node1', 'kml-ab12-node1', '192.168.77.1', '10.244.1.0/24', '10.244.1.1', '02:6b:6d:00:00:01'],
    ['node2', 'kml-ab12-node2', '192.168.77.2', '10.244.2.0/24', '10.244.2.1', '02:6b:6d:00:00:02'],
    ['node3', 'kml-ab12-node3', '192.168.77.3', '10.244.3.0/24', '10.244.3.1', '02:6b:6d:00:00:03'],
  ]);
  t.deepEqual(plan.nodes[0]?.pods.map((p) => [p.name, p.namespace, p.netns, p.ip, p.hostIf]), [
    ['pod-1-2', 'demo', 'kml-ab12-pod-1-2', '10.244.1.2', 'vp1x2'],
    ['pod-1-3', 'demo', 'kml-ab12-pod-1-3', '10.244.1.3', 'vp1x3'],
    ['plain-1', 'plain', 'kml-ab12-plain-1', '10.244.1.200', 'vp1x200'],
  ]);
  t.is(plan.nodes[1]?.pods.length, 2, 'the unlabelled pod is on node1 only');
  t.true(plan.nodes.every((n) => n.ip6 === undefined && n.podCIDR6 === undefined && n.pods.every((p) => p.ip6 === undefined)));
  t.is(new Set(planNetns(plan)).size, 1 + 3 + 7, 'one namespace per wire, node and pod, all distinct');
  t.true(planNetns(plan).every((n) => n.startsWith('kml-ab12-')));
  t.true(plan.nodes.flatMap((n) => [n.wireIf, ...n.pods.map((p) => p.hostIf)]).every((i) => i.length <= 15), 'interface names fit IFNAMSIZ');
});

test('dual stack adds IPv6 node addresses, pod CIDRs, pod addresses and gateways', (t) => {
  const node = planLab('0000', { nodes: 2, podsPerNode: 1, dualStack: true }).nodes[1]!;
  t.like(node, { ip6: 'fd00:77::2', podCIDR6: 'fd00:244:2::/64', gateway6: 'fd00:244:2::1' });
  t.is(node.pods[0]?.ip6, 'fd00:244:2::2');
});

test('the topology document has exactly the documented fields', (t) => {
  const plan = planLab('beef', { nodes: 2, podsPerNode: 1, dualStack: true });
  const doc = JSON.parse(JSON.stringify(topologyOf(plan, '/run/lab/kubeconfig'))) as unknown;
  t.deepEqual(doc, {
    kubeconfig: '/run/lab/kubeconfig',
    wire: { netns: 'kml-beef-wire', bridge: 'br0' },
    nodes: [
      { name: 'node1', netns: 'kml-beef-node1', ip: '192.168.77.1', podCIDR: '10.244.1.0/24', pods: [
        { name: 'pod-1-2', netns: 'kml-beef-pod-1-2', ip: '10.244.1.2' }, { name: 'plain-1', netns: 'kml-beef-plain-1', ip: '10.244.1.200' },
      ] },
      { name: 'node2', netns: 'kml-beef-node2', ip: '192.168.77.2', podCIDR: '10.244.2.0/24', pods: [{ name: 'pod-2-2', netns: 'kml-beef-pod-2-2', ip: '10.244.2.2' }] },
    ],
  });
});

test('options out of range are refused naming the flag', (t) => {
  t.deepEqual(checkLabOptions({ nodes: 3, podsPerNode: 1, dualStack: false }), []);
  t.deepEqual(checkLabOptions({ nodes: 0, podsPerNode: 17, dualStack: false }), [
    '--nodes: must be a whole number from 1 to 32, got 0',
    '--pods-per-node: must be a whole number from 1 to 16, got 17',
  ]);
  t.throws(() => planLab('ab12', { nodes: 1.5, podsPerNode: 1, dualStack: false }), { message: /--nodes: must be a whole number/ });
  t.throws(() => planLab('XYZ', { nodes: 1, podsPerNode: 1, dualStack: false }), { message: /lab id/ });
});
