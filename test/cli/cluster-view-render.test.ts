/** cli/cluster-view-render.ts: durations, the stamp and condition cells, and column alignment. */
import test from 'ava';
import { ClusterVerdict, type ClusterKeyView, NodeKeyState, StampState } from '../../core/cluster-keys.js';
import { clusterJson, describeHoldout, formatDuration, renderClusterText } from '../../cli/cluster-view-render.js';

test('durations read like kubectl ages', (t) => {
  t.deepEqual([0, 59.9, 60, 61, 3599, 3600, 3660, 86_399, 86_400, 90_000, 10 * 86_400].map(formatDuration), ['0s', '59s', '1m', '1m1s', '59m59s', '1h', '1h1m', '23h59m', '1d', '1d1h', '10d']);
});

test('cells for every stamp state and condition, aligned', (t) => {
  const now = 1_000_000;
  const view: ClusterKeyView = {
    verdict: ClusterVerdict.Degraded,
    secretSpi: 2,
    targetSpi: 2,
    summary: 'two things',
    nodes: [
      { name: 'a', spi: 2, stamp: { state: StampState.Valid, expiresAt: now + 90 }, ready: { status: 'True', stale: false }, keyInSync: { status: 'False', reason: 'PeersBehind', stale: true }, state: NodeKeyState.Converging, notes: ['n1'] },
      { name: 'bbbbbb', stamp: { state: StampState.Missing }, state: NodeKeyState.Failing, notes: ['x', 'y'] },
      { name: 'c', spi: 0, stamp: { state: StampState.Malformed }, state: NodeKeyState.Failing, notes: [] },
      { name: 'd', spi: 2, stamp: { state: StampState.Expired, expiresAt: now - 7200 }, state: NodeKeyState.Failing, notes: [] },
    ],
  };
  t.is(renderClusterText(view, now), [
    'NODE    SPI  STAMP EXPIRES   READY  KEY-IN-SYNC    MESSAGE',
    'a       2    in 1m30s        True   False (stale)  n1',
    'bbbbbb  -    none            -      -              x; y',
    'c       0    unreadable      -      -',
    'd       2    expired 2h ago  -      -',
    'degraded: two things',
    '',
  ].join('\n'));
  t.like(clusterJson(view, { state: 'present', spi: 2 }), { nodes: [{ name: 'a', stamp: { expiresAt: '1970-01-12T13:48:10Z' } }, { name: 'bbbbbb', spi: null, stamp: { state: 'missing', expiresAt: null }, ready: null }] });
  t.deepEqual(['a', 'b', 'c'].map((name, i) => describeHoldout({ name, spi: [3, 0, null][i] })), ['a on SPI 3', 'b has no key', 'c has an invalid spec']);
});
