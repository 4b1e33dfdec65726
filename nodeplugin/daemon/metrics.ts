/**
 * Prometheus metrics of the node plugin, in a registry of its own. Names follow Cilium's where
 * the meaning is the same (xfrm errors from /proc/net/xfrm_stat, SAs and policies by direction)
 * so existing alerts translate. Gauges that describe the last reconcile are set by the daemon;
 * kernel counters are read at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const PREFIX = 'kmesh_ipsec_node_';

export interface ScrapeSources {
  /** /proc/net/xfrm_stat as name -> value. */
  xfrmStat(): Promise<Record<string, number>>;
  /** Per-program packet counters from the BPF maps. */
  bpfCounters(): Record<'pod' | 'node', Record<string, number>> | undefined;
}

export class NodePluginMetrics {
  readonly registry = new Registry();

  readonly peers = new Gauge({
    name: `${PREFIX}peers`,
    help: 'Peers by state: used, refused (reason = stamp failure, invalid-spec, no-jwks) or skipped (used but not encrypted to, e.g. no key for its SPI).',
    labelNames: ['state', 'reason'] as const,
    registers: [this.registry],
  });
  readonly xfrmStates = new Gauge({
    name: `${PREFIX}xfrm_states`,
    help: 'Our xfrm states by direction after the last reconcile.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly xfrmPolicies = new Gauge({
    name: `${PREFIX}xfrm_policies`,
    help: 'Our xfrm policies by direction and action after the last reconcile.',
    labelNames: ['direction', 'action'] as const,
    registers: [this.registry],
  });
  readonly spi = new Gauge({
    name: `${PREFIX}spi`,
    help: 'SPI by kind: current (newest key), advertised (in the KmeshNodeInfo).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly acceptedSpis = new Gauge({
    name: `${PREFIX}accepted_spis`,
    help: 'Inbound SPIs accepted (more than one during a rotation grace period).',
    registers: [this.registry],
  });
  readonly keys = new Gauge({
    name: `${PREFIX}keys`,
    help: 'Key versions held in memory.',
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: `${PREFIX}reconcile_duration_seconds`,
    help: 'Duration of a reconcile (kernel dump, plan, diff, apply).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: `${PREFIX}reconcile_errors_total`,
    help: 'Reconciles that failed as a whole or had kernel changes refused.',
    registers: [this.registry],
  });
  readonly kernelWrites = new Counter({
    name: `${PREFIX}kernel_writes_total`,
    help: 'Kernel writes by kind: xfrm (state/policy changes), map (BPF map entries), tc (filter attach/detach).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly secretLoads = new Counter({
    name: `${PREFIX}secret_loads_total`,
    help: 'Loads of the mounted IPsec Secret by result: accepted, unchanged, missing, or refused reasons (malformed, spi-backwards, spi-reused).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly stampExpiry = new Gauge({
    name: `${PREFIX}stamp_expiry_timestamp_seconds`,
    help: 'When the validity stamp of this node\'s own KmeshNodeInfo expires; 0 when it has none.',
    registers: [this.registry],
  });
  readonly podAttachments = new Gauge({
    name: `${PREFIX}pods`,
    help: 'Managed pods on this node by state: attached (pod program on its veth) or unresolved (interface not found).',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly publishes = new Counter({
    name: `${PREFIX}nodeinfo_writes_total`,
    help: 'Writes of this node\'s KmeshNodeInfo by what: create, update (spec), restamp, status; result success or the HTTP code.',
    labelNames: ['what', 'result'] as const,
    registers: [this.registry],
  });

  constructor(sources: ScrapeSources, options: { processMetrics?: boolean } = {}) {
    const xfrmErrors = new Gauge({
      name: 'kmesh_ipsec_xfrm_error',
      help: 'Counters of /proc/net/xfrm_stat by name (the whole network namespace, not only our SAs); any increase is a dropped packet.',
      labelNames: ['error'] as const,
      registers: [this.registry],
      collect: async () => {
        xfrmErrors.reset();
        for (const [name, value] of Object.entries(await sources.xfrmStat())) xfrmErrors.set({ error: name }, value);
      },
    });
    const bpfPackets = new Gauge({
      name: `${PREFIX}bpf_packets`,
      help: 'Packet counters of the tc programs since their maps were created (program pod or node).',
      labelNames: ['program', 'counter'] as const,
      registers: [this.registry],
      collect: () => {
        const c = sources.bpfCounters();
        if (!c) return;
        for (const program of ['pod', 'node'] as const) for (const [counter, value] of Object.entries(c[program])) bpfPackets.set({ program, counter }, value);
      },
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }
}

/** Parse /proc/net/xfrm_stat ("XfrmInError    0" lines). */
export function parseXfrmStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(\d+)\s*$/.exec(line.trim());
    if (m?.[1] && m[2]) out[m[1]] = Number(m[2]);
  }
  return out;
}
