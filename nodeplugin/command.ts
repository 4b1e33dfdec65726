/**
 * Running an external program (tc, bpftool, ip; in tests kubectl, npm, our own CLI): argv without a
 * shell, output collected as text, failures as a CommandError that carries what the program said.
 */
import { execFile } from 'node:child_process';

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  /**
   * The exit status; when the program did not exit by itself, why: the signal that ended it
   * (`SIGTERM` after `timeoutMs`) or Node's error code (`ENOENT`: no such program,
   * `ERR_CHILD_PROCESS_STDIO_MAXBUFFER`: more output than `maxBuffer`).
   */
  readonly code: number | string;
}

export interface CommandOptions {
  /** Written to the program's stdin, which is then closed (closed at once when absent). */
  readonly input?: string;
  /** Resolve with the result instead of rejecting when the program fails. */
  readonly allowFailure?: boolean;
  /** Kill the program (SIGTERM) after this long; default: no limit. */
  readonly timeoutMs?: number;
  /** Most bytes of stdout or stderr kept before the program is killed; default 64 MiB. */
  readonly maxBuffer?: number;
  /** The program's whole environment; default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory; default: this process's. */
  readonly cwd?: string;
}

export class CommandError extends Error {
  override readonly name = 'CommandError';
  readonly argv: readonly string[];
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | string;

  constructor(argv: readonly string[], result: CommandResult, detail: string) {
    // Some tools (bpftool -j) report errors on stdout.
    const said = result.stderr.trim() || result.stdout.trim() || detail;
    super(`${argv.join(' ')} failed (${String(result.code)}): ${said}`);
    this.argv = argv;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
    this.code = result.code;
  }
}

/** Runs `argv[0]` with the rest as its arguments and resolves with its output. */
export function runCommand(argv: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new TypeError('runCommand: empty argv'));
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        encoding: 'utf8',
        maxBuffer: options.maxBuffer ?? 64 << 20,
        ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ stdout, stderr, code: 0 });
          return;
        }
        const code = typeof err.code === 'number' ? err.code : (err.code ?? err.signal ?? 'failed');
        const result = { stdout, stderr, code };
        if (options.allowFailure === true) resolve(result);
        else reject(new CommandError(argv, result, err.message));
      },
    );
    // The program may exit without reading its stdin: ignore EPIPE there.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input);
  });
}
