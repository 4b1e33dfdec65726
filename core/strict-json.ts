/**
 * A JSON reader stricter than JSON.parse, for values an operator typed by hand into a Secret.
 * JSON.parse keeps the last of two duplicate keys silently, and Go's encoding/json (Kmesh's
 * reader) does the same, so `{"spi":1,"spi":9}` would mean different things to a human and to
 * the daemon. It also records number literals written with a fraction or exponent, because Go
 * refuses `1.0` for an int field even though JSON.parse returns 1.
 */
import { type Result, fail, ok } from './result.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface StrictJson {
  readonly value: JsonValue;
  /** JSON pointer-ish dotted paths of numbers written with `.`, `e` or `E`, with their raw text. */
  readonly nonIntegerLiterals: ReadonlyMap<string, string>;
}

class JsonSyntaxError extends Error {}

/**
 * Deepest nesting read. The values read here are flat objects; the bound keeps a few KB of
 * brackets from exhausting the stack (the reader recurses).
 */
export const MAX_JSON_DEPTH = 64;

/** Parse `text` as exactly one JSON value (surrounding whitespace allowed). */
export function parseStrictJson(text: string, field: string): Result<StrictJson> {
  const reader = new Reader(text);
  try {
    reader.skipWhitespace();
    const value = reader.value('', 0);
    reader.skipWhitespace();
    if (!reader.atEnd()) reader.fail('unexpected text after the JSON value');
    return ok({ value, nonIntegerLiterals: reader.nonIntegerLiterals });
  } catch (err: unknown) {
    if (err instanceof JsonSyntaxError) return fail([{ field, message: `must be one JSON object: ${err.message}` }]);
    throw err;
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Reader {
  readonly nonIntegerLiterals = new Map<string, string>();
  #pos = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  atEnd(): boolean {
    return this.#pos >= this.#text.length;
  }

  fail(message: string): never {
    throw new JsonSyntaxError(`${message} at offset ${this.#pos}`);
  }

  skipWhitespace(): void {
    while (!this.atEnd() && ' \t\n\r'.includes(this.#text.charAt(this.#pos))) this.#pos++;
  }

  value(path: string, depth: number): JsonValue {
    const c = this.#text.charAt(this.#pos);
    if ((c === '{' || c === '[') && depth >= MAX_JSON_DEPTH) this.fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (c === '{') return this.object(path, depth + 1);
    if (c === '[') return this.array(path, depth + 1);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number(path);
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.#text.startsWith(word, this.#pos)) {
        this.#pos += word.length;
        return v;
      }
    }
    return this.fail(this.atEnd() ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  }

  private object(path: string, depth: number): { [key: string]: JsonValue } {
    const out: Record<string, JsonValue> = {};
    const seen = new Set<string>();
    this.#pos++;
    this.skipWhitespace();
    if (this.#text.charAt(this.#pos) === '}') {
      this.#pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.#text.charAt(this.#pos) !== '"') this.fail('expected a quoted key');
      const key = this.string();
      if (seen.has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`);
      seen.add(key);
      this.skipWhitespace();
      this.expect(':');
      this.skipWhitespace();
      // defineProperty: a key named "__proto__" must become data, not the prototype.
      Object.defineProperty(out, key, {
        value: this.value(path === '' ? key : `${path}.${key}`, depth),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.skipWhitespace();
      if (this.#text.charAt(this.#pos) === ',') {
        this.#pos++;
        continue;
      }
      this.expect('}');
      return out;
    }
  }

  private array(path: string, depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    this.#pos++;
    this.skipWhitespace();
    if (this.#text.charAt(this.#pos) === ']') {
      this.#pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      out.push(this.value(`${path}[${out.length}]`, depth));
      this.skipWhitespace();
      if (this.#text.charAt(this.#pos) === ',') {
        this.#pos++;
        continue;
      }
      this.expect(']');
      return out;
    }
  }

  private string(): string {
    const start = this.#pos;
    this.#pos++;
    while (!this.atEnd()) {
      const c = this.#text.charAt(this.#pos);
      if (c === '\\') this.#pos += 2;
      else if (c === '"') {
        this.#pos++;
        try {
          return JSON.parse(this.#text.slice(start, this.#pos)) as string;
        } catch {
          this.#pos = start;
          return this.fail('invalid string');
        }
      } else this.#pos++;
    }
    return this.fail('unterminated string');
  }

  private number(path: string): number {
    NUMBER.lastIndex = this.#pos;
    const m = NUMBER.exec(this.#text);
    if (!m) return this.fail('invalid number');
    this.#pos += m[0].length;
    if (/[.eE]/.test(m[0])) this.nonIntegerLiterals.set(path, m[0]);
    return Number(m[0]);
  }

  private expect(c: string): void {
    if (this.#text.charAt(this.#pos) !== c) {
      this.fail(this.atEnd() ? `expected ${JSON.stringify(c)}, got end of input` : `expected ${JSON.stringify(c)}`);
    }
    this.#pos++;
  }
}
