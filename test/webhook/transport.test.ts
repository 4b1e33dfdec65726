/**
 * The webhook's transport as an attacker meets it, over real sockets: connections that never
 * start TLS, never finish their headers or trickle their body are closed at the deadlines
 * docs/webhook.md gives (asserted with generous upper margins: the machine may be loaded), and
 * TLS 1.2 offers only ECDHE key exchange with AEAD ciphers.
 */
import test from 'ava';
import { closedAfter } from '../helpers/sockets.js';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { HANDSHAKE_TIMEOUT_MS, HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../../webhook/server.js';
import { type TestWebhook, ipsecSecret, ipsecValue, secretReview, startWebhook } from './helpers.js';

let hook: TestWebhook;
test.before(async () => {
  hook = await startWebhook();
});
test.after.always(async () => {
  await hook.close();
});

/** Upper margin on every deadline: the timer is exact, the machine is not. */
const SLACK_MS = 15_000;

function tls(options: { maxVersion?: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: hook.port, ca: hook.pki.ca.certPem, ...options }, () => {
      resolve(s);
    });
    s.once('error', reject);
  });
}

test('the documented deadlines: TLS handshake 10 s (the API server\'s own), headers and whole request 30 s', (t) => {
  t.is(HANDSHAKE_TIMEOUT_MS, 10_000);
  t.is(HEADERS_TIMEOUT_MS, 30_000);
  t.is(REQUEST_TIMEOUT_MS, 30_000);
});

test('a TCP connection that never starts TLS is closed at the handshake deadline', async (t) => {
  const socket = tcpConnect(hook.port, '127.0.0.1');
  const ms = await closedAfter(socket, HANDSHAKE_TIMEOUT_MS + SLACK_MS);
  t.true(ms >= HANDSHAKE_TIMEOUT_MS - 500, `closed after ${ms} ms`);
  t.true(ms < HANDSHAKE_TIMEOUT_MS + SLACK_MS, `still open after ${ms} ms`);
});

test('a client that never finishes its headers is closed at the header deadline', async (t) => {
  const socket = await tls();
  socket.write('POST /validate HTTP/1.1\r\nHost: kmesh-ipsec-webhook\r\n');
  const drip = setInterval(() => {
    if (!socket.destroyed) socket.write('X-Slow: 1\r\n');
  }, 3000);
  const ms = await closedAfter(socket, HEADERS_TIMEOUT_MS + SLACK_MS);
  clearInterval(drip);
  t.true(ms >= HEADERS_TIMEOUT_MS - 500, `closed after ${ms} ms`);
  t.true(ms < HEADERS_TIMEOUT_MS + SLACK_MS, `still open after ${ms} ms`);
});

test('a client that trickles its body is closed at the request deadline', async (t) => {
  const socket = await tls();
  socket.write('POST /validate HTTP/1.1\r\nHost: kmesh-ipsec-webhook\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
  const drip = setInterval(() => {
    if (!socket.destroyed) socket.write(' ');
  }, 3000);
  const ms = await closedAfter(socket, REQUEST_TIMEOUT_MS + SLACK_MS);
  clearInterval(drip);
  t.true(ms >= REQUEST_TIMEOUT_MS - 500, `closed after ${ms} ms`);
  t.true(ms < REQUEST_TIMEOUT_MS + SLACK_MS, `still open after ${ms} ms`);
});

test('a TLS connection that never sends a request is closed at the header deadline', async (t) => {
  const socket = await tls();
  const ms = await closedAfter(socket, HEADERS_TIMEOUT_MS + SLACK_MS);
  t.true(ms >= HEADERS_TIMEOUT_MS - 500, `closed after ${ms} ms`);
  t.true(ms < HEADERS_TIMEOUT_MS + SLACK_MS, `still open after ${ms} ms`);
});

test('TLS 1.2 offers only ECDHE key exchange with AEAD ciphers; TLS 1.3 works', async (t) => {
  const outcome = async (options: Parameters<typeof tls>[0]): Promise<string> => {
    try {
      const s = await tls(options);
      const cipher = s.getCipher().standardName;
      s.destroy();
      return cipher;
    } catch {
      return 'refused';
    }
  };
  // Without forward secrecy (RSA key exchange), finite-field DHE, and CBC modes: refused.
  for (const ciphers of ['AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-SHA', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256']) {
    t.is(await outcome({ maxVersion: 'TLSv1.2', ciphers }), 'refused', ciphers);
  }
  t.is(await outcome({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }), 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
  t.is(await outcome({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' }), 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256');
  t.regex(await outcome({}), /^TLS_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$/);
});

test('the server still answers after all of that', async (t) => {
  const r = await hook.post('/validate', secretReview({ object: ipsecSecret(ipsecValue(4)) }));
  t.is(r.status, 200);
});
