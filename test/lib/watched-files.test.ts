/**
 * Mounted files (Secret, JWKS, TLS pair) are read bounded: a file larger than any Secret or
 * ConfigMap, an endless one or one that is not a regular file is refused with a clear error,
 * and the contents accepted before stay in force.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WatchedFiles } from '../../lib/watched-files.js';

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kmesh-watched-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function offer(file: string): Promise<{ accepted: boolean; changes: number; errors: NodeJS.ErrnoException[] }> {
  const errors: NodeJS.ErrnoException[] = [];
  let changes = 0;
  const watched = new WatchedFiles({
    files: [file],
    onChange: () => {
      changes++;
      return true;
    },
    onError: (err) => errors.push(err),
  });
  const accepted = await watched.start();
  watched.stop();
  return { accepted, changes, errors };
}

test('a file larger than 1 MiB (a sparse 64 MiB one) is refused before it is read', async (t) => {
  const big = join(dir, 'big');
  await writeFile(big, '');
  await truncate(big, 64 * 1024 * 1024);
  const r = await offer(big);
  t.false(r.accepted);
  t.is(r.changes, 0);
  t.is(r.errors[0]?.code, 'EFBIG');
  t.is(r.errors[0]?.message, `${big}: larger than 1048576 bytes`);
});

test('a FIFO and an endless device are refused at once, not read forever', async (t) => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  for (const file of [fifo, '/dev/zero']) {
    const r = await offer(file);
    t.false(r.accepted, file);
    t.is(r.changes, 0, file);
    t.is(r.errors[0]?.code, 'EFTYPE', file);
    t.is(r.errors[0]?.message, `${file}: not a regular file`);
  }
});

test('a file of normal size is read', async (t) => {
  const small = join(dir, 'small');
  await writeFile(small, '{"keys":[]}');
  const r = await offer(small);
  t.true(r.accepted);
  t.is(r.changes, 1);
});
