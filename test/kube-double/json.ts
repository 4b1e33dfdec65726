/** Small JSON helpers; the double keeps objects as plain data so copies must be deep. */

import { isDeepStrictEqual } from 'node:util';
import { isRecord } from '../../core/json-value.js';

export { isRecord };

/** Deep copy through JSON so stored objects can never alias caller data (and drop `undefined`). */
export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b);
}

export function isStringMap(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((v) => typeof v === 'string');
}

/** The value when it is a string, else ''. Avoids "[object Object]" when fields hold odd types. */
export function asString(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
}

/** Removes a key chosen at runtime (JSON field names come from data, not code). */
export function deleteKey(obj: Record<string, unknown>, key: string): void {
  Reflect.deleteProperty(obj, key);
}
