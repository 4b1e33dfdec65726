/**
 * Thin adapter between the codec and a raw NETLINK_XFRM socket (npm `netlink`'s
 * RawNetlinkSocket, which sends an array of buffers with one sendmsg(2) and delivers each
 * received datagram whole).
 *
 * - Operations on one socket run one after another (netlink allows one dump at a time per
 *   socket, and ordering keeps batches predictable).
 * - A batch is sent as consecutive netlink messages in as few sendmsg calls as possible. The
 *   kernel processes every message of a datagram in order (errors do not stop the rest) and
 *   answers a message without NLM_F_ACK only when it fails (netlink_rcv_skb acks on
 *   `NLM_F_ACK || err`). So the changes go without NLM_F_ACK, and a last NLMSG_NOOP with
 *   NLM_F_ACK closes each datagram: its ack comes after every error of the messages before it,
 *   so when it arrives, a change without an error ack succeeded. Errors are matched back by
 *   sequence number. One ack per datagram instead of one per change: each ack is a recvmsg, a
 *   Buffer and a callback, which was most of the adapter's time after encoding (5,000
 *   policies, bench:nodeplugin). A datagram is limited by the send buffer, and by the receive
 *   buffer, which must hold every ack at once (all changes may fail) because the kernel queues
 *   them before we can read any; if it overflowed anyway, the socket reports ENOBUFS and the
 *   batch fails as a transport error, never as a silent success.
 * - The socket lives in the network namespace of the thread that opens it: open it inside the
 *   namespace you mean to configure.
 */
import { HEADER_LENGTH, RawNetlinkSocket } from 'netlink';
import type { MessageInfo } from 'netlink';
import { encodeDatagram, parseAck, parseDatagram, parseDone } from './netlink-frame.js';
import type { NetlinkMessage, NlAck, OutgoingMessage } from './netlink-frame.js';
import { decodePolicy, encodePolicyId } from './policy-codec.js';
import { encodeChange, encodeDumpRequest } from './request-codec.js';
import type { XfrmRequest } from './request-codec.js';
import { decodeState, encodeStateId } from './state-codec.js';
import {
  XfrmError, XfrmTransportError, describePolicy, describePolicyId, describeState, describeStateId,
} from './errors.js';
import { NETLINK_XFRM, NLMSG, NLM_F, XFRM_MSG } from './uapi.js';
import type {
  XfrmChange, XfrmOperation, XfrmPolicy, XfrmPolicyId, XfrmPolicyInfo, XfrmState, XfrmStateId, XfrmStateInfo,
} from './types.js';

export interface XfrmSocketOptions {
  /** How long to wait for all replies of one request or batch datagram (default 30 s). */
  readonly timeoutMs?: number;
  /** SO_RCVBUF to ask for (default 4 MiB; the kernel caps it at net.core.rmem_max). */
  readonly recvBufferSize?: number;
  /** SO_SNDBUF to ask for (default 1 MiB; capped at net.core.wmem_max). */
  readonly sendBufferSize?: number;
  /** Upper bound of messages per sendmsg (default: what the buffers allow). */
  readonly maxBatchMessages?: number;
}

/** Outcome of one change of a batch, in the order the changes were given. */
export type BatchResult =
  | { readonly op: XfrmChange['op']; readonly ok: true }
  | { readonly op: XfrmChange['op']; readonly ok: false; readonly error: XfrmError };

/** Counters, e.g. to check that batching really used few syscalls. */
export interface XfrmSocketStats {
  /** sendmsg calls made. */
  readonly sendCalls: number;
  /** Netlink messages sent for requests and changes (not counting a batch's closing NLMSG_NOOP). */
  readonly messagesSent: number;
  /** Datagrams received from the kernel (acks, replies, dump parts). */
  readonly datagramsReceived: number;
}

/**
 * Room reserved in the receive buffer per outstanding ack. An ack skb (nlmsgerr plus the
 * echoed request, < 700 bytes for our messages) has a truesize of at most ~1.3 KiB.
 */
const ACK_RCVBUF_COST = 2048;
/** netlink_sendmsg rejects len > sk_sndbuf - 32; keep more slack than that. */
const SNDBUF_SLACK = 256;
const DUMP_RETRIES = 3;

interface Reply {
  /** Positive errno from the ack / NLMSG_DONE; 0 for success. */
  readonly errno: number;
  readonly extack?: string;
  /** Non-control messages with this sequence number (get replies, dump entries). */
  readonly messages: readonly NetlinkMessage[];
  /** NLM_F_DUMP_INTR was seen: the dump may be inconsistent. */
  readonly interrupted: boolean;
}

