/**
 * core/ip.ts: the parse answers what ipaddr.js answers for every text (its IPv4 path takes
 * Node's net.isIPv4 and its own byte split instead of ipaddr, for speed), and the memo returns
 * the same answer a second time.
 */
import test from 'ava';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { canonicalIp, parseCidr, parseIp } from '../../core/ip.js';

/** What the parse answers when it goes through ipaddr.js only. */
function referenceIp(text: string): { family: 4 | 6; bytes: number[]; canonical: string } | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    const a = ipaddr.IPv4.parse(text);
    return { family: 4, bytes: a.toByteArray(), canonical: a.toString() };
  }
  if (!text.includes(':') || text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
  const a = ipaddr.IPv6.parse(text);
  return { family: 6, bytes: a.toByteArray(), canonical: a.toString() };
}

function referenceCidr(text: string) {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = referenceIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  if (prefixLength > ip.bytes.length * 8) return undefined;
  const network = ip.bytes.map((b, i) => b & ((0xff00 >> Math.max(0, Math.min(8, prefixLength - i * 8))) & 0xff));
  return { ...ip, prefixLength, network: `${ipaddr.fromByteArray(network).toString()}/${prefixLength}`, hasHostBits: network.some((b, i) => b !== ip.bytes[i]) };
}

const plain = <T extends { bytes: Uint8Array }>(p: T | undefined) => (p ? { ...p, bytes: [...p.bytes] } : undefined);

const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '010', '0x1', '1e1', ' 1', '+1', ''));
const addressText = fc.oneof(
  fc.ipV4(),
  fc.ipV4Extended(),
  fc.ipV6(),
  fc.tuple(octet, octet, octet, octet).map((p) => p.join('.')),
  fc.tuple(octet, octet, octet).map((p) => p.join('.')),
  fc.ipV6().map((a) => a.toUpperCase()),
  fc.string({ unit: fc.constantFrom(...Array.from('0123456789.:abcdefx%')), maxLength: 24 }),
);
const cidrText = fc.oneof(
  fc.tuple(addressText, fc.integer({ min: 0, max: 140 })).map(([a, p]) => `${a}/${p}`),
  fc.tuple(addressText, fc.constantFrom('', '01', '24 ', 'x', '/24')).map(([a, p]) => `${a}/${p}`),
  addressText,
);

test('parseIp answers what ipaddr.js answers, the first time and from the memo', (t) => {
  fc.assert(fc.property(addressText, (text) => {
    const want = referenceIp(text);
    t.deepEqual(plain(parseIp(text)), want, text);
    t.deepEqual(plain(parseIp(text)), want, `${text} again`);
    t.is(canonicalIp(text), want?.canonical ?? text);
  }), { numRuns: 2000 });
});

test('parseCidr answers what ipaddr.js answers: bytes, prefix, network, host bits', (t) => {
  fc.assert(fc.property(cidrText, (text) => {
    const want = referenceCidr(text);
    t.deepEqual(plain(parseCidr(text)), want, text);
    t.deepEqual(plain(parseCidr(text)), want, `${text} again`);
  }), { numRuns: 2000 });
});

test('examples', (t) => {
  t.deepEqual(plain(parseIp('10.0.0.1')), { family: 4, bytes: [10, 0, 0, 1], canonical: '10.0.0.1' });
  t.is(parseIp('010.0.0.1'), undefined, 'no octal');
  t.is(parseIp('10.0.1'), undefined, 'four parts only');
  t.is(parseIp('fe80::1%eth0'), undefined, 'no zones');
  t.is(parseIp('FD00:0::1')?.canonical, 'fd00::1');
  t.like(parseCidr('10.244.1.5/24'), { network: '10.244.1.0/24', hasHostBits: true, prefixLength: 24 });
  t.like(parseCidr('10.244.1.0/24'), { network: '10.244.1.0/24', hasHostBits: false });
  t.like(parseCidr('fd00:10:244:1::7/64'), { network: 'fd00:10:244:1::/64', hasHostBits: true });
  t.is(parseCidr('10.0.0.0/33'), undefined);
  t.is(parseCidr('10.0.0.0/024'), undefined);
});
