import test from 'ava';
import { addressPairs, pairProblems } from '../../lab/convergence.js';
import { parsePolicies, parseStates, parseXfrmStat, type StateView } from '../../lab/kernel.js';
import { planLab } from '../../lab/topology.js';

const KEY_A = `0x${'11'.repeat(36)}`;
const KEY_B = `0x${'22'.repeat(36)}`;
const state = (src: string, dst: string, spi: number, key: string, reqid = 27501, mark = ''): string => `src ${src} dst ${dst}
\tproto esp spi 0x${spi.toString(16).padStart(8, '0')} reqid ${reqid} mode tunnel
\treplay-window 0 ${mark === '' ? '' : `\n\tmark ${mark}/0xffffffff`}
\taead rfc4106(gcm(aes)) ${key} 128
\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000
\tsel src 0.0.0.0/0 dst 0.0.0.0/0 
`;

test('ip xfrm state: only our SAs (reqid 27501), keys reduced to a digest', (t) => {
  const text = state('192.168.77.2', '192.168.77.1', 1, KEY_A, 27501, '0x100d0') + state('192.168.77.1', '192.168.77.2', 2, KEY_B) + state('10.9.9.1', '10.9.9.2', 7, KEY_A, 1);
  const views = parseStates(text);
  t.deepEqual(views.map((v) => [v.src, v.dst, v.spi, v.mark]), [['192.168.77.1', '192.168.77.2', 2, undefined], ['192.168.77.2', '192.168.77.1', 1, 0x100d0]]);
  t.regex(views[0]!.keyTag, /^[0-9a-f]{8}$/);
  t.not(views[0]!.keyTag, views[1]!.keyTag);
  t.false(JSON.stringify(views).includes('1111'), 'no key material kept');
});

test('ip xfrm policy: direction, selector, template, action; others ignored', (t) => {
  const text = `src 0.0.0.0/0 dst 10.244.2.0/24 
\tdir out priority 0 
\tmark 0xe0/0xffffffff 
\ttmpl src 192.168.77.1 dst 192.168.77.2
\t\tproto esp spi 0x00000001 reqid 27501 mode tunnel
src 0.0.0.0/0 dst 10.244.3.0/24 
\tdir out action block priority 0 
\tmark 0xe0/0xffffffff 
\ttmpl src 192.168.77.1 dst 192.168.77.3
\t\tproto esp spi 0x00000000 reqid 27501 mode tunnel
src 1.1.1.1/32 dst 2.2.2.2/32 
\tdir out priority 0 
\ttmpl src 1.1.1.1 dst 2.2.2.2
\t\tproto esp reqid 4 mode tunnel
`;
  t.deepEqual(parsePolicies(text), [
    { dir: 'out', src: '0.0.0.0/0', dst: '10.244.2.0/24', action: 'allow', mark: '0xe0/0xffffffff', tmplSrc: '192.168.77.1', tmplDst: '192.168.77.2', spi: 1 },
    { dir: 'out', src: '0.0.0.0/0', dst: '10.244.3.0/24', action: 'block', mark: '0xe0/0xffffffff', tmplSrc: '192.168.77.1', tmplDst: '192.168.77.3', spi: 0 },
  ]);
});

test('xfrm_stat: the non-zero counters', (t) => {
  t.deepEqual(parseXfrmStat('XfrmInError             \t0\nXfrmInNoStates          \t3\nXfrmOutPolBlock\t12\n'), { XfrmInNoStates: 3, XfrmOutPolBlock: 12 });
});

const plan = planLab('aaaa', { nodes: 3, podsPerNode: 1, dualStack: false });
const view = (src: string, dst: string, spi: number, keyTag: string): StateView => ({ src, dst, spi, keyTag });

/** The SAs a converged lab holds on SPI `spi`: per ordered pair, out at the sender and in at the receiver, same key. */
function converged(spi: number): Map<string, StateView[]> {
  const states = new Map<string, StateView[]>(plan.nodes.map((n) => [n.name, []]));
  for (const a of plan.nodes) {
    for (const b of plan.nodes) {
      if (a === b) continue;
      const tag = `${a.index}${b.index}${spi}`;
      states.get(a.name)!.push(view(a.ip, b.ip, spi, tag));
      states.get(b.name)!.push(view(a.ip, b.ip, spi, tag));
    }
  }
  return states;
}

test('pairs: converged when every ordered pair has one SA at each end with the same key', (t) => {
  t.deepEqual(pairProblems(plan.nodes, converged(2), { spi: 2, bootIds: {} }), []);
  t.deepEqual(pairProblems(plan.nodes, converged(2), { spi: 2, bootIds: {}, exact: true }), []);
  t.true(pairProblems(plan.nodes, converged(1), { spi: 2, bootIds: {} }).length === 6, 'old SPI: every pair is missing');
});

test('pairs: a missing end, a key mismatch and leftovers are named', (t) => {
  const states = converged(2);
  states.set('node2', states.get('node2')!.filter((s) => !(s.src === '192.168.77.1' && s.dst === '192.168.77.2')));
  const n3 = states.get('node3')!;
  n3[n3.findIndex((s) => s.src === '192.168.77.1' && s.dst === '192.168.77.3')] = view('192.168.77.1', '192.168.77.3', 2, 'other');
  states.get('node1')!.push(view('192.168.77.4', '192.168.77.1', 2, 'gone'));
  t.deepEqual(pairProblems(plan.nodes, states, { spi: 2, bootIds: {}, exact: true }), [
    'node2 has no SA from node1 (192.168.77.1) with SPI 2',
    'node1 -> node3 (192.168.77.1 -> 192.168.77.3): the two ends hold different keys',
    'node1 still holds 1 other SA(s) (192.168.77.4 -> 192.168.77.1 SPI 2)',
  ]);
});

test('address pairs per family both nodes have', (t) => {
  const dual = planLab('aaaa', { nodes: 2, podsPerNode: 1, dualStack: true });
  t.deepEqual(addressPairs(dual.nodes[0]!, dual.nodes[1]!), [['192.168.77.1', '192.168.77.2'], ['fd00:77::1', 'fd00:77::2']]);
  t.deepEqual(addressPairs(plan.nodes[0]!, dual.nodes[1]!), [['192.168.77.1', '192.168.77.2']]);
});
