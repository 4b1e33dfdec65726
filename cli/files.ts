/** Files the user names on the command line: read bounded, output directories made safely, errors as one line. */
import { readBoundedFile, readProblem } from '../lib/bounded-read.js';
import { ensureDirectory } from '../lib/atomic-write.js';
import { CliError } from './errors.js';

/** The text of `file` (given with `flag`), at most `maxBytes`; one-line errors that never quote it. */
export async function readInputFile(file: string, flag: string, maxBytes: number, exitCode = 1): Promise<string> {
  try {
    return (await readBoundedFile(file, maxBytes)).toString('utf8');
  } catch (err: unknown) {
    throw new CliError(`${flag}: ${file}: ${readProblem(err)}`, exitCode);
  }
}

/** `--out DIR`, created (mode 0700) where missing. */
export async function outputDirectory(dir: string): Promise<void> {
  try {
    await ensureDirectory(dir, 0o700);
  } catch (err: unknown) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(`--out: cannot create directory ${e.path ?? dir} (${e.code ?? 'error'})`);
  }
}
