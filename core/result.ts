/**
 * Validation outcome shared by every rule in core/. A rule never throws on bad input: it returns
 * every problem it found, each naming the field and the form that was expected, so a kubectl user
 * or an operator can fix all of them in one go. How many are listed is bounded, though: a problem
 * that repeats per key is listed a few times and then counted, and messages show the first few.
 */
import { safeText } from './safe-text.js';

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

/** Errors a message lists one by one; the rest are counted ("and N more"). */
export const MAX_LISTED_ERRORS = 8;
/** Longest `field: message` a message shows for one error (field names can be anyone's keys). */
const MAX_ERROR_CHARS = 400;
/** Errors of one kind (an unknown field, a bad list item) listed before the rest are counted. */
export const MAX_REPEATED_ERRORS = 5;

/**
 * `field: message; ...`, the form used in CLI output, logs and admission denials: the first
 * MAX_LISTED_ERRORS errors, each bounded and with control and invisible characters escaped,
 * then how many more there were.
 */
export function formatErrors(errors: readonly FieldError[]): string {
  const shown = errors.slice(0, MAX_LISTED_ERRORS).map((e) => safeText(`${e.field}: ${e.message}`, MAX_ERROR_CHARS));
  const more = errors.length - shown.length;
  return `${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
}

/**
 * The first `limit` of `errors` (all of one kind), then one error on `field` counting the rest
 * as `what`: 120,000 unknown fields make six errors, not 120,000.
 */
export function reportFew(errors: readonly FieldError[], field: string, what: string, limit = MAX_REPEATED_ERRORS): FieldError[] {
  if (errors.length <= limit) return [...errors];
  return [...errors.slice(0, limit), { field, message: `and ${errors.length - limit} more ${what}` }];
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
