/**
 * The npm package as a user gets it: a copy of the sources is packed with `npm pack` (which
 * runs `prepare`: the product build and the BPF objects), the tarball is installed into an
 * empty directory with `npm install`, and the installed command and subpaths are used from
 * there. The copy keeps this checkout's dist/ untouched while other suites run from it.
 * Needs clang (the BPF objects are built as `npm pack` would build them for a release) and the
 * npm registry or a warm npm cache for the dependencies.
 */
import anyTest from 'ava';
import type { TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, open, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parse } from 'yaml';
import { runCommand, type CommandResult } from '../../nodeplugin/command.js';

interface Ctx {
  readonly tmp: string;
  /** Paths in the tarball, without the leading `package/`. */
  readonly entries: readonly string[];
  /** The directory the tarball was installed into. */
  readonly app: string;
}
const test = anyTest as TestFn<Ctx>;

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Build output and local state, never part of what `npm pack` starts from. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', '.vm-cache', join('bpf', 'build')]);

function run(cmd: string, args: readonly string[], cwd: string): Promise<CommandResult> {
  // Child npm must see its own directory as the project, not the one `npm test` runs in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(package|lifecycle|config_local_prefix)/i.test(k)));
  return runCommand([cmd, ...args], { cwd, env, timeoutMs: 240_000, allowFailure: true });
}

async function mustRun(cmd: string, args: readonly string[], cwd: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited with ${String(r.code)}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** Runs an ES module from the app directory, so bare imports resolve as in a user's project. */
function runModule(app: string, source: string): Promise<CommandResult> {
  return run(process.execPath, ['--input-type=module', '-e', source], app);
}

test.before(async (t) => {
  t.timeout(480_000);
  const tmp = await mkdtemp(join(tmpdir(), 'kmesh-pack-'));
  const src = join(tmp, 'src');
  await cp(ROOT, src, { recursive: true, filter: (from) => !NOT_COPIED.has(relative(ROOT, from)) && !from.endsWith('.log') });
  // prepare compiles with the project's own TypeScript and type packages.
  await symlink(join(ROOT, 'node_modules'), join(src, 'node_modules'), 'dir');
  const out = join(tmp, 'out');
  await mkdir(out);
  await mustRun('npm', ['pack', '--pack-destination', out], src);
  const tarballs = (await readdir(out)).filter((f) => f.endsWith('.tgz'));
  if (tarballs.length !== 1) throw new Error(`npm pack left ${tarballs.join(', ') || 'no tarball'} in ${out}`);
  const tarball = join(out, tarballs[0] ?? '');
  const entries = (await mustRun('tar', ['-tzf', tarball], tmp)).split('\n').filter(Boolean).map((e) => e.replace(/^package\//, ''));

  const app = join(tmp, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'kmesh-ipsec-pack-test', private: true, type: 'module' }));
  await mustRun('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', tarball], app);
  t.log(`tarball: ${entries.length} files`);
  t.context = { tmp, entries, app };
});

test.after.always(async (t) => {
  // t.context is unset when before failed; nothing to remove then but a possible temp dir.
  const ctx = t.context as Partial<Ctx>;
  if (ctx.tmp !== undefined) await rm(ctx.tmp, { recursive: true, force: true });
});

test('the tarball holds the product and the built BPF objects, no tests, benchmarks or source maps', (t) => {
  const { entries } = t.context;
  t.deepEqual(entries.filter((e) => e.startsWith('dist/test/') || e.startsWith('dist/bench/')), []);
  t.deepEqual(entries.filter((e) => e.endsWith('.map')), []);
  // What tsconfig.build.json compiles: index.ts and the product directories.
  const product = (ts.readConfigFile(join(ROOT, 'tsconfig.build.json'), (p) => ts.sys.readFile(p)).config as { include: string[] }).include
    .map((i) => `dist/${i.replace(/\.ts$/, '.')}${i.endsWith('.ts') ? '' : '/'}`);
  t.deepEqual(entries.filter((e) => e.startsWith('dist/') && !product.some((p) => e.startsWith(p))), [], `dist/ holds only ${product.join(', ')}`);
  for (const f of ['bpf/build/kmi_pod.o', 'bpf/build/kmi_node.o', 'dist/index.js', 'dist/index.d.ts', 'dist/nodeplugin/index.js', 'dist/nodeplugin/index.d.ts', 'dist/cli/main.js', 'docs/kernel-api.md']) {
    t.true(entries.includes(f), f);
  }
});

