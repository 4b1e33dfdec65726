/**
 * Desired-versus-actual diff for xfrm, as an ordered list of changes. The order is what makes
 * changes lossless:
 *   1. add new states (and replace changed ones: the kernel cannot rekey a live SA in place),
 *   2. add or atomically update policies, so they only ever point at states that exist,
 *   3. delete stale policies, 4. delete stale states.
 * The caller updates the BPF maps between steps 2 and 3.
 */
import { canonicalIp as ip, parseCidr } from '../../core/ip.js';
import type { Mark, PlannedPolicy, PlannedState } from '../../core/plan.js';
import { describeState } from '../xfrm/errors.js';
import type { XfrmChange, XfrmPolicy, XfrmPolicyInfo, XfrmState, XfrmStateInfo } from '../xfrm/types.js';
import { isOwnedPolicy, isOwnedState } from './ownership.js';

export interface XfrmDiff {
  /** Steps 1 and 2: safe to run first. */
  readonly install: readonly XfrmChange[];
  /** Steps 3 and 4: run after the maps stop pointing at what goes away. */
  readonly remove: readonly XfrmChange[];
  /** Objects already right, for reporting. */
  readonly unchanged: number;
  /** Deletes not made because the kernel could delete another SA instead (see deleteMayHit); key-free, for the report. */
  readonly heldBack: readonly string[];
}

export function toXfrmState(s: PlannedState): XfrmState {
  return {
    family: s.family, src: s.src, dst: s.dst, spi: s.spi, proto: 'esp', mode: 'tunnel', reqid: s.reqid,
    aead: { name: s.aead.name, key: s.aead.key, icvBits: s.aead.icvBits },
    ...(s.mark ? { mark: s.mark } : {}),
    ...(s.outputMark ? { outputMark: s.outputMark } : {}),
  };
}

export function toXfrmPolicy(p: PlannedPolicy): XfrmPolicy {
  return {
    dir: p.dir, selector: { src: p.selector.src, dst: p.selector.dst }, mark: p.mark, action: p.action ?? 'allow',
    tmpls: [{ family: p.tmpl.family, src: p.tmpl.src, dst: p.tmpl.dst, proto: 'esp', mode: 'tunnel', spi: p.tmpl.spi, reqid: p.tmpl.reqid }],
  };
}

const cidr = (c: string): string => parseCidr(c)?.network ?? c;
export const markText = (m: Mark | undefined): string => (m ? `${m.value}/${m.mask}` : '-');

/** The kernel's identity of an SA: (dst, SPI, proto, mark). */
export function stateKey(s: Pick<XfrmState, 'family' | 'dst' | 'spi' | 'proto' | 'mark'>): string {
  return `${slotKey(s)}|${markText(s.mark)}`;
}

/** (family, dst, SPI, proto): the SAs a delete by id chooses among by mark (deleteMayHit). */
export function slotKey(s: Pick<XfrmState, 'family' | 'dst' | 'spi' | 'proto'>): string {
  return `${s.family}|${ip(s.dst)}|${s.spi}|${s.proto}`;
}

/** The kernel's identity of a policy: (dir, selector, mark, type). */
export function policyKey(p: Pick<XfrmPolicy, 'dir' | 'selector' | 'mark' | 'type'>): string {
  return `${p.dir}|${cidr(p.selector.src)}|${cidr(p.selector.dst)}|${markText(p.mark)}|${p.type ?? 'main'}`;
}

function sameMark(a: Mark | undefined, b: Mark | undefined): boolean {
  return markText(a) === markText(b);
}

function sameState(want: XfrmState, have: XfrmState): boolean {
  const a = want.aead, b = have.aead;
  return ip(want.src) === ip(have.src) && want.reqid === have.reqid && want.mode === have.mode &&
    sameMark(want.outputMark, have.outputMark) && a !== undefined && b !== undefined &&
    a.name === b.name && a.icvBits === b.icvBits && Buffer.from(a.key).equals(Buffer.from(b.key));
}

function samePolicy(want: XfrmPolicy, have: XfrmPolicy): boolean {
  if (want.action !== have.action || (want.priority ?? 0) !== (have.priority ?? 0) || want.tmpls.length !== have.tmpls.length) return false;
  return want.tmpls.every((t, i) => {
    const h = have.tmpls[i];
    return h !== undefined && t.family === h.family && ip(t.src) === ip(h.src) && ip(t.dst) === ip(h.dst) &&
      t.proto === h.proto && t.mode === h.mode && t.spi === h.spi && t.reqid === h.reqid && (t.optional ?? false) === (h.optional ?? false);
  });
}

/**
 * Keys and comparisons of objects seen before. Desired objects are immutable and, from a
 * Planner, the same objects from one sync to the next; so are the kernel's from KnownTables.
 * A pair found equal once is equal for good (and the kernel's object ours), which lets a sync
 * at thousands of peers skip comparing what did not change.
 */
const desiredKeys = new WeakMap<object, string>();
const equalTo = new WeakMap<object, object>();

function keyOfDesired<T extends object>(want: T, keyOf: (x: T) => string): string {
  let key = desiredKeys.get(want);
  if (key === undefined) desiredKeys.set(want, (key = keyOf(want)));
  return key;
}

/** Record that `have` is what the kernel made of `want` (KnownTables, after the kernel confirmed an add). */
export function noteInstalled(want: XfrmState | XfrmPolicy, have: XfrmStateInfo | XfrmPolicyInfo): void {
  equalTo.set(want, have);
}

function matches<W extends object, H extends object>(want: W, have: H, same: (w: W, h: H) => boolean): boolean {
  if (!same(want, have)) return false;
  equalTo.set(want, have);
  return true;
}

