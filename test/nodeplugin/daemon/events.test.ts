/**
 * NodeEvents: the Event body, deduplication by type, reason and message over an injected
 * clock, the message bound, and a sink that fails.
 */
import test from 'ava';
import type { CoreV1Event } from '@kubernetes/client-node';
import { setImmediate as tick } from 'node:timers/promises';
import { pino } from 'pino';
import { EVENT_COMPONENT, type EventSink, NodeEvents } from '../../../nodeplugin/daemon/events.js';

const T0 = 1_800_000_000_000;
const DEDUP = 60_000;

function setup(sinkResult: () => Promise<void> = () => Promise.resolve()) {
  const clock = { now: T0 };
  const sent: CoreV1Event[] = [];
  const logs: Record<string, unknown>[] = [];
  const sink: EventSink = { createEvent: (body) => { sent.push(body); return sinkResult(); } };
  const logger = pino({ level: 'warn' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } });
  const events = new NodeEvents(sink, { nodeName: 'node-1', logger, dedupMs: DEDUP, now: () => clock.now });
  return { clock, sent, logs, events };
}

test('an Event about the Node, as the kubelet writes them; the uid once known', (t) => {
  const s = setup();
  s.events.emit('Warning', 'SecretRefused', 'ipSec.spi: SPI 1 is below SPI 2');
  t.deepEqual(s.sent[0], {
    metadata: { generateName: 'node-1.', namespace: 'default' },
    involvedObject: { apiVersion: 'v1', kind: 'Node', name: 'node-1' },
    reason: 'SecretRefused',
    message: 'ipSec.spi: SPI 1 is below SPI 2',
    type: 'Warning',
    source: { component: EVENT_COMPONENT, host: 'node-1' },
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: 'node-1',
    firstTimestamp: new Date(T0),
    lastTimestamp: new Date(T0),
    count: 1,
  });
  s.events.setNodeUid('node-uid');
  s.events.emit('Normal', 'KeyRotated', 'SPI 2');
  t.deepEqual(s.sent[1]?.involvedObject, { apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'node-uid' });
});

test('the same type, reason and message is written once per dedup window', (t) => {
  const s = setup();
  s.events.emit('Warning', 'A', 'm');
  s.clock.now += DEDUP - 1;
  s.events.emit('Warning', 'A', 'm');
  s.events.emit('Normal', 'A', 'm');
  s.events.emit('Warning', 'B', 'm');
  s.events.emit('Warning', 'A', 'other');
  t.is(s.sent.length, 4);
  s.clock.now += 1;
  s.events.emit('Warning', 'A', 'm');
  t.is(s.sent.length, 5, 'the window is counted from the last write');
  s.clock.now += DEDUP - 1;
  s.events.emit('Warning', 'A', 'm');
  t.is(s.sent.length, 5);
});

test('messages are bounded to 1024 characters, and deduplicated as bounded', (t) => {
  const s = setup();
  const long = 'x'.repeat(3000);
  s.events.emit('Warning', 'Long', long);
  s.events.emit('Warning', 'Long', `${long}y`);
  t.is(s.sent.length, 1);
  t.is(s.sent[0]?.message?.length, 1024);
  t.true(s.sent[0]?.message?.endsWith('…'));
  s.events.emit('Warning', 'Exact', 'z'.repeat(1024));
  t.is(s.sent[1]?.message, 'z'.repeat(1024));
});

test('a sink that fails is logged, not retried, and never throws', async (t) => {
  const s = setup(() => Promise.reject(new Error(`forbidden: ${'e'.repeat(500)}`)));
  t.notThrows(() => { s.events.emit('Warning', 'A', 'm'); });
  await tick();
  t.is(s.sent.length, 1);
  t.is(s.logs.length, 1);
  t.like(s.logs[0], { msg: 'cannot write an Event', reason: 'A' });
  t.is((s.logs[0]?.why as string).length, 200);

  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a client may reject with anything
  const odd = setup(() => Promise.reject('plain string'));
  odd.events.emit('Normal', 'B', 'm');
  await tick();
  t.like(odd.logs[0], { reason: 'B', why: 'plain string' });
});

test('the dedup memory is trimmed of expired entries only', (t) => {
  const s = setup();
  for (let i = 0; i < 300; i++) s.events.emit('Normal', 'Many', `m${i}`);
  // Past the bound, but nothing expired: every earlier message is still deduplicated.
  s.clock.now += DEDUP - 1;
  s.events.emit('Normal', 'Many', 'late');
  s.events.emit('Normal', 'Many', 'm0');
  s.events.emit('Normal', 'Many', 'm299');
  t.is(s.sent.length, 301);
  // Later, the expired ones are trimmed (and written again when they recur); 'late' is still fresh.
  s.clock.now += 1;
  s.events.emit('Normal', 'Many', 'later');
  s.events.emit('Normal', 'Many', 'm0');
  s.events.emit('Normal', 'Many', 'late');
  t.deepEqual(s.sent.slice(301).map((e) => e.message), ['later', 'm0']);
});

test('defaults: a ten-minute window on the real clock', (t) => {
  const sent: CoreV1Event[] = [];
  const events = new NodeEvents({ createEvent: (b) => { sent.push(b); return Promise.resolve(); } }, { nodeName: 'n', logger: pino({ level: 'silent' }) });
  events.emit('Normal', 'A', 'm');
  events.emit('Normal', 'A', 'm');
  t.is(sent.length, 1);
  t.true(Math.abs((sent[0]?.firstTimestamp?.getTime() ?? 0) - Date.now()) < 24 * 3600_000, 'stamped with the real clock');
});
