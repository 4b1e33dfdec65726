/**
 * The CLI against hostile or broken input, as a user runs it (the built binary in a child
 * process): kubeconfigs that are malformed, missing or whose credential plugin fails; one
 * convention for usage errors; keys kept off the command line; duration ranges; output
 * directories it cannot create; and files with secret material created private from the start.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseIpsecSecret } from '../../core/secret.js';
import { runCommand, type CommandResult } from '../../nodeplugin/command.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

/** Runs the CLI with exactly `env` (no KUBECONFIG, HOME or in-cluster variables unless given). */
function run(args: string[], options: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return runCommand([process.execPath, CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...options.env },
    timeoutMs: options.timeoutMs ?? 60_000,
    allowFailure: true,
    ...(options.stdin === undefined ? {} : { input: options.stdin }),
  });
}

const oneLine = (text: string): boolean => text.endsWith('\n') && !text.slice(0, -1).includes('\n');

const dir = mkdtempSync(join(tmpdir(), 'kmesh-cli-hostile-'));
test.after.always(() => {
  rmSync(dir, { recursive: true, force: true });
});

// ---- kubeconfig --------------------------------------------------------------------------

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.secret-token-abcdefghijklmnopqrstuvwxyz';
const PASSWORD = 'hunter2-correct-horse';

test('a malformed kubeconfig: the file and the position, on one line, never its content', async (t) => {
  const file = join(dir, 'broken.kubeconfig');
  writeFileSync(file, `apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: c\nusers:\n- name: u\n  user:\n    token: ${TOKEN}\n    password: ${PASSWORD}\n  : oops\n\u0001\u0002\u00ffbinary\ncontexts: []\n`);
  const r = await run(['--kubeconfig', file, 'secret', 'get']);
  t.is(r.code, 1);
  t.true(oneLine(r.stderr), r.stderr);
  t.regex(r.stderr, new RegExp(`^kmesh-ipsec: cannot load kubeconfig ${file}: not valid YAML at line 11, column 3 \\(`));
  for (const secret of [TOKEN.slice(10, 30), PASSWORD, 'binary', '\u0001', 'server: https']) t.false(r.stderr.includes(secret), secret);
});

test('a kubeconfig that is not a regular file, or is huge, is refused before it is read', async (t) => {
  const devZero = await run(['--kubeconfig', '/dev/zero', 'secret', 'get'], { timeoutMs: 30_000 });
  t.is(devZero.code, 1);
  t.is(devZero.stderr, 'kmesh-ipsec: cannot load kubeconfig /dev/zero: not a regular file\n');
  const huge = join(dir, 'huge.kubeconfig');
  writeFileSync(huge, '');
  await import('node:fs/promises').then((fs) => fs.truncate(huge, 64 * 1024 * 1024));
  const big = await run(['--kubeconfig', huge, 'secret', 'get'], { timeoutMs: 30_000 });
  t.is(big.stderr, `kmesh-ipsec: cannot load kubeconfig ${huge}: larger than 16777216 bytes\n`);
});

test('no kubeconfig anywhere: says so and where it looked, instead of trying http://localhost:8080', async (t) => {
  const r = await run(['status', '--cluster']);
  t.is(r.code, 1);
  t.true(oneLine(r.stderr), r.stderr);
  t.is(r.stderr, `kmesh-ipsec: no kubeconfig found: --kubeconfig not given, $KUBECONFIG not set, ${join(dir, '.kube', 'config')} does not exist, and not in a pod (no /var/run/secrets/kubernetes.io/serviceaccount/token)\n`);
  const missing = await run(['--kubeconfig', join(dir, 'nope'), 'secret', 'get']);
  t.is(missing.stderr, `kmesh-ipsec: cannot load kubeconfig ${join(dir, 'nope')}: ENOENT\n`);
  const viaEnv = await run(['secret', 'get'], { env: { KUBECONFIG: join(dir, 'nope') } });
  t.is(viaEnv.stderr, `kmesh-ipsec: cannot load kubeconfig ${join(dir, 'nope')} (from $KUBECONFIG): ENOENT\n`);
});

function execKubeconfig(name: string, command: string, args: string[] = []): string {
  const file = join(dir, `${name}.kubeconfig`);
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'x',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command, args, interactiveMode: 'Never' } } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
  }));
  return file;
}

test('a failing exec credential plugin is named, with what it said or that it said nothing', async (t) => {
  const silent = await run(['--kubeconfig', execKubeconfig('silent', '/bin/false'), 'secret', 'get']);
  t.is(silent.code, 1);
  t.true(oneLine(silent.stderr), silent.stderr);
  t.regex(silent.stderr, /cannot authenticate to the Kubernetes API at https:\/\/127\.0\.0\.1:1: the credential plugin \/bin\/false failed and printed no error\n$/);
  const talking = await run(['--kubeconfig', execKubeconfig('talking', '/bin/sh', ['-c', 'printf "token expired: run login\\nsecond line\\033[2J" >&2; exit 1']), 'secret', 'get']);
  t.regex(talking.stderr, /the credential plugin \/bin\/sh failed: token expired: run login\n$/);
  const absent = await run(['--kubeconfig', execKubeconfig('absent', '/nonexistent/plugin'), 'secret', 'get']);
  t.regex(absent.stderr, /the credential plugin \/nonexistent\/plugin cannot be run \(ENOENT\)\n$/);
});

