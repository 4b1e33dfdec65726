/** Key encodings and small pure helpers; no root needed. */
import test from 'ava';
import { nodePinDir } from '../../nodeplugin/bpf/index.js';
import { decodeAddressKey, decodeCidrKey, encodeAddress, encodeCidr } from '../../nodeplugin/bpf/layout.js';
import { possibleCpus } from '../../nodeplugin/bpf/maps.js';
import { checkIfname } from '../../nodeplugin/bpf/tc.js';
import { netnsPath } from '../../nodeplugin/bpf/exec.js';

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n, 0); return b; };

test('LPM keys are byte-for-byte Kmesh km_nodeinfo keys', (t) => {
  // Examples from Kmesh's key layout: u32 prefixlen (host order) + 16 address bytes.
  t.is(encodeCidr('10.244.1.0/24').key.toString('hex'), '18000000' + '0af40100' + '00'.repeat(12));
  t.is(encodeCidr('fd00:10:244:1::/64').key.toString('hex'), '40000000' + 'fd000010024400010000000000000000');
  t.is(encodeCidr('0.0.0.0/0').key.toString('hex'), '00'.repeat(20));
  t.is(encodeCidr('10.1.2.3/32').key.toString('hex'), '20000000' + '0a010203' + '00'.repeat(12));
  t.is(encodeCidr('10.1.2.3/32').family, 4);
  t.is(encodeCidr('::/0').family, 6);
});

test('LPM keys decode back to the canonical text', (t) => {
  for (const cidr of ['10.244.1.0/24', '0.0.0.0/0', '192.168.0.1/32', 'fd00:10:244:1::/64', '::/0', '2001:db8::1:0:0:1/128', 'fd00::/8']) {
    const e = encodeCidr(cidr);
    t.is(decodeCidrKey(e.key, u32(e.family)).cidr, cidr);
  }
  t.throws(() => decodeCidrKey(encodeCidr('10.0.0.0/8').key, u32(1)), { message: /value 1, expected 4 or 6/ });
  // A v4-tagged entry with an impossible prefix length.
  const bad = encodeCidr('10.0.0.0/8').key;
  bad.writeUInt32LE(40, 0);
  t.throws(() => decodeCidrKey(bad, u32(4)), { message: /malformed key/ });
});

test('peer address keys: IPv6 as is, IPv4 mapped into ::ffff:0:0/96', (t) => {
  t.is(encodeAddress('192.168.0.2').key.toString('hex'), '00000000000000000000ffffc0a80002');
  t.is(encodeAddress('fd00::2').key.toString('hex'), 'fd000000000000000000000000000002');
  for (const a of ['192.168.0.2', '0.0.0.0', 'fd00::2', '::', '2001:db8::1:0:0:1']) t.is(decodeAddressKey(encodeAddress(a).key), a);
  t.throws(() => encodeAddress('::ffff:192.168.0.2'), { message: /IPv4-mapped/ });
  t.throws(() => encodeAddress('::ffff:c0a8:2'), { message: /IPv4-mapped/ });
  t.throws(() => encodeAddress('2001:DB8::1'), { message: /not canonical, expected "2001:db8::1"/ });
  t.throws(() => encodeAddress('1.2.3'), { message: /not an IPv4 or IPv6 address/ });
});

test('possible CPU list parsing', (t) => {
  t.is(possibleCpus('0\n'), 1);
  t.is(possibleCpus('0-1\n'), 2);
  t.is(possibleCpus('0-3,8-11'), 8);
  t.is(possibleCpus('0,2,4-5'), 4);
  t.throws(() => possibleCpus('x'), { message: /cannot parse/ });
});

test('per-node pin dirs', (t) => {
  t.is(nodePinDir('worker-1'), '/sys/fs/bpf/kmesh-ipsec/worker-1');
  t.is(nodePinDir('ip-10-0-0-1.ec2.internal'), '/sys/fs/bpf/kmesh-ipsec/ip-10-0-0-1_ec2_internal');
  t.is(nodePinDir('n1', '/run/bpf/x'), '/run/bpf/x/n1');
  for (const bad of ['', 'Node1', '../x', 'a/b', 'a_b', '-a']) t.throws(() => nodePinDir(bad), { instanceOf: TypeError }, bad);
});

test('interface names and netns paths', (t) => {
  t.notThrows(() => {
    checkIfname('eth0');
  });
  t.notThrows(() => {
    checkIfname('veth1a2b3c4d5e6');
  });
  for (const bad of ['', 'veth1a2b3c4d5e6f', 'a b', 'a/b', 'eth0:1', '.', '..']) {
    t.throws(() => {
      checkIfname(bad);
    }, { instanceOf: TypeError }, bad);
  }
  t.is(netnsPath('node1'), '/run/netns/node1');
  t.is(netnsPath('/proc/1/ns/net'), '/proc/1/ns/net');
  t.throws(() => netnsPath('..'));
});
