import test from 'ava';
import { validateNodeInfo, validateNodeInfoSpec } from '../../core/nodeinfo.js';
import { formatErrors } from '../../core/result.js';

const good = {
  spi: 1,
  addresses: ['192.168.0.1', 'fd00::1'],
  bootID: '550e8400-e29b-41d4-a716-446655440000',
  podCIDRS: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
};

test('a good spec and object validate', (t) => {
  const r = validateNodeInfoSpec(good);
  t.true(r.ok, r.ok ? '' : formatErrors(r.errors));
  t.true(validateNodeInfo({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'n1', namespace: 'kmesh-system' }, spec: good }).ok);
});

test('spi 0 (no key yet) and empty podCIDRS are allowed', (t) => {
  t.true(validateNodeInfoSpec({ ...good, spi: 0, podCIDRS: [] }).ok);
});

const bad: [string, Record<string, unknown>, string, RegExp][] = [
  ['negative spi', { spi: -1 }, 'spec.spi', /from 0 to 2147483647/],
  ['fractional spi', { spi: 1.5 }, 'spec.spi', /integer/],
  ['string spi', { spi: '1' }, 'spec.spi', /got the string "1"/],
  ['no addresses', { addresses: [] }, 'spec.addresses', /non-empty list/],
  ['address not an IP', { addresses: ['node-1'] }, 'spec.addresses[0]', /must be an IPv4 or IPv6 address/],
  ['address with prefix', { addresses: ['10.0.0.1/32'] }, 'spec.addresses[0]', /IPv4 or IPv6/],
  ['octal-looking address', { addresses: ['010.0.0.1'] }, 'spec.addresses[0]', /IPv4 or IPv6/],
  ['duplicate address', { addresses: ['10.0.0.1', '10.0.0.1'] }, 'spec.addresses[1]', /duplicates spec.addresses\[0\]/],
  ['duplicate IPv6 in two spellings', { addresses: ['fd00::1', 'fd00:0:0::1'] }, 'spec.addresses[1]', /duplicates/],
  ['bootID too short', { bootID: 'abc' }, 'spec.bootID', /36-character UUID/],
  ['bootID not a UUID', { bootID: 'x'.repeat(36) }, 'spec.bootID', /UUID/],
  ['CIDR with host bits', { podCIDRS: ['10.244.1.5/24'] }, 'spec.podCIDRS[0]', /host bits set; did you mean 10.244.1.0\/24\?/],
  ['IPv6 CIDR with host bits', { podCIDRS: ['fd00:10:244:1::1/64'] }, 'spec.podCIDRS[0]', /did you mean fd00:10:244:1::\/64/],
  ['non-canonical IPv6 CIDR', { podCIDRS: ['fd00:10:244:1:0::/64'] }, 'spec.podCIDRS[0]', /canonically as fd00:10:244:1::\/64/],
  ['CIDR without prefix', { podCIDRS: ['10.244.1.0'] }, 'spec.podCIDRS[0]', /must be a CIDR/],
  ['prefix too long', { podCIDRS: ['10.244.1.0/33'] }, 'spec.podCIDRS[0]', /must be a CIDR/],
  ['duplicate CIDR', { podCIDRS: ['10.244.1.0/24', '10.244.1.0/24'] }, 'spec.podCIDRS[1]', /duplicates/],
  ['podCIDRS not a list', { podCIDRS: '10.244.1.0/24' }, 'spec.podCIDRS', /list of CIDRs/],
  ['unknown field', { podCIDRs: ['10.244.1.0/24'] }, 'spec.podCIDRs', /unknown field/],
];
for (const [name, patch, field, message] of bad) {
  test(`spec rejects: ${name}`, (t) => {
    const r = validateNodeInfoSpec({ ...good, ...patch });
    if (r.ok) return t.fail('accepted');
    const hit = r.errors.find((e) => e.field === field);
    t.truthy(hit, formatErrors(r.errors));
    t.regex(hit?.message ?? '', message);
  });
}

test('object: wrong apiVersion, kind, namespace and missing name are reported together', (t) => {
  const r = validateNodeInfo({ apiVersion: 'kmesh.net/v1', kind: 'Node', metadata: { namespace: 'default' }, spec: good });
  if (r.ok) return t.fail();
  t.deepEqual(r.errors.map((e) => e.field), ['apiVersion', 'kind', 'metadata.name', 'metadata.namespace']);
  const r2 = validateNodeInfo({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'n', namespace: 'default' }, spec: good });
  t.is(r2.ok ? '' : r2.errors[0]?.field, 'metadata.namespace');
});
