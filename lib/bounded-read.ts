/**
 * Reading a file or a stream whose size someone else decides (a mounted Secret, a kubeconfig, a
 * key file, standard input) without letting them decide how much memory or time it costs: only
 * regular files are read, and never more than `maxBytes`. A FIFO would block the read forever,
 * and /dev/zero or a sparse file of terabytes would fill memory, if they were read whole.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** Why a read was refused: `EFBIG` (too large) or `EFTYPE` (not a regular file); the message says it. */
export class BoundedReadError extends Error {
  readonly code: 'EFBIG' | 'EFTYPE';
  constructor(code: 'EFBIG' | 'EFTYPE', message: string) {
    super(message);
    this.name = 'BoundedReadError';
    this.code = code;
  }
}

/** What went wrong reading a file, in a few words for a log or an error: the refusal, or the errno. */
export function readProblem(err: unknown): string {
  if (err instanceof BoundedReadError) return err.message;
  const e = err as NodeJS.ErrnoException;
  return e.code ?? (err instanceof Error ? err.message : String(err));
}

const tooLarge = (maxBytes: number): BoundedReadError => new BoundedReadError('EFBIG', `larger than ${maxBytes} bytes`);

/** The content of regular file `path`, refused when it is larger than `maxBytes`. */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new BoundedReadError('EFTYPE', 'not a regular file');
    if (st.size > maxBytes) throw tooLarge(maxBytes);
    // The size may be 0 (procfs) or out of date (a growing file): read to the bound, not to it.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(65_536, maxBytes + 1 - length));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) return Buffer.concat(chunks, length);
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > maxBytes) throw tooLarge(maxBytes);
    }
  } finally {
    await handle.close();
  }
}

/** Everything `stream` yields until its end, refused (and destroyed) past `maxBytes`. */
export async function readBoundedStream(stream: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    length += buf.length;
    if (length > maxBytes) {
      stream.destroy();
      throw tooLarge(maxBytes);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
