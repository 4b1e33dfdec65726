/**
 * WorkQueue with an injected clock. The queue's timers are real, but every delay it computes
 * comes from the injected clock: while the clock stands still a rate-limited or backed-off run
 * cannot start however often its timer fires, and it starts once the test moves the clock.
 * So the tests assert which runs happen, with which reasons, in which order, never how long
 * anything took.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkQueue, type WorkQueueOptions } from '../../../nodeplugin/daemon/work-queue.js';

/** Lets the queue's timers fire several times; with a frozen clock a run starting here is a bug. */
const settle = () => sleep(40);

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}
function gate(): Gate {
  let open = () => {};
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

function harness(options: WorkQueueOptions = {}, failing: (run: number) => boolean = () => false) {
  const clock = { now: 1_000_000 };
  const runs: string[][] = [];
  const errors: { message: string; attempt: number; retryInMs: number }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const errorWaiters: { n: number; resolve: () => void }[] = [];
  let active = 0;
  let maxActive = 0;
  let hold: Gate | undefined;
  const queue = new WorkQueue(async (reasons) => {
    active++;
    maxActive = Math.max(maxActive, active);
    runs.push([...reasons].sort());
    const n = runs.length;
    for (const w of waiters.filter((x) => x.n <= n)) w.resolve();
    try {
      if (hold) await hold.promise;
      if (failing(n)) throw new Error(`run ${n} failed`);
    } finally {
      active--;
    }
  }, {
    now: () => clock.now,
    onError: (err, attempt, retryInMs) => {
      errors.push({ message: err instanceof Error ? err.message : String(err), attempt, retryInMs });
      for (const w of errorWaiters.filter((x) => x.n <= errors.length)) w.resolve();
    },
    ...options,
  });
  return {
    queue, clock, runs, errors,
    maxActive: () => maxActive,
    /** Resolves once `n` runs have started. */
    started: (n: number) => (runs.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    /** Resolves once `n` runs have failed (the retry time is then fixed by the clock). */
    failed: (n: number) => (errors.length >= n ? Promise.resolve() : new Promise<void>((resolve) => errorWaiters.push({ n, resolve }))),
    /** Runs starting from now wait for the returned gate. */
    holdRuns: () => (hold = gate()),
    /** Runs starting from now no longer wait. */
    unhold: () => { hold = undefined; },
  };
}

test('triggers while paused coalesce into one run with every reason', async (t) => {
  const h = harness({ paused: true, minIntervalMs: 0 });
  for (const r of ['secret', 'peers', 'secret', 'pods']) h.queue.trigger(r);
  await settle();
  t.deepEqual(h.runs, []);
  let idle = false;
  const idled = h.queue.idle().then(() => { idle = true; });
  await settle();
  t.false(idle, 'idle() waits while triggers are pending');
  h.queue.resume();
  await idled;
  t.deepEqual(h.runs, [['peers', 'pods', 'secret']]);
  await h.queue.stop();
});

test('resume without pending triggers runs nothing', async (t) => {
  const h = harness({ paused: true });
  h.queue.resume();
  await settle();
  t.deepEqual(h.runs, []);
  await h.queue.stop();
});

test('runs never overlap: triggers during a run coalesce into exactly one follow-up run', async (t) => {
  const h = harness({ minIntervalMs: 0 });
  const gate1 = h.holdRuns();
  h.queue.trigger('a');
  await h.started(1);
  for (const r of ['b', 'c', 'b']) h.queue.trigger(r);
  await settle();
  t.is(h.runs.length, 1, 'no second run while the first is in progress');
  const gate2 = h.holdRuns();
  gate1.open();
  await h.started(2);
  t.deepEqual(h.runs, [['a'], ['b', 'c']]);
  gate2.open();
  await h.queue.idle();
  t.is(h.maxActive(), 1);
  t.is(h.runs.length, 2);
  await h.queue.stop();
});

test('runs start at least minIntervalMs apart by the clock', async (t) => {
  const h = harness({ minIntervalMs: 10 });
  h.queue.trigger('first');
  await h.queue.idle();
  h.queue.trigger('second');
  await settle();
  t.is(h.runs.length, 1, 'the clock has not moved: still inside the interval');
  h.clock.now += 9;
  await settle();
  t.is(h.runs.length, 1, '9 ms of 10');
  h.queue.trigger('third'); // joins the pending run, does not arm a second timer
  h.clock.now += 1;
  await h.started(2);
  await h.queue.idle();
  t.deepEqual(h.runs, [['first'], ['second', 'third']]);
  await h.queue.stop();
});

test('a failed run is retried after a doubling backoff capped at the maximum, with its reasons and "retry"', async (t) => {
  const h = harness({ minIntervalMs: 0, minBackoffMs: 4, maxBackoffMs: 12 }, (n) => n <= 4);
  h.queue.trigger('secret');
  for (const [n, backoff] of [[2, 4], [3, 8], [4, 12], [5, 12]] as const) {
    await h.failed(n - 1);
    const retryInMs = h.errors[n - 2]?.retryInMs;
    if (retryInMs !== backoff) {
      await h.queue.stop();
      return t.fail(`failure ${n - 1}: retry in ${String(retryInMs)} ms, expected ${backoff}`);
    }
    await settle();
    t.is(h.runs.length, n - 1, `run ${n} waits for its backoff`);
    t.is(h.queue.failures(), n - 1);
    h.clock.now += backoff - 1;
    await settle();
    t.is(h.runs.length, n - 1, `run ${n}: 1 ms short of ${backoff}`);
    h.clock.now += 1;
    await h.started(n);
  }
  await h.queue.idle();
  t.deepEqual(h.errors, [
    { message: 'run 1 failed', attempt: 1, retryInMs: 4 },
    { message: 'run 2 failed', attempt: 2, retryInMs: 8 },
    { message: 'run 3 failed', attempt: 3, retryInMs: 12 },
    { message: 'run 4 failed', attempt: 4, retryInMs: 12 },
  ]);
  t.deepEqual(h.runs, [['secret'], ['retry', 'secret'], ['retry', 'secret'], ['retry', 'secret'], ['retry', 'secret']]);
  t.is(h.queue.failures(), 0, 'a success resets the count');
  await h.queue.stop();
});

test('a success resets the backoff: the next failure waits the minimum again', async (t) => {
  const h = harness({ minIntervalMs: 0, minBackoffMs: 4, maxBackoffMs: 100 }, (n) => n === 1 || n === 2 || n === 4);
  h.queue.trigger('a');
  await h.failed(1);
  h.clock.now += 4;
  await h.failed(2);
  h.clock.now += 8;
  await h.started(3);
  await h.queue.idle();
  t.is(h.queue.failures(), 0);
  h.queue.trigger('b');
  await h.failed(3);
  h.clock.now += 4;
  await h.started(5);
  await h.queue.idle();
  t.deepEqual(h.errors.map((e) => e.retryInMs), [4, 8, 4]);
  t.deepEqual(h.runs, [['a'], ['a', 'retry'], ['a', 'retry'], ['b'], ['b', 'retry']]);
  await h.queue.stop();
});

test('triggers during a backoff join the retry run', async (t) => {
  const h = harness({ minIntervalMs: 0, minBackoffMs: 5 }, (n) => n === 1);
  h.queue.trigger('a');
  await h.failed(1);
  h.queue.trigger('b');
  await settle();
  t.is(h.runs.length, 1);
  h.clock.now += 5;
  await h.started(2);
  await h.queue.idle();
  t.deepEqual(h.runs, [['a'], ['a', 'b', 'retry']]);
  await h.queue.stop();
});

test('a failed run without onError is still retried', async (t) => {
  const h = harness({ minIntervalMs: 0, minBackoffMs: 3, onError: undefined }, (n) => n === 1);
  h.queue.trigger('a');
  while (h.queue.failures() === 0) await sleep(1);
  h.clock.now += 3;
  await h.started(2);
  await h.queue.idle();
  t.deepEqual(h.runs, [['a'], ['a', 'retry']]);
  t.deepEqual(h.errors, [], 'the harness onError was replaced by undefined');
  await h.queue.stop();
});

test('idle() resolves at once when nothing is pending or running, and not during a backoff', async (t) => {
  const h = harness({ minIntervalMs: 0, minBackoffMs: 5 }, (n) => n === 1);
  await h.queue.idle();
  h.queue.trigger('a');
  let idle = false;
  const idled = h.queue.idle().then(() => { idle = true; });
  await h.failed(1);
  await settle();
  t.false(idle, 'the retry is still pending');
  h.clock.now += 5;
  await idled;
  t.is(h.runs.length, 2);
  await h.queue.stop();
});

test('at() wakes the queue with its name; the earliest request per name wins', async (t) => {
  const h = harness({ minIntervalMs: 0 });
  const now = h.clock.now;
  // A later request does not replace an earlier one...
  h.queue.at('grace', now + 5);
  h.queue.at('grace', now + 1e9);
  // ...and an earlier one replaces a later one.
  h.queue.at('stamp', now + 1e9);
  h.queue.at('stamp', now + 5);
  // Never: ignored.
  h.queue.at('never', Infinity);
  h.queue.at('never', Number.NaN);
  // Each timer is set once for `at - now()` and triggers when it fires: 5 ms here. Had the
  // later request replaced the earlier (or been ignored in favour of it), that name would not
  // run before 1e9 ms.
  await h.started(1);
  while (new Set(h.runs.flat()).size < 2) await h.started(h.runs.length + 1);
  await h.queue.idle();
  t.deepEqual([...new Set(h.runs.flat())].sort(), ['grace', 'stamp']);
  t.false(h.runs.flat().includes('never'));
  // A fired timer is forgotten: the same name can be set again, here in the past (fires at once).
  h.queue.at('grace', now - 10);
  await h.started(h.runs.length + 1);
  await h.queue.idle();
  t.deepEqual(h.runs.at(-1), ['grace']);
  await h.queue.stop();
});

test('stop() waits for the run in progress, then refuses triggers and timers', async (t) => {
  const h = harness({ minIntervalMs: 0 });
  const held = h.holdRuns();
  h.queue.trigger('a');
  await h.started(1);
  h.queue.trigger('b');
  h.queue.at('timer', h.clock.now);
  let stopped = false;
  const stopping = h.queue.stop().then(() => { stopped = true; });
  await settle();
  t.false(stopped, 'stop waits for the run');
  held.open();
  await stopping;
  h.queue.trigger('c');
  h.queue.at('later', h.clock.now);
  await settle();
  t.deepEqual(h.runs, [['a']], 'nothing pending at stop, nor after it, runs');
  await h.queue.idle();
});

test('stop() cancels a run waiting for its interval and releases idle() waiters', async (t) => {
  const h = harness({ minIntervalMs: 10 });
  h.queue.trigger('a');
  await h.queue.idle();
  h.queue.trigger('b');
  h.queue.at('timer', h.clock.now + 1e6);
  const idled = h.queue.idle();
  await h.queue.stop();
  await idled;
  h.clock.now += 1e7;
  await settle();
  t.deepEqual(h.runs, [['a']]);
});

test('defaults: a first trigger runs at once with the real clock', async (t) => {
  const reasons: string[][] = [];
  const queue = new WorkQueue(async (r) => { reasons.push([...r]); await Promise.resolve(); });
  queue.trigger('start');
  await queue.idle();
  t.deepEqual(reasons, [['start']]);
  t.is(queue.failures(), 0);
  await queue.stop();
});