// ---- usage errors ---------------------------------------------------------------------------

test('usage errors, from the parser or the CLI itself: exit 2, one line, a hint to --help', async (t) => {
  const cases: [string[], RegExp][] = [
    [['secret', 'create', '--bogus'], /^kmesh-ipsec: unknown option '--bogus' \(see kmesh-ipsec secret create --help\)\n$/],
    [['secret', 'create', '--dry-rnu'], /^kmesh-ipsec: unknown option '--dry-rnu' \(Did you mean --dry-run\?\) \(see kmesh-ipsec secret create --help\)\n$/],
    [['secret', 'render', '--spi'], /^kmesh-ipsec: option '--spi <n>' argument missing \(see kmesh-ipsec secret render --help\)\n$/],
    [['secert'], /^kmesh-ipsec: unknown command 'secert' \(Did you mean secret\?\) \(see kmesh-ipsec --help\)\n$/],
    [['secret'], /^kmesh-ipsec: secret needs a command: create, get, delete, render \(see kmesh-ipsec secret --help\)\n$/],
    [['secret', 'get', '-o', 'xml'], /^kmesh-ipsec: --output: must be one of text, json, yaml, got "xml" \(see kmesh-ipsec secret get --help\)\n$/],
    [['--kubeconfig', 'x', 'secret', 'render', '--spi', '0', '--key', 'ab'], /^kmesh-ipsec: --spi: must be an integer from 1 to 2147483647, got "0" \(see kmesh-ipsec secret render --help\)\n$/],
    [['webhook', '--port', '1'], /^kmesh-ipsec: --tls-cert is required \(see kmesh-ipsec webhook --help\)\n$/],
  ];
  for (const [args, expected] of cases) {
    const r = await run(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, expected, args.join(' '));
    t.is(r.stdout, '', args.join(' '));
  }
  const help = await run(['secret', 'create', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: kmesh-ipsec secret create/);
});

// ---- keys off the command line --------------------------------------------------------------

test('--key-file and --key - read the key from a file or standard input; --help says why', async (t) => {
  const key = randomBytes(36).toString('hex');
  const file = join(dir, 'key.hex');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  const fromFile = await run(['secret', 'render', '--key-file', file, '--spi', '3', '-o', 'json']);
  t.is(fromFile.code, 0, fromFile.stderr);
  const parsed = parseIpsecSecret(JSON.parse(fromFile.stdout));
  t.true(parsed.ok && Buffer.from(parsed.value.key.aeadKey).toString('hex') === key);
  const fromStdin = await run(['secret', 'render', '--key', '-', '--spi', '3', '-o', 'json'], { stdin: `${key}\n` });
  t.is(fromStdin.stdout, fromFile.stdout);

  const both = await run(['secret', 'render', '--key', key, '--key-file', file, '--spi', '3']);
  t.is(both.code, 2);
  t.regex(both.stderr, /give the key once: --key or --key-file/);
  const none = await run(['secret', 'render', '--spi', '3']);
  t.is(none.code, 2);
  t.regex(none.stderr, /the key is required: --key-file FILE, --key - \(standard input\) or --key HEX/);
  const endless = await run(['secret', 'render', '--key-file', '/dev/zero', '--spi', '3'], { timeoutMs: 30_000 });
  t.is(endless.code, 2);
  t.regex(endless.stderr, /--key-file: \/dev\/zero: not a regular file/);
  writeFileSync(file, `${key.slice(0, 10)}z${key.slice(11)}`);
  const notHex = await run(['secret', 'render', '--key-file', file, '--spi', '3']);
  t.is(notHex.code, 2);
  t.regex(notHex.stderr, /--key-file: must be 72 hex characters .*; character 11 \("z"\) is not a hex digit/);
  t.false(notHex.stderr.includes(key.slice(0, 10)), 'the key is never echoed');

  for (const command of [['secret', 'create'], ['secret', 'render']]) {
    const help = (await run([...command, '--help'])).stdout;
    t.regex(help, /--key-file <file>/);
    t.regex(help, /visible to\s+every\s+user\s+in\s+ps/);
  }
});

// ---- durations ------------------------------------------------------------------------------

test('duration flags outside a sensible range are refused at start-up (exit 2), before anything runs', async (t) => {
  const webhook = ['webhook', '--tls-cert', 'a', '--tls-key', 'b', '--stamp-key', 'c'];
  const node = ['node', '--node-name', 'n1'];
  const cases: [string[], RegExp][] = [
    [[...webhook, '--stamp-ttl', '0'], /--stamp-ttl: must be from 1h to 168h, got "0"/],
    [[...webhook, '--stamp-ttl', '0s'], /--stamp-ttl: must be from 1h to 168h, got "0s"/],
    [[...webhook, '--stamp-ttl', '1000h'], /--stamp-ttl: must be from 1h to 168h, got "1000h"/],
    [[...webhook, '--file-poll-interval', '0'], /--file-poll-interval: must be from 1s to 10m, got "0"/],
    [[...webhook, '--clock-skew', '2h'], /--clock-skew: must be from 0s to 10m, got "2h"/],
    [[...webhook, '--shutdown-delay', '99999999999999999999h'], /--shutdown-delay: must be from 0s to 10m/],
    [[...node, '--grace-period', '0'], /--grace-period: must be from 1s to 168h, got "0"/],
    [[...node, '--resync-interval', '0'], /--resync-interval: must be from 1s to 24h, got "0"/],
    [[...node, '--publish-jitter', '2h'], /--publish-jitter: must be from 0s to 1h, got "2h"/],
  ];
  for (const [args, expected] of cases) {
    const r = await run(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, expected);
  }
});

// ---- output directories and secret files -----------------------------------------------------

test('certs and webhook keygen with --out under /proc fail at once with a clear error', async (t) => {
  for (const args of [['certs', '--out', '/proc/kmesh-ipsec-test/tls'], ['webhook', 'keygen', '--out', '/proc/kmesh-ipsec-test']]) {
    const r = await run(args, { timeoutMs: 30_000 });
    t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^kmesh-ipsec: --out: cannot create directory \/proc\/kmesh-ipsec-test \(ENOENT\)\n$/);
  }
});

