/**
 * No Docker engine runs here, so the image is never built in CI. This checks what can be
 * checked without one: every path the Dockerfile copies exists (sources in the checkout, build
 * outputs after `npm run build`), none of them is excluded by .dockerignore, and the command
 * the manifests run is the one the image installs.
 */
import test from 'ava';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFESTS_DIR } from '../../webhook/configurations.js';

const ROOT = join(MANIFESTS_DIR, '..');
const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
const copies = dockerfile.split('\n').filter((line) => line.startsWith('COPY '));
const exists = (path: string) => access(join(ROOT, path)).then(() => true, () => false);

test('every COPY from the build context names a file or directory of the checkout that .dockerignore keeps', async (t) => {
  const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('**'));
  const sources = copies.filter((l) => !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
  t.true(sources.length >= 8);
  for (const source of sources) {
    t.true(await exists(source), source);
    t.false(ignored.some((i) => source === i || source.startsWith(`${i}/`)), `${source} is in .dockerignore`);
  }
});

test('every COPY from the build stage names something `npm run build` produced', async (t) => {
  const sources = copies.filter((l) => l.includes('--from=build')).flatMap((l) => l.split(/\s+/).slice(2, -1)).map((s) => s.replace(/^\/src\//, ''));
  t.true(sources.includes('bpf/build') && sources.includes('dist/cli'));
  for (const source of sources) t.true(await exists(source), source);
  t.regex(dockerfile, /ln -s \/opt\/kmesh-ipsec\/dist\/cli\/main\.js \/usr\/local\/bin\/kmesh-ipsec/);
  t.true(await exists('dist/cli/main.js'));
});