interface Pending {
  readonly messages: NetlinkMessage[];
  interrupted: boolean;
  /** The kernel's answer (ack, error or NLMSG_DONE) to the message with sequence number `seq`. */
  settle(answer: NlAck | Error, seq: number): void;
}

const OK: Reply = Object.freeze({ errno: 0, messages: Object.freeze([]), interrupted: false });

export class XfrmSocket {
  readonly #raw: RawNetlinkSocket;
  readonly #timeoutMs: number;
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #pending = new Map<number, Pending>();
  #seq: number;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #sendCalls = 0;
  #messagesSent = 0;
  #datagramsReceived = 0;

  private constructor(raw: RawNetlinkSocket, options: XfrmSocketOptions) {
    this.#raw = raw;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    const rcv = raw.getRecvBufferSize();
    const snd = raw.getSendBufferSize();
    this.#maxMessages = Math.max(1, Math.min(options.maxBatchMessages ?? Infinity, Math.floor(rcv / ACK_RCVBUF_COST)));
    this.#maxBytes = Math.max(4096, snd - SNDBUF_SLACK);
    this.#seq = (Math.random() * 0x3fffffff) >>> 0;
    raw.on('message', (msg, rinfo) => { this.#onDatagram(msg, rinfo); });
    raw.on('error', (err) => { this.#failAll(new XfrmTransportError(`netlink socket error: ${err.code}`, { cause: err })); });
    raw.unref();
  }

  /** Opens a NETLINK_XFRM socket in the caller's network namespace (needs CAP_NET_ADMIN to change anything). */
  static open(options: XfrmSocketOptions = {}): XfrmSocket {
    const raw = new RawNetlinkSocket(NETLINK_XFRM, {
      recvBufferSize: options.recvBufferSize ?? 4 << 20,
      sendBufferSize: options.sendBufferSize ?? 1 << 20,
    });
    return new XfrmSocket(raw, options);
  }

  get stats(): XfrmSocketStats {
    return { sendCalls: this.#sendCalls, messagesSent: this.#messagesSent, datagramsReceived: this.#datagramsReceived };
  }

  /** Most messages one batch datagram carries on this socket. */
  get batchLimit(): number {
    return this.#maxMessages;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failAll(new XfrmTransportError('xfrm socket closed'));
    this.#raw.close();
  }

  // ----- single operations (each is a batch of one) -----

  async addState(state: XfrmState): Promise<void> { await this.#one({ op: 'addState', state }); }
  /**
   * XFRM_MSG_UPDSA: fails ESRCH if the SA is missing; for an installed one the kernel only refreshes
   * mutable parts (lifetimes, selector, encap, ...) and KEEPS its algorithms and keys. To rekey
   * an SA in place, delete and re-add it (in one applyBatch), or install a new SPI.
   */
  async updateState(state: XfrmState): Promise<void> { await this.#one({ op: 'updateState', state }); }
  async deleteState(id: XfrmStateId): Promise<void> { await this.#one({ op: 'deleteState', id }); }
  async addPolicy(policy: XfrmPolicy): Promise<void> { await this.#one({ op: 'addPolicy', policy }); }
  async updatePolicy(policy: XfrmPolicy): Promise<void> { await this.#one({ op: 'updatePolicy', policy }); }
  async deletePolicy(id: XfrmPolicyId): Promise<void> { await this.#one({ op: 'deletePolicy', id }); }

  /** The SA with this (dst, SPI, proto, mark); XfrmError ENOENT if there is none. */
  getState(id: XfrmStateId): Promise<XfrmStateInfo> {
    return this.#serial(async () => {
      const req: XfrmRequest = { type: XFRM_MSG.GETSA, flags: NLM_F.REQUEST | NLM_F.ACK, payload: encodeStateId(id) };
      const [reply] = await this.#exchange([req], 'each');
      const found = this.#expectOk(reply, 'getState', () => describeStateId(id)).find((m) => m.type === XFRM_MSG.NEWSA);
      if (!found) throw new XfrmTransportError('getState: the kernel acked without sending the state');
      return decodeState(found.data);
    });
  }

  /** The policy with this (dir, selector, mark, type) or index; XfrmError ENOENT if there is none. */
  getPolicy(id: XfrmPolicyId): Promise<XfrmPolicyInfo> {
    return this.#serial(async () => {
      const req: XfrmRequest = { type: XFRM_MSG.GETPOLICY, flags: NLM_F.REQUEST | NLM_F.ACK, payload: encodePolicyId(id) };
      const [reply] = await this.#exchange([req], 'each');
      const found = this.#expectOk(reply, 'getPolicy', () => describePolicyId(id)).find((m) => m.type === XFRM_MSG.NEWPOLICY);
      if (!found) throw new XfrmTransportError('getPolicy: the kernel acked without sending the policy');
      return decodePolicy(found.data);
    });
  }

  /** Every SA in this network namespace (any owner: filter by reqid/mark yourself). */
  dumpStates(): Promise<XfrmStateInfo[]> {
    return this.#serial(async () => (await this.#dump('states', 'dumpStates')).map((m) => decodeState(m.data)));
  }

  /** Every policy in this network namespace (any owner, including per-socket ones). */
  dumpPolicies(): Promise<XfrmPolicyInfo[]> {
    return this.#serial(async () => (await this.#dump('policies', 'dumpPolicies')).map((m) => decodePolicy(m.data)));
  }

  /**
   * Applies changes in order, packing as many as the socket buffers allow into each sendmsg
   * (see batchLimit). Kernel refusals are reported per change and do not stop the batch. The
   * promise rejects only for invalid input (TypeError/RangeError, before anything is sent) or
   * a transport failure (XfrmTransportError: socket error, timeout); after the latter, any
   * prefix of the batch may have been applied, so re-read the kernel (dump) before retrying.
   */
  applyBatch(changes: readonly XfrmChange[]): Promise<BatchResult[]> {
    // Encode everything first: a bad change fails the whole batch before any of it is sent.
    const requests = changes.map(encodeChange);
    return this.#serial(async () => {
      const results: BatchResult[] = [];
      let start = 0;
      while (start < requests.length) {
        let end = start;
        let bytes = 0;
        while (end < requests.length && end - start < this.#maxMessages) {
          const size = (requests[end]?.payload.length ?? 0) + HEADER_LENGTH;
          if (end > start && bytes + size > this.#maxBytes) break;
          bytes += size;
          end++;
        }
        const replies = await this.#exchange(requests.slice(start, end), 'errors');
        replies.forEach((reply, i) => {
          const change = changes[start + i];
          if (!change) return;
          if (reply.errno === 0) results.push({ op: change.op, ok: true });
          else results.push({ op: change.op, ok: false, error: this.#error(reply, change.op, () => describeChange(change)) });
        });
        start = end;
      }
      return results;
    });
  }

  // ----- internals -----

  async #one(change: XfrmChange): Promise<void> {
    const [result] = await this.applyBatch([change]);
    if (result && !result.ok) throw result.error;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #error(reply: Reply, operation: XfrmOperation, describe: () => string): XfrmError {
    return new XfrmError({
      errno: reply.errno,
      operation,
      object: describe(),
      ...(reply.extack === undefined ? {} : { extack: reply.extack }),
    });
  }

  #expectOk(reply: Reply | undefined, operation: XfrmOperation, describe: () => string): readonly NetlinkMessage[] {
    if (!reply) throw new XfrmTransportError(`${operation}: no reply`);
    if (reply.errno !== 0) throw this.#error(reply, operation, describe);
    return reply.messages;
  }

  async #dump(what: 'states' | 'policies', operation: XfrmOperation): Promise<readonly NetlinkMessage[]> {
    for (let attempt = 1; ; attempt++) {
      const [reply] = await this.#exchange([encodeDumpRequest(what)], 'each');
      const messages = this.#expectOk(reply, operation, () => `all ${what}`);
      if (!reply?.interrupted || attempt >= DUMP_RETRIES) {
        const want = what === 'states' ? XFRM_MSG.NEWSA : XFRM_MSG.NEWPOLICY;
        return messages.filter((m) => m.type === want);
      }
    }
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    return this.#seq;
  }

  /**
   * Sends the requests in one sendmsg and resolves with one reply per request, in order.
   * `each`: every request is answered (its own ack, a reply, a dump). `errors`: changes only;
   * they go without NLM_F_ACK, then an NLMSG_NOOP with NLM_F_ACK (see the top of this file),
   * and a change the kernel did not answer by the time that ack came succeeded.
   */
  #exchange(requests: readonly XfrmRequest[], acks: 'each' | 'errors'): Promise<Reply[]> {
    if (this.#closed) return Promise.reject(new XfrmTransportError('xfrm socket closed'));
    const port = this.#raw.address().port;
    const ackEach = acks === 'each';
    const messages: OutgoingMessage[] = requests.map((r) => ({ type: r.type, flags: ackEach ? r.flags : r.flags & ~NLM_F.ACK, seq: this.#nextSeq(), port, data: r.payload }));
    const closing: OutgoingMessage | undefined = ackEach ? undefined : { type: NLMSG.NOOP, flags: NLM_F.REQUEST | NLM_F.ACK, seq: this.#nextSeq(), port, data: new Uint8Array(0) };
    const firstSeq = messages[0]?.seq ?? 0;
    const datagram = encodeDatagram(closing ? [...messages, closing] : messages);
    return new Promise<Reply[]>((resolve, reject) => {
      const replies = new Array<Reply | undefined>(requests.length);
      let remaining = ackEach ? requests.length : 1;
      let failed = false;
      const finish = (): void => {
        clearTimeout(timer);
        for (const m of messages) this.#pending.delete(m.seq);
        if (closing) this.#pending.delete(closing.seq);
        if (this.#pending.size === 0) this.#raw.unref();
      };
      const fail = (err: Error): void => {
        if (failed) return;
        failed = true;
        finish();
        reject(err);
      };
      const done = (): void => {
        finish();
        resolve(ackEach ? (replies as Reply[]) : Array.from(replies, (r) => r ?? OK));
      };
      const timer = setTimeout(() => {
        fail(new XfrmTransportError(`no netlink reply within ${this.#timeoutMs} ms (${remaining} of ${ackEach ? requests.length : 1} outstanding)`));
      }, this.#timeoutMs);
      // One entry for the whole exchange, under every sequence number it uses.
      const pending: Pending = {
        messages: [],
        interrupted: false,
        settle: (answer, seq) => {
          if (failed) return;
          if (answer instanceof Error) { fail(answer); return; }
          if (seq === closing?.seq) { done(); return; }
          // Sequence numbers of one exchange are consecutive (wrapping past 0, which is skipped).
          const i = ((seq - firstSeq) >>> 0) - (seq < firstSeq ? 1 : 0);
          if (replies[i] !== undefined) return;
          // Replies to one request all come before its answer, and before the next request's.
          replies[i] = { ...answer, messages: pending.messages.splice(0), interrupted: pending.interrupted };
          pending.interrupted = false;
          if (ackEach && --remaining === 0) done();
        },
      };
      for (const m of messages) this.#pending.set(m.seq, pending);
      if (closing) this.#pending.set(closing.seq, pending);
      this.#raw.ref();
      this.#sendCalls++;
      this.#messagesSent += requests.length;
      // One contiguous buffer: an iovec per message would hit UIO_MAXIOV (1024) -> EMSGSIZE.
      this.#raw.send(datagram, {}, (err) => {
        if (err) fail(new XfrmTransportError(`netlink sendmsg failed: ${err.code}`, { cause: err }));
      });
    });
  }

  #onDatagram(msg: Buffer, rinfo: MessageInfo): void {
    if (rinfo.port !== 0) return; // only the kernel talks to us
    this.#datagramsReceived++;
    let messages: NetlinkMessage[];
    try {
      messages = parseDatagram(msg);
    } catch (err) {
      this.#failAll(err instanceof Error ? err : new XfrmTransportError(String(err)));
      return;
    }
    for (const m of messages) {
      const p = this.#pending.get(m.seq);
      if (!p) continue;
      if (m.flags & NLM_F.DUMP_INTR) p.interrupted = true;
      if (m.type === NLMSG.ERROR) {
        p.settle(parseAck(m.data, m.flags), m.seq);
      } else if (m.type === NLMSG.DONE) {
        p.settle({ errno: parseDone(m.data) }, m.seq);
      } else if (m.type !== NLMSG.NOOP && m.type !== NLMSG.OVERRUN) {
        p.messages.push(m);
      }
    }
  }

  #failAll(err: Error): void {
    for (const [seq, p] of [...this.#pending]) p.settle(err, seq);
  }
}

/** Key-free description of a change (for errors and logs). */
export function describeChange(c: XfrmChange): string {
  switch (c.op) {
    case 'addState':
    case 'updateState': return describeState(c.state);
    case 'deleteState': return describeStateId(c.id);
    case 'addPolicy':
    case 'updatePolicy': return describePolicy(c.policy);
    case 'deletePolicy': return describePolicyId(c.id);
  }
}
