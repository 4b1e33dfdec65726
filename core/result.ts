/**
 * Validation outcome shared by every rule in core/. A rule never throws on bad input: it returns
 * every problem it found, each naming the field and the form that was expected, so a kubectl user
 * or an operator can fix all of them in one go.
 */

/** One problem with one field. `field` is a dotted path such as `ipSec.aeadKey` or `spec.podCIDRS[1]`. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export type Result<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(errors: readonly FieldError[]): Result<T> {
  return { ok: false, errors };
}

/** `field: message` lines, the form used in CLI output and admission denials. */
export function formatErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}

/** Thrown by the few APIs that cannot return a Result (e.g. deriveKey); carries the field errors. */
export class ValidationError extends Error {
  readonly errors: readonly FieldError[];
  constructor(errors: readonly FieldError[]) {
    super(formatErrors(errors));
    this.name = 'ValidationError';
    this.errors = errors;
  }
}

/** Unwrap a Result or throw ValidationError. */
export function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result.value;
  throw new ValidationError(result.errors);
}
