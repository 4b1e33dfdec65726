/** Duration flags shared by the commands. */
import { CliError, USAGE_EXIT } from './errors.js';

/** `90s`, `10m`, `24h`, `1h30m` or plain seconds → whole seconds. */
export function parseDuration(text: string, flag: string, allowZero = false): number {
  if (/^\d+$/.test(text)) return Number(text);
  const re = /(\d+)(h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * { h: 3600, m: 60, s: 1 }[m[2] as 'h' | 'm' | 's'];
    consumed = re.lastIndex;
  }
  if (consumed !== text.length || text === '' || (total <= 0 && !allowZero)) throw new CliError(`${flag}: must be a duration like 90s, 10m or 24h, got ${JSON.stringify(text)}`, USAGE_EXIT);
  return total;
}
