/**
 * What runs in every lab pod: an echo service on the pod's addresses (TCP and UDP, port 5000),
 * and a control socket through which the demo, the tests or a person make the pod talk to
 * another one: a TCP exchange whose echo must come back whole, and numbered UDP streams that
 * count every datagram, so loss during a rotation or a restart is counted exactly.
 *
 * This file is both the program (`node pod-agent.js <control socket> <port> <ip>...`, started
 * inside the pod's namespace) and the client (PodClient).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, isIPv6 } from 'node:net';
import { fileURLToPath } from 'node:url';
import { callControl, ControlError, serveControl } from './control.js';

export const POD_AGENT = fileURLToPath(import.meta.url);

export interface StreamCount {
  readonly sent: number;
  readonly received: number;
}

/** Drives one pod's agent over its control socket. */
export class PodClient {
  readonly socketPath: string;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /** Sends `payload` over TCP to host:port; resolves with the byte count once the echo came back whole. */
  async tcpExchange(host: string, port: number, payload: string, timeoutMs = 30_000): Promise<number> {
    return (await callControl<{ bytes: number }>(this.socketPath, 'POST', '/v1/tcp', { host, port, payload, timeoutMs }, timeoutMs + 10_000)).bytes;
  }

  /** Starts a stream of numbered UDP datagrams to host:port, one every `intervalMs`; returns its id. */
  async startStream(host: string, port: number, intervalMs: number): Promise<number> {
    return (await callControl<{ id: number }>(this.socketPath, 'POST', '/v1/streams', { host, port, intervalMs })).id;
  }

  /** Stops the stream, waits for late echoes, and counts. */
  stopStream(id: number): Promise<StreamCount> {
    return callControl<StreamCount>(this.socketPath, 'DELETE', `/v1/streams/${id}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The program

function tcpExchange(host: string, port: number, payload: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const expected = Buffer.from(payload);
    const chunks: Buffer[] = [];
    const c = connect({ host, port });
    const timer = setTimeout(() => {
      c.destroy();
      reject(new ControlError(`no echo from ${host}:${port} within ${timeoutMs} ms`, 504));
    }, timeoutMs);
    c.on('connect', () => c.end(expected));
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(new ControlError(`${host}:${port}: ${e.message}`, 502));
    });
    c.on('close', () => {
      clearTimeout(timer);
      const got = Buffer.concat(chunks);
      if (got.equals(expected)) resolve(got.length);
      else reject(new ControlError(`echo from ${host}:${port} differs: ${got.length} of ${expected.length} bytes`, 502));
    });
  });
}

interface Stream {
  readonly socket: UdpSocket;
  readonly timer: NodeJS.Timeout;
  readonly seen: Set<number>;
  sent: number;
}

async function serveEcho(addresses: readonly string[], port: number): Promise<void> {
  for (const host of addresses) {
    await new Promise<void>((resolve, reject) => {
      const tcp = createServer((c) => {
        c.on('error', () => c.destroy());
        c.pipe(c);
      });
      tcp.once('error', reject);
      tcp.listen(port, host, () => {
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      const udp = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
      udp.on('message', (msg, rinfo) => {
        udp.send(msg, rinfo.port, rinfo.address);
      });
      udp.once('error', reject);
      udp.bind(port, host, () => {
        resolve();
      });
    });
  }
}

async function main(args: readonly string[]): Promise<void> {
  const [socketPath, portText, ...addresses] = args;
  if (socketPath === undefined || portText === undefined || addresses.length === 0) throw new Error('usage: pod-agent.js <control socket> <port> <ip>...');
  await serveEcho(addresses, Number(portText));
  const streams = new Map<number, Stream>();
  let nextId = 1;
  const field = (body: unknown, name: string): unknown => (typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined);
  const text = (body: unknown, name: string): string => {
    const value = field(body, name);
    if (typeof value !== 'string') throw new ControlError(`${name}: a string is required`);
    return value;
  };
  const num = (body: unknown, name: string): number => {
    const value = field(body, name);
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new ControlError(`${name}: a number is required`);
    return value;
  };
  await serveControl(socketPath, {
    'POST /v1/tcp': async (b) => ({
      bytes: await tcpExchange(text(b, 'host'), num(b, 'port'), text(b, 'payload'), Math.min(num(b, 'timeoutMs'), 600_000)),
    }),
    'POST /v1/streams': (b) => {
      const host = text(b, 'host');
      const port = num(b, 'port');
      const intervalMs = Math.max(1, num(b, 'intervalMs'));
      const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
      const stream: Stream = {
        socket,
        seen: new Set(),
        sent: 0,
        timer: setInterval(() => {
          const datagram = Buffer.alloc(64);
          datagram.writeUInt32BE(stream.sent++, 0);
          socket.send(datagram, port, host);
        }, intervalMs),
      };
      socket.on('message', (m) => {
        if (m.length >= 4) stream.seen.add(m.readUInt32BE(0));
      });
      // A send failing for lack of a route is loss, counted as such.
      socket.on('error', () => undefined);
      const id = nextId++;
      streams.set(id, stream);
      return { id };
    },
    'DELETE /v1/streams/:id': async (_b, [id]) => {
      const stream = streams.get(Number(id));
      if (stream === undefined) throw new ControlError(`no stream ${id ?? ''}`, 404);
      streams.delete(Number(id));
      clearInterval(stream.timer);
      // The last echoes are still on their way.
      await new Promise((r) => setTimeout(r, 2000));
      stream.socket.close();
      return { sent: stream.sent, received: stream.seen.size } satisfies StreamCount;
    },
  });
  process.stderr.write(`pod agent: echo on ${addresses.join(', ')} port ${portText}, control ${socketPath}\n`);
  process.once('SIGTERM', () => process.exit(0));
}

if (process.argv[1] === POD_AGENT) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`pod agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
