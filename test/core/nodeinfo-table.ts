/**
 * The KmeshNodeInfo specs the core accepts and refuses, shared by the core's tests
 * (test/core/nodeinfo.test.ts) and the CRD schema's (test/manifests/crd-schema.test.ts), so the
 * CRD is held to the same table as the code.
 */
const addresses = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}`);

export const good = {
  spi: 1,
  addresses: ['192.168.0.1', 'fd00::1'],
  bootID: '550e8400-e29b-41d4-a716-446655440000',
  podCIDRS: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
};

/** Specs the core accepts: `good` and its edges. */
export const accepted: [name: string, spec: Record<string, unknown>][] = [
  ['good', good],
  ['spi 0 (no key yet) and empty podCIDRS', { ...good, spi: 0, podCIDRS: [] }],
  ['largest spi', { ...good, spi: 2147483647 }],
  ['IPv4 only', { ...good, addresses: ['10.0.0.1'], podCIDRS: ['10.244.0.0/16'] }],
  ['IPv6 only, upper-case and zero-padded address', { ...good, addresses: ['FD00:0:0:0:0:0:0:0002'], podCIDRS: ['fd00:10:244::/56'] }],
  ['IPv4-mapped IPv6 address', { ...good, addresses: ['::ffff:10.0.0.1'] }],
  ['longest IPv6 address text', { ...good, addresses: ['0000:0000:0000:0000:0000:ffff:255.255.255.255'] }],
  ['upper-case boot ID', { ...good, bootID: '550E8400-E29B-41D4-A716-446655440000' }],
  ['edge prefixes', { ...good, podCIDRS: ['0.0.0.0/0', '10.0.0.1/32', '::/0', 'fd00::1/128'] }],
  ['longest canonical IPv6 CIDR', { ...good, podCIDRS: ['fd00:1:2:3:4:5:6:7/128'] }],
  ['64 addresses and 64 pod CIDRs (the caps)', { ...good, addresses: addresses(64), podCIDRS: addresses(64).map((a) => `${a}/32`) }],
];

/** [name, patch over `good`, field the core names, message it gives]. */
export const bad: [name: string, patch: Record<string, unknown>, field: string, message: RegExp][] = [
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
  ['65 addresses', { addresses: addresses(65) }, 'spec.addresses', /at most 64 addresses/],
  ['65 pod CIDRs', { podCIDRS: addresses(65).map((a) => `${a}/32`) }, 'spec.podCIDRS', /at most 64 pod CIDRs/],
];
