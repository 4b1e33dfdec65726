/**
 * FakeDatapathMaps: the two BPF maps the tc programs read (kmi_peer_marks, kmi_peer_cidrs),
 * in memory, behind the reconciler's DatapathMapsPort. It does what BpfMapsPort + NodeBpf do
 * (nodeplugin/kernel-ports.ts, nodeplugin/bpf/index.ts; checked on the host's real maps by
 * test/bpf/adapter.test.ts):
 * - peer addresses are canonicalised first (BpfMapsPort), then every entry is validated with
 *   the real key encoders (nodeplugin/bpf/layout.ts: canonical CIDRs only, no IPv4-mapped IPv6,
 *   marks must be inbound state marks): invalid input throws before any entry changes;
 * - each setter makes the map equal to its argument, writing only entries that differ
 *   (maps.ts applyDiff), so `entryWrites` counts what the real map would see;
 * - the maps outlive the process: a crash (crash.ts) keeps their content.
 *
 * Fault injection: failWhen (a setter throws and changes nothing), crashOn (the process dies in
 * a setter, before or after its write).
 */
import { canonicalIp } from '../../core/ip.js';
import { peerIdFromInboundMark } from '../../core/marks.js';
import { encodeAddress, encodeCidr } from '../../nodeplugin/bpf/layout.js';
import type { DatapathMapsPort, MapsWriteOptions } from '../../nodeplugin/reconciler/reconciler.js';
import { CrashSwitch } from './crash.js';
import type { FaultOptions } from './fake-xfrm-kernel.js';
import type { Timeline } from './timeline.js';

export type MapsOperation = 'setPeerMarks' | 'setPeerCidrs';

export interface FakeDatapathMapsOptions {
  /** Shared with the other ports of the same simulated process (default: its own). */
  readonly crash?: CrashSwitch;
  /** Where to record writes in order with the other fakes (default: nowhere). */
  readonly timeline?: Timeline;
}

/** One setter call, with its result. */
export interface LoggedMapsCall {
  readonly op: MapsOperation;
  /**
   * Whether the caller asked to read the map back (`verify`, the default). The fake always
   * compares with its content; the real adapter reads every entry only then.
   */
  readonly verify: boolean;
  /** Entries added, changed or deleted by the call (0 when refused or already equal). */
  readonly entryWrites: number;
  readonly error?: string;
}

interface MapsFault {
  readonly op: MapsOperation;
  readonly error: Error;
  remaining: number;
}

export class FakeDatapathMaps implements DatapathMapsPort {
  readonly #crash: CrashSwitch;
  readonly #timeline: Timeline | undefined;
  readonly #marks = new Map<string, number>();
  readonly #cidrs = new Set<string>();
  readonly #log: LoggedMapsCall[] = [];
  readonly #faults: MapsFault[] = [];
  #crashOn: { readonly op: MapsOperation; readonly afterWrite: boolean } | undefined;

  constructor(options: FakeDatapathMapsOptions = {}) {
    this.#crash = options.crash ?? new CrashSwitch();
    this.#timeline = options.timeline;
  }

  setPeerMarks(marks: ReadonlyMap<string, number>, options: MapsWriteOptions = {}): Promise<void> {
    return this.#call('setPeerMarks', options, () => {
      const want = new Map<string, number>();
      for (const [address, mark] of marks) {
        const key = encodeAddress(canonicalIp(address)).address;
        if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff || peerIdFromInboundMark(mark) === undefined) {
          throw new RangeError(`peer ${address}: mark ${String(mark)} is not an inbound state mark ((peerId << 16) | 0xd0)`);
        }
        want.set(key, mark);
      }
      return () => {
        const stale = [...this.#marks.keys()].filter((a) => !want.has(a));
        const changed = [...want].filter(([a, m]) => this.#marks.get(a) !== m);
        for (const a of stale) this.#marks.delete(a);
        for (const [a, m] of changed) this.#marks.set(a, m);
        return stale.length + changed.length;
      };
    });
  }

  setPeerCidrs(cidrs: readonly string[], options: MapsWriteOptions = {}): Promise<void> {
    return this.#call('setPeerCidrs', options, () => {
      const want = new Set(cidrs.map((c) => encodeCidr(c).cidr));
      return () => {
        const stale = [...this.#cidrs].filter((c) => !want.has(c));
        const added = [...want].filter((c) => !this.#cidrs.has(c));
        for (const c of stale) this.#cidrs.delete(c);
        for (const c of added) this.#cidrs.add(c);
        return stale.length + added.length;
      };
    });
  }

  // ----- inspection -----

  /** kmi_peer_marks: canonical peer address -> inbound state mark, in address order. */
  get peerMarks(): Map<string, number> {
    return new Map([...this.#marks].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** kmi_peer_cidrs, sorted. */
  get peerCidrs(): string[] {
    return [...this.#cidrs].sort();
  }

  get log(): readonly LoggedMapsCall[] {
    return [...this.#log];
  }

  /** Map entries added, changed or deleted so far: 0 means the maps saw no write. */
  get entryWrites(): number {
    return this.#log.reduce((n, l) => n + l.entryWrites, 0);
  }

  clearLog(): void {
    this.#log.length = 0;
  }

  // ----- fault injection -----

  /** Calls of `op` throw `error` before changing anything. */
  failWhen(op: MapsOperation, error: Error = new Error(`${op}: simulated bpf(2) failure`), options: FaultOptions = {}): void {
    this.#faults.push({ op, error, remaining: options.times ?? Infinity });
  }

  /** The process dies in the next call of `op`, before its write or (afterWrite) right after it. */
  crashOn(op: MapsOperation, options: { readonly afterWrite?: boolean } = {}): void {
    this.#crashOn = { op, afterWrite: options.afterWrite ?? false };
  }

  clearFaults(): void {
    this.#faults.length = 0;
    this.#crashOn = undefined;
  }

  // ----- internals -----

  /** `prepare` validates everything and returns the write, which returns the entries it changed. */
  #call(op: MapsOperation, options: MapsWriteOptions, prepare: () => () => number): Promise<void> {
    const verify = options.verify ?? true;
    return Promise.resolve().then(() => {
      this.#crash.check(op);
      const crash = this.#crashOn?.op === op ? this.#crashOn : undefined;
      if (crash) this.#crashOn = undefined;
      if (crash && !crash.afterWrite) throw this.#crash.trip(`before ${op}`);
      const fault = this.#faults.find((f) => f.op === op && f.remaining > 0);
      try {
        if (fault) {
          fault.remaining--;
          throw fault.error;
        }
        const entryWrites = prepare()();
        this.#log.push({ op, verify, entryWrites });
        this.#timeline?.record(`maps:${op}`);
      } catch (err: unknown) {
        this.#log.push({ op, verify, entryWrites: 0, error: err instanceof Error ? err.message : String(err) });
        this.#timeline?.record(`maps:${op} failed`);
        throw err;
      }
      if (crash) throw this.#crash.trip(`after ${op}`);
    });
  }
}