export interface DiffOptions {
  /**
   * Owned states to leave alone even though the plan does not list them: inbound SAs of an SPI
   * still in its grace period whose key this process never learnt (adopted after a restart).
   */
  readonly keepState?: (s: XfrmStateInfo) => boolean;
}

export function diffXfrm(
  desired: { readonly states: readonly XfrmState[]; readonly policies: readonly XfrmPolicy[] },
  actual: {
    readonly states: readonly XfrmStateInfo[];
    readonly policies: readonly XfrmPolicyInfo[];
    readonly stateIndex?: ReadonlyMap<string, XfrmStateInfo>;
    readonly policyIndex?: ReadonlyMap<string, XfrmPolicyInfo>;
    readonly slotIndex?: ReadonlyMap<string, readonly XfrmStateInfo[]>;
  },
  options: DiffOptions = {},
): XfrmDiff {
  const install: XfrmChange[] = [];
  const removePolicies: XfrmChange[] = [];
  const removeStates: XfrmChange[] = [];
  const heldBack: string[] = [];
  let unchanged = 0;
  let bySlot = actual.slotIndex;
  /** SAs with the (family, dst, SPI, proto) of `s`. */
  const sameSlot = (s: XfrmStateInfo): readonly XfrmStateInfo[] => {
    bySlot ??= slotIndex(actual.states);
    return bySlot.get(slotKey(s)) ?? [];
  };
  /** A delete by the id of `have`, or undefined (reported) when it could hit another SA. */
  const safeDelete = (have: XfrmStateInfo): XfrmChange | undefined => {
    const other = deleteMayHit(have, sameSlot(have));
    if (other === undefined) return { op: 'deleteState', id: idOf(have) };
    heldBack.push(`deleteState held back: ${describeState(have)} shares its (dst, SPI) with ${describeState(other)}, which the kernel could delete instead`);
    return undefined;
  };

  const haveStates = actual.stateIndex ?? new Map(actual.states.map((s) => [stateKey(s), s]));
  const wantStateKeys = new Set<string>();
  for (const want of desired.states) {
    const key = keyOfDesired(want, stateKey);
    wantStateKeys.add(key);
    const have = haveStates.get(key);
    if (have === undefined) install.push({ op: 'addState', state: want });
    else if (equalTo.get(want) === have) unchanged++;
    else if (!isOwnedState(have)) install.push({ op: 'addState', state: want }); // will fail EEXIST: surfaced, never deleted
    else if (matches(want, have, sameState)) unchanged++;
    else {
      const del = safeDelete(have);
      if (del) install.push(del, { op: 'addState', state: want });
    }
  }

  const havePolicies = actual.policyIndex ?? new Map(actual.policies.filter((p) => !p.socket).map((p) => [policyKey(p), p]));
  const wantPolicyKeys = new Set<string>();
  for (const want of desired.policies) {
    const key = keyOfDesired(want, policyKey);
    wantPolicyKeys.add(key);
    const have = havePolicies.get(key);
    if (have === undefined) install.push({ op: 'addPolicy', policy: want });
    else if (equalTo.get(want) === have) unchanged++;
    else if (!isOwnedPolicy(have)) install.push({ op: 'addPolicy', policy: want }); // foreign: EEXIST is reported
    else if (matches(want, have, samePolicy)) unchanged++;
    else install.push({ op: 'updatePolicy', policy: want });
  }

  for (const [key, have] of havePolicies) {
    if (!wantPolicyKeys.has(key) && isOwnedPolicy(have)) {
      removePolicies.push({ op: 'deletePolicy', id: { dir: have.dir, selector: have.selector, ...(have.mark ? { mark: have.mark } : {}), type: have.type } });
    }
  }
  for (const [key, have] of haveStates) {
    if (wantStateKeys.has(key) || !isOwnedState(have) || (options.keepState?.(have) ?? false)) continue;
    const del = safeDelete(have);
    if (del) removeStates.push(del);
  }
  return { install, remove: [...removePolicies, ...removeStates], unchanged, heldBack };
}

/**
 * Another SA that a delete by the id of `s` could remove instead. The kernel deletes the newest
 * SA with that (dst, SPI, proto) whose mark matches, and it matches an SA when
 * (id mark & SA mask) == SA value: an unmarked SA (Kmesh's inbound SAs are unmarked) matches
 * every id. It can be added after our marked SAs on the same (dst, SPI), and a delete of ours
 * would then take it (checked in the project VM with `ip xfrm state add/delete`).
 */
function deleteMayHit(s: XfrmStateInfo, sameSlot: readonly XfrmStateInfo[]): XfrmStateInfo | undefined {
  const lookup = s.mark ? (s.mark.value & s.mark.mask) >>> 0 : 0;
  return sameSlot.find((o) => o !== s && ((lookup & (o.mark?.mask ?? 0)) >>> 0) === (o.mark?.value ?? 0) >>> 0);
}

/** SAs by slotKey. */
export function slotIndex(states: readonly XfrmStateInfo[]): Map<string, XfrmStateInfo[]> {
  const bySlot = new Map<string, XfrmStateInfo[]>();
  for (const s of states) {
    const key = slotKey(s);
    const list = bySlot.get(key);
    if (list) list.push(s);
    else bySlot.set(key, [s]);
  }
  return bySlot;
}

function idOf(s: XfrmState): Extract<XfrmChange, { op: 'deleteState' }>['id'] {
  return { family: s.family, dst: s.dst, spi: s.spi, proto: s.proto, src: s.src, ...(s.mark ? { mark: s.mark } : {}) };
}
