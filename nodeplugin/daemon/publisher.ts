/**
 * Keeps this node's KmeshNodeInfo true: creates it, updates its spec when the facts or the
 * advertised SPI change, re-publishes it when the webhook's stamp is past half-life (so peers
 * never see it expire, docs/trust-chain.md), and writes status.conditions through the status
 * subresource.
 *
 * - Writes are conditional on resourceVersion; a 409 re-reads and tries again (bounded).
 * - A new SPI is published after a random delay of up to `jitterMs`: a Secret change reaches
 *   every node at about the same time, and a thousand nodes must not write in the same second
 *   (Cilium added the same jitter, cilium/cilium#44263). The kernel already accepts the new SPI
 *   during the delay, so waiting costs nothing but time.
 * - The object carries an ownerReference to the Node, so Kubernetes deletes it with the Node.
 */
import type { Logger } from 'pino';
import { KMESH_NAMESPACE, KNI_API_VERSION, KNI_KIND, VALIDITY_ANNOTATION } from '../../core/constants.js';
import { canonicalJson } from '../../core/canonical-json.js';
import type { KmeshNodeInfoSpec } from '../../core/nodeinfo.js';
import { type StampKeyRing, type StampVerification, verifyStamp } from '../../core/stamp.js';
import { type Condition, sameConditions } from './conditions.js';
import { type NodeInfoObject, apiCode } from './kube-api.js';

export interface NodeInfoWriter {
  readNodeInfo(name: string): Promise<NodeInfoObject | undefined>;
  createNodeInfo(body: NodeInfoObject): Promise<NodeInfoObject>;
  replaceNodeInfo(body: NodeInfoObject): Promise<NodeInfoObject>;
  replaceNodeInfoStatus(body: NodeInfoObject): Promise<NodeInfoObject>;
}

export interface PublishInput {
  readonly spec: KmeshNodeInfoSpec;
  readonly nodeUid: string;
  readonly conditions: readonly Condition[];
  /** What the informer holds for our name (may lag behind our own writes). */
  readonly cached: NodeInfoObject | undefined;
  readonly ring: StampKeyRing | undefined;
  readonly now: number;
}

export interface PublishOutcome {
  /** What was written this call. */
  readonly wrote: readonly ('create' | 'update' | 'restamp' | 'status')[];
  /** When to call again at the latest (end of a jitter delay, stamp half-life). */
  readonly nextAt?: number;
  /** The stamp of the object as last seen, verified against the JWKS when one is loaded. */
  readonly stamp?: StampVerification;
  readonly published?: NodeInfoObject;
}

export interface PublisherOptions {
  readonly nodeName: string;
  readonly logger: Logger;
  readonly jitterMs: number;
  readonly random?: () => number;
  /** Called for every write attempt: what, and 'success' or the HTTP code. */
  readonly onWrite?: (what: 'create' | 'update' | 'restamp' | 'status', result: string) => void;
}

const MAX_CONFLICT_RETRIES = 3;
const MIN_RESTAMP_INTERVAL_MS = 30_000;
const MAX_RESTAMP_INTERVAL_MS = 10 * 60_000;
/** Our replaced resourceVersions remembered to recognise stale informer copies. */
const MAX_SUPERSEDED = 64;

export class NodeInfoPublisher {
  readonly #api: NodeInfoWriter;
  readonly #o: PublisherOptions;
  readonly #random: () => number;
  /** Our last write's result: the informer may not have it yet. */
  #latest: NodeInfoObject | undefined;
  /** resourceVersions our writes replaced: an informer copy carrying one is stale. */
  readonly #superseded = new Set<string>();
  #jitter: { spi: number; at: number } | undefined;
  #restampAfter = 0;
  #restampInterval = MIN_RESTAMP_INTERVAL_MS;
  #statusSupported = true;

