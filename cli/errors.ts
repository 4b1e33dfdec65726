/** An error meant for the person at the terminal: printed as one line, no stack. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Exit code for bad flags or input (same as commander's usage errors). */
export const USAGE_EXIT = 2;

/**
 * Exit code for "a key rotation is still spreading": `status --cluster` says rotating, and
 * `secret create` refuses to rotate again. Scripts retry on it.
 */
export const ROTATING_EXIT = 3;
