/**
 * Waiting in tests for something that happens asynchronously (a watch event, a file reload, a
 * packet counter, a server coming up): check it repeatedly until it holds or a deadline passes,
 * instead of sleeping for a fixed time. The caller asserts on the outcome, so a condition that
 * never holds fails the test.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** Give up after this long (default 5 s). */
  readonly timeoutMs?: number;
  /** Pause between checks (default 20 ms). */
  readonly intervalMs?: number;
}

/** Resolves true as soon as `condition` holds, false if it still does not at the deadline. */
export async function eventually(condition: () => boolean | Promise<boolean>, options: PollOptions = {}): Promise<boolean> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(options.intervalMs ?? 20);
  }
}
