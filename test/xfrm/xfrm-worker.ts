/**
 * Child process started inside a test network namespace (see RemoteXfrm in remote.ts): it
 * opens an XfrmSocket there and serves its methods, plus small TCP helpers for traffic tests.
 * Not a test file.
 */
import { createServer, connect } from 'node:net';
import type { Server } from 'node:net';
import { XfrmSocket } from '../../nodeplugin/xfrm/index.js';
import type { BatchResult, XfrmChange, XfrmPolicy, XfrmPolicyId, XfrmState, XfrmStateId } from '../../nodeplugin/xfrm/index.js';
import { errorToWire, failRpc, serveRpc } from '../helpers/netns.js';
import type { WireError } from '../helpers/netns.js';

export type WireBatchResult =
  | { readonly op: XfrmChange['op']; readonly ok: true }
  | { readonly op: XfrmChange['op']; readonly ok: false; readonly error: WireError };

let sock: XfrmSocket;
try {
  // Tests may force small batches to exercise splitting across sendmsg calls.
  const maxBatch = Number(process.env.KMESH_TEST_XFRM_MAX_BATCH ?? '') || undefined;
  sock = XfrmSocket.open(maxBatch === undefined ? {} : { maxBatchMessages: maxBatch });
} catch (err) {
  failRpc(err);
}

const servers = new Map<number, Server>();

const api = {
  addState: (s: XfrmState) => sock.addState(s),
  updateState: (s: XfrmState) => sock.updateState(s),
  deleteState: (id: XfrmStateId) => sock.deleteState(id),
  getState: (id: XfrmStateId) => sock.getState(id),
  dumpStates: () => sock.dumpStates(),
  addPolicy: (p: XfrmPolicy) => sock.addPolicy(p),
  updatePolicy: (p: XfrmPolicy) => sock.updatePolicy(p),
  deletePolicy: (id: XfrmPolicyId) => sock.deletePolicy(id),
  getPolicy: (id: XfrmPolicyId) => sock.getPolicy(id),
  dumpPolicies: () => sock.dumpPolicies(),
  applyBatch: async (changes: XfrmChange[]): Promise<WireBatchResult[]> =>
    (await sock.applyBatch(changes)).map((r: BatchResult) => (r.ok ? r : { op: r.op, ok: false, error: errorToWire(r.error) })),
  stats: () => sock.stats,
  batchLimit: () => sock.batchLimit,

  /** Starts a TCP echo server on host:port (resolves once listening). */
  tcpEchoServer: (host: string, port: number) => new Promise<void>((resolve, reject) => {
    const server = createServer((c) => c.pipe(c));
    server.once('error', reject);
    server.listen(port, host, () => {
      servers.set(port, server);
      resolve();
    });
  }),
  /** Sends `size` bytes to an echo server, reads them back; resolves with the bytes echoed. */
  tcpRoundTrip: (host: string, port: number, size: number, timeoutMs: number) => new Promise<number>((resolve, reject) => {
    const payload = Buffer.alloc(size, 0x5a);
    let received = 0;
    const c = connect({ host, port });
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`tcp round trip to ${host}:${port}: ${received} of ${size} bytes after ${timeoutMs} ms`));
    }, timeoutMs);
    c.on('connect', () => c.write(payload));
    c.on('data', (d) => {
      received += d.length;
      if (received >= size) {
        clearTimeout(timer);
        c.end();
        resolve(received);
      }
    });
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  }),
};

export type XfrmWorkerApi = typeof api;

serveRpc(api);
