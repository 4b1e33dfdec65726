/** Checks and descriptions of decoded JSON values (`unknown` from JSON.parse or a request body). */

/** A JSON object: not null and not an array. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * What a JSON value is, in a few words for an error message ("the string \"x\"", "number 5",
 * "an array", "nothing"). Strings longer than 24 characters are described by their length only,
 * so a key pasted into the wrong field is never echoed.
 */
export function describeJsonValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length <= 24 ? `the string ${JSON.stringify(v)}` : `a string of ${v.length} characters`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return `an ${typeof v}`;
}
