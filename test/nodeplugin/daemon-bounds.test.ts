/**
 * The node plugin daemon's edges under hostile input (no root needed): its HTTP endpoint closes
 * slow and silent clients at its deadlines, peers with huge lists cost their count and give
 * bounded, escaped messages, Event text from cluster data is escaped and bounded, and a timer
 * far in the future does not fire at once.
 */
import test from 'ava';
import { closedAfter } from '../helpers/sockets.js';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Event } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { NodeEvents } from '../../nodeplugin/daemon/events.js';
import { HEADERS_TIMEOUT_MS, listenEndpoint } from '../../nodeplugin/daemon/http.js';
import { PeerTrust } from '../../nodeplugin/daemon/peer-trust.js';
import { WorkQueue } from '../../nodeplugin/daemon/work-queue.js';

const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const SLACK_MS = 15_000;

test('the HTTP endpoint closes a client that never finishes its headers, and one that sends nothing, at the header deadline', async (t) => {
  const endpoint = await listenEndpoint('127.0.0.1', 0, {
    registry: new Registry(),
    healthy: () => ({ ok: true }),
    ready: () => ({ ok: true }),
    status: () => Promise.resolve({}),
  });
  t.teardown(() => endpoint.close());
  const port = Number(new URL(endpoint.url).port);
  const slow = connect(port, '127.0.0.1');
  slow.write('GET /status HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => {
    if (!slow.destroyed) slow.write('X-Slow: 1\r\n');
  }, 1000);
  const silent = connect(port, '127.0.0.1');
  const [slowMs, silentMs] = await Promise.all([closedAfter(slow, HEADERS_TIMEOUT_MS + SLACK_MS), closedAfter(silent, HEADERS_TIMEOUT_MS + SLACK_MS)]);
  clearInterval(drip);
  for (const [what, ms] of [['slow headers', slowMs], ['nothing sent', silentMs]] as const) {
    t.true(ms >= HEADERS_TIMEOUT_MS - 500, `${what}: closed after ${ms} ms`);
    t.true(ms < HEADERS_TIMEOUT_MS + SLACK_MS, `${what}: still open after ${ms} ms`);
  }
});

test('a peer with 100,000 invalid addresses is refused by their count, with a bounded and escaped message', async (t) => {
  const peer = {
    metadata: { name: 'node-b', annotations: {} },
    spec: { spi: 1, bootID: '6f1a8a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b', addresses: Array.from({ length: 100_000 }, (_, i) => `bad\u202e${i}`), podCIDRS: ['10.244.2.0/24'], ['\u001b[2Jx'.repeat(50)]: 1 },
  };
  const [verdict] = await new PeerTrust().classify({ objects: [peer], localName: 'node-a', ring: undefined, ringVersion: 0, now: Date.now() / 1000 });
  if (!verdict || verdict.used) return t.fail('used');
  t.is(verdict.reason, 'invalid-spec');
  t.regex(verdict.message, /spec\.addresses: at most 64 addresses/);
  t.true(verdict.message.length <= 4096, `${verdict.message.length} characters`);
  t.false(UNSAFE.test(verdict.message), verdict.message.slice(0, 200));
});

test('Events built from cluster data are escaped and bounded', async (t) => {
  const sent: CoreV1Event[] = [];
  const events = new NodeEvents({ createEvent: (body) => { sent.push(body); return Promise.resolve(); } }, { nodeName: 'node-a', logger: pino({ level: 'silent' }) });
  events.emit('Warning', 'PeerRefused', `KmeshNodeInfo node-b refused: \u202eforged\n${'x'.repeat(5000)}`);
  await sleep(10);
  const message = sent[0]?.message ?? '';
  t.true(message.length <= 1024, `${message.length} characters`);
  t.false(UNSAFE.test(message), message.slice(0, 100));
  t.regex(message, /^KmeshNodeInfo node-b refused: \\u\{202e\}forged\\nxxx/);
});

test('a timer weeks away does not fire at once (setTimeout would overflow past 24.8 days)', async (t) => {
  let runs = 0;
  const queue = new WorkQueue(() => {
    runs++;
    return Promise.resolve();
  });
  t.teardown(() => queue.stop());
  queue.at('peer-stamp', Date.now() + 30 * 24 * 3600 * 1000);
  await sleep(300);
  t.is(runs, 0);
});
