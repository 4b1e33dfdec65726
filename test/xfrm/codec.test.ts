/**
 * Byte-level tests of the xfrm codec (no kernel). Offsets are those of linux/xfrm.h on a 64-bit
 * ABI; the KERNEL_POLICY_DUMP fixture is a real datagram captured from Linux 6.18.
 */
import test from 'ava';
import { attrSpace, encodeDatagram, parseAck, parseAttrs, parseDatagram, parseDone, writeAttrHeader } from '../../nodeplugin/xfrm/netlink-frame.js';
import { decodePolicy, encodePolicy, encodePolicyId } from '../../nodeplugin/xfrm/policy-codec.js';
import { encodeChange, encodeDumpRequest } from '../../nodeplugin/xfrm/request-codec.js';
import { decodeState, encodeState, encodeStateId } from '../../nodeplugin/xfrm/state-codec.js';
import { XfrmError, XfrmTransportError, describeState } from '../../nodeplugin/xfrm/errors.js';
import { SIZE, XFRMA, XFRM_MSG } from '../../nodeplugin/xfrm/uapi.js';
import type { XfrmPolicy, XfrmState } from '../../nodeplugin/xfrm/types.js';
import { OWNED_REQID } from '../../core/marks.js';

const le32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(o, true);
const be32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(o, false);
const le16 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(o, true);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

/** One attribute as bytes, padding included. */
const attr = (type: number, data: Uint8Array): Uint8Array => {
  const b = new Uint8Array(attrSpace(data.length));
  b.set(data, writeAttrHeader(new DataView(b.buffer), 0, type, data.length));
  return b;
};

const KEY = Uint8Array.from({ length: 36 }, (_, i) => 0xa0 + i);

const outPolicy: XfrmPolicy = {
  dir: 'out',
  selector: { src: '0.0.0.0/0', dst: '10.244.1.0/24' },
  mark: { value: 0xe0, mask: 0xffffffff },
  action: 'allow',
  tmpls: [{ family: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 'esp', mode: 'tunnel', spi: 1, reqid: OWNED_REQID }],
};

const inState: XfrmState = {
  family: 4,
  src: '10.0.0.2',
  dst: '10.0.0.1',
  spi: 0x12345678,
  proto: 'esp',
  mode: 'tunnel',
  reqid: OWNED_REQID,
  aead: { name: 'rfc4106(gcm(aes))', key: KEY, icvBits: 128 },
  mark: { value: 0x100d0, mask: 0xffffffff },
  outputMark: { value: 0xd0, mask: 0xffffffff },
  replayWindow: 32,
};

test('policy: xfrm_userpolicy_info + XFRMA_TMPL + XFRMA_MARK layout', (t) => {
  const b = encodePolicy(outPolicy);
  t.is(b.length, SIZE.userpolicyInfo + (4 + SIZE.userTmpl) + (4 + SIZE.mark)); // 168 + 68 + 12
  // selector
  t.is(hex(b.subarray(0, 4)), '0af40100'); // daddr 10.244.1.0
  t.is(hex(b.subarray(4, 16)), '00'.repeat(12));
  t.is(hex(b.subarray(16, 32)), '00'.repeat(16)); // saddr 0.0.0.0
  t.is(hex(b.subarray(32, 40)), '00'.repeat(8)); // ports and masks
  t.is(le16(b, 40), 2); // AF_INET
  t.is(b[42], 24); // prefixlen_d
  t.is(b[43], 0); // prefixlen_s
  t.is(b[44], 0); // proto
  t.is(hex(b.subarray(48, 56)), '00'.repeat(8)); // ifindex, user
  // lifetime cfg: byte/packet limits XFRM_INF, time limits 0 (no timer); curlft = 0
  t.is(hex(b.subarray(56, 88)), 'ff'.repeat(32));
  t.is(hex(b.subarray(88, 120)), '00'.repeat(32));
  t.is(hex(b.subarray(120, 152)), '00'.repeat(32));
  t.is(le32(b, 152), 0); // priority
  t.is(le32(b, 156), 0); // index
  t.is(b[160], 1); // dir out
  t.is(b[161], 0); // action allow
  t.is(hex(b.subarray(162, 168)), '00'.repeat(6)); // flags, share, padding
  // XFRMA_TMPL
  t.is(le16(b, 168), 68);
  t.is(le16(b, 170), XFRMA.TMPL);
  const tm = b.subarray(172, 236);
  t.is(hex(tm.subarray(0, 16)), `0a000002${'00'.repeat(12)}`); // id.daddr
  t.is(be32(tm, 16), 1); // id.spi, network order
  t.is(tm[20], 50); // id.proto = ESP
  t.is(le16(tm, 24), 2); // family
  t.is(hex(tm.subarray(28, 44)), `0a000001${'00'.repeat(12)}`); // saddr
  t.is(le32(tm, 44), OWNED_REQID);
  t.is(tm[48], 1); // mode tunnel
  t.is(tm[49], 0); // share
  t.is(tm[50], 0); // optional (level required)
  t.is(hex(tm.subarray(52, 64)), 'ff'.repeat(12)); // aalgos, ealgos, calgos
  // XFRMA_MARK
  t.is(le16(b, 236), 12);
  t.is(le16(b, 238), XFRMA.MARK);
  t.is(le32(b, 240), 0xe0);
  t.is(le32(b, 244), 0xffffffff);
});

