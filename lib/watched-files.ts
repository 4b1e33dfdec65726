/**
 * Notice when a set of files changes content, for certificates and keys mounted from Secrets.
 *
 * The kubelet updates a Secret volume by writing a new timestamped directory and atomically
 * renaming the `..data` symlink onto it; the files we were given (`tls.crt` → `..data/tls.crt`)
 * never change as inodes, so watching them directly misses the update. We watch their
 * directories instead (any event there triggers a re-read), and also poll, because inotify
 * is not guaranteed on every volume type and watches can die silently. A change is reported
 * only when the bytes differ, and a content that was rejected once is not re-offered until it
 * changes again.
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { dirname } from 'node:path';
import { BoundedReadError, readBoundedFile } from './bounded-read.js';

/** Kubernetes keeps a Secret or ConfigMap under 1 MiB: nothing mounted from one is larger. */
export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

export interface WatchedFilesOptions {
  readonly files: readonly string[];
  /** Called with the new contents, in `files` order; return false to reject them. */
  readonly onChange: (contents: readonly Buffer[]) => Promise<boolean> | boolean;
  /** Called when files cannot be read or watched; the last accepted content stays in use. */
  readonly onError: (error: Error) => void;
  /** Poll interval; controller-runtime's certwatcher and cert-manager both use 10 s. */
  readonly pollIntervalMs?: number;
  /** Wait this long after an event so both files of a pair are read after the swap. */
  readonly debounceMs?: number;
  /** Larger files, and files that are not regular (a FIFO, a device), are refused unread. */
  readonly maxBytes?: number;
}

export class WatchedFiles {
  readonly #options: WatchedFilesOptions;
  readonly #watchers = new Map<string, FSWatcher>();
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #lastHash: string | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(options: WatchedFilesOptions) {
    this.#options = options;
  }

  /** Read the files once (offering them to onChange) and start watching. Returns whether they were accepted. */
  async start(): Promise<boolean> {
    const accepted = await this.#checkOnce();
    this.#armWatches();
    this.#poll = setInterval(() => {
      this.#armWatches();
      void this.check();
    }, this.#options.pollIntervalMs ?? 10_000);
    this.#poll.unref();
    return accepted;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#poll) clearInterval(this.#poll);
    if (this.#debounce) clearTimeout(this.#debounce);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }

  /** Re-read now; concurrent calls coalesce into one extra pass. */
  check(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#checkOnce();
      } while (this.#pending());
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Another pass was asked for while one ran (a method so the compiler does not narrow it across awaits). */
  #pending(): boolean {
    return this.#again && !this.#stopped;
  }

  async #checkOnce(): Promise<boolean> {
    let contents: Buffer[];
    try {
      contents = await Promise.all(this.#options.files.map((f) => readBoundedFile(f, this.#options.maxBytes ?? DEFAULT_MAX_FILE_BYTES).catch((err: unknown) => {
        throw named(f, err);
      })));
    } catch (err: unknown) {
      this.#options.onError(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    const hash = createHash('sha256');
    for (const c of contents) hash.update(createHash('sha256').update(c).digest());
    const digest = hash.digest('hex');
    if (digest === this.#lastHash) return true;
    this.#lastHash = digest;
    try {
      return await this.#options.onChange(contents);
    } catch (err: unknown) {
      this.#options.onError(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
  }

  #armWatches(): void {
    if (this.#stopped) return;
    for (const dir of new Set(this.#options.files.map((f) => dirname(f)))) {
      if (this.#watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => {
          this.#schedule();
        });
        w.on('error', (err) => {
          // The directory went away or the watch broke: drop it; the next poll re-arms it.
          w.close();
          this.#watchers.delete(dir);
          this.#options.onError(err);
        });
        this.#watchers.set(dir, w);
      } catch (err: unknown) {
        this.#options.onError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.check();
    }, this.#options.debounceMs ?? 100);
    this.#debounce.unref();
  }
}

/** The bounded reader's refusals say nothing of which file; errno errors already do. */
function named(file: string, err: unknown): unknown {
  if (!(err instanceof BoundedReadError)) return err;
  return new BoundedReadError(err.code, `${file}: ${err.message}`);
}
