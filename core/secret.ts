/**
 * The IPsec pre-shared key as Kmesh stores it: Secret kmesh-system/kmesh-ipsec, data key
 * `ipSec`, whose value is JSON `{"spi","aeadKeyName","aeadKey","length"}` with `aeadKey` the
 * standard base64 of 36 bytes. We also accept the key as 72 hex characters (what
 * `kmeshctl secret create --key` takes) and always write back the canonical base64 form, in
 * Go's field order, so Kmesh daemons read our secrets unchanged.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  AEAD_ALGORITHM,
  DEFAULT_ICV_BITS,
  ICV_BITS_ALLOWED,
  KMESH_NAMESPACE,
  PSK_BYTES,
  SECRET_DATA_KEY,
  SECRET_NAME,
  SPI_MAX,
} from './constants.js';
import { describeJsonValue, isRecord } from './json-value.js';
import { type FieldError, type Result, fail, ok, reportFew } from './result.js';
import { safeText } from './safe-text.js';
import { type JsonValue, parseStrictJson } from './strict-json.js';

/** A validated pre-shared key version. */
export interface IpsecKey {
  /** Key version; also the SPI on the wire for traffic to nodes that advertise it. */
  readonly spi: number;
  readonly aeadKeyName: typeof AEAD_ALGORITHM;
  /** 36 bytes: 32-byte AES-256 key, 4-byte salt. */
  readonly aeadKey: Uint8Array;
  /** ICV length in bits (the JSON field `length`). */
  readonly icvBits: number;
}

/** What parsing had to fill in or rewrite to reach the canonical form. */
export interface IpsecKeyNormalisation {
  readonly keyWasHex: boolean;
  readonly defaulted: readonly ('aeadKeyName' | 'length')[];
}

export interface ParsedIpsecValue {
  readonly key: IpsecKey;
  readonly normalisation: IpsecKeyNormalisation;
}

const FIELDS = ['spi', 'aeadKeyName', 'aeadKey', 'length'] as const;
const HEX_KEY_CHARS = PSK_BYTES * 2;
const KEY_FORM = `${HEX_KEY_CHARS} hex characters or standard base64 of ${PSK_BYTES} bytes (32-byte AES-256 key + 4-byte salt)`;
const SPI_FORM = `an integer from 1 to ${SPI_MAX}`;
/**
 * Longest `ipSec` text read. The canonical value is about 110 characters; the bound keeps a
 * value stuffed with fields or whitespace from costing more than a real one.
 */
export const MAX_IPSEC_VALUE_CHARS = 65_536;

/** Base64 of 36 bytes: 48 characters, no padding (36 is a multiple of 3). */
const BASE64_KEY_CHARS = (PSK_BYTES / 3) * 4;

/**
 * Decode key text given as 72 hex characters or canonical standard base64; checks length only.
 * Text that could be read two ways is refused rather than guessed: 48 hex digits are valid
 * base64 of 36 bytes, but a random base64 key is all hex digits with probability (22/64)^48,
 * so they are a hex key cut short; 72 characters are a hex key (base64 of that length is 54
 * bytes), so a non-hex character in them is named as such.
 */