test('state: xfrm_usersa_info + AEAD, MARK, SET_MARK, SET_MARK_MASK layout', (t) => {
  const b = encodeState(inState);
  const aeadLen = 4 + SIZE.algoAead + 36; // 112
  t.is(b.length, SIZE.usersaInfo + aeadLen + 12 + 8 + 8);
  // selector: any/0 of the state's family
  t.is(hex(b.subarray(0, 40)), '00'.repeat(40));
  t.is(le16(b, 40), 2);
  // id
  t.is(hex(b.subarray(56, 60)), '0a000001'); // daddr
  t.is(be32(b, 72), 0x12345678); // spi in network order
  t.is(hex(b.subarray(72, 76)), '12345678');
  t.is(b[76], 50);
  t.is(hex(b.subarray(80, 84)), '0a000002'); // saddr
  t.is(hex(b.subarray(96, 128)), 'ff'.repeat(32)); // lft: byte/packet limits
  t.is(hex(b.subarray(128, 160)), '00'.repeat(32)); // lft: no time limits
  t.is(hex(b.subarray(160, 208)), '00'.repeat(48)); // curlft, stats, seq
  t.is(le32(b, 208), OWNED_REQID);
  t.is(le16(b, 212), 2);
  t.is(b[214], 1); // tunnel
  t.is(b[215], 32); // replay window
  t.is(b[216], 0); // flags
  // XFRMA_ALG_AEAD
  const a = b.subarray(224);
  t.is(le16(a, 0), aeadLen);
  t.is(le16(a, 2), XFRMA.ALG_AEAD);
  const name = Buffer.from(a.subarray(4, 68)).toString('latin1');
  t.is(name, 'rfc4106(gcm(aes))'.padEnd(64, '\0'));
  t.is(le32(a, 68), 288); // key bits
  t.is(le32(a, 72), 128); // icv bits
  t.deepEqual(a.subarray(76, 112), KEY);
  const rest = parseAttrs(b, SIZE.usersaInfo);
  t.deepEqual(rest.map((x) => x.type), [XFRMA.ALG_AEAD, XFRMA.MARK, XFRMA.SET_MARK, XFRMA.SET_MARK_MASK]);
  t.deepEqual(rest.map((x) => x.data.length), [108, 8, 4, 4]);
});

test('IPv6 addresses fill all 16 bytes and AF_INET6', (t) => {
  const b = encodeState({ ...inState, family: 6, src: 'fd00::2', dst: 'fd00:0:0:0:0:0:0:1', selector: { src: '::/0', dst: 'fd00:10::/64' } });
  t.is(hex(b.subarray(0, 16)), 'fd000010000000000000000000000000'); // sel.daddr
  t.is(b[42], 64);
  t.is(le16(b, 40), 10);
  t.is(hex(b.subarray(56, 72)), 'fd000000000000000000000000000001');
  t.is(hex(b.subarray(80, 96)), 'fd000000000000000000000000000002');
  t.is(le16(b, 212), 10);
});

