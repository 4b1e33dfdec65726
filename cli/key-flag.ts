/** Parsing of the --key flag: exactly what kmeshctl takes, 72 hex characters. */
import { PSK_BYTES } from '../core/constants.js';
import { checkKeyStrength } from '../core/secret.js';
import { CliError, USAGE_EXIT } from './errors.js';

const HEX_CHARS = PSK_BYTES * 2;
const EXPECTED = `${HEX_CHARS} hex characters (${PSK_BYTES} bytes: 32-byte AES-256 key + 4-byte salt)`;

/** Decode --key; the error says what is needed and what was wrong, never echoing the key. */
export function parseKeyFlag(text: string): Uint8Array {
  const bad = /[^0-9a-fA-F]/.exec(text);
  if (bad) {
    throw new CliError(`--key: must be ${EXPECTED}; character ${bad.index + 1} is not a hex digit`, USAGE_EXIT);
  }
  if (text.length !== HEX_CHARS) {
    throw new CliError(`--key: must be ${EXPECTED}; got ${text.length} characters${text.length === 64 ? ' (the 4-byte salt is missing)' : ''}`, USAGE_EXIT);
  }
  const key = Uint8Array.from(Buffer.from(text, 'hex'));
  const weak = checkKeyStrength(key, '--key');
  if (weak[0]) throw new CliError(`${weak[0].field}: ${weak[0].message}`, USAGE_EXIT);
  return key;
}

/** Decode --spi for offline rendering. */
export function parseSpiFlag(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > 0x7fffffff) {
    throw new CliError(`--spi: must be an integer from 1 to 2147483647, got "${text}"`, USAGE_EXIT);
  }
  return Number(text);
}
