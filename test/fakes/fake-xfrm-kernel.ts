/**
 * FakeXfrmKernel: an in-memory SAD and SPD behind the reconciler's XfrmPort, for tests that need
 * no root and no kernel. It follows the kernel's rules as far as this project relies on them;
 * each rule below says where it was checked against a real kernel:
 *
 * - Input is encoded with the real codec first (encodeChange), so a change the real adapter
 *   would refuse (bad address, out-of-range field) rejects the whole batch before anything is
 *   applied, as NetlinkXfrmPort does. Objects are stored as the codec decodes them, so dumps
 *   have the real adapter's shapes (canonical addresses, selectors, absent marks).
 * - SA identity is (family, dst, SPI, proto, mark), src is not part of it: an add with another
 *   src but the same identity fails EEXIST (project VM, kernel 6.1, `ip xfrm state add`).
 * - Marks are matched as the kernel's __xfrm_state_lookup does: an SA matches the lookup value
 *   v (the new SA's or the id's mark value & mask; 0 when unmarked) when
 *   (v & sa.mask) == sa.value. So an UNMARKED SA matches every mark: once it exists, no SA for
 *   the same (dst, SPI, proto) can be added (EEXIST), while two marked ones with distinct marks
 *   coexist (test/vm/xfrm.vm.test.ts; shared KERNEL.md "Traps"). An unmarked SA added after a
 *   marked one succeeds, and a delete by the marked id then finds the newest match, the
 *   unmarked SA (project VM, `ip xfrm state add/delete`). A delete without a mark does not find
 *   a marked SA (ESRCH), nor does a delete with another mark (same VM check).
 * - deleteState of a missing SA fails ESRCH (test/xfrm/netlink.test.ts).
 * - updateState of a missing SA fails ESRCH (project VM, `ip xfrm state update` -> "No such
 *   process"); of an existing one it keeps the algorithm and key (test/vm/xfrm.vm.test.ts) and
 *   only takes the output mark (kernel source, xfrm_state_update; not checked here).
 * - SAs carry `current` like XfrmStateInfo: bytes/packets 0 (no traffic here), addTime the
 *   fake clock in Unix seconds at the add, useTime 0.
 * - Policy identity is (dir, type, selector, mark): the selector compared as written (a host-bits
 *   CIDR is another policy than its network form), the mark by value and mask
 *   (test/xfrm/netlink.test.ts "another mark is another policy", project VM `ip xfrm policy`).
 *   addPolicy of an existing identity fails EEXIST, updatePolicy creates or replaces, deletePolicy
 *   of a missing one fails ENOENT (test/xfrm/netlink.test.ts). By index, the selector is ignored
 *   but dir, mark and type must match (test/xfrm/netlink.test.ts, getPolicy by index).
 * - Policy indexes are allocated as the kernel's xfrm_gen_index (multiples of 8 plus the dir),
 *   kept by an update (kernel source; not checked here).
 * - Dumps list the newest object first, as the kernel walks its lists (project VM: `ip xfrm
 *   state/policy list` order). Per-socket policies are in the dump with `socket: true`, as the
 *   real adapter reports them (policy-codec decodePolicy: dir >= XFRM_POLICY_MAX); netlink changes
 *   never match them. They can only be planted with seedPolicy(p, { socket: true }).
 * - apply() applies in order and returns one outcome per change; a refused change does not stop
 *   the rest (XfrmSocket.applyBatch, test/xfrm/netlink.test.ts "per-change results"). Errors
 *   are the real XfrmError with the real key-free description (describeChange).
 *
 * Fault injection: failWhen (a change fails with an errno, no effect), failDump (a dump rejects),
 * crashAfter (the process dies after n changes of an apply: see crash.ts). Every change it is
 * asked to make is logged in order with its result, so tests can assert "no kernel writes".
 */
import { constants as osConstants } from 'node:os';
import { canonicalIp, parseCidr } from '../../core/ip.js';
import type { ChangeOutcome, XfrmPort } from '../../nodeplugin/reconciler/reconciler.js';
import { decodePolicy } from '../../nodeplugin/xfrm/policy-codec.js';
import { encodeChange } from '../../nodeplugin/xfrm/request-codec.js';
import { decodeState } from '../../nodeplugin/xfrm/state-codec.js';
import { XfrmError, XfrmTransportError, describeChange, errnoName } from '../../nodeplugin/xfrm/index.js';
import { XFRM_POLICY_DIR, XFRM_POLICY_MAX } from '../../nodeplugin/xfrm/uapi.js';
import type {
  XfrmChange, XfrmMark, XfrmPolicy, XfrmPolicyId, XfrmPolicyInfo, XfrmSelector, XfrmState, XfrmStateId, XfrmStateInfo,
} from '../../nodeplugin/xfrm/types.js';
import { CrashSwitch } from './crash.js';
import type { Timeline } from './timeline.js';

