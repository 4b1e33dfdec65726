/**
 * The node plugin's `/status` document, read by `kmesh-ipsec status`: per peer the SPI used in
 * each direction and its stamp's validity, object counts, whether a rotation is in progress,
 * and the last reconcile. Pure: built from what the daemon already holds. No key material.
 */
import type { IpsecKey } from '../../core/secret.js';
import type { SyncResult } from '../node-datapath.js';
import type { AttachmentReport } from './attachments.js';
import type { Condition } from './conditions.js';
import type { RunRecord } from './node-plugin.js';
import type { PeerVerdict } from './peer-trust.js';

export interface PeerStatus {
  readonly name: string;
  /** used: encrypted both ways; skipped: trusted but not encrypted to (reason); refused: not trusted (reason). */
  readonly state: 'used' | 'skipped' | 'refused';
  readonly reason?: string;
  readonly addresses: readonly string[];
  /** SPI the peer advertises (what this node sends with). */
  readonly advertisedSpi?: number;
  /** SPI of the outbound SA(s) towards it; undefined when there is none. */
  readonly outSpi?: number;
  /** SPIs accepted inbound from it. */
  readonly inSpis: readonly number[];
  readonly stampExpiresAt?: string;
  /** Pod CIDRs of the peer kept on an old SA or blocked instead of sent in clear. */
  readonly protected?: readonly { readonly cidr: string; readonly action: 'kept' | 'blocked' }[];
}

export interface NodeStatus {
  readonly node: string;
  readonly ready: boolean;
  readonly strict: boolean;
  readonly secret: string;
  readonly keys: { readonly current: number; readonly known: readonly number[]; readonly advertised: number; readonly accepted: readonly number[] };
  /** True while more than one inbound SPI is accepted or a peer is on another SPI. */
  readonly rotationInProgress: boolean;
  readonly peers: readonly PeerStatus[];
  readonly kernel: {
    readonly states: { readonly in: number; readonly out: number };
    readonly policies: { readonly in: number; readonly out: number; readonly fwd: number; readonly block: number };
  };
  readonly pods: { readonly managed: number; readonly podInterfaces: readonly string[]; readonly problems: readonly { readonly pod: string; readonly reason: string }[] };
  readonly nodeInterfaces: readonly string[];
  /** Non-zero counters of /proc/net/xfrm_stat (the whole network namespace). */
  readonly xfrmErrors: Readonly<Record<string, number>>;
  readonly conditions: readonly Condition[];
  readonly stampExpiresAt?: string;
  readonly factsProblem?: string;
  readonly runs: number;
  readonly lastRun?: RunRecord;
}

export interface StatusInput {
  readonly node: string;
  readonly ready: boolean;
  readonly strict: boolean;
  readonly secret: string;
  readonly keys: ReadonlyMap<number, IpsecKey>;
  readonly advertisedSpi: number;
  readonly sync: SyncResult | undefined;
  readonly verdicts: readonly PeerVerdict[];
  readonly conditions: readonly Condition[];
  readonly stampExpiresAt: number | undefined;
  readonly lastRun: RunRecord | undefined;
  readonly attachments: AttachmentReport | undefined;
  readonly managedPods: number;
  readonly factsProblem: string | undefined;
  readonly runs: number;
  readonly xfrmStat: Readonly<Record<string, number>>;
}

export function buildStatus(input: StatusInput): NodeStatus {
  const plan = input.sync?.plan;
  const skipped = new Map((plan?.skipped ?? []).map((s) => [s.peer, s.reason]));
  const peers: PeerStatus[] = input.verdicts.map((v) => {
    const out = plan?.states.find((s) => s.direction === 'out' && s.peer === v.name);
    const inSpis = [...new Set((plan?.states ?? []).filter((s) => s.direction === 'in' && s.peer === v.name).map((s) => s.spi))].sort((a, b) => a - b);
    const kept = (input.sync?.protectedCidrs ?? []).filter((c) => c.peer === v.name).map((c) => ({ cidr: c.cidr, action: c.action }));
    const common = { name: v.name, inSpis, ...(out ? { outSpi: out.spi } : {}), ...(kept.length > 0 ? { protected: kept } : {}) };
    if (!v.used) return { ...common, state: 'refused', reason: `${v.reason}: ${v.message}`, addresses: v.claimed?.spec.addresses ?? [] };
    const reason = skipped.get(v.name);
    return {
      ...common,
      state: reason === undefined ? 'used' : 'skipped',
      ...(reason === undefined ? {} : { reason }),
      addresses: v.peer.spec.addresses,
      advertisedSpi: v.peer.spec.spi,
      stampExpiresAt: new Date(v.claims.exp * 1000).toISOString(),
    };
  });
  const current = Math.max(0, ...input.keys.keys());
  const accepted = input.sync?.acceptedSpis ?? [];
  const count = <T>(xs: readonly T[] | undefined, pred: (x: T) => boolean): number => (xs ?? []).filter(pred).length;
  return {
    node: input.node,
    ready: input.ready,
    strict: input.strict,
    secret: input.secret,
    keys: { current, known: [...input.keys.keys()].sort((a, b) => a - b), advertised: input.advertisedSpi, accepted },
    rotationInProgress: accepted.length > 1 || peers.some((p) => p.state === 'used' && p.advertisedSpi !== current),
    peers,
    kernel: {
      states: { in: count(plan?.states, (s) => s.direction === 'in'), out: count(plan?.states, (s) => s.direction === 'out') },
      policies: {
        in: count(plan?.policies, (p) => p.dir === 'in'),
        out: count(plan?.policies, (p) => p.dir === 'out' && p.action !== 'block'),
        fwd: count(plan?.policies, (p) => p.dir === 'fwd'),
        block: count(plan?.policies, (p) => p.action === 'block'),
      },
    },
    pods: { managed: input.managedPods, podInterfaces: input.attachments?.podInterfaces ?? [], problems: input.attachments?.problems ?? [] },
    nodeInterfaces: input.attachments?.nodeInterfaces ?? [],
    xfrmErrors: Object.fromEntries(Object.entries(input.xfrmStat).filter(([, v]) => v > 0)),
    conditions: input.conditions,
    ...(input.stampExpiresAt === undefined ? {} : { stampExpiresAt: new Date(input.stampExpiresAt).toISOString() }),
    ...(input.factsProblem === undefined ? {} : { factsProblem: input.factsProblem }),
    runs: input.runs,
    ...(input.lastRun === undefined ? {} : { lastRun: input.lastRun }),
  };
}
