/**
 * Kubernetes Events about this node's Node object (`kubectl describe node` shows them), for
 * what an operator must act on: a refused Secret, a boot ID mismatch, a forged peer, a stamp
 * about to expire. Fire and forget: an Event that cannot be written is logged, never retried
 * into a storm, and the same reason and message are written at most once per `dedupMs`.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { safeText } from '../../core/safe-text.js';
import { EVENT_NAMESPACE } from './kube-api.js';

export const EVENT_COMPONENT = 'kmesh-ipsec-node';
const MAX_MESSAGE = 1024;

export interface EventSink {
  createEvent(body: CoreV1Event): Promise<void>;
}

export class NodeEvents {
  readonly #sink: EventSink;
  readonly #node: string;
  readonly #logger: Logger;
  readonly #dedupMs: number;
  readonly #now: () => number;
  readonly #recent = new Map<string, number>();
  #nodeUid: string | undefined;

  constructor(sink: EventSink, options: { nodeName: string; logger: Logger; dedupMs?: number; now?: () => number }) {
    this.#sink = sink;
    this.#node = options.nodeName;
    this.#logger = options.logger;
    this.#dedupMs = options.dedupMs ?? 10 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** The Node's uid, once known: Events then point at exactly this Node object. */
  setNodeUid(uid: string): void {
    this.#nodeUid = uid;
  }

  emit(type: 'Normal' | 'Warning', reason: string, message: string): void {
    // Messages carry peers' names, reasons and field paths: cluster data, escaped and bounded.
    const text = safeText(message, MAX_MESSAGE);
    const key = `${type}|${reason}|${text}`;
    const now = this.#now();
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < this.#dedupMs) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 256) {
      for (const [k, at] of this.#recent) if (now - at >= this.#dedupMs) this.#recent.delete(k);
    }
    const time = new Date(now);
    const body: CoreV1Event = {
      metadata: { generateName: `${this.#node}.`, namespace: EVENT_NAMESPACE },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: this.#node, ...(this.#nodeUid ? { uid: this.#nodeUid } : {}) },
      reason,
      message: text,
      type,
      source: { component: EVENT_COMPONENT, host: this.#node },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.#node,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    this.#sink.createEvent(body).catch((err: unknown) => {
      this.#logger.warn({ reason, why: err instanceof Error ? err.message.slice(0, 200) : String(err) }, 'cannot write an Event');
    });
  }
}
