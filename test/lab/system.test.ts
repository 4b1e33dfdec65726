// What `lab down` relies on to find processes: pid plus start time, and Node processes naming a file in the lab directory.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRunning, nodeProcessesUsing, processStartTime, stopProcess } from '../../lab/system.js';

const dir = mkdtempSync(join(tmpdir(), 'kmesh-lab-procs-'));
test.after.always(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('Node processes with an argument inside the directory are found; a shell mentioning the directory is not', async (t) => {
  const ours = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', join(dir, 'nodes', 'node1', 'kubeconfig')], { stdio: 'ignore' });
  const shell = spawn('sh', ['-c', 'sleep 60', join(dir, 'x')], { stdio: 'ignore' });
  const mentions = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', '--dir', dir], { stdio: 'ignore' });
  try {
    await sleep(300);
    t.deepEqual(nodeProcessesUsing(dir), [ours.pid]);
    t.deepEqual(nodeProcessesUsing(`${dir}/`), [ours.pid]);
  } finally {
    for (const c of [ours, shell, mentions]) c.kill('SIGKILL');
  }
});

test('a recorded process is told apart from a reused pid by its start time, and stopped for sure', async (t) => {
  const child = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await sleep(200);
  const pid = child.pid ?? 0;
  const proc = { pid, startTime: processStartTime(pid) ?? '' };
  t.true(isRunning(proc));
  t.false(isRunning({ pid, startTime: `${proc.startTime}0` }), 'same pid, another start: not ours');
  const exited = new Promise((r) => child.once('exit', r));
  // It ignores SIGTERM: SIGKILL follows after the grace period.
  await stopProcess(proc, 'SIGTERM', 300);
  await exited;
  t.false(isRunning(proc));
  t.is(processStartTime(999_999_999), undefined);
});
