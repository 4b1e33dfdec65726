/**
 * Domain types of the xfrm adapter. Addresses are strings both ways (dotted quad or IPv6 text
 * in, canonical text out: RFC 5952 for IPv6); selectors are CIDR strings. Families use the
 * project's `IpFamily` (4 | 6) so plans from core/plan.ts map over field by field.
 *
 * States decoded from the kernel carry their key bytes: never log an XfrmState as a whole, use
 * describeState() (errors.ts), which omits them.
 */
import type { IpFamily } from '../../core/ip.js';

export type { IpFamily };

/** A mark and its mask, as in struct xfrm_mark. */
export interface XfrmMark {
  readonly value: number;
  readonly mask: number;
}

/** Protocols an SA / template can have; unknown numbers decode as `proto-N`. */
export type XfrmProto = 'esp' | 'ah' | 'comp' | 'ipip' | 'ipv6' | 'routing' | 'dstopts' | `proto-${number}`;

/** XFRM_MODE_*; unknown numbers decode as `mode-N`. */
export type XfrmMode = 'transport' | 'tunnel' | 'ro' | 'in_trigger' | 'beet' | `mode-${number}`;

export type XfrmPolicyDir = 'in' | 'out' | 'fwd';
export type XfrmPolicyAction = 'allow' | 'block';
export type XfrmPolicyType = 'main' | 'sub';

/**
 * Traffic selector. `src`/`dst` are CIDRs of one family (`0.0.0.0/0`, `10.244.1.0/24`,
 * `::/0`). Address bytes are sent exactly as written (host bits are not cleared): the kernel
 * compares selectors byte for byte on delete/get, so a selector read from a dump can be
 * passed back unchanged.
 */
export interface XfrmSelector {
  readonly src: string;
  readonly dst: string;
  /** Upper-layer protocol number; omitted or 0 for any. */
  readonly proto?: number;
  /** Ports (full 16-bit mask); omitted or 0 for any. */
  readonly srcPort?: number;
  readonly dstPort?: number;
  /** Interface index; omitted or 0 for any. */
  readonly ifindex?: number;
}

export interface XfrmAead {
  /** Crypto API name, e.g. `rfc4106(gcm(aes))`. */
  readonly name: string;
  /** Key material (for rfc4106: AES key followed by the 4-byte salt). Never log it. */
  readonly key: Uint8Array;
  /** ICV length in bits. */
  readonly icvBits: number;
}

/** An SA to install, or one read back. */
export interface XfrmState {
  /** Family of `src`/`dst` (the outer addresses). */
  readonly family: IpFamily;
  readonly src: string;
  readonly dst: string;
  /** Host-order SPI (sent big-endian). */
  readonly spi: number;
  readonly proto: XfrmProto;
  readonly mode: XfrmMode;
  readonly reqid: number;
  readonly aead?: XfrmAead;
  /** Input/lookup mark: the SA only matches packets whose mark & mask == value. */
  readonly mark?: XfrmMark;
  /** Output mark (XFRMA_SET_MARK/_MASK) set on packets this SA produced. */
  readonly outputMark?: XfrmMark;
  /** Defaults to "any" of the state's family. */
  readonly selector?: XfrmSelector;
  /** Anti-replay window in packets (0..255); default 0 (iproute2's and Kmesh's default). */
  readonly replayWindow?: number;
}

/** Lifetime counters of an SA (struct xfrm_lifetime_cur). */
export interface XfrmLifetimeCurrent {
  readonly bytes: number;
  readonly packets: number;
  /** Unix seconds. */
  readonly addTime: number;
  /** Unix seconds; 0 if never used. */
  readonly useTime: number;
}

/** An SA as the kernel reports it. */
export interface XfrmStateInfo extends XfrmState {
  readonly selector: XfrmSelector;
  readonly replayWindow: number;
  /** XFRMA_LTIME_VAL (or the struct's curlft when absent). */
  readonly current: XfrmLifetimeCurrent;
  /** struct xfrm_stats */
  readonly stats: { readonly replayWindow: number; readonly replay: number; readonly integrityFailed: number };
  /** XFRM_STATE_* flags. */
  readonly flags: number;
  /** Other attributes the codec does not interpret (e.g. ALG_CRYPT), by type number. */
  readonly otherAttributes: readonly number[];
}

/** Identifies an SA for get/delete: (dst, SPI, proto, mark) is the kernel's key. */
export interface XfrmStateId {
  readonly family: IpFamily;
  readonly dst: string;
  readonly spi: number;
  readonly proto: XfrmProto;
  /** Must equal the state's mark for marked states; omit for unmarked ones. */
  readonly mark?: XfrmMark;
  /** Only informative (used in error descriptions). */
  readonly src?: string;
}

export interface XfrmTemplate {
  /** Family of the template's tunnel addresses. */
  readonly family: IpFamily;
  /** Tunnel source; the any-address (`0.0.0.0` / `::`) accepts any source. */
  readonly src: string;
  readonly dst: string;
  readonly proto: XfrmProto;
  readonly mode: XfrmMode;
  /** 0 matches any SPI. */
  readonly spi: number;
  readonly reqid: number;
  /** iproute2 `level use` (true) vs `level required` (false, the default). */
  readonly optional?: boolean;
}

export interface XfrmPolicy {
  readonly dir: XfrmPolicyDir;
  readonly selector: XfrmSelector;
  readonly mark?: XfrmMark;
  readonly priority?: number;
  readonly action: XfrmPolicyAction;
  readonly tmpls: readonly XfrmTemplate[];
  /** Defaults to `main`. */
  readonly type?: XfrmPolicyType;
}

/** A policy as the kernel reports it. */
export interface XfrmPolicyInfo extends XfrmPolicy {
  readonly priority: number;
  readonly type: XfrmPolicyType;
  /** Kernel-assigned index. */
  readonly index: number;
  /** True for per-socket policies (reported with dir >= XFRM_POLICY_MAX). */
  readonly socket: boolean;
  readonly flags: number;
}

/**
 * Identifies a policy for get/delete: (dir, selector, mark, type) compared exactly, or the
 * kernel-assigned index when given (the selector is then ignored, but dir, mark and type must
 * still match).
 */
export interface XfrmPolicyId {
  readonly dir: XfrmPolicyDir;
  readonly selector: XfrmSelector;
  readonly mark?: XfrmMark;
  readonly type?: XfrmPolicyType;
  readonly index?: number;
}

/** Kind of a write operation; also the `operation` of an XfrmError. */
export type XfrmOperation =
  | 'addState' | 'updateState' | 'deleteState' | 'getState' | 'dumpStates'
  | 'addPolicy' | 'updatePolicy' | 'deletePolicy' | 'getPolicy' | 'dumpPolicies';

/** One change of a batch. */
export type XfrmChange =
  | { readonly op: 'addState'; readonly state: XfrmState }
  | { readonly op: 'updateState'; readonly state: XfrmState }
  | { readonly op: 'deleteState'; readonly id: XfrmStateId }
  | { readonly op: 'addPolicy'; readonly policy: XfrmPolicy }
  | { readonly op: 'updatePolicy'; readonly policy: XfrmPolicy }
  | { readonly op: 'deletePolicy'; readonly id: XfrmPolicyId };