test('state and policy ids: xfrm_usersa_id, xfrm_userpolicy_id', (t) => {
  const sid = encodeStateId({ family: 6, dst: 'fd00::1', spi: 7, proto: 'esp' });
  t.is(sid.length, SIZE.usersaId);
  t.is(hex(sid.subarray(0, 16)), 'fd000000000000000000000000000001');
  t.is(be32(sid, 16), 7);
  t.is(le16(sid, 20), 10);
  t.is(sid[22], 50);
  const sidMarked = encodeStateId({ family: 4, dst: '10.0.0.1', spi: 7, proto: 'esp', mark: { value: 0x200d0, mask: 0xffffffff } });
  t.is(sidMarked.length, SIZE.usersaId + 12);
  t.is(le32(sidMarked, 28), 0x200d0);

  const pid = encodePolicyId({ dir: 'fwd', selector: { src: '::/0', dst: 'fd00:10::/64' }, index: 0x1234 });
  t.is(pid.length, SIZE.userpolicyId);
  t.is(le32(pid, 56), 0x1234);
  t.is(pid[60], 2);
  t.is(hex(pid.subarray(61, 64)), '000000');
  const pidSub = encodePolicyId({ dir: 'in', selector: outPolicy.selector, mark: outPolicy.mark, type: 'sub' });
  const attrs = parseAttrs(pidSub, SIZE.userpolicyId);
  t.deepEqual(attrs.map((a) => [a.type, a.data.length]), [[XFRMA.MARK, 8], [XFRMA.POLICY_TYPE, SIZE.userpolicyType]]);
  t.is(attrs[1]?.data[0], 1);
});

test('round trip: decodeState(encodeState(s)) and decodePolicy(encodePolicy(p))', (t) => {
  const s = decodeState(encodeState(inState));
  t.like(s, { family: 4, src: '10.0.0.2', dst: '10.0.0.1', spi: 0x12345678, proto: 'esp', mode: 'tunnel', reqid: OWNED_REQID, replayWindow: 32 });
  t.deepEqual(s.mark, inState.mark);
  t.deepEqual(s.outputMark, inState.outputMark);
  t.is(s.aead?.name, 'rfc4106(gcm(aes))');
  t.is(s.aead?.icvBits, 128);
  t.deepEqual(s.aead?.key, KEY);
  t.deepEqual(s.selector, { src: '0.0.0.0/0', dst: '0.0.0.0/0' });
  t.deepEqual(s.current, { bytes: 0, packets: 0, addTime: 0, useTime: 0 });

  const v6: XfrmPolicy = {
    dir: 'in', selector: { src: '::/0', dst: 'fd00:10::/64', proto: 6, dstPort: 443 }, priority: 9, action: 'block',
    mark: { value: 0xd0, mask: 0xffffffff },
    tmpls: [
      { family: 6, src: '::', dst: 'fd00::1', proto: 'esp', mode: 'tunnel', spi: 0, reqid: 1, optional: true },
      { family: 4, src: '192.0.2.1', dst: '192.0.2.2', proto: 'esp', mode: 'transport', spi: 5, reqid: 2 },
    ],
  };
  const p = decodePolicy(encodePolicy(v6));
  t.like(p, { dir: 'in', priority: 9, action: 'block', type: 'main', index: 0, socket: false });
  t.deepEqual(p.selector, v6.selector);
  t.deepEqual(p.tmpls, v6.tmpls);
  t.deepEqual(p.mark, v6.mark);
});

// `ip xfrm policy add src ::/0 dst fd00:1::/64 dir fwd mark 0xd0 mask 0xffffffff tmpl src :: dst fd00::1
//    proto esp reqid 27501 mode tunnel level use` and `... src 0.0.0.0/0 dst 10.244.1.0/24 dir out priority 7
//    mark 0xe0 mask 0xffffffff tmpl src 10.0.0.1 dst 10.0.0.2 proto esp spi 1 reqid 27501 mode tunnel`,
// then a GETPOLICY dump: the datagram Linux 6.18 sent back (x86-64).
const KERNEL_POLICY_DUMP = bytes(`
14010000130002002a0000001a460008fd000001000000000000000000000000000000000000000000000000000000000000000000000000
0a004000000000000000000000000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0000000000000000
000000000000000000000000000000000000000000000000000000000000000000000000000000008451016b000000000000000000000000
000000000a000000020000000000000044000500fd00000000000000000000000000000100000000320000000a0000000000000000000000
00000000000000006d6b000001000100ffffffffffffffffffffffff0a00100000000000000000000c001500d0000000ffffffff14010000
130002002a0000001a4600080af4010000000000000000000000000000000000000000000000000000000000000000000000000002001800
000000000000000000000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff000000000000000000000000
0000000000000000000000000000000000000000000000000000000000000000000000008451016b00000000000000000000000007000000
010000000100000000000000440005000a0000020000000000000000000000000000000132000000020000000a0000010000000000000000
000000006d6b000001000000ffffffffffffffffffffffff0a00100000000000000000000c001500e0000000ffffffff`);