  constructor(api: NodeInfoWriter, options: PublisherOptions) {
    this.#api = api;
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  /** The SPI this node advertises right now (0 when it has not published one). */
  publishedSpi(cached: NodeInfoObject | undefined): number {
    const spi = (this.#current(cached)?.spec as { spi?: unknown } | undefined)?.spi;
    return typeof spi === 'number' && Number.isSafeInteger(spi) ? spi : 0;
  }

  async publish(input: PublishInput): Promise<PublishOutcome> {
    const wrote: PublishOutcome['wrote'][number][] = [];
    let current = this.#current(input.cached);
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.#step(current, input, wrote);
        return { ...result, wrote };
      } catch (err: unknown) {
        const code = apiCode(err);
        if ((code !== 409 && code !== 404) || attempt >= MAX_CONFLICT_RETRIES) throw err;
        // Someone else wrote (or deleted) it since we read it: read again and redo the decision.
        current = await this.#api.readNodeInfo(this.#o.nodeName);
        this.#remember(current);
      }
    }
  }

  async #step(current: NodeInfoObject | undefined, input: PublishInput, wrote: ('create' | 'update' | 'restamp' | 'status')[]): Promise<Omit<PublishOutcome, 'wrote'>> {
    const { spec, now } = input;
    if (!current) {
      // A node's first KmeshNodeInfo is not part of a cluster-wide burst: publish at once.
      current = await this.#write('create', () => this.#api.createNodeInfo(this.#fresh(spec, input.nodeUid)));
      wrote.push('create');
    } else if (canonicalJson(current.spec ?? null) !== canonicalJson(spec) || !this.#ownedByNode(current, input.nodeUid)) {
      const publishedSpi = this.publishedSpi(current);
      const onlySpi = canonicalJson({ ...(current.spec as object), spi: spec.spi }) === canonicalJson(spec);
      if (onlySpi && !this.#jitterElapsed(publishedSpi, spec.spi, now)) {
        return { nextAt: this.#jitter?.at ?? now, ...(await this.#status(current, input, wrote)) };
      }
      current = await this.#write('update', () => this.#api.replaceNodeInfo(this.#withSpec(current as NodeInfoObject, spec, input.nodeUid)));
      wrote.push('update');
    }
    this.#jitter = undefined;

    const stamp = input.ring ? await verifyStamp(annotation(current), { nodeName: this.#o.nodeName, spec }, input.ring, { now: now / 1000 }) : undefined;
    let nextAt: number | undefined;
    if (stamp) {
      const halfLife = stamp.ok ? (stamp.claims.iat + (stamp.claims.exp - stamp.claims.iat) / 2) * 1000 : 0;
      if (halfLife <= now) {
        if (now >= this.#restampAfter) {
          // Written by this call, the object already carries the freshest stamp the webhook
          // gives: a restamp now would come back the same.
          if (!wrote.includes('create') && !wrote.includes('update')) {
            current = await this.#write('restamp', () => this.#api.replaceNodeInfo(this.#withSpec(current as NodeInfoObject, spec, input.nodeUid)));
            wrote.push('restamp');
          }
          // Armed after the write, so a conflict's retry restamps too. A stamp that stays bad
          // after a write means the webhook is not stamping (down, or not installed): back off
          // instead of hammering the API server.
          this.#restampAfter = now + this.#restampInterval;
          this.#restampInterval = Math.min(this.#restampInterval * 2, MAX_RESTAMP_INTERVAL_MS);
        }
        nextAt = this.#restampAfter;
      } else {
        // A good stamp ends the backoff: if it goes bad later (a JWKS rotation), renew at once.
        this.#restampAfter = 0;
        this.#restampInterval = MIN_RESTAMP_INTERVAL_MS;
        nextAt = halfLife;
      }
    }
    const statusResult = await this.#status(current, input, wrote);
    const finalStamp = stamp && wrote.includes('restamp') && input.ring
      ? await verifyStamp(annotation(statusResult.published ?? current), { nodeName: this.#o.nodeName, spec }, input.ring, { now: now / 1000 })
      : stamp;
    return { ...(nextAt === undefined ? {} : { nextAt }), ...(finalStamp ? { stamp: finalStamp } : {}), published: statusResult.published ?? current };
  }

  async #status(current: NodeInfoObject, input: PublishInput, wrote: ('create' | 'update' | 'restamp' | 'status')[]): Promise<{ published?: NodeInfoObject }> {
    if (!this.#statusSupported) return {};
    const have = (current.status?.conditions ?? []) as Condition[];
    if (sameConditions(have, input.conditions)) return {};
    try {
      const updated = await this.#write('status', () => this.#api.replaceNodeInfoStatus({ ...current, status: { ...(current.status ?? {}), conditions: [...input.conditions] } }));
      wrote.push('status');
      return { published: updated };
    } catch (err: unknown) {
      // A CRD without the status subresource (Kmesh's own) answers 404 for /status while the
      // object exists: conditions are additive, so go without them.
      if (apiCode(err) === 404 && (await this.#api.readNodeInfo(this.#o.nodeName))) {
        this.#statusSupported = false;
        this.#o.logger.warn('the KmeshNodeInfo CRD has no status subresource (Kmesh\'s CRD?): not publishing conditions; install ours from manifests/');
        return {};
      }
      throw err;
    }
  }

  async #write(what: 'create' | 'update' | 'restamp' | 'status', fn: () => Promise<NodeInfoObject>): Promise<NodeInfoObject> {
    const before = this.#latest?.metadata?.resourceVersion;
    try {
      const obj = await fn();
      this.#o.onWrite?.(what, 'success');
      if (before) this.#superseded.add(before);
      this.#remember(obj);
      return obj;
    } catch (err: unknown) {
      this.#o.onWrite?.(what, String(apiCode(err) ?? 'unreachable'));
      throw err;
    }
  }

  /** True when a change to `spi` may be published now; arms the random delay on first sight. */
  #jitterElapsed(publishedSpi: number, spi: number, now: number): boolean {
    if (spi === 0 || publishedSpi === spi || this.#o.jitterMs <= 0) return true;
    if (this.#jitter?.spi !== spi) this.#jitter = { spi, at: now + Math.floor(this.#random() * this.#o.jitterMs) };
    return now >= this.#jitter.at;
  }

  #current(cached: NodeInfoObject | undefined): NodeInfoObject | undefined {
    const rv = cached?.metadata?.resourceVersion;
    if (cached && rv !== undefined && !this.#superseded.has(rv)) {
      if (rv !== this.#latest?.metadata?.resourceVersion) this.#remember(cached);
      return cached;
    }
    return this.#latest ?? cached;
  }

  #remember(obj: NodeInfoObject | undefined): void {
    this.#latest = obj;
    // Forget the oldest only: clearing them all would trust the copy one write behind, which
    // is what a lagging informer holds. A copy more than MAX_SUPERSEDED of our writes behind is
    // trusted again: a conflict and a re-read when it differs from what is wanted, a missed
    // write until the informer catches up when it does not.
    for (const rv of this.#superseded) {
      if (this.#superseded.size <= MAX_SUPERSEDED) break;
      this.#superseded.delete(rv);
    }
  }

  #ownedByNode(obj: NodeInfoObject, uid: string): boolean {
    return (obj.metadata?.ownerReferences ?? []).some((r) => r.kind === 'Node' && r.uid === uid);
  }

  #ownerReference(uid: string): { apiVersion: string; kind: string; name: string; uid: string } {
    return { apiVersion: 'v1', kind: 'Node', name: this.#o.nodeName, uid };
  }

  #fresh(spec: KmeshNodeInfoSpec, nodeUid: string): NodeInfoObject {
    return {
      apiVersion: KNI_API_VERSION,
      kind: KNI_KIND,
      metadata: { name: this.#o.nodeName, namespace: KMESH_NAMESPACE, ownerReferences: [this.#ownerReference(nodeUid)] },
      spec: { ...spec },
    };
  }

  #withSpec(current: NodeInfoObject, spec: KmeshNodeInfoSpec, nodeUid: string): NodeInfoObject {
    const others = (current.metadata?.ownerReferences ?? []).filter((r) => !(r.kind === 'Node' && r.name === this.#o.nodeName));
    return {
      ...current,
      // eslint-disable-next-line @typescript-eslint/no-misused-spread -- parsed JSON, not a V1ObjectMeta instance
      metadata: { ...current.metadata, ownerReferences: [...others, this.#ownerReference(nodeUid)] },
      spec: { ...spec },
    };
  }
}

function annotation(obj: NodeInfoObject | undefined): unknown {
  return obj?.metadata?.annotations?.[VALIDITY_ANNOTATION];
}
