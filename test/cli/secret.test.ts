/**
 * `kmesh-ipsec secret` end to end: the compiled CLI in a child process, talking HTTPS to the
 * Kubernetes API test double through a real kubeconfig.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseIpsecSecret } from '../../core/secret.js';
import { keyFingerprint } from '../../core/fingerprint.js';
import { type LocalApi, startLocalApi } from '../../localapi/index.js';
import { cli } from '../helpers/cli.js';

function stored(double: LocalApi) {
  const obj = double.store.get('secrets', 'kmesh-system', 'kmesh-ipsec');
  if (!obj) return undefined;
  const parsed = parseIpsecSecret(obj);
  if (!parsed.ok) throw new Error('stored secret invalid');
  return parsed.value.key;
}

test('create, rotate, get, delete', async (t) => {
  const double = await startLocalApi();
  t.teardown(() => double.close());

  const created = await cli(double, 'secret', 'create');
  t.is(created.code, 0, created.stderr);
  const k1 = stored(double);
  t.is(k1?.spi, 1);
  t.is(created.stdout.trim(), `secret kmesh-system/kmesh-ipsec created: SPI 1, key fingerprint ${keyFingerprint(k1!.aeadKey)}`);
  // stored in Kmesh's canonical form
  const data = (double.store.get('secrets', 'kmesh-system', 'kmesh-ipsec') as unknown as { data: { ipSec: string } }).data.ipSec;
  t.regex(Buffer.from(data, 'base64').toString(), /^\{"spi":1,"aeadKeyName":"rfc4106\(gcm\(aes\)\)","aeadKey":"[A-Za-z0-9+/]{48}","length":128\}$/);

  const hex = randomBytes(36).toString('hex');
  const rotated = await cli(double, 'secret', 'create', '--key', hex);
  t.is(rotated.code, 0, rotated.stderr);
  t.regex(rotated.stdout, /rotated: SPI 1 -> 2/);
  const k2 = stored(double);
  t.is(k2?.spi, 2);
  t.is(Buffer.from(k2!.aeadKey).toString('hex'), hex);
  t.false(rotated.stdout.includes(hex) || rotated.stderr.includes(hex), 'the key is never printed');

  const same = await cli(double, 'secret', 'create', '--key', hex);
  t.is(same.code, 2);
  t.regex(same.stderr, /--key is the key already stored for SPI 2; a rotation needs a new key/);

  const text = await cli(double, 'secret', 'get');
  t.is(text.code, 0);
  t.regex(text.stdout, /SPI:\s+2\n/);
  t.regex(text.stdout, /Key:\s+hidden \(use --show-key to print it\)/);
  t.false(text.stdout.includes(hex));
  const json = await cli(double, 'secret', 'get', '-o', 'json');
  t.deepEqual(JSON.parse(json.stdout), { spi: 2, aeadKeyName: 'rfc4106(gcm(aes))', length: 128, keyFingerprint: keyFingerprint(k2!.aeadKey) });
  const yaml = await cli(double, 'secret', 'get', '-o', 'yaml', '--show-key');
  t.is((parseYaml(yaml.stdout) as { aeadKey: string }).aeadKey, Buffer.from(hex, 'hex').toString('base64'));
  t.regex((await cli(double, 'secret', 'get', '--show-key')).stdout, new RegExp(`Key:\\s+${hex}`));

  const refused = await cli(double, 'secret', 'delete');
  t.is(refused.code, 2);
  t.regex(refused.stderr, /pass --yes/);
  t.is(stored(double)?.spi, 2, 'nothing deleted without confirmation');

  const deleted = await cli(double, 'secret', 'delete', '--yes');
  t.is(deleted.code, 0, deleted.stderr);
  t.regex(deleted.stdout, /deleted \(was SPI 2\)/);
  t.regex(deleted.stderr, /must NOT restart at SPI 1/);
  t.is(stored(double), undefined);
  const missing = await cli(double, 'secret', 'get');
  t.is(missing.code, 1);
  t.regex(missing.stderr, /not found; create it with: kmesh-ipsec secret create/);
});

test('re-create after delete continues above every SPI nodes advertise', async (t) => {
  const double = await startLocalApi();
  t.teardown(() => double.close());
  for (const [name, spi] of [['node-a', 4], ['node-b', 5]] as const) {
    await double.store.put({
      apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name, namespace: 'kmesh-system' },
      spec: { spi, addresses: ['10.0.0.1'], bootID: '550e8400-e29b-41d4-a716-446655440000', podCIDRS: [] },
    });
  }
  const r = await cli(double, 'secret', 'create');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /created: SPI 6,/);
});

test('concurrent creates never write the same SPI', async (t) => {
  const double = await startLocalApi();
  t.teardown(() => double.close());
  const written: number[] = [];
  const stop = double.store.onChange((e) => {
    if (e.resource !== 'secrets' || e.type === 'DELETED') return;
    const parsed = parseIpsecSecret(e.object);
    if (parsed.ok) written.push(parsed.value.key.spi);
  });
  t.teardown(stop);
  const results = await Promise.all(Array.from({ length: 4 }, () => cli(double, 'secret', 'create')));
  for (const r of results) t.is(r.code, 0, r.stderr);
  const reported = results.map((r) => Number(/SPI (?:\d+ -> )?(\d+),/.exec(r.stdout)?.[1])).sort();
  t.deepEqual(reported, [1, 2, 3, 4], 'each process reports its own SPI');
  t.deepEqual([...written].sort(), [1, 2, 3, 4], 'each SPI was written exactly once');
  t.is(stored(double)?.spi, 4);
});

test('a bad --key exits non-zero and says what is needed', async (t) => {
  const double = await startLocalApi();
  t.teardown(() => double.close());
  const short = await cli(double, 'secret', 'create', '--key', 'ab'.repeat(32).replace('ab', 'cd'));
  t.is(short.code, 2);
  t.regex(short.stderr, /--key: must be 72 hex characters \(36 bytes: 32-byte AES-256 key \+ 4-byte salt\); got 64 characters \(the 4-byte salt is missing\)/);
  const nonHex = await cli(double, 'secret', 'create', '--key', `${'a1'.repeat(35)}zz`);
  t.is(nonHex.code, 2);
  t.regex(nonHex.stderr, /character 71 \("z"\) is not a hex digit/);
  const weak = await cli(double, 'secret', 'create', '--key', '00'.repeat(36));
  t.is(weak.code, 2);
  t.regex(weak.stderr, /all zeros/);
  t.is(stored(double), undefined, 'nothing was written');
});

test('render prints the manifest offline; get on an unreachable cluster is one line', async (t) => {
  const hex = randomBytes(36).toString('hex');
  const r = await cli('/nonexistent-kubeconfig', 'secret', 'render', '--key', hex, '--spi', '7', '-o', 'json');
  t.is(r.code, 0, r.stderr);
  const parsed = parseIpsecSecret(JSON.parse(r.stdout));
  t.true(parsed.ok && parsed.value.key.spi === 7);
  t.is((await cli('/nonexistent-kubeconfig', 'secret', 'render', '--key', hex, '--spi', '0')).stderr.trim(), 'kmesh-ipsec: --spi: must be an integer from 1 to 2147483647, got "0" (see kmesh-ipsec secret render --help)');

  const double = await startLocalApi();
  const port = new URL(double.url).port;
  const dir = mkdtempSync(join(tmpdir(), 'cli-test-'));
  t.teardown(() => { rmSync(dir, { recursive: true }); });
  const dead = join(dir, 'dead.kubeconfig');
  writeFileSync(dead, double.kubeconfig().replace(`:${port}`, ':1'));
  await double.close();
  const down = await cli(dead, 'secret', 'get');
  t.is(down.code, 1);
  t.is(down.stderr.trim().split('\n').length, 1);
  t.regex(down.stderr, /^kmesh-ipsec: cannot read secret kmesh-system\/kmesh-ipsec: cannot reach the Kubernetes API at https:\/\/127\.0\.0\.1:1: connect ECONNREFUSED/);
});
