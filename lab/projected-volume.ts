/**
 * Writes files the way the kubelet updates a Secret or ConfigMap volume (atomic writer): the
 * data lives in a timestamped directory, `..data` is a symlink to it, and each key is a symlink
 * `<key> -> ..data/<key>`. An update writes a new directory and renames a new `..data` link over
 * the old one, so readers see either all old or all new files, and a watch on the file itself
 * never fires: this is what the node plugin must follow.
 */
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let counter = 0;

/** Make `dir` hold exactly `files` (name -> content); `undefined` content removes the volume's files. */
export async function writeProjectedVolume(dir: string, files: Readonly<Record<string, string>> | undefined): Promise<void> {
  await mkdir(dir, { recursive: true });
  const old = await readlink(join(dir, '..data')).catch(() => undefined);
  if (files === undefined) {
    // An optional Secret that was deleted: the kubelet empties the volume.
    for (const entry of ['..data']) await rm(join(dir, entry), { force: true });
    if (old) await rm(join(dir, old), { recursive: true, force: true });
    return;
  }
  const stamp = `..${new Date().toISOString().replace(/[-:.TZ]/g, '_')}${process.pid}_${counter++}`;
  await mkdir(join(dir, stamp));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, stamp, name), content, { mode: 0o600 });
  await rm(join(dir, '..data_tmp'), { force: true });
  await symlink(stamp, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    await symlink(join('..data', name), join(dir, name)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    });
  }
  if (old) await rm(join(dir, old), { recursive: true, force: true });
}
