/** Watching a raw socket from the client side, for tests of a server's deadlines. */
import type { Socket } from 'node:net';

/** Milliseconds from now until `socket` closes, or `giveUpMs` (and the socket destroyed) if it is still open then. */
export function closedAfter(socket: Socket, giveUpMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(giveUpMs);
    }, giveUpMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}
