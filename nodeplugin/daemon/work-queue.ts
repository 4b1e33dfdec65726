/**
 * One queue for every reason to reconcile (secret, peers, own node, pods, timers, resync).
 *
 * Level-triggered: a run reads the whole current state, so triggers only say "something
 * changed" and coalesce into the next run. At most one run at a time; runs start at least
 * `minIntervalMs` apart, so a burst of watch events costs one reconcile. A failed run is retried
 * with capped exponential backoff (and its reasons carried over); a later success resets it.
 * Timers (`at`) wake the queue at a given time; only the earliest per name is kept.
 */
/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkQueueOptions {
  readonly minIntervalMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Called with the error of a failed run; the run is retried after the backoff. */
  readonly onError?: (err: unknown, attempt: number, retryInMs: number) => void;
  readonly now?: () => number;
  /** Collect triggers but run nothing until resume() (a daemon still starting up). */
  readonly paused?: boolean;
}

export class WorkQueue {
  readonly #run: (reasons: ReadonlySet<string>) => Promise<void>;
  readonly #minInterval: number;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #onError: WorkQueueOptions['onError'];
  readonly #now: () => number;
  #pending = new Set<string>();
  #running: Promise<void> | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #lastStart = -Infinity;
  #failures = 0;
  #retryAt = 0;
  #stopped = false;
  #paused: boolean;
  #idleWaiters: (() => void)[] = [];

  constructor(run: (reasons: ReadonlySet<string>) => Promise<void>, options: WorkQueueOptions = {}) {
    this.#run = run;
    this.#minInterval = options.minIntervalMs ?? 200;
    this.#minBackoff = options.minBackoffMs ?? 1_000;
    this.#maxBackoff = options.maxBackoffMs ?? 60_000;
    this.#onError = options.onError;
    this.#now = options.now ?? Date.now;
    this.#paused = options.paused ?? false;
  }

  /** Start running (what was triggered while paused runs at once). */
  resume(): void {
    this.#paused = false;
    this.#arm();
  }

  /** Ask for a run as soon as the rate limit (and any backoff) allows. */
  trigger(reason: string): void {
    if (this.#stopped) return;
    this.#pending.add(reason);
    this.#arm();
  }

  /** Ask for a run at `at` (ms since epoch); an earlier request under the same name wins. */
  at(name: string, at: number): void {
    if (this.#stopped || !Number.isFinite(at)) return;
    const existing = this.#timers.get(name);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    // setTimeout fires at once for delays past 2^31 - 1 ms (24.8 days): wake up then instead,
    // which costs one early, harmless reconcile.
    const timer = setTimeout(() => {
      this.#timers.delete(name);
      this.trigger(name);
    }, Math.min(Math.max(0, at - this.#now()), MAX_TIMER_MS));
    timer.unref();
    this.#timers.set(name, { at, timer });
  }

  /** Consecutive failed runs (0 after a success). */
  failures(): number {
    return this.#failures;
  }

  /** Resolves once nothing is pending or running (tests, shutdown). */
  idle(): Promise<void> {
    if (!this.#running && this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stop accepting work and wait for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#pending.clear();
    await this.#running;
    this.#notifyIdle();
  }

  #arm(): void {
    if (this.#running || this.#pending.size === 0 || this.#stopped || this.#paused) return;
    const startAt = Math.max(this.#lastStart + this.#minInterval, this.#retryAt);
    const delay = startAt - this.#now();
    if (delay <= 0) {
      this.#start();
      return;
    }
    if (this.#wakeTimer && this.#wakeAt <= startAt) return;
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    this.#wakeAt = startAt;
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#wakeAt = Infinity;
      this.#arm();
    }, delay);
  }

  #start(): void {
    const reasons = this.#pending;
    this.#pending = new Set();
    this.#lastStart = this.#now();
    this.#running = (async () => {
      try {
        await this.#run(reasons);
        this.#failures = 0;
        this.#retryAt = 0;
      } catch (err: unknown) {
        this.#failures++;
        const backoff = Math.min(this.#minBackoff * 2 ** (this.#failures - 1), this.#maxBackoff);
        this.#retryAt = this.#now() + backoff;
        for (const r of reasons) this.#pending.add(r);
        this.#pending.add('retry');
        this.#onError?.(err, this.#failures, backoff);
      }
    })().finally(() => {
      this.#running = undefined;
      if (this.#pending.size === 0) this.#notifyIdle();
      this.#arm();
    });
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