test('decodes a real kernel policy dump datagram', (t) => {
  const msgs = parseDatagram(KERNEL_POLICY_DUMP);
  t.is(msgs.length, 2);
  t.true(msgs.every((m) => m.type === XFRM_MSG.NEWPOLICY && m.seq === 42 && m.flags === 2 /* MULTI */));
  const [fwd, out] = msgs.map((m) => decodePolicy(m.data));
  t.deepEqual(fwd, {
    dir: 'fwd', selector: { src: '::/0', dst: 'fd00:1::/64' }, priority: 0, action: 'allow', type: 'main', index: 10,
    socket: false, flags: 0, mark: { value: 0xd0, mask: 0xffffffff },
    tmpls: [{ family: 6, src: '::', dst: 'fd00::1', proto: 'esp', mode: 'tunnel', spi: 0, reqid: 27501, optional: true }],
  });
  t.deepEqual(out, {
    dir: 'out', selector: { src: '0.0.0.0/0', dst: '10.244.1.0/24' }, priority: 7, action: 'allow', type: 'main', index: 1,
    socket: false, flags: 0, mark: { value: 0xe0, mask: 0xffffffff },
    tmpls: [{ family: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 'esp', mode: 'tunnel', spi: 1, reqid: 27501 }],
  });
  // Our encoding of the decoded policy matches the kernel's bytes except the fields the kernel
  // fills in (curlft, index) and the POLICY_TYPE attribute it adds.
  const kernel = msgs[1]!.data;
  const ours = encodePolicy(out!);
  t.is(hex(ours.subarray(0, 120)), hex(kernel.subarray(0, 120)));
  t.is(hex(ours.subarray(152, 156)), hex(kernel.subarray(152, 156)));
  t.is(hex(ours.subarray(160, 168)), hex(kernel.subarray(160, 168)));
  const tmplOurs = parseAttrs(ours, SIZE.userpolicyInfo).find((a) => a.type === XFRMA.TMPL)!;
  const tmplKernel = parseAttrs(kernel, SIZE.userpolicyInfo).find((a) => a.type === XFRMA.TMPL)!;
  t.is(hex(tmplOurs.data), hex(tmplKernel.data));
});

test('netlink framing: header, padding, several messages per datagram', (t) => {
  const m1 = { type: XFRM_MSG.NEWPOLICY, flags: 5, seq: 7, port: 99, data: new Uint8Array([1, 2, 3]) };
  const one = encodeDatagram([m1]);
  t.is(one.length, 20); // 16 + 3, padded to 4
  t.is(le32(one, 0), 19);
  t.is(le16(one, 4), XFRM_MSG.NEWPOLICY);
  t.is(le16(one, 6), 5);
  t.is(le32(one, 8), 7);
  t.is(le32(one, 12), 99);
  const both = encodeDatagram([m1, { type: 3, flags: 2, seq: 8, port: 0, data: new Uint8Array(4) }]);
  t.is(hex(both.subarray(0, 20)), hex(one));
  const parsed = parseDatagram(both);
  t.deepEqual(parsed.map((m) => [m.type, m.seq, m.data.length]), [[XFRM_MSG.NEWPOLICY, 7, 3], [3, 8, 4]]);
  t.throws(() => parseDatagram(both.subarray(0, 30)), { instanceOf: XfrmTransportError });
  t.deepEqual(attr(1, new Uint8Array([9])), new Uint8Array([5, 0, 1, 0, 9, 0, 0, 0]));
  t.throws(() => writeAttrHeader(new DataView(new ArrayBuffer(4)), 0, 1, 0xfffc), { instanceOf: RangeError });
});

