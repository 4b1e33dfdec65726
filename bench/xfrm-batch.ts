/**
 * What batching buys: installing N xfrm policies with one applyBatch (few sendmsg calls,
 * per-message acks) against one request per policy awaited in turn, the round trip per
 * object that batching avoids. Same socket, same policies, same run; the result is a ratio.
 *
 *   node dist/bench/xfrm-batch.js [policies=2000] [rounds=5]
 *
 * Needs root. It re-runs itself under `unshare --net`, so it works in a fresh network
 * namespace and never touches the host's xfrm tables.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { XfrmSocket } from '../nodeplugin/xfrm/index.js';
import type { XfrmChange, XfrmPolicy } from '../nodeplugin/xfrm/types.js';
import { ENCRYPT_MARK, MARK_MASK, OWNED_REQID } from '../core/marks.js';

const N = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 5);

if (process.env.KMESH_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['--net', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit', env: { ...process.env, KMESH_BENCH_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

const policy = (i: number): XfrmPolicy => ({
  dir: 'out', action: 'allow', mark: { value: ENCRYPT_MARK, mask: MARK_MASK },
  selector: { src: '0.0.0.0/0', dst: `10.${(i >> 8) & 255}.${i & 255}.0/24` },
  tmpls: [{ family: 4, src: '192.168.0.1', dst: `192.168.${(i >> 8) & 255}.${(i & 255) || 1}`, proto: 'esp', mode: 'tunnel', spi: 1, reqid: OWNED_REQID }],
});
const adds: XfrmChange[] = Array.from({ length: N }, (_, i) => ({ op: 'addPolicy', policy: policy(i) }));
const dels: XfrmChange[] = adds.map((c) => (c.op === 'addPolicy' ? { op: 'deletePolicy', id: { dir: 'out', selector: c.policy.selector, mark: c.policy.mark } } : c));

const sock = XfrmSocket.open();
async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
const check = (results: { ok: boolean }[]): void => {
  if (!results.every((r) => r.ok)) throw new Error('a change failed');
};

const batch: number[] = [];
const single: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const before = sock.stats.sendCalls;
  batch.push(await timed(async () => { check(await sock.applyBatch(adds)); }));
  const batchCalls = sock.stats.sendCalls - before;
  check(await sock.applyBatch(dels));
  single.push(await timed(async () => { for (const c of adds) check(await sock.applyBatch([c])); }));
  check(await sock.applyBatch(dels));
  if (r === 0) console.log(`batch: ${N} policies in ${batchCalls} sendmsg calls; one-by-one: ${N} calls`);
}
sock.close();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const b = median(batch), s = median(single);
console.log(`median of ${ROUNDS}: batch ${b.toFixed(1)} ms, one request per policy ${s.toFixed(1)} ms`);
console.log(`ratio (one-by-one / batch): ${(s / b).toFixed(2)}x`);