test('the installed kmesh-ipsec command runs: --help', async (t) => {
  const r = await run(join(t.context.app, 'node_modules', '.bin', 'kmesh-ipsec'), ['--help'], t.context.app);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^Usage: kmesh-ipsec /);
  for (const command of ['secret', 'webhook', 'certs']) t.regex(r.stdout, new RegExp(`^  ${command}\\b`, 'm'));
});

test('the installed kmesh-ipsec secret render prints the canonical Kmesh secret', async (t) => {
  const key = randomBytes(36);
  const r = await run(join(t.context.app, 'node_modules', '.bin', 'kmesh-ipsec'), ['secret', 'render', '--key', key.toString('hex'), '--spi', '3'], t.context.app);
  t.is(r.code, 0, r.stderr);
  // Kmesh's Go struct field order, standard base64 key, no whitespace.
  const ipSec = `{"spi":3,"aeadKeyName":"rfc4106(gcm(aes))","aeadKey":"${key.toString('base64')}","length":128}`;
  t.deepEqual(parse(r.stdout), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'kmesh-ipsec', namespace: 'kmesh-system' },
    type: 'Opaque',
    data: { ipSec: Buffer.from(ipSec).toString('base64') },
  });
  t.false(r.stderr.includes(key.toString('hex')));
});

test('kmesh-ipsec/nodeplugin exports the kernel layer and the paths of the shipped BPF objects', async (t) => {
  const { app } = t.context;
  const r = await runModule(app, `
    import * as k from 'kmesh-ipsec/nodeplugin';
    import { join } from 'node:path';
    const api = ['NodeDatapath', 'Reconciler', 'NetlinkXfrmPort', 'BpfMapsPort', 'XfrmSocket', 'ensureMaps', 'nodePinDir'].filter((n) => typeof k[n] !== 'function');
    console.log(JSON.stringify({ missing: api, objects: Object.values(k.OBJECT_FILES).map((f) => join(k.DEFAULT_OBJECT_DIR, f)) }));
  `);
  t.is(r.code, 0, r.stderr);
  const { missing, objects } = JSON.parse(r.stdout) as { missing: string[]; objects: string[] };
  t.deepEqual(missing, []);
  t.deepEqual(objects, ['kmi_pod.o', 'kmi_node.o'].map((f) => join(app, 'node_modules', 'kmesh-ipsec', 'bpf', 'build', f)));
  for (const o of objects) {
    t.true((await stat(o)).size > 0, o);
    // ELF, 64-bit little-endian (the byte order of x86_64 and arm64 nodes), machine EM_BPF (247).
    const head = Buffer.alloc(20);
    const fh = await open(o);
    await fh.read(head, 0, 20, 0);
    await fh.close();
    t.deepEqual([head.subarray(0, 4).toString('latin1'), head[4], head[5], head.readUInt16LE(18)], ['\x7fELF', 2, 1, 247], o);
  }
});

test('the root export is the pure API, and files outside `exports` are not reachable', async (t) => {
  const r = await runModule(t.context.app, `
    const root = await import('kmesh-ipsec');
    let deep = 'reachable';
    try { await import('kmesh-ipsec/dist/nodeplugin/node-datapath.js'); } catch (err) { deep = err.code; }
    console.log(JSON.stringify({ plan: typeof root.plan, deriveKey: typeof root.deriveKey, datapath: typeof root.NodeDatapath, deep }));
  `);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { plan: 'function', deriveKey: 'function', datapath: 'undefined', deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
});
