// The lab's pod agent as a real process (here on 127.0.0.1, no namespace needed), driven over
// its control socket.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { callControl } from '../../lab/control.js';
import { POD_AGENT, PodClient } from '../../lab/pod-agent.js';

let agent: ChildProcess;
let dir: string;
let port: number;
let client: PodClient;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kmesh-pod-agent-'));
  port = await freePort();
  const socket = join(dir, 'pod.sock');
  agent = spawn(process.execPath, [POD_AGENT, socket, String(port), '127.0.0.1', '::1'], { stdio: 'inherit' });
  for (let i = 0; i < 300 && !existsSync(socket); i++) await sleep(100);
  client = new PodClient(socket);
});

test.after.always(() => {
  agent.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('a TCP exchange comes back whole, over IPv4 and IPv6', async (t) => {
  const payload = 'MARKER|'.repeat(5000);
  t.is(await client.tcpExchange('127.0.0.1', port, payload), payload.length);
  t.is(await client.tcpExchange('::1', port, 'v6'), 2);
});

test('a UDP stream counts what it sent and what came back', async (t) => {
  const id = await client.startStream('127.0.0.1', port, 5);
  await sleep(300);
  const count = await client.stopStream(id);
  t.true(count.sent > 5);
  t.is(count.received, count.sent);
  await t.throwsAsync(client.stopStream(id), { message: `no stream ${id}` });
});

test('a stream to where nothing answers counts every datagram as lost', async (t) => {
  const id = await client.startStream('127.0.0.1', await freePort(), 5);
  await sleep(200);
  const count = await client.stopStream(id);
  t.true(count.sent > 0);
  t.is(count.received, 0);
});

test('failures and bad requests are answered in words', async (t) => {
  await t.throwsAsync(client.tcpExchange('127.0.0.1', await freePort(), 'x'), { message: /^127\.0\.0\.1:\d+: connect ECONNREFUSED/ });
  await t.throwsAsync(callControl(client.socketPath, 'POST', '/v1/tcp', { host: 1 }), { message: 'host: a string is required' });
  await t.throwsAsync(callControl(client.socketPath, 'GET', '/v1/nothing'), { message: 'no such control call: GET /v1/nothing' });
});
