/**
 * One KmeshNodeInfo behind the publisher's NodeInfoWriter port, with the API server's rules the
 * publisher relies on: create of an existing name is 409, replace is conditional on
 * resourceVersion (409) and 404 when the object is gone, the main resource ignores status and
 * /status ignores everything but status, and /status is 404 without the status subresource
 * (Kmesh's own CRD). Failures are client-node's ApiException (or a plain Error when the server
 * is not reached). An optional webhook stamps every create and replace, as the admission
 * webhook does.
 */
import { ApiException, type V1ObjectMeta } from '@kubernetes/client-node';
import { VALIDITY_ANNOTATION } from '../../../core/constants.js';
import type { KmeshNodeInfoSpec } from '../../../core/nodeinfo.js';
import type { NodeInfoObject } from '../../../nodeplugin/daemon/kube-api.js';
import type { NodeInfoWriter } from '../../../nodeplugin/daemon/publisher.js';

export type WriterOp = 'read' | 'create' | 'replace' | 'status';

export const apiError = (code: number, reason = 'Failure'): ApiException<unknown> =>
  new ApiException(code, `HTTP ${code} ${reason}`, { kind: 'Status', code, reason }, {});

const copy = <T>(v: T): T => structuredClone(v);

/** `obj` with metadata changed (objects here are parsed JSON, never V1ObjectMeta instances). */
const withMeta = (obj: NodeInfoObject, changes: Partial<V1ObjectMeta>): NodeInfoObject => ({ ...obj, metadata: Object.assign({}, obj.metadata, changes) });

/** `obj` without status: what the main resource stores of a body. */
function withoutStatus(obj: NodeInfoObject): NodeInfoObject {
  const out = copy(obj);
  delete out.status;
  return out;
}

export class FakeNodeInfoApi implements NodeInfoWriter {
  object: NodeInfoObject | undefined;
  /** Every call, in order, with the resourceVersion it was conditional on. */
  readonly calls: { op: WriterOp; rv?: string | undefined }[] = [];
  statusSubresource = true;
  /** Signs a stamp for what was written; undefined: no webhook (writes pass unstamped). */
  webhook: ((name: string, spec: KmeshNodeInfoSpec) => Promise<string>) | undefined;
  readonly #failures: { op: WriterOp; error: Error }[] = [];
  #rv = 100;

  /** The next `times` calls of `op` fail with `error`. */
  failNext(op: WriterOp, error: Error, times = 1): void {
    for (let i = 0; i < times; i++) this.#failures.push({ op, error });
  }

  count(op: WriterOp): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  /** Someone else writes the object (a new resourceVersion, same spec). */
  touch(): void {
    if (!this.object) throw new Error('nothing to touch');
    this.object = withMeta(this.object, { labels: { touched: String(this.#rv) }, resourceVersion: this.#nextRv() });
  }

  seed(obj: NodeInfoObject): NodeInfoObject {
    this.object = withMeta(copy(obj), { uid: 'kni-uid', resourceVersion: this.#nextRv() });
    return copy(this.object);
  }

  readNodeInfo(name: string): Promise<NodeInfoObject | undefined> {
    return this.#settle(() => {
      this.#enter('read');
      return this.object?.metadata?.name === name ? copy(this.object) : undefined;
    });
  }

  async createNodeInfo(body: NodeInfoObject): Promise<NodeInfoObject> {
    this.#enter('create', body);
    if (this.object) throw apiError(409, 'AlreadyExists');
    this.object = await this.#admit(withMeta(withoutStatus(body), { uid: 'kni-uid', resourceVersion: this.#nextRv() }));
    return copy(this.object);
  }

  async replaceNodeInfo(body: NodeInfoObject): Promise<NodeInfoObject> {
    const current = this.#conditional('replace', body);
    const next = withMeta(withoutStatus(body), { resourceVersion: this.#nextRv() });
    if (current.status) next.status = current.status;
    this.object = await this.#admit(next);
    return copy(this.object);
  }

  replaceNodeInfoStatus(body: NodeInfoObject): Promise<NodeInfoObject> {
    return this.#settle(() => {
      if (!this.statusSubresource) {
        this.#enter('status', body);
        throw apiError(404, 'NotFound');
      }
      const next = withMeta(this.#conditional('status', body), { resourceVersion: this.#nextRv() });
      if (body.status) next.status = copy(body.status);
      this.object = next;
      return copy(next);
    });
  }

  /** A synchronous step answered the way the API client answers: as a promise. */
  #settle<T>(fn: () => T): Promise<T> {
    return Promise.resolve().then(fn);
  }

  #conditional(op: WriterOp, body: NodeInfoObject): NodeInfoObject {
    this.#enter(op, body);
    if (!this.object) throw apiError(404, 'NotFound');
    if (body.metadata?.resourceVersion !== this.object.metadata?.resourceVersion) throw apiError(409, 'Conflict');
    return copy(this.object);
  }

  #enter(op: WriterOp, body?: NodeInfoObject): void {
    this.calls.push({ op, ...(body ? { rv: body.metadata?.resourceVersion } : {}) });
    const i = this.#failures.findIndex((f) => f.op === op);
    if (i >= 0) {
      const [f] = this.#failures.splice(i, 1);
      if (f) throw f.error;
    }
  }

  async #admit(obj: NodeInfoObject): Promise<NodeInfoObject> {
    if (!this.webhook) return obj;
    const token = await this.webhook(obj.metadata?.name ?? '', obj.spec as KmeshNodeInfoSpec);
    return withMeta(obj, { annotations: Object.assign({}, obj.metadata?.annotations, { [VALIDITY_ANNOTATION]: token }) });
  }

  #nextRv(): string {
    this.#rv++;
    return String(this.#rv);
  }
}