export function decodeAeadKey(input: unknown, field: string): Result<Uint8Array> {
  if (typeof input !== 'string') {
    return fail([{ field, message: `must be a string of ${KEY_FORM}, got ${describeJsonValue(input)}` }]);
  }
  const text = input.trim() === input ? input : '';
  if (text === '') return fail([{ field, message: `must be ${KEY_FORM}, got ${input === '' ? 'an empty string' : 'surrounding whitespace'}` }]);
  const hex = /^[0-9a-fA-F]+$/.test(text);
  if (hex && text.length === HEX_KEY_CHARS) return ok(Uint8Array.from(Buffer.from(text, 'hex')));
  if (hex && text.length === BASE64_KEY_CHARS) {
    return fail([{ field, message: `is ${BASE64_KEY_CHARS} hex digits: a hex key needs ${HEX_KEY_CHARS} (this one is cut short?); base64 of ${PSK_BYTES} bytes is also ${BASE64_KEY_CHARS} characters, but never only hex digits` }]);
  }
  if (hex) {
    const salt = text.length === HEX_KEY_CHARS - 8 ? ' (the 4-byte salt is missing)' : '';
    return fail([{ field, message: `must be ${HEX_KEY_CHARS} hex characters (${PSK_BYTES} bytes); got ${text.length} hex characters${salt}` }]);
  }
  if (text.length === HEX_KEY_CHARS) {
    const bad = firstOutside(text, /[0-9a-fA-F]/);
    return fail([{ field, message: `must be ${HEX_KEY_CHARS} hex characters (${PSK_BYTES} bytes); character ${bad.position} (${bad.shown}) is not a hex digit` }]);
  }
  if (/[^A-Za-z0-9+/=]/.test(text)) {
    const bad = firstOutside(text, /[A-Za-z0-9+/=]/);
    const url = bad.char === '-' || bad.char === '_' ? ' (base64url? use standard base64, with + and /)' : '';
    return fail([{ field, message: `must be ${KEY_FORM}; character ${bad.position} (${bad.shown}) is neither hex nor base64${url}` }]);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) {
    return fail([{ field, message: `must be ${KEY_FORM}; this is not canonical padded base64` }]);
  }
  if (bytes.length !== PSK_BYTES) {
    return fail([{ field, message: `must decode to ${PSK_BYTES} bytes (32-byte AES-256 key + 4-byte salt); base64 decodes to ${bytes.length} bytes` }]);
  }
  return ok(Uint8Array.from(bytes));
}

/** The first character of `text` not matching `allowed`: 1-based position (in characters), escaped and quoted. */
function firstOutside(text: string, allowed: RegExp): { position: number; char: string; shown: string } {
  let position = 0;
  for (const char of text) {
    position++;
    if (!allowed.test(char)) return { position, char, shown: `"${safeText(char, 16)}"` };
  }
  return { position, char: '', shown: '""' };
}

/** Refuse keys that are obviously not random: all zeros, or one byte repeated. */
export function checkKeyStrength(key: Uint8Array, field: string): FieldError[] {
  const first = key[0];
  if (first === undefined || !key.every((b) => b === first)) return [];
  const what = first === 0 ? 'all zeros' : `the byte 0x${first.toString(16).padStart(2, '0')} repeated`;
  return [{ field, message: `is ${what}; use ${PSK_BYTES} random bytes (kmesh-ipsec secret create generates them)` }];
}