export const ERRNO = {
  ENOENT: osConstants.errno.ENOENT,
  ESRCH: osConstants.errno.ESRCH,
  EEXIST: osConstants.errno.EEXIST,
  EINVAL: osConstants.errno.EINVAL,
  ENOMEM: osConstants.errno.ENOMEM,
  EPERM: osConstants.errno.EPERM,
} as const;

export interface FakeXfrmKernelOptions {
  /** Wall clock in ms, read for each SA's `current.addTime` (default Date.now). */
  readonly clock?: () => number;
  /** Shared with the other ports of the same simulated process (default: its own). */
  readonly crash?: CrashSwitch;
  /** Where to record dumps and changes in order with the other fakes (default: nowhere). */
  readonly timeline?: Timeline;
}

/** One change the kernel was asked to make. */
export interface LoggedChange {
  readonly change: XfrmChange;
  /** The errno it was refused with; absent when it was applied. */
  readonly errno?: number;
}

export interface FaultOptions {
  /** How many times the fault fires before it is spent (default: until clearFaults). */
  readonly times?: number;
}

interface ChangeFault {
  readonly match: (change: XfrmChange) => boolean;
  readonly errno: number;
  remaining: number;
}

interface DumpFault {
  readonly what: 'states' | 'policies';
  readonly error: Error;
  remaining: number;
}

interface PlannedCrash {
  /** Applies to let through first (0: the next apply is the one that crashes). */
  appliesBefore: number;
  readonly after: number;
}

const NO_MARK: XfrmMark = { value: 0, mask: 0 };

/** The value the kernel looks SAs up with: mark & mask of the new SA or id, 0 when unmarked. */
const lookupValue = (mark: XfrmMark | undefined): number => (mark ? (mark.value & mark.mask) >>> 0 : 0);

/** __xfrm_state_lookup's mark test. */
const markMatches = (lookup: number, mark: XfrmMark | undefined): boolean => {
  const m = mark ?? NO_MARK;
  return ((lookup & m.mask) >>> 0) === m.value >>> 0;
};

/** A selector as the kernel compares it: bytes as written (no host-bit clearing), ports, proto, ifindex. */
function selectorKey(sel: XfrmSelector): string {
  const side = (cidr: string): string => {
    const p = parseCidr(cidr);
    return p ? `${p.canonical}/${p.prefixLength}` : cidr;
  };
  return [side(sel.src), side(sel.dst), sel.proto ?? 0, sel.srcPort ?? 0, sel.dstPort ?? 0, sel.ifindex ?? 0].join(' ');
}

const sameMark = (a: XfrmMark | undefined, b: XfrmMark | undefined): boolean => {
  const x = a ?? NO_MARK, y = b ?? NO_MARK;
  return x.value >>> 0 === y.value >>> 0 && x.mask >>> 0 === y.mask >>> 0;
};

const samePolicyIdentity = (p: XfrmPolicyInfo, id: Pick<XfrmPolicy, 'dir' | 'selector' | 'mark' | 'type'>): boolean =>
  p.dir === id.dir && p.type === (id.type ?? 'main') && sameMark(p.mark, id.mark) && selectorKey(p.selector) === selectorKey(id.selector);

export class FakeXfrmKernel implements XfrmPort {
  readonly #clock: () => number;
  readonly #crash: CrashSwitch;
  readonly #timeline: Timeline | undefined;
  /** Oldest first; dumps and lookups go newest first. */
  readonly #states: XfrmStateInfo[] = [];
  readonly #policies: XfrmPolicyInfo[] = [];
  readonly #log: LoggedChange[] = [];
  readonly #changeFaults: ChangeFault[] = [];
  readonly #dumpFaults: DumpFault[] = [];
  #plannedCrash: PlannedCrash | undefined;
  #indexGenerator = 0;
  #dumps = 0;

  constructor(options: FakeXfrmKernelOptions = {}) {
    this.#clock = options.clock ?? Date.now;
    this.#crash = options.crash ?? new CrashSwitch();
    this.#timeline = options.timeline;
  }

  // ----- XfrmPort -----

  dumpStates(): Promise<readonly XfrmStateInfo[]> {
    return this.#dump('states', () => this.states);
  }