test('acks: success, errno, extended ack message, capped echo', (t) => {
  const err = (errno: number, echoed: Uint8Array, tlvs: Uint8Array = new Uint8Array(0)) => {
    const b = new Uint8Array(4 + echoed.length + tlvs.length);
    new DataView(b.buffer).setInt32(0, -errno, true);
    b.set(echoed, 4);
    b.set(tlvs, 4 + echoed.length);
    return b;
  };
  const request = encodeDatagram([{ type: XFRM_MSG.NEWSA, flags: 5, seq: 1, port: 1, data: new Uint8Array(8) }]);
  t.deepEqual(parseAck(err(0, request.subarray(0, 16)), 0x100), { errno: 0 });
  t.deepEqual(parseAck(err(17, request), 0), { errno: 17 });
  const msg = attr(1, new Uint8Array(Buffer.from('Requested AEAD algorithm not found\0')));
  t.deepEqual(parseAck(err(38, request, msg), 0x200), { errno: 38, extack: 'Requested AEAD algorithm not found' });
  t.deepEqual(parseAck(err(38, request.subarray(0, 16), msg), 0x300), { errno: 38, extack: 'Requested AEAD algorithm not found' });
  const done = new Uint8Array(4);
  t.is(parseDone(done), 0);
  new DataView(done.buffer).setInt32(0, -16, true);
  t.is(parseDone(done), 16);
});

test('requests: message types and flags', (t) => {
  t.like(encodeChange({ op: 'addState', state: inState }), { type: XFRM_MSG.NEWSA, flags: 5 });
  t.like(encodeChange({ op: 'updateState', state: inState }), { type: XFRM_MSG.UPDSA, flags: 5 });
  t.like(encodeChange({ op: 'deleteState', id: inState }), { type: XFRM_MSG.DELSA, flags: 5 });
  t.like(encodeChange({ op: 'addPolicy', policy: outPolicy }), { type: XFRM_MSG.NEWPOLICY, flags: 5 });
  t.like(encodeChange({ op: 'updatePolicy', policy: outPolicy }), { type: XFRM_MSG.UPDPOLICY, flags: 5 });
  t.like(encodeChange({ op: 'deletePolicy', id: outPolicy }), { type: XFRM_MSG.DELPOLICY, flags: 5 });
  const dump = encodeDumpRequest('states');
  t.is(dump.type, XFRM_MSG.GETSA);
  t.is(dump.flags, 0x301);
  t.is(dump.payload.length, 0);
});

test('invalid input is rejected before encoding', (t) => {
  t.throws(() => encodeState({ ...inState, src: 'fd00::1' }), { instanceOf: TypeError, message: /not an IPv4/ });
  t.throws(() => encodeState({ ...inState, dst: '10.0.0' }), { instanceOf: TypeError });
  t.throws(() => encodeState({ ...inState, spi: 2 ** 32 }), { instanceOf: RangeError });
  t.throws(() => encodeState({ ...inState, replayWindow: 256 }), { instanceOf: RangeError });
  t.throws(() => encodeState({ ...inState, aead: { name: 'x'.repeat(64), key: KEY, icvBits: 128 } }), { instanceOf: RangeError });
  t.throws(() => encodeState({ ...inState, mark: { value: -1, mask: 0 } }), { instanceOf: RangeError });
  t.throws(() => encodePolicy({ ...outPolicy, selector: { src: '::/0', dst: '10.0.0.0/8' } }), { message: /different families/ });
  t.throws(() => encodePolicy({ ...outPolicy, selector: { src: '0.0.0.0/33', dst: '10.0.0.0/8' } }), { instanceOf: TypeError });
  t.throws(() => encodePolicy({ ...outPolicy, tmpls: [{ ...outPolicy.tmpls[0]!, proto: 'gre' as 'esp' }] }), { instanceOf: RangeError });
});

test('unknown protocol and mode numbers decode to placeholders and encode back', (t) => {
  const b = encodeState({ ...inState, proto: 'proto-99', mode: 'mode-7', aead: undefined });
  t.is(b[76], 99);
  t.is(b[214], 7);
  const s = decodeState(b);
  t.is(s.proto, 'proto-99');
  t.is(s.mode, 'mode-7');
});

test('descriptions and errors never contain key bytes', (t) => {
  const d = describeState(inState);
  t.regex(d, /rfc4106\(gcm\(aes\)\) 288-bit key icv 128/);
  t.regex(d, /mark 0x100d0\/0xffffffff/);
  const keyHex = hex(KEY);
  t.false(d.includes(keyHex.slice(0, 8)));
  const e = new XfrmError({ errno: 17, operation: 'addState', object: d });
  t.is(e.code, 'EEXIST');
  t.is(e.errno, 17);
  t.is(e.name, 'XfrmError');
  t.true(e instanceof Error);
  t.false(JSON.stringify(e).includes(keyHex.slice(0, 8)));
  t.is(new XfrmError({ errno: 4095, operation: 'getState', object: 'x' }).code, 'E4095');
});