/** Parse and validate the JSON text stored under `ipSec`. */
export function parseIpsecValue(text: string, field = SECRET_DATA_KEY): Result<ParsedIpsecValue> {
  if (text.length > MAX_IPSEC_VALUE_CHARS) {
    return fail([{ field, message: `must be at most ${MAX_IPSEC_VALUE_CHARS} characters (the value is about 110), got ${text.length}` }]);
  }
  const parsed = parseStrictJson(text, field);
  if (!parsed.ok) return parsed;
  const { value, nonIntegerLiterals } = parsed.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail([{ field, message: `must be a JSON object like {"spi":1,"aeadKeyName":"${AEAD_ALGORITHM}","aeadKey":"<key>","length":128}, got ${describeJsonValue(value)}` }]);
  }
  const unknown: FieldError[] = [];
  for (const name of Object.keys(value)) {
    if (!(FIELDS as readonly string[]).includes(name)) {
      const hint = FIELDS.find((f) => f.toLowerCase() === name.toLowerCase());
      unknown.push({
        field: `${field}.${safeText(name, 64)}`,
        message: hint ? `unknown field; field names are case-sensitive, did you mean "${hint}"?` : `unknown field; allowed fields are ${FIELDS.join(', ')}`,
      });
    }
  }
  const errors = reportFew(unknown, field, 'unknown fields');
  const get = (name: string): JsonValue | undefined => (Object.hasOwn(value, name) ? value[name] : undefined);
  const spi = integerField(get('spi'), `${field}.spi`, nonIntegerLiterals.get('spi'), SPI_FORM, (n) => n >= 1 && n <= SPI_MAX, errors);

  const defaulted: ('aeadKeyName' | 'length')[] = [];
  const name = get('aeadKeyName');
  if (name === undefined) defaulted.push('aeadKeyName');
  else if (name !== AEAD_ALGORITHM) {
    errors.push({ field: `${field}.aeadKeyName`, message: `must be "${AEAD_ALGORITHM}" (the only supported AEAD), got ${describeJsonValue(name)}` });
  }

  let icvBits: number | undefined = DEFAULT_ICV_BITS;
  if (get('length') === undefined) defaulted.push('length');
  else {
    icvBits = integerField(get('length'), `${field}.length`, nonIntegerLiterals.get('length'), `the ICV length in bits: one of ${ICV_BITS_ALLOWED.join(', ')}`, (n) => (ICV_BITS_ALLOWED as readonly number[]).includes(n), errors);
  }

  let aeadKey: Uint8Array | undefined;
  let keyWasHex = false;
  const rawKey = get('aeadKey');
  if (rawKey === undefined) errors.push({ field: `${field}.aeadKey`, message: `required: ${KEY_FORM}` });
  else {
    const decoded = decodeAeadKey(rawKey, `${field}.aeadKey`);
    if (!decoded.ok) errors.push(...decoded.errors);
    else {
      errors.push(...checkKeyStrength(decoded.value, `${field}.aeadKey`));
      aeadKey = decoded.value;
      keyWasHex = typeof rawKey === 'string' && rawKey.length === HEX_KEY_CHARS;
    }
  }
  if (errors.length > 0 || spi === undefined || icvBits === undefined || aeadKey === undefined) return fail(errors);
  return ok({ key: { spi, aeadKeyName: AEAD_ALGORITHM, aeadKey, icvBits }, normalisation: { keyWasHex, defaulted } });
}

function integerField(
  v: JsonValue | undefined,
  field: string,
  rawLiteral: string | undefined,
  form: string,
  inRange: (n: number) => boolean,
  errors: FieldError[],
): number | undefined {
  if (v === undefined) errors.push({ field, message: `required: ${form}` });
  else if (typeof v !== 'number') errors.push({ field, message: `must be ${form}, got ${describeJsonValue(v)}` });
  else if (rawLiteral !== undefined) errors.push({ field, message: `must be ${form} written without fraction or exponent, got ${rawLiteral}` });
  else if (!Number.isSafeInteger(v) || !inRange(v)) errors.push({ field, message: `must be ${form}, got ${v}` });
  else return v;
  return undefined;
}

/** The canonical `ipSec` text: Go's field order, base64 key, no whitespace. */
export function encodeIpsecValue(key: IpsecKey): string {
  return JSON.stringify({
    spi: key.spi,
    aeadKeyName: key.aeadKeyName,
    aeadKey: Buffer.from(key.aeadKey).toString('base64'),
    length: key.icvBits,
  });
}

/** True when both describe the same SA parameters (constant time over the key bytes). */
export function sameKeyMaterial(a: IpsecKey, b: IpsecKey): boolean {
  return a.aeadKey.length === b.aeadKey.length && timingSafeEqual(a.aeadKey, b.aeadKey) && a.icvBits === b.icvBits;
}

// ---- the Secret object -------------------------------------------------------------------

/** A Secret manifest in the shape the API returns and accepts. */
export interface SecretObject {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace: string; [k: string]: unknown };
  type: 'Opaque';
  data: Record<string, string>;
}

export interface ParsedIpsecSecret extends ParsedIpsecValue {
  /** Where the value was read from: `data` (base64) or `stringData` (plain). */
  readonly source: 'data' | 'stringData';
}

