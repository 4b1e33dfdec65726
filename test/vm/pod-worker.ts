/**
 * A "pod" inside its own network namespace: TCP and UDP echo servers, a TCP exchange, and a
 * UDP echo stream that counts every datagram, so loss during a rotation is counted exactly.
 * Not a test file.
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { serveRpc } from '../helpers/netns.js';

const streams = new Map<number, { stop: () => Promise<{ sent: number; received: number }> }>();
let nextStream = 1;

const api = {
  echo: (host: string, port: number) =>
    new Promise<void>((resolve, reject) => {
      const tcp = createServer((c) => c.pipe(c));
      tcp.once('error', reject);
      tcp.listen(port, host, () => {
        const udp = createSocket('udp4');
        udp.on('message', (msg, rinfo) => { udp.send(msg, rinfo.port, rinfo.address); });
        udp.bind(port, host, () => { resolve(); });
      });
    }),
  /** Sends `payload`, expects it echoed back whole; resolves with the byte count. */
  tcpExchange: (host: string, port: number, payload: string, timeoutMs: number) =>
    new Promise<number>((resolve, reject) => {
      const expected = Buffer.from(payload);
      const chunks: Buffer[] = [];
      const c = connect({ host, port });
      const timer = setTimeout(() => { c.destroy(); reject(new Error(`no echo from ${host}:${port} within ${timeoutMs} ms`)); }, timeoutMs);
      c.on('connect', () => c.end(expected));
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('error', (e) => { clearTimeout(timer); reject(e); });
      c.on('close', () => {
        clearTimeout(timer);
        const got = Buffer.concat(chunks);
        if (got.equals(expected)) resolve(got.length);
        else reject(new Error(`echo from ${host}:${port} differs: ${got.length} of ${expected.length} bytes`));
      });
    }),
  /** Starts a numbered UDP echo stream; returns its id. */
  startStream: (host: string, port: number, intervalMs: number) => {
    const sock = createSocket('udp4');
    const seen = new Set<number>();
    let sent = 0;
    sock.on('message', (m) => { seen.add(m.readUInt32BE(0)); });
    const timer = setInterval(() => {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(sent++, 0);
      sock.send(b, port, host);
    }, intervalMs);
    const id = nextStream++;
    streams.set(id, {
      stop: async () => {
        clearInterval(timer);
        await new Promise((r) => setTimeout(r, 2000)); // let the last echoes arrive
        sock.close();
        return { sent, received: seen.size };
      },
    });
    return id;
  },
  stopStream: async (id: number) => {
    const s = streams.get(id);
    if (!s) throw new Error(`no stream ${id}`);
    streams.delete(id);
    return s.stop();
  },
};
export type PodWorkerApi = typeof api;
serveRpc(api);