  dumpPolicies(): Promise<readonly XfrmPolicyInfo[]> {
    return this.#dump('policies', () => this.policies);
  }

  apply(changes: readonly XfrmChange[]): Promise<readonly ChangeOutcome[]> {
    // Settles in a later microtask, as I/O would; a bad change rejects, never throws.
    return Promise.resolve().then(() => this.#applyNow(changes));
  }

  #applyNow(changes: readonly XfrmChange[]): readonly ChangeOutcome[] {
    this.#crash.check('xfrm apply');
    // As the real adapter: the whole batch is encoded before any of it is sent.
    const payloads = changes.map((c) => encodeChange(c).payload);
    const crashAfter = this.#takePlannedCrash();
    const outcomes: ChangeOutcome[] = [];
    for (const [i, change] of changes.entries()) {
      if (i === crashAfter) throw this.#crash.trip(`after ${i} of ${changes.length} xfrm changes`);
      const errno = this.#takeChangeFault(change) ?? this.#applyOne(change, payloads[i] as Uint8Array);
      this.#log.push(errno === 0 ? { change } : { change, errno });
      this.#timeline?.record(`xfrm:${change.op}${errno === 0 ? '' : ` ${errnoName(errno)}`}`);
      outcomes.push(errno === 0 ? { change } : { change, error: new XfrmError({ errno, operation: change.op, object: describeChange(change) }) });
    }
    // Killed after the kernel applied everything but before the replies were read.
    if (crashAfter !== undefined) throw this.#crash.trip(`after all ${changes.length} xfrm changes`);
    return outcomes;
  }

  // ----- inspection (no faults, not logged) -----

  /** Every SA, newest first, as a dump would return it (copies). */
  get states(): XfrmStateInfo[] {
    return this.#states.map((s) => structuredClone(s)).reverse();
  }

  /** Every policy, newest first, per-socket ones included (copies). */
  get policies(): XfrmPolicyInfo[] {
    return this.#policies.map((p) => structuredClone(p)).reverse();
  }

  /** Every change apply() was asked to make, in order, with its result. */
  get log(): readonly LoggedChange[] {
    return [...this.#log];
  }

  /** Changes the kernel applied (refused ones do not count). */
  get writes(): number {
    return this.#log.filter((l) => l.errno === undefined).length;
  }

  /** Dump calls answered or refused so far. */
  get dumps(): number {
    return this.#dumps;
  }

  clearLog(): void {
    this.#log.length = 0;
  }

  // ----- seeding (another owner's objects, or a previous run's): kernel rules apply, not logged -----

  /** Adds an SA as `ip xfrm state add` would; throws the XfrmError the kernel would answer. */
  seedState(state: XfrmState): void {
    const change: XfrmChange = { op: 'addState', state };
    this.#throwIfRefused(change, this.#applyOne(change, encodeChange(change).payload));
  }

  /** Adds a policy; `socket: true` plants a per-socket policy (netlink cannot touch those). */
  seedPolicy(policy: XfrmPolicy, options: { readonly socket?: boolean } = {}): void {
    const change: XfrmChange = { op: 'addPolicy', policy };
    const payload = encodeChange(change).payload;
    if (options.socket === true) {
      const decoded = decodePolicy(payload);
      this.#policies.push({ ...decoded, socket: true, index: this.#nextIndex(XFRM_POLICY_DIR[decoded.dir] + XFRM_POLICY_MAX) });
    } else {
      this.#throwIfRefused(change, this.#applyOne(change, payload));
    }
  }

  // ----- fault injection -----

  /** Changes matching `match` are refused with `errno` and have no effect. */
  failWhen(match: (change: XfrmChange) => boolean, errno: number, options: FaultOptions = {}): void {
    this.#changeFaults.push({ match, errno, remaining: options.times ?? Infinity });
  }

  /** The next dump(s) of `what` reject with `error` (default: a transport error, as a socket failure). */
  failDump(what: 'states' | 'policies', error: Error = new XfrmTransportError(`dump ${what}: simulated socket failure`), options: FaultOptions = {}): void {
    this.#dumpFaults.push({ what, error, remaining: options.times ?? 1 });
  }

  /**
   * The process dies during an apply: that apply makes its first `n` changes, then rejects with
   * SimulatedCrash, and the shared CrashSwitch refuses every later call until restart().
   * `inApply` picks which apply from now (1 = the next one, 2 = the one after it, ...).
   * n >= the batch length: everything is applied, then the process dies before reading replies.
   */
  crashAfter(n: number, options: { readonly inApply?: number } = {}): void {
    this.#plannedCrash = { after: n, appliesBefore: (options.inApply ?? 1) - 1 };
  }

  clearFaults(): void {
    this.#changeFaults.length = 0;
    this.#dumpFaults.length = 0;
    this.#plannedCrash = undefined;
  }

  // ----- internals -----

  #dump<T>(what: 'states' | 'policies', read: () => T): Promise<T> {
    return Promise.resolve().then(() => {
      this.#crash.check(`dump ${what}`);
      this.#dumps++;
      this.#timeline?.record(`xfrm:dump ${what}`);
      const fault = this.#dumpFaults.find((f) => f.what === what && f.remaining > 0);
      if (fault) {
        fault.remaining--;
        throw fault.error;
      }
      return read();
    });
  }

