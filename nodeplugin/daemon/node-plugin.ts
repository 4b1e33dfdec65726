/**
 * The node plugin daemon: connects the cluster to the kernel layer on one node.
 *
 * Inputs: the mounted Secret (keys), the JWKS file (whom to trust), the Node (own facts), every
 * KmeshNodeInfo (peers), the pods on this node and their namespaces (who is encrypted). Every
 * change of any of them, the timers the kernel layer asks for (grace expiry, stamp half-life,
 * peer stamp expiry) and a periodic resync go through one coalescing work queue into one
 * reconcile:
 *
 *   own facts -> peer trust -> NodeDatapath.sync (plan, protect, reconcile) -> tc attachments
 *   -> publish own KmeshNodeInfo (SPI only once its inbound side is installed) -> conditions
 *
 * SIGTERM (stop()) leaves every kernel object in place: the next instance adopts them without
 * changes. `cleanupNode` (cleanup.ts) is the uninstall path.
 */
import { join } from 'node:path';
import type { KubeConfig, V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KMESH_NAMESPACE, SECRET_DATA_KEY } from '../../core/constants.js';
import type { KmeshNodeInfoSpec } from '../../core/nodeinfo.js';
import { formatErrors } from '../../core/result.js';
import { DEFAULT_CLOCK_SKEW_SECONDS, type StampKeyRing, importStampJwks } from '../../core/stamp.js';
import { SupervisedInformer } from '../../lib/supervised-informer.js';
import { WatchedFiles } from '../../lib/watched-files.js';
import { readBoundedFile, readProblem } from '../../lib/bounded-read.js';
import { type NodeBpf, ensureMaps } from '../bpf/index.js';
import { BpfMapsPort, NetlinkXfrmPort } from '../kernel-ports.js';
import { NodeDatapath, type SyncMemory, type SyncResult } from '../node-datapath.js';
import type { DatapathMapsPort, XfrmPort } from '../reconciler/reconciler.js';
import { XfrmSocket } from '../xfrm/index.js';
import { type AttachmentReport, Attachments, type ManagedPod, managedPods } from './attachments.js';
import { type Condition, computeConditions } from './conditions.js';
import { NodeEvents } from './events.js';
import { interfacesCarrying, podInterface } from './host-links.js';
import { KeyRing } from './key-ring.js';
import { type InformerTuning, type NodeInfoObject, NodePluginApi } from './kube-api.js';
import { NodePluginMetrics, parseXfrmStat } from './metrics.js';
import { type ListeningEndpoint, listenEndpoint } from './http.js';
import { type OwnNode, ownNodeFrom } from './node-facts.js';
import { PeerTrust, type PeerVerdict } from './peer-trust.js';
import { NodeInfoPublisher } from './publisher.js';
import { type NodeStatus, buildStatus } from './status.js';
import { WorkQueue } from './work-queue.js';

export interface NodePluginOptions {
  readonly nodeName: string;
  /** Directory of the mounted Secret; the key is in its `ipSec` file (Kmesh's layout). */
  readonly secretDir: string;
  readonly stampJwksFile: string;
  /** This node's bpffs pin directory. */
  readonly pinDir: string;
  /** Interfaces for the node program; default: every interface carrying an InternalIP. */
  readonly nodeInterfaces?: readonly string[];
  readonly graceMs: number;
  readonly publishJitterMs: number;
  readonly resyncIntervalMs: number;
  readonly strict: boolean;
  readonly bootIdFile: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly filePollIntervalMs?: number;
  readonly clockSkewSeconds?: number;
  readonly informers?: InformerTuning;
  /** Pause between installs and removals of one reconcile (reconciler default 1 s). */
  readonly drainMs?: number;
  /** Longest wait at start for the KmeshNodeInfo cache before the Secret is read. */
  readonly startupSyncWaitMs?: number;
}