/** True for the one Secret kmesh-ipsec cares about. */
export function isIpsecSecretName(namespace: string | undefined, name: string | undefined): boolean {
  return namespace === KMESH_NAMESPACE && name === SECRET_NAME;
}

/**
 * Validate a Secret object holding the key. Checks the type, the data keys, that `data` and
 * `stringData` agree when both are given, and every rule of parseIpsecValue.
 */
export function parseIpsecSecret(obj: unknown): Result<ParsedIpsecSecret> {
  if (!isRecord(obj)) return fail([{ field: 'secret', message: `must be a Secret object, got ${describeJsonValue(obj)}` }]);
  const errors: FieldError[] = [];
  if (obj.type !== undefined && obj.type !== 'Opaque') {
    errors.push({ field: 'type', message: `must be "Opaque" (or omitted), got ${describeJsonValue(obj.type)}` });
  }
  const fromData = readMap(obj.data, 'data', true, errors);
  const fromString = readMap(obj.stringData, 'stringData', false, errors);
  if (errors.length > 0) return fail(errors);
  if (fromData === undefined && fromString === undefined) {
    return fail([{ field: `data.${SECRET_DATA_KEY}`, message: `required: the JSON key configuration (data.${SECRET_DATA_KEY} base64, or stringData.${SECRET_DATA_KEY} plain)` }]);
  }
  const dataParsed = fromData === undefined ? undefined : parseIpsecValue(fromData, `data.${SECRET_DATA_KEY}`);
  const stringParsed = fromString === undefined ? undefined : parseIpsecValue(fromString, `stringData.${SECRET_DATA_KEY}`);
  for (const r of [dataParsed, stringParsed]) if (r && !r.ok) errors.push(...r.errors);
  if (errors.length > 0) return fail(errors);
  if (dataParsed?.ok && stringParsed?.ok) {
    const a = dataParsed.value.key, b = stringParsed.value.key;
    if (a.spi !== b.spi || !sameKeyMaterial(a, b)) {
      return fail([{ field: `stringData.${SECRET_DATA_KEY}`, message: `disagrees with data.${SECRET_DATA_KEY} (spi ${b.spi} vs ${a.spi}${sameKeyMaterial(a, b) ? '' : ', different key'}); give the value once` }]);
    }
  }
  // stringData wins on write in the apiserver, so report it as the source when present.
  if (stringParsed?.ok) return ok({ ...stringParsed.value, source: 'stringData' });
  if (dataParsed?.ok) return ok({ ...dataParsed.value, source: 'data' });
  return fail(errors);
}

function readMap(v: unknown, field: 'data' | 'stringData', base64: boolean, errors: FieldError[]): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) {
    errors.push({ field, message: `must be a map of strings, got ${describeJsonValue(v)}` });
    return undefined;
  }
  const unexpected = Object.keys(v)
    .filter((k) => k !== SECRET_DATA_KEY)
    .map((k) => ({ field: `${field}.${safeText(k, 64)}`, message: `unexpected key; this Secret holds only "${SECRET_DATA_KEY}"` }));
  for (const e of reportFew(unexpected, field, 'unexpected keys')) errors.push(e);
  const raw = v[SECRET_DATA_KEY];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') {
    errors.push({ field: `${field}.${SECRET_DATA_KEY}`, message: `must be a string, got ${describeJsonValue(raw)}` });
    return undefined;
  }
  if (!base64) return raw;
  const bytes = Buffer.from(raw, 'base64');
  if (bytes.toString('base64') !== raw) {
    errors.push({ field: `${field}.${SECRET_DATA_KEY}`, message: 'must be standard base64 (the Secret data encoding); put plain JSON under stringData instead' });
    return undefined;
  }
  return bytes.toString('utf8');
}

/** The canonical Secret manifest for `key`. */
export function renderIpsecSecret(key: IpsecKey): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: SECRET_NAME, namespace: KMESH_NAMESPACE },
    type: 'Opaque',
    data: { [SECRET_DATA_KEY]: Buffer.from(encodeIpsecValue(key)).toString('base64') },
  };
}
