/**
 * The key options: what kmeshctl takes, 72 hex characters, but read from a file (--key-file) or
 * standard input (--key -) so that it stays out of the process list, where any user on the
 * machine can read a command line.
 */
import { PSK_BYTES } from '../core/constants.js';
import { checkKeyStrength } from '../core/secret.js';
import { safeText } from '../core/safe-text.js';
import { readBoundedStream, readProblem } from '../lib/bounded-read.js';
import { CliError, USAGE_EXIT } from './errors.js';
import { readInputFile } from './files.js';

const HEX_CHARS = PSK_BYTES * 2;
const EXPECTED = `${HEX_CHARS} hex characters (${PSK_BYTES} bytes: 32-byte AES-256 key + 4-byte salt)`;
/** A key file holds 72 hex characters and perhaps a newline; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 1024;

export const KEY_OPTION_HELP = `${HEX_CHARS} hex characters (${PSK_BYTES} bytes), or - to read them from standard input; a key on the command line is visible to every user in ps, so prefer - or --key-file`;
export const KEY_FILE_OPTION_HELP = `file holding the key as ${HEX_CHARS} hex characters (a trailing newline is fine)`;

export interface KeyOptions {
  readonly key?: string;
  readonly keyFile?: string;
}

/** The key from --key HEX, --key - or --key-file FILE; undefined when none was given. */
export async function readKeyOption(opts: KeyOptions): Promise<Uint8Array | undefined> {
  if (opts.key !== undefined && opts.keyFile !== undefined) throw new CliError('give the key once: --key or --key-file', USAGE_EXIT);
  if (opts.keyFile !== undefined) return parseKeyFlag(trimEnd(await readInputFile(opts.keyFile, '--key-file', MAX_KEY_FILE_BYTES, USAGE_EXIT)), '--key-file');
  if (opts.key === '-') {
    let text: string;
    try {
      text = (await readBoundedStream(process.stdin, MAX_KEY_FILE_BYTES)).toString('utf8');
    } catch (err: unknown) {
      throw new CliError(`--key -: standard input: ${readProblem(err)}`, USAGE_EXIT);
    }
    return parseKeyFlag(trimEnd(text), '--key -');
  }
  return opts.key === undefined ? undefined : parseKeyFlag(opts.key, '--key');
}

function trimEnd(text: string): string {
  return text.replace(/[\r\n\t ]+$/, '');
}

/** Decode a key given as hex; the error says what is needed and what was wrong, never echoing the key. */
export function parseKeyFlag(text: string, flag = '--key'): Uint8Array {
  let position = 0;
  for (const char of text) {
    position++;
    if (!/[0-9a-fA-F]/.test(char)) throw new CliError(`${flag}: must be ${EXPECTED}; character ${position} ("${safeText(char, 16)}") is not a hex digit`, USAGE_EXIT);
  }
  if (text.length !== HEX_CHARS) {
    throw new CliError(`${flag}: must be ${EXPECTED}; got ${text.length} characters${text.length === HEX_CHARS - 8 ? ' (the 4-byte salt is missing)' : ''}`, USAGE_EXIT);
  }
  const key = Uint8Array.from(Buffer.from(text, 'hex'));
  const weak = checkKeyStrength(key, flag);
  if (weak[0]) throw new CliError(`${weak[0].field}: ${weak[0].message}`, USAGE_EXIT);
  return key;
}

/** Decode --spi for offline rendering. */
export function parseSpiFlag(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > 0x7fffffff) {
    throw new CliError(`--spi: must be an integer from 1 to 2147483647, got "${safeText(text, 40)}"`, USAGE_EXIT);
  }
  return Number(text);
}
