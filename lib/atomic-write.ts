/**
 * Writing files that may hold secret material (private keys), and the directories for them.
 *
 * A file is created under a random name with O_EXCL and its final mode from the first byte,
 * then renamed over the target: a file someone prepared under a predictable name (with a loose
 * mode, or as a symlink) is never opened, the target is never seen half-written, and a reader
 * watching the directory sees the old or the new content. The mode is set with fchmod too, so
 * a umask can neither loosen nor tighten it.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** `path` with `content`, mode `mode`, replaced atomically. */
export async function writeFileAtomic(path: string, content: string | Uint8Array, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    try {
      await handle.chmod(mode);
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err: unknown) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * `mkdir -p dir` with `mode` for what it creates. Node's recursive mkdir loops forever where a
 * file system refuses creation with ENOENT (procfs, sysfs): this creates one level at a time,
 * from the nearest existing ancestor, and stops at the first refusal with its errno.
 */
export async function ensureDirectory(dir: string, mode: number): Promise<void> {
  const missing: string[] = [];
  for (let at = resolve(dir); ; at = dirname(at)) {
    try {
      if (!(await stat(at)).isDirectory()) throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR', path: at });
      break;
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err;
      missing.unshift(at);
    }
  }
  for (const at of missing) {
    try {
      await mkdir(at, { mode });
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw Object.assign(err as Error, { path: at });
    }
  }
}
