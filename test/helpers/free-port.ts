import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP port on `host` that was free a moment ago: for a server started in a child process, or
 * as an address nothing listens on.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
