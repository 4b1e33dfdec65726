/**
 * Text that another party chose (a request body, a peer's KmeshNodeInfo, a kubeconfig, a
 * credential plugin's output), made safe to put into a log line, a denial message, an Event or
 * a terminal. Control and invisible characters are escaped, not dropped, so a reader sees that
 * they were there: a newline cannot forge a log line, an ANSI sequence cannot rewrite the
 * terminal, a bidi override or zero-width character cannot make `node-a` look like another
 * name. The length is bounded, and the work too: at most `maxChars` characters are examined,
 * whatever the input's size.
 */

/** Default bound for one piece of foreign text (a name, a value, a field path). */
export const SAFE_TEXT_CHARS = 200;

/**
 * Characters that are not shown as themselves: controls (C0, C1, DEL), format characters
 * (zero-width, bidi controls, BOM, soft hyphen), line and paragraph separators, surrogates,
 * private-use and unassigned code points, spaces other than U+0020, and the fillers that
 * render as nothing.
 */
const UNSAFE = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}\p{Zs}\u115f\u1160\u2800\u3164\uffa0]$/u;
const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with unsafe characters escaped (`\n`, `\u{200b}`), cut to at most `maxChars` with `…`. */
export function safeText(text: string, maxChars = SAFE_TEXT_CHARS): string {
  let out = '';
  let units = 0;
  for (const ch of text) {
    const piece = ch === ' ' || !UNSAFE.test(ch) ? ch : (SHORT[ch] ?? `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`);
    units += ch.length;
    const more = units < text.length;
    // Keep room for the ellipsis whenever more text follows.
    if (out.length + piece.length > (more ? maxChars - 1 : maxChars)) return `${out}…`;
    out += piece;
  }
  return out;
}
