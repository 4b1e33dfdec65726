/**
 * A listening TCP socket inside another network namespace, served by this process.
 *
 * Node cannot switch network namespaces, but a socket keeps the namespace it was created in.
 * So a short-lived child started inside the namespace (nsenter) listens on the address and
 * hands the listening socket over the IPC channel (SCM_RIGHTS); this process accepts its
 * connections from then on and the child exits. The lab's API listens on 127.0.0.1:6443 of
 * every node namespace this way: no relay process per node, and nothing added to the host's
 * own namespace.
 *
 * This file is both the library (listenInNetns) and the child program.
 */
import { fork } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';

const PROGRAM = fileURLToPath(import.meta.url);

/** Listens on `host:port` inside the namespace at `netnsPath`; resolves with the listening server. */
export function listenInNetns(netnsPath: string, host: string, port: number, timeoutMs = 120_000): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = fork(PROGRAM, [host, String(port)], {
      execPath: 'nsenter',
      execArgv: [`--net=${netnsPath}`, '--', process.execPath],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s.slice(0, 2000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listener in ${netnsPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('message', (message: unknown, handle: unknown) => {
      clearTimeout(timer);
      child.send('received');
      if (message === 'listening' && handle !== undefined) resolve(handle as Server);
      else reject(new Error(`listening on ${host}:${port} in ${netnsPath} failed: ${String(message)}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`listening on ${host}:${port} in ${netnsPath} failed (exit ${String(code)}): ${stderr.trim()}`));
    });
  });
}

// The child: listen, hand the socket over, wait for the receipt, exit.
if (process.argv[1] === PROGRAM && process.send !== undefined) {
  const [host = '127.0.0.1', port = '0'] = process.argv.slice(2);
  const server = createServer();
  server.once('error', (err) => {
    process.send?.(`error: ${err.message}`);
    process.exit(1);
  });
  server.listen({ host, port: Number(port) }, () => {
    process.send?.('listening', server);
  });
  process.once('message', () => process.exit(0));
  process.once('disconnect', () => process.exit(0));
}