export interface NodePluginDeps {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** The xfrm tables; default a netlink socket in this process's network namespace. */
  readonly xfrm?: XfrmPort;
  /** Directory of kmi_pod.o / kmi_node.o; default the package's. */
  readonly bpfObjectDir?: string;
  readonly now?: () => number;
}

/** Per-run record, for /status and tests. */
export interface RunRecord {
  readonly at: number;
  readonly durationMs: number;
  readonly reasons: readonly string[];
  readonly ok: boolean;
  readonly error?: string;
  readonly sync?: Pick<SyncResult['report'], 'installed' | 'removed' | 'unchanged' | 'removalsDeferred' | 'errors'>;
  readonly kernelWrites: { readonly xfrm: number; readonly map: number; readonly tc: number };
  /** Kernel reads: xfrm table dumps, BPF map read-backs (only the first run and resyncs make them). */
  readonly kernelReads: { readonly xfrmDumps: number; readonly mapReads: number };
}

export class NodePlugin {
  readonly #o: NodePluginOptions;
  readonly #deps: NodePluginDeps;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly metrics: NodePluginMetrics;
  readonly #keys = new KeyRing();
  readonly #trust = new PeerTrust();
  readonly #api: NodePluginApi;
  readonly #events: NodeEvents;
  readonly #publisher: NodeInfoPublisher;
  readonly #queue: WorkQueue;
  readonly #nodeInfos: SupervisedInformer<NodeInfoObject>;
  readonly #pods: SupervisedInformer<V1Pod>;
  readonly #namespaces: SupervisedInformer<V1Namespace>;
  #socket: XfrmSocket | undefined;
  #bpf: NodeBpf | undefined;
  #datapath: NodeDatapath | undefined;
  #attachments: Attachments | undefined;
  #endpoint: ListeningEndpoint | undefined;
  #secretFiles: WatchedFiles | undefined;
  #jwksFiles: WatchedFiles | undefined;
  #ring: StampKeyRing | undefined;
  #ringVersion = 0;
  #secretState = 'not read yet';
  #own: OwnNode | undefined;
  #factsProblem: string | undefined;
  #memory: SyncMemory | undefined;
  #verdicts: PeerVerdict[] | undefined;
  #refusalSeen = new Map<string, string>();
  #managed: ManagedPod[] = [];
  #attachReport: AttachmentReport | undefined;
  #problemsSeen = new Set<string>();
  #conditions: Condition[] = [];
  #advertised = 0;
  #stampExpiresAt: number | undefined;
  #lastRun: RunRecord | undefined;
  #lastRunEnd = 0;
  #ready = false;
  #runs = 0;
  #writes = { xfrm: 0, map: 0, tc: 0 };
  #reads = { xfrmDumps: 0, mapReads: 0 };
  /**
   * What /status shows of the last reconcile, replaced as a whole at its end: a status read
   * in the middle of a run must not mix this run's peers with the previous run's conditions.
   */
  #shown: Pick<Parameters<typeof buildStatus>[0], 'advertisedSpi' | 'sync' | 'verdicts' | 'conditions' | 'stampExpiresAt' | 'attachments' | 'managedPods'> = {
    advertisedSpi: 0, sync: undefined, verdicts: [], conditions: [], stampExpiresAt: undefined, attachments: undefined, managedPods: 0,
  };

  constructor(options: NodePluginOptions, deps: NodePluginDeps) {
    this.#o = options;
    this.#deps = deps;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.metrics = new NodePluginMetrics({
      xfrmStat: () => readXfrmStat(),
      bpfCounters: () => this.#bpf?.readCounters(),
    });
    this.#api = new NodePluginApi(deps.kubeConfig, deps.logger, options.informers);
    this.#events = new NodeEvents(this.#api, { nodeName: options.nodeName, logger: deps.logger });
    this.#publisher = new NodeInfoPublisher(this.#api, {
      nodeName: options.nodeName,
      logger: deps.logger,
      jitterMs: options.publishJitterMs,
      onWrite: (what, result) => {
        this.metrics.publishes.inc({ what, result });
      },
    });
    this.#queue = new WorkQueue((reasons) => this.#run(reasons), {
      paused: true,
      onError: (err, attempt, retryInMs) => {
        this.metrics.reconcileErrors.inc();
        this.#log.warn({ attempt, retryInMs, error: errorText(err) }, 'reconcile failed; retrying');
      },
    });
    const trigger = (reason: string) => () => {
      this.#queue.trigger(reason);
    };
    this.#nodeInfos = this.#api.nodeInfoInformer(trigger('nodeinfos'));
    this.#pods = this.#api.podInformer(options.nodeName, trigger('pods'));
    this.#namespaces = this.#api.namespaceInformer(trigger('namespaces'));
  }

  /** Listen, open the kernel adapters, start watching; the first reconcile follows at once. */
  async start(): Promise<void> {
    this.#endpoint = await listenEndpoint(this.#o.listen.host, this.#o.listen.port, {
      registry: this.metrics.registry,
      healthy: () => this.#healthy(),
      ready: () => (this.#ready ? { ok: true } : { ok: false, reason: this.#lastRun?.error ?? 'the first reconcile has not succeeded yet' }),
      status: () => this.status(),
    });
    let xfrm = this.#deps.xfrm;
    if (!xfrm) {
      this.#socket = XfrmSocket.open();
      xfrm = new NetlinkXfrmPort(this.#socket);
    }
    this.#bpf = await ensureMaps(this.#o.pinDir, this.#deps.bpfObjectDir === undefined ? {} : { objectDir: this.#deps.bpfObjectDir });
    this.#datapath = new NodeDatapath(this.#countingXfrm(xfrm), this.#countingMaps(new BpfMapsPort(this.#bpf)), this.#o.drainMs === undefined ? {} : { drainMs: this.#o.drainMs });
    this.#attachments = new Attachments(this.#tcPort(this.#bpf));

    this.#jwksFiles = new WatchedFiles({
      files: [this.#o.stampJwksFile],
      ...(this.#o.filePollIntervalMs === undefined ? {} : { pollIntervalMs: this.#o.filePollIntervalMs }),
      onChange: async ([text]) => this.#loadJwks(text),
      onError: (err) => {
        this.#log.warn({ file: this.#o.stampJwksFile, why: readProblem(err) }, 'cannot read the stamp JWKS; keeping the keys loaded before (if any)');
      },
    });
    await this.#jwksFiles.start();

    this.#nodeInfos.start();
    this.#pods.start();
    this.#namespaces.start();
    // The SPI this node already advertises bounds the Secret from below (a restored old Secret
    // must not roll peers back): wait briefly for it before reading the Secret.
    await this.#waitFor(() => this.#nodeInfos.synced(), this.#o.startupSyncWaitMs ?? 20_000);
    this.#keys.setFloor(this.#publisher.publishedSpi(this.#ownCached()));
    this.#secretFiles = new WatchedFiles({
      files: [join(this.#o.secretDir, SECRET_DATA_KEY)],
      ...(this.#o.filePollIntervalMs === undefined ? {} : { pollIntervalMs: this.#o.filePollIntervalMs }),
      onChange: ([content]) => this.#loadSecret(content),
      onError: (err) => {
        this.#secretMissing(err);
      },
    });
    await this.#secretFiles.start();
    this.#queue.trigger('start');
    this.#queue.resume();
    this.#log.info({ node: this.#o.nodeName, pinDir: this.#o.pinDir, listen: this.#endpoint.url, strict: this.#o.strict }, 'node plugin started');
  }

  /** Stop watching and serving. Kernel state stays as it is (a restart adopts it). */
  async stop(): Promise<void> {
    this.#secretFiles?.stop();
    this.#jwksFiles?.stop();
    await this.#queue.stop();
    await Promise.all([this.#nodeInfos.stop(), this.#pods.stop(), this.#namespaces.stop()]);
    await this.#endpoint?.close();
    this.#bpf?.close();
    this.#socket?.close();
    this.#log.info('node plugin stopped; kernel state left in place');
  }

  /** Wait until no reconcile is pending or running (tests). */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  get url(): string | undefined {
    return this.#endpoint?.url;
  }

  async status(): Promise<NodeStatus> {
    return buildStatus({
      xfrmStat: await readXfrmStat(),
      node: this.#o.nodeName,
      ready: this.#ready,
      strict: this.#o.strict,
      secret: this.#secretState,
      keys: this.#keys.keys(),
      ...this.#shown,
      lastRun: this.#lastRun,
      factsProblem: this.#factsProblem,
      runs: this.#runs,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The reconcile

  async #run(reasons: ReadonlySet<string>): Promise<void> {
    const started = this.#now();
    const stopTimer = this.metrics.reconcileDuration.startTimer();
    const writesBefore = { ...this.#writes };
    const readsBefore = { ...this.#reads };
    const verify = reasons.has('resync') || reasons.has('start') || this.#runs === 0;
    this.#runs++;
    let error: unknown;
    let sync: SyncResult | undefined;
    try {
      sync = await this.#reconcile(reasons, verify);
    } catch (err: unknown) {
      error = err;
    } finally {
      stopTimer();
      this.#lastRunEnd = this.#now();
      this.#queue.at('resync', this.#lastRunEnd + this.#o.resyncIntervalMs);
      const kernelWrites = { xfrm: this.#writes.xfrm - writesBefore.xfrm, map: this.#writes.map - writesBefore.map, tc: this.#writes.tc - writesBefore.tc };
      this.#lastRun = {
        at: started, durationMs: this.#lastRunEnd - started, reasons: [...reasons].sort(), ok: error === undefined,
        ...(error === undefined ? {} : { error: errorText(error) }),
        ...(sync ? { sync: pickReport(sync) } : {}),
        kernelWrites,
        kernelReads: { xfrmDumps: this.#reads.xfrmDumps - readsBefore.xfrmDumps, mapReads: this.#reads.mapReads - readsBefore.mapReads },
      };
    }
    if (error !== undefined) throw error instanceof Error ? error : new Error(errorText(error));
  }

  async #reconcile(reasons: ReadonlySet<string>, verify: boolean): Promise<SyncResult> {
    const now = this.#now();
    const own = await this.#ownNode(verify || reasons.has('start'));
    const verdicts = await this.#peerVerdicts(now);
    const used = verdicts.filter((v): v is Extract<PeerVerdict, { used: true }> => v.used);
    const refused = verdicts.filter((v): v is Extract<PeerVerdict, { used: false }> => !v.used);
    const datapath = this.#datapath;
    const attachments = this.#attachments;
    if (!datapath || !attachments) throw new Error('not started');

    const sync = await datapath.sync({
      local: own.local,
      peers: used.map((v) => v.peer),
      refused: refused.flatMap((v) => (v.claimed ? [v.claimed] : [])),
      strict: this.#o.strict,
      keys: this.#keys.keys(),
      now,
      graceMs: this.#o.graceMs,
      // Between periodic resyncs the datapath diffs against what it installed (no dump).
      verify,
    }, this.#memory);
    this.#memory = sync.memory;
    this.#keys.prune([...sync.acceptedSpis, ...sync.plan.states.map((s) => s.spi)]);
    if (sync.nextExpiry !== undefined) this.#queue.at('grace', sync.nextExpiry);
    this.#reportSync(sync, used.length);

    // tc attachments: a failure here must not keep the SPI from being published.
    let attachError: unknown;
    try {
      if (this.#pods.synced() && this.#namespaces.synced()) {
        this.#managed = managedPods(this.#pods.list(), (ns) => this.#namespaces.get(ns)?.metadata?.labels);
      }
      const nodeIfs = this.#o.nodeInterfaces ?? (await interfacesCarrying(own.local.addresses));
      this.#attachReport = await attachments.reconcile(this.#managed, nodeIfs, verify);
      this.#reportAttachments(this.#attachReport);
    } catch (err: unknown) {
      attachError = err;
    }

    const errors = [...sync.report.errors, ...(attachError === undefined ? [] : [`tc: ${errorText(attachError)}`])];
    const cached = this.#ownCached();
    // Never advertise less than before because one round could not confirm a new SPI.
    const spi = sync.advertisedSpi > 0 ? sync.advertisedSpi : this.#publisher.publishedSpi(cached);
    const spec: KmeshNodeInfoSpec = { spi, addresses: own.local.addresses, bootID: own.local.bootID, podCIDRS: own.local.podCIDRS };
    const skippedNames = new Set(sync.plan.skipped.map((s) => s.peer));
    const conditions = computeConditions({
      currentSpi: this.#keys.current()?.spi ?? 0,
      advertisedSpi: spi,
      peers: used.map((v) => ({ name: v.name, spi: v.peer.spec.spi })),
      withoutOutbound: used.filter((v) => skippedNames.has(v.name)).map((v) => v.name),
      refused: refused.map((v) => ({ name: v.name, reason: v.reason })),
      errors,
      ...(this.#factsProblem === undefined ? {} : { factsProblem: this.#factsProblem }),
    }, this.#conditions, new Date(now));
    const outcome = await this.#publisher.publish({ spec, nodeUid: own.uid, conditions, cached, ring: this.#ring, now });
    this.#conditions = conditions;
    if (outcome.nextAt !== undefined) this.#queue.at('publish', outcome.nextAt);
    this.#notePublished(outcome.published, outcome.stamp, spi);
    this.#shown = {
      advertisedSpi: this.#advertised, sync, verdicts, conditions, stampExpiresAt: this.#stampExpiresAt,
      attachments: this.#attachReport, managedPods: this.#managed.length,
    };
    if (errors.length > 0) throw new Error(`${errors.length} kernel change(s) failed: ${errors[0] ?? ''}`);
    if (!this.#ready) this.#log.info({ spi, peers: used.length }, 'first reconcile done: ready');
    this.#ready = true;
    return sync;
  }

  /** Own Node facts, re-read on start and resync (the kubelet may have reported a new boot). */
  async #ownNode(refresh: boolean): Promise<OwnNode> {
    if (this.#own && !refresh) return this.#own;
    let node;
    try {
      node = await this.#api.readNode(this.#o.nodeName);
    } catch (err: unknown) {
      // An unreachable API server must not stop a node that already knows itself.
      if (this.#own) return this.#own;
      throw new Error(`cannot read Node ${this.#o.nodeName}: ${errorText(err)}`, { cause: err });
    }
    const bootId = await readBoundedFile(this.#o.bootIdFile, 4096).then((b) => b.toString('utf8'), (err: unknown) => {
      throw new Error(`cannot read ${this.#o.bootIdFile}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`, { cause: err });
    });
    const facts = ownNodeFrom(this.#o.nodeName, node, bootId, this.#o.bootIdFile);
    if (!facts.ok) {
      this.#factsProblem = formatErrors(facts.errors);
      this.#events.emit('Warning', 'NodeFactsUnusable', this.#factsProblem);
      this.#log.error({ problem: this.#factsProblem }, 'own node facts unusable; nothing is changed until they are');
      throw new Error(this.#factsProblem);
    }
    if (this.#factsProblem !== undefined) this.#log.info('own node facts usable again');
    this.#factsProblem = undefined;
    this.#own = facts.value;
    this.#events.setNodeUid(facts.value.uid);
    return facts.value;
  }

  async #peerVerdicts(now: number): Promise<PeerVerdict[]> {
    if (!this.#nodeInfos.synced()) {
      // A lost cache is not an empty cluster: keep using the last verdicts until it is back.
      if (this.#verdicts) return this.#verdicts;
      throw new Error(`waiting for the KmeshNodeInfo cache (${this.#nodeInfos.unsyncedReason()})`);
    }
    const verdicts = await this.#trust.classify({
      objects: this.#nodeInfos.list(KMESH_NAMESPACE),
      localName: this.#o.nodeName,
      ring: this.#ring,
      ringVersion: this.#ringVersion,
      now: now / 1000,
      clockSkewSeconds: this.#o.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS,
    });
    this.#verdicts = verdicts;
    this.#reportVerdicts(verdicts);
    // Wake up when the first used peer's stamp runs out, so it is dropped on time.
    const skew = this.#o.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
    const expiries = verdicts.flatMap((v) => (v.used ? [(v.claims.exp + skew) * 1000 + 1] : []));
    if (expiries.length > 0) this.#queue.at('peer-stamp', Math.min(...expiries));
    return verdicts;
  }

  // ---------------------------------------------------------------------------------------------
  // Files

  async #loadJwks(text: Buffer | undefined): Promise<boolean> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text?.toString('utf8') ?? '');
    } catch {
      this.#log.error({ file: this.#o.stampJwksFile }, 'the stamp JWKS is not JSON; keeping the keys loaded before (if any)');
      return false;
    }
    const ring = await importStampJwks(parsed);
    if (!ring.ok) {
      this.#log.error({ file: this.#o.stampJwksFile, problem: formatErrors(ring.errors) }, 'refusing the stamp JWKS; keeping the keys loaded before (if any)');
      this.#events.emit('Warning', 'StampJwksRefused', `${this.#o.stampJwksFile}: ${formatErrors(ring.errors)}`);
      return false;
    }
    this.#ring = ring.value;
    this.#ringVersion++;
    this.#log.info({ kids: [...ring.value.keys()] }, 'stamp JWKS loaded');
    this.#queue.trigger('jwks');
    return true;
  }

  #loadSecret(content: Buffer | undefined): boolean {
    const result = this.#keys.learn(content?.toString('utf8') ?? '');
    switch (result.kind) {
      case 'accepted':
        this.metrics.secretLoads.inc({ result: 'accepted' });
        this.#secretState = `SPI ${result.spi} loaded`;
        this.#log.info({ spi: result.spi, previousSpi: result.previousSpi, keyFingerprint: result.fingerprint }, 'IPsec key loaded');
        if (result.previousSpi > 0) this.#events.emit('Normal', 'KeyRotated', `IPsec key SPI ${result.previousSpi} -> ${result.spi} loaded`);
        this.#queue.trigger('secret');
        return true;
      case 'unchanged':
        this.metrics.secretLoads.inc({ result: 'unchanged' });
        return true;
      case 'refused':
        this.metrics.secretLoads.inc({ result: result.reason });
        this.#secretState = `refused (${result.reason}); ${this.#keys.current() ? `SPI ${this.#keys.current()?.spi ?? 0} stays in force` : 'no key in force'}`;
        this.#log.error({ reason: result.reason, problem: result.message }, 'refusing the IPsec Secret; the keys loaded before stay in force');
        this.#events.emit('Warning', 'SecretRefused', `${join(this.#o.secretDir, SECRET_DATA_KEY)}: ${result.message}`);
        return false;
    }
  }

  #secretMissing(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    const state = code === 'ENOENT' ? (this.#keys.current() ? `missing; SPI ${this.#keys.current()?.spi ?? 0} stays in force` : 'missing: no key yet') : `unreadable (${code})`;
    if (state === this.#secretState) return;
    this.#secretState = state;
    this.metrics.secretLoads.inc({ result: code === 'ENOENT' ? 'missing' : 'unreadable' });
    this.#log.warn({ file: join(this.#o.secretDir, SECRET_DATA_KEY), state }, 'IPsec Secret not readable');
  }

  // ---------------------------------------------------------------------------------------------
  // Reporting

  #reportSync(sync: SyncResult, usedPeers: number): void {
    const states = sync.plan.states;
    this.metrics.xfrmStates.set({ direction: 'in' }, states.filter((s) => s.direction === 'in').length);
    this.metrics.xfrmStates.set({ direction: 'out' }, states.filter((s) => s.direction === 'out').length);
    this.metrics.xfrmPolicies.reset();
    for (const p of sync.plan.policies) this.metrics.xfrmPolicies.inc({ direction: p.dir, action: p.action ?? 'allow' });
    this.metrics.spi.set({ kind: 'current' }, this.#keys.current()?.spi ?? 0);
    this.metrics.acceptedSpis.set(sync.acceptedSpis.length);
    this.metrics.keys.set(this.#keys.keys().size);
    this.metrics.peers.reset();
    this.metrics.peers.set({ state: 'used', reason: '' }, usedPeers - new Set(sync.plan.skipped.map((s) => s.peer)).size);
    for (const s of sync.plan.skipped) this.metrics.peers.inc({ state: 'skipped', reason: s.reason.replace(/\d+/g, 'N') });
    for (const v of this.#verdicts ?? []) if (!v.used) this.metrics.peers.inc({ state: 'refused', reason: v.reason });
    if (sync.report.errors.length > 0) this.#log.error({ errors: sync.report.errors.slice(0, 10), count: sync.report.errors.length, removalsDeferred: sync.report.removalsDeferred }, 'kernel changes failed');
    else if (sync.report.installed + sync.report.removed > 0) {
      this.#log.info({ installed: sync.report.installed, removed: sync.report.removed, unchanged: sync.report.unchanged, accepted: sync.acceptedSpis }, 'kernel reconciled');
    }
    for (const c of sync.protectedCidrs) this.#log.warn({ cidr: c.cidr, peer: c.peer, action: c.action, reason: c.reason }, 'peer pod CIDR not encrypted by the plan: protected');
  }

  #reportVerdicts(verdicts: readonly PeerVerdict[]): void {
    const names = new Set<string>();
    for (const v of verdicts) {
      names.add(v.name);
      const key = v.used ? 'used' : v.reason;
      if (this.#refusalSeen.get(v.name) === key) continue;
      const before = this.#refusalSeen.get(v.name);
      this.#refusalSeen.set(v.name, key);
      if (v.used) {
        if (before !== undefined) this.#log.info({ peer: v.name, spi: v.peer.spec.spi }, 'peer accepted again');
        continue;
      }
      // Forgery is logged loudly and raised as an Event; an expired stamp is routine trouble.
      const loud = v.reason === 'bad-signature' || v.reason === 'node-mismatch';
      this.#log[loud ? 'error' : 'warn']({ peer: v.name, reason: v.reason, problem: v.message }, 'peer refused');
      if (loud) this.#events.emit('Warning', 'PeerRefused', `KmeshNodeInfo ${v.name} refused (${v.reason}): ${v.message}`);
    }
    for (const name of [...this.#refusalSeen.keys()]) if (!names.has(name)) this.#refusalSeen.delete(name);
  }

  #reportAttachments(report: AttachmentReport): void {
    this.metrics.podAttachments.set({ state: 'attached' }, this.#managed.length - new Set(report.problems.map((p) => p.pod)).size);
    this.metrics.podAttachments.set({ state: 'unresolved' }, new Set(report.problems.map((p) => p.pod)).size);
    const now = new Set(report.problems.map((p) => `${p.pod}: ${p.reason}`));
    for (const p of now) if (!this.#problemsSeen.has(p)) this.#log.warn({ problem: p }, 'managed pod not encrypted: its interface was not found');
    this.#problemsSeen = now;
  }

  #notePublished(obj: NodeInfoObject | undefined, stamp: Awaited<ReturnType<NodeInfoPublisher['publish']>>['stamp'], spi: number): void {
    if (spi !== this.#advertised && obj) this.#log.info({ spi, previous: this.#advertised }, 'advertising SPI');
    if (obj) this.#advertised = this.#publisher.publishedSpi(obj);
    this.metrics.spi.set({ kind: 'advertised' }, this.#advertised);
    if (stamp?.ok) {
      this.#stampExpiresAt = stamp.claims.exp * 1000;
      const left = this.#stampExpiresAt - this.#now();
      if (left < 3_600_000) this.#events.emit('Warning', 'StampExpiring', `the validity stamp of this node's KmeshNodeInfo expires at ${new Date(this.#stampExpiresAt).toISOString()} and could not be renewed; is the webhook running?`);
    } else if (stamp) this.#stampExpiresAt = undefined;
    this.metrics.stampExpiry.set((this.#stampExpiresAt ?? 0) / 1000);
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing

  #ownCached(): NodeInfoObject | undefined {
    return this.#nodeInfos.get(this.#o.nodeName, KMESH_NAMESPACE);
  }

  #healthy(): { ok: boolean; reason?: string } {
    // Alive while runs keep ending (failed ones too: they are retried); a wedged run is not.
    const limit = 3 * this.#o.resyncIntervalMs + 120_000;
    if (this.#lastRunEnd === 0 || this.#now() - this.#lastRunEnd < limit) return { ok: true };
    return { ok: false, reason: `no reconcile finished for ${Math.round((this.#now() - this.#lastRunEnd) / 1000)} s` };
  }

  async #waitFor(cond: () => boolean, ms: number): Promise<void> {
    const until = this.#now() + ms;
    while (!cond() && this.#now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  #countingXfrm(inner: XfrmPort): XfrmPort {
    return {
      dumpStates: () => {
        this.#reads.xfrmDumps++;
        return inner.dumpStates();
      },
      dumpPolicies: () => {
        this.#reads.xfrmDumps++;
        return inner.dumpPolicies();
      },
      apply: async (changes) => {
        this.#writes.xfrm += changes.length;
        this.metrics.kernelWrites.inc({ kind: 'xfrm' }, changes.length);
        return inner.apply(changes);
      },
    };
  }

  #countingMaps(inner: BpfMapsPort): DatapathMapsPort {
    const count = (n: number): void => {
      this.#writes.map += n;
      if (n > 0) this.metrics.kernelWrites.inc({ kind: 'map' }, n);
    };
    const counted = async (write: () => Promise<number>): Promise<void> => {
      const reads = inner.mapReads;
      try {
        count(await write());
      } finally {
        this.#reads.mapReads += inner.mapReads - reads;
      }
    };
    return {
      setPeerMarks: (marks, options) => counted(() => inner.setPeerMarksCounted(marks, options)),
      setPeerCidrs: (cidrs, options) => counted(() => inner.setPeerCidrsCounted(cidrs, options)),
    };
  }

  #tcPort(bpf: NodeBpf): ConstructorParameters<typeof Attachments>[0] {
    const wrote = (): void => {
      this.#writes.tc++;
      this.metrics.kernelWrites.inc({ kind: 'tc' });
    };
    return {
      attach: async (ifname, program) => {
        wrote();
        await (program === 'pod' ? bpf.attachPodProgram(ifname) : bpf.attachNodeProgram(ifname));
      },
      detach: async (ifname, program) => {
        const done = (await bpf.detach(ifname, { program })).length > 0;
        if (done) wrote();
        return done;
      },
      list: async () => (await bpf.listAttached()).filter((f) => f.usesOurMaps).map((f) => ({ ifname: f.ifname, program: f.program, progId: f.progId })),
      programId: (program) => bpf.programId(program),
      podInterface: (ip) => podInterface(ip),
    };
  }
}

async function readXfrmStat(): Promise<Record<string, number>> {
  return parseXfrmStat(await readBoundedFile('/proc/net/xfrm_stat', 65_536).then((b) => b.toString('utf8'), () => ''));
}

function pickReport(sync: SyncResult): RunRecord['sync'] {
  const r = sync.report;
  return { installed: r.installed, removed: r.removed, unchanged: r.unchanged, removalsDeferred: r.removalsDeferred, errors: r.errors.slice(0, 20) };
}

/** One line, bounded, for logs and status (never an object dump: it could hold key bytes). */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length <= 500 ? text : `${text.slice(0, 499)}…`;
}
