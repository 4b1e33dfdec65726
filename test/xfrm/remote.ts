/**
 * RemoteXfrm: the XfrmSocket API, executed by a worker process inside a network namespace
 * (xfrm configuration is per namespace and a netlink socket belongs to the namespace it was
 * opened in). Errors come back as real XfrmError instances. Not a test file.
 */
import { XfrmError } from '../../nodeplugin/xfrm/index.js';
import type {
  BatchResult, XfrmChange, XfrmOperation, XfrmPolicy, XfrmPolicyId, XfrmPolicyInfo, XfrmSocketStats, XfrmState,
  XfrmStateId, XfrmStateInfo,
} from '../../nodeplugin/xfrm/index.js';
import { NetnsWorker, errorFromWire } from '../helpers/netns.js';
import type { Netns, WireError } from '../helpers/netns.js';
import type { XfrmWorkerApi } from './xfrm-worker.js';

function revive(w: WireError): Error {
  if (w.name !== 'XfrmError') return errorFromWire(w);
  const p = w.props;
  return new XfrmError({
    errno: p.errno as number,
    operation: p.operation as XfrmOperation,
    object: p.object as string,
    ...(typeof p.extack === 'string' ? { extack: p.extack } : {}),
  });
}

export class RemoteXfrm {
  readonly worker: NetnsWorker<XfrmWorkerApi>;

  private constructor(worker: NetnsWorker<XfrmWorkerApi>) {
    this.worker = worker;
  }

  /** Starts a worker in `ns` with an open XfrmSocket. Stopped by close() or ns.destroy(). */
  static async open(ns: Netns, options: { readonly maxBatchMessages?: number } = {}): Promise<RemoteXfrm> {
    const env = options.maxBatchMessages === undefined ? {} : { KMESH_TEST_XFRM_MAX_BATCH: String(options.maxBatchMessages) };
    const worker = await NetnsWorker.start<XfrmWorkerApi>(ns, new URL('./xfrm-worker.js', import.meta.url), { reviveError: revive, env });
    return new RemoteXfrm(worker);
  }

  addState(s: XfrmState): Promise<void> { return this.worker.call('addState', s); }
  updateState(s: XfrmState): Promise<void> { return this.worker.call('updateState', s); }
  deleteState(id: XfrmStateId): Promise<void> { return this.worker.call('deleteState', id); }
  getState(id: XfrmStateId): Promise<XfrmStateInfo> { return this.worker.call('getState', id); }
  dumpStates(): Promise<XfrmStateInfo[]> { return this.worker.call('dumpStates'); }
  addPolicy(p: XfrmPolicy): Promise<void> { return this.worker.call('addPolicy', p); }
  updatePolicy(p: XfrmPolicy): Promise<void> { return this.worker.call('updatePolicy', p); }
  deletePolicy(id: XfrmPolicyId): Promise<void> { return this.worker.call('deletePolicy', id); }
  getPolicy(id: XfrmPolicyId): Promise<XfrmPolicyInfo> { return this.worker.call('getPolicy', id); }
  dumpPolicies(): Promise<XfrmPolicyInfo[]> { return this.worker.call('dumpPolicies'); }
  stats(): Promise<XfrmSocketStats> { return this.worker.call('stats'); }
  batchLimit(): Promise<number> { return this.worker.call('batchLimit'); }

  async applyBatch(changes: readonly XfrmChange[]): Promise<BatchResult[]> {
    const results = await this.worker.call('applyBatch', [...changes]);
    return results.map((r) => (r.ok ? r : { op: r.op, ok: false, error: revive(r.error) as XfrmError }));
  }

  tcpEchoServer(host: string, port: number): Promise<void> { return this.worker.call('tcpEchoServer', host, port); }
  tcpRoundTrip(host: string, port: number, size: number, timeoutMs = 30_000): Promise<number> {
    return this.worker.call('tcpRoundTrip', host, port, size, timeoutMs);
  }

  close(): Promise<void> { return this.worker.close(); }
}
