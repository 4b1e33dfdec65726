/**
 * Duration flags shared by the commands. Every flag has a range it is checked against at
 * start-up: a value outside it is a usage error, not a daemon that starts, reports ready and
 * then fails every request (a zero stamp lifetime) or spins (a zero poll interval).
 */
import { CliError, USAGE_EXIT } from './errors.js';

/** Inclusive bounds, in seconds. */
export interface DurationRange {
  readonly min: number;
  readonly max: number;
}

const UNITS = { h: 3600, m: 60, s: 1 } as const;

/** `90s`, `10m`, `24h`, `1h30m` or plain seconds → whole seconds within `range`. */
export function parseDuration(text: string, flag: string, range: DurationRange): number {
  const re = /(\d+)(h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  if (/^\d+$/.test(text)) {
    total = Number(text);
    consumed = text.length;
  } else {
    for (let m = re.exec(text); m; m = re.exec(text)) {
      total += Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
      consumed = re.lastIndex;
    }
  }
  if (consumed !== text.length || text === '') throw new CliError(`${flag}: must be a duration like 90s, 10m or 24h, got ${JSON.stringify(text.slice(0, 40))}`, USAGE_EXIT);
  if (total < range.min || total > range.max) {
    throw new CliError(`${flag}: must be from ${formatDuration(range.min)} to ${formatDuration(range.max)}, got ${JSON.stringify(text.slice(0, 40))}`, USAGE_EXIT);
  }
  return total;
}

/** Seconds in the largest unit that divides them: 3600 → `1h`, 90 → `90s`. */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of Object.entries(UNITS)) if (seconds > 0 && seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}