test('webhook keygen: the private key is 0600 from its creation, whatever was there before', async (t) => {
  const out = join(dir, 'keygen');
  mkdirSync(out);
  // A file an attacker prepared under the final name, world-readable.
  await writeFile(join(out, 'stamp-key.jwk'), '');
  await chmod(join(out, 'stamp-key.jwk'), 0o666);
  // ...and under the temporary name the key used to be written through.
  const child = spawn(process.execPath, [CLI, 'webhook', 'keygen', '--out', out], { env: { PATH: process.env.PATH ?? '', HOME: dir } });
  const trap = join(out, `stamp-key.jwk.tmp-${child.pid ?? 0}`);
  await writeFile(trap, '');
  await chmod(trap, 0o666);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0);
  t.is((await stat(join(out, 'stamp-key.jwk'))).mode & 0o777, 0o600);
  t.is(await readFile(trap, 'utf8'), '', 'the prepared temporary file received nothing');
  t.is((await stat(join(out, 'stamp-jwks.json'))).mode & 0o777, 0o644);
});

test('certs: the keys are 0600 whatever was there before', async (t) => {
  const out = join(dir, 'certs');
  mkdirSync(out);
  for (const name of ['tls.key', 'ca.key']) {
    await writeFile(join(out, name), '');
    await chmod(join(out, name), 0o666);
  }
  const r = await run(['certs', '--out', out, '--write-ca-key']);
  t.is(r.code, 0, r.stderr);
  for (const name of ['tls.key', 'ca.key']) t.is((await stat(join(out, name))).mode & 0o777, 0o600, name);
});

test('an API server that ignores paging and answers 150,000 KmeshNodeInfos at once gets a clear refusal', async (t) => {
  const { createServer } = await import('node:http');
  const items = JSON.stringify({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfoList', metadata: {}, items: Array.from({ length: 150_000 }, () => ({})) });
  const server = createServer((req, res) => {
    const list = (req.url ?? '').includes('kmeshnodeinfos');
    res.writeHead(list ? 200 : 404, { 'content-type': 'application/json' });
    res.end(list ? items : JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound', message: 'not found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };
  const file = join(dir, 'unpaged.kubeconfig');
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'x',
    clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
  }));
  const r = await run(['--kubeconfig', file, 'status', '--cluster']);
  t.is(r.code, 1, r.stderr);
  t.is(r.stderr, 'kmesh-ipsec: cannot list KmeshNodeInfos in kmesh-system: the API returned more than 50000 objects\n');
});

test('status reads a bounded answer from the node plugin endpoint: an endless one is refused', async (t) => {
  const { createServer } = await import('node:http');
  const chunk = Buffer.alloc(1 << 20, 0x20);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const pump = (): void => {
      while (res.write(chunk)) { /* until the socket pushes back */ }
    };
    res.on('drain', pump);
    res.on('close', () => res.off('drain', pump));
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const r = await run(['status', '--endpoint', `http://127.0.0.1:${port}`], { timeoutMs: 60_000 });
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^kmesh-ipsec: cannot read the node plugin at http:\/\/127\.0\.0\.1:\d+\/status \(answer larger than 4194304 bytes\)/);
});
