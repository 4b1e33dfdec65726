/**
 * Numbers and struct sizes from the Linux UAPI headers <linux/netlink.h> and <linux/xfrm.h>
 * (x86-64 / any 64-bit ABI: the structs below contain __u64 fields, so they are 8-aligned).
 *
 * Every size here was checked twice: with `offsetof`/`sizeof` against the installed header,
 * and against the running kernel by round-tripping messages (see test/xfrm/ and
 * test/vm/xfrm.vm.test.ts). The kernel rejects a message whose fixed part is shorter than
 * these sizes, so they must stay exact.
 */

/** NETLINK_XFRM, the protocol number of the xfrm configuration socket. */
export const NETLINK_XFRM = 6;

export const AF_INET = 2;
export const AF_INET6 = 10;

export const NLMSG = {
  NOOP: 1,
  ERROR: 2,
  DONE: 3,
  OVERRUN: 4,
} as const;

export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  DUMP_INTR: 0x10,
  ROOT: 0x100,
  MATCH: 0x200,
  DUMP: 0x300,
  /** In an NLMSG_ERROR: the echoed request was capped (NETLINK_CAP_ACK). */
  CAPPED: 0x100,
  /** In an NLMSG_ERROR: extended-ack TLVs follow. */
  ACK_TLVS: 0x200,
} as const;

/** struct nlattr header */
export const NLA_HDRLEN = 4;
/** Extended ack TLV types (enum nlmsgerr_attrs). */
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2, COOKIE: 3 } as const;

export const XFRM_MSG = {
  NEWSA: 0x10,
  DELSA: 0x11,
  GETSA: 0x12,
  NEWPOLICY: 0x13,
  DELPOLICY: 0x14,
  GETPOLICY: 0x15,
  UPDPOLICY: 0x19,
  UPDSA: 0x1a,
} as const;

export const XFRMA = {
  TMPL: 5,
  SA: 6,
  POLICY: 7,
  LTIME_VAL: 9,
  REPLAY_VAL: 10,
  SRCADDR: 13,
  LASTUSED: 15,
  POLICY_TYPE: 16,
  ALG_AEAD: 18,
  MARK: 21,
  PAD: 27,
  SET_MARK: 29,
  SET_MARK_MASK: 30,
  IF_ID: 31,
} as const;

export const XFRM_POLICY_DIR = { in: 0, out: 1, fwd: 2 } as const;
/** Per-socket policies are reported with dir + XFRM_POLICY_MAX. */
export const XFRM_POLICY_MAX = 3;
export const XFRM_POLICY_ACTION = { allow: 0, block: 1 } as const;
export const XFRM_POLICY_TYPE = { main: 0, sub: 1 } as const;

export const XFRM_MODE = { transport: 0, tunnel: 1, ro: 2, in_trigger: 3, beet: 4 } as const;

/** IP protocol numbers xfrm uses as "proto" of a state or template. */
export const XFRM_PROTO = { esp: 50, ah: 51, comp: 108, ipip: 4, ipv6: 41, routing: 43, dstopts: 60 } as const;

/**
 * ~(u64)0: "no limit" in struct xfrm_lifetime_cfg (XFRM_INF), as each of its 32-bit halves:
 * all ones, so the same in either byte order.
 */
export const XFRM_INF_HALF = 0xffffffff;

/** Sizes of the fixed structs, in bytes (64-bit ABI). */
export const SIZE = {
  /** xfrm_address_t: a union of __be32 and __be32[4] */
  address: 16,
  /** struct xfrm_selector */
  selector: 56,
  /** struct xfrm_id */
  id: 24,
  /** struct xfrm_lifetime_cfg: 8 x __u64 */
  lifetimeCfg: 64,
  /** struct xfrm_lifetime_cur: 4 x __u64 */
  lifetimeCur: 32,
  /** struct xfrm_stats */
  stats: 12,
  /** struct xfrm_usersa_info (220 bytes of fields, padded to 8) */
  usersaInfo: 224,
  /** struct xfrm_usersa_id */
  usersaId: 24,
  /** struct xfrm_userpolicy_info */
  userpolicyInfo: 168,
  /** struct xfrm_userpolicy_id */
  userpolicyId: 64,
  /** struct xfrm_user_tmpl */
  userTmpl: 64,
  /** struct xfrm_algo_aead without its key */
  algoAead: 72,
  /** struct xfrm_mark */
  mark: 8,
  /** struct xfrm_userpolicy_type */
  userpolicyType: 6,
} as const;

/** Field offsets inside the structs above. */
export const OFF = {
  selector: {
    daddr: 0, saddr: 16, dport: 32, dportMask: 34, sport: 36, sportMask: 38,
    family: 40, prefixlenD: 42, prefixlenS: 43, proto: 44, ifindex: 48, user: 52,
  },
  id: { daddr: 0, spi: 16, proto: 20 },
  usersaInfo: {
    sel: 0, id: 56, saddr: 80, lft: 96, curlft: 160, stats: 192, seq: 204, reqid: 208,
    family: 212, mode: 214, replayWindow: 215, flags: 216,
  },
  usersaId: { daddr: 0, spi: 16, family: 20, proto: 22 },
  userpolicyInfo: {
    sel: 0, lft: 56, curlft: 120, priority: 152, index: 156, dir: 160, action: 161, flags: 162, share: 163,
  },
  userpolicyId: { sel: 0, index: 56, dir: 60 },
  userTmpl: {
    id: 0, family: 24, saddr: 28, reqid: 44, mode: 48, share: 49, optional: 50, aalgos: 52, ealgos: 56, calgos: 60,
  },
  algoAead: { name: 0, keyLen: 64, icvLen: 68, key: 72 },
  lifetimeCur: { bytes: 0, packets: 8, addTime: 16, useTime: 24 },
} as const;

/** Length of xfrm_algo*.alg_name, including the terminating NUL. */
export const ALG_NAME_LEN = 64;
