/**
 * Reaching the Kubernetes API test double from other network namespaces.
 *
 * The double listens on 127.0.0.1 of the test's own network namespace, which node namespaces
 * cannot reach. Each node gets a tiny relay process inside its namespace that listens on its
 * own 127.0.0.1:6443 (inside the double's certificate) and forwards every connection over a
 * unix socket (filesystem paths cross network namespaces) to the test process, which forwards
 * it to the double. Turning the unix side off makes the API unreachable for every node at once,
 * as a control-plane outage would, without touching the double's state.
 *
 * This file is both the library (ApiGateway, in the test process) and the relay program
 * (`node api-relay.js <port> <socket>`, inside a node namespace).
 */
import { type Server, type Socket, connect, createServer } from 'node:net';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const NODE_API_PORT = 6443;

/** Test-process side: unix socket -> the double's TCP port. */
export class ApiGateway {
  readonly socketPath: string;
  readonly #target: { host: string; port: number };
  #server: Server | undefined;
  readonly #conns = new Set<Socket>();

  constructor(socketPath: string, target: { host: string; port: number }) {
    this.socketPath = socketPath;
    this.#target = target;
  }

  /** Serve (again). */
  async up(): Promise<void> {
    if (this.#server) return;
    rmSync(this.socketPath, { force: true });
    const server = createServer((client) => {
      const upstream = connect(this.#target.port, this.#target.host);
      this.#track(client);
      this.#track(upstream);
      splice(client, upstream);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  /** Drop every connection and refuse new ones until up(). */
  async down(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => { resolve(); }));
    rmSync(this.socketPath, { force: true });
  }

  #track(s: Socket): void {
    this.#conns.add(s);
    s.once('close', () => this.#conns.delete(s));
  }
}

/** Copies bytes both ways; either side ending or failing ends both. */
function splice(client: Socket, upstream: Socket): void {
  client.pipe(upstream).pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  for (const s of [client, upstream]) {
    s.on('error', close);
    s.on('close', close);
  }
}

/** Path of the relay program, to run inside a node namespace. */
export const RELAY_PROGRAM = fileURLToPath(import.meta.url);

// Relay program: 127.0.0.1:<port> in this namespace -> unix socket.
if (process.argv[1] === RELAY_PROGRAM) {
  const [port, socketPath] = process.argv.slice(2);
  if (!port || !socketPath) {
    process.stderr.write('usage: api-relay.js <port> <unix socket>\n');
    process.exit(2);
  }
  const server = createServer((client) => {
    splice(client, connect({ path: socketPath }));
  });
  server.listen(Number(port), '127.0.0.1', () => {
    process.stdout.write('relay listening\n');
  });
  process.on('SIGTERM', () => process.exit(0));
}