  #takePlannedCrash(): number | undefined {
    const planned = this.#plannedCrash;
    if (planned === undefined) return undefined;
    if (planned.appliesBefore > 0) {
      planned.appliesBefore--;
      return undefined;
    }
    this.#plannedCrash = undefined;
    return planned.after;
  }

  #takeChangeFault(change: XfrmChange): number | undefined {
    const fault = this.#changeFaults.find((f) => f.remaining > 0 && f.match(change));
    if (fault === undefined) return undefined;
    fault.remaining--;
    return fault.errno;
  }

  #throwIfRefused(change: XfrmChange, errno: number): void {
    if (errno !== 0) throw new XfrmError({ errno, operation: change.op, object: describeChange(change) });
  }

  /** Applies one encoded change; returns 0 or the errno the kernel would answer. */
  #applyOne(change: XfrmChange, payload: Uint8Array): number {
    switch (change.op) {
      case 'addState': {
        const state = decodeState(payload);
        if (this.#findState(state, lookupValue(state.mark)) >= 0) return ERRNO.EEXIST;
        this.#states.push({ ...state, current: { bytes: 0, packets: 0, addTime: Math.floor(this.#clock() / 1000), useTime: 0 } });
        return 0;
      }
      case 'updateState': {
        const state = decodeState(payload);
        const i = this.#findState(state, lookupValue(state.mark));
        const have = this.#states[i];
        if (have === undefined) return ERRNO.ESRCH;
        if (state.outputMark) this.#states[i] = { ...have, outputMark: state.outputMark };
        return 0;
      }
      case 'deleteState': {
        const i = this.#findState(change.id, lookupValue(change.id.mark));
        if (i < 0) return ERRNO.ESRCH;
        this.#states.splice(i, 1);
        return 0;
      }
      case 'addPolicy': {
        const policy = decodePolicy(payload);
        if (this.#findPolicy(policy) >= 0) return ERRNO.EEXIST;
        this.#policies.push({ ...policy, index: this.#nextIndex(XFRM_POLICY_DIR[policy.dir]) });
        return 0;
      }
      case 'updatePolicy': {
        const policy = decodePolicy(payload);
        const i = this.#findPolicy(policy);
        const index = this.#policies[i]?.index ?? this.#nextIndex(XFRM_POLICY_DIR[policy.dir]);
        if (i >= 0) this.#policies.splice(i, 1);
        this.#policies.push({ ...policy, index });
        return 0;
      }
      case 'deletePolicy': {
        const i = this.#findPolicy(change.id);
        if (i < 0) return ERRNO.ENOENT;
        this.#policies.splice(i, 1);
        return 0;
      }
    }
  }

  /** Index (into #states) of the newest SA the kernel's lookup would find, or -1. */
  #findState(id: Pick<XfrmStateId, 'family' | 'dst' | 'spi' | 'proto'>, lookup: number): number {
    const dst = canonicalIp(id.dst);
    for (let i = this.#states.length - 1; i >= 0; i--) {
      const s = this.#states[i] as XfrmStateInfo;
      if (s.family === id.family && s.dst === dst && s.spi === id.spi && s.proto === id.proto && markMatches(lookup, s.mark)) return i;
    }
    return -1;
  }

  /** Index (into #policies) of the netlink-visible policy with this identity (or index), or -1. */
  #findPolicy(id: XfrmPolicyId | XfrmPolicyInfo): number {
    return this.#policies.findIndex((p) => {
      if (p.socket) return false;
      if (id.index !== undefined && id.index !== 0) return p.index === id.index && p.dir === id.dir && p.type === (id.type ?? 'main') && sameMark(p.mark, id.mark);
      return samePolicyIdentity(p, id);
    });
  }

  #nextIndex(dirNumber: number): number {
    this.#indexGenerator += 8;
    return this.#indexGenerator | dirNumber;
  }
}
