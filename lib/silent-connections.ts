/**
 * Node's header deadline (`headersTimeout`) starts with the first byte of a request, so a
 * connection that is opened (and, for TLS, handshaken) and then sends nothing would be held
 * until the keep-alive or socket timeout, or forever. This gives it the same deadline.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

/** Close every connection `server` accepts (on `event`) that sends no byte within `ms`. */
export function closeSilentConnections(server: EventEmitter, event: 'connection' | 'secureConnection', ms: number): void {
  server.on(event, (socket: Socket) => {
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    const clear = (): void => {
      clearTimeout(timer);
    };
    socket.once('data', clear);
    socket.once('close', clear);
  });
}
