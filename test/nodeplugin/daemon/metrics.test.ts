/**
 * parseXfrmStat and the scrape-time collectors of NodePluginMetrics.
 */
import test from 'ava';
import { NodePluginMetrics, parseXfrmStat } from '../../../nodeplugin/daemon/metrics.js';

// The layout of /proc/net/xfrm_stat (name, whitespace, decimal value), as Linux prints it.
const XFRM_STAT = `XfrmInError             \t0
XfrmInBufferError       \t0
XfrmInNoStates          \t12
XfrmInStateProtoError   \t3
XfrmOutPolBlock         \t18446744073709551615
`;

test('parseXfrmStat reads every counter by name', (t) => {
  const stat = parseXfrmStat(XFRM_STAT);
  t.deepEqual(Object.keys(stat), ['XfrmInError', 'XfrmInBufferError', 'XfrmInNoStates', 'XfrmInStateProtoError', 'XfrmOutPolBlock']);
  t.is(stat.XfrmInNoStates, 12);
  t.is(stat.XfrmInStateProtoError, 3);
  t.is(stat.XfrmOutPolBlock, 2 ** 64, 'a 64-bit counter becomes the nearest number');
});

test('parseXfrmStat skips lines that are not "Name value"', (t) => {
  t.deepEqual(parseXfrmStat(''), {});
  t.deepEqual(parseXfrmStat('\n\nXfrmA 1\r\nXfrmB -2\nXfrmC 3 4\nXfrmD x\n  XfrmE   5  \nXfrm-F 6\n7\n'), { XfrmA: 1, XfrmE: 5 });
});

test('xfrm counters are read at scrape time, and counters that disappear are dropped', async (t) => {
  let stat: Record<string, number> = { XfrmInNoStates: 4, XfrmOutPolBlock: 1 };
  const m = new NodePluginMetrics({ xfrmStat: () => Promise.resolve(stat), bpfCounters: () => undefined }, { processMetrics: false });
  const first = await m.registry.metrics();
  t.regex(first, /^kmesh_ipsec_xfrm_error\{error="XfrmInNoStates"\} 4$/m);
  t.regex(first, /^kmesh_ipsec_xfrm_error\{error="XfrmOutPolBlock"\} 1$/m);
  t.notRegex(first, /^kmesh_ipsec_node_bpf_packets\{/m, 'no BPF maps: no samples');
  t.notRegex(first, /process_cpu/);
  stat = { XfrmInNoStates: 6 };
  const second = await m.registry.metrics();
  t.regex(second, /^kmesh_ipsec_xfrm_error\{error="XfrmInNoStates"\} 6$/m);
  t.notRegex(second, /XfrmOutPolBlock/);
});

test('BPF counters per program, and process metrics by default', async (t) => {
  const m = new NodePluginMetrics({
    xfrmStat: () => Promise.resolve({}),
    bpfCounters: () => ({ pod: { marked: 10, passed: 2 }, node: { esp_marked: 7 } }),
  });
  const text = await m.registry.metrics();
  t.regex(text, /^kmesh_ipsec_node_bpf_packets\{program="pod",counter="marked"\} 10$/m);
  t.regex(text, /^kmesh_ipsec_node_bpf_packets\{program="pod",counter="passed"\} 2$/m);
  t.regex(text, /^kmesh_ipsec_node_bpf_packets\{program="node",counter="esp_marked"\} 7$/m);
  t.regex(text, /^kmesh_ipsec_node_process_cpu_seconds_total /m);
  m.publishes.inc({ what: 'restamp', result: '409' });
  t.regex(await m.registry.metrics(), /^kmesh_ipsec_node_nodeinfo_writes_total\{what="restamp",result="409"\} 1$/m);
});
