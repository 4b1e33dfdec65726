import test from 'ava';
import { SAFE_TEXT_CHARS, safeText } from '../../core/safe-text.js';

test('printable text passes unchanged, spaces and non-Latin letters included', (t) => {
  t.is(safeText('node-a 10.0.0.1 Ünïcödé 節点'), 'node-a 10.0.0.1 Ünïcödé 節点');
});

test('control characters are escaped, so a value cannot start a new log or terminal line', (t) => {
  t.is(safeText('a\nb\r\tc'), 'a\\nb\\r\\tc');
  t.is(safeText('\u001b[31mred\u0007'), '\\u{1b}[31mred\\u{7}');
  t.is(safeText('\u0085\u007f'), '\\u{85}\\u{7f}');
});

test('invisible characters are escaped: zero-width, bidi overrides, BOM, odd spaces, fillers', (t) => {
  t.is(safeText('node\u200b-a'), 'node\\u{200b}-a');
  t.is(safeText('\u202eevil\u202c'), '\\u{202e}evil\\u{202c}');
  t.is(safeText('\ufeffx\u00a0y\u3000z\u2028'), '\\u{feff}x\\u{a0}y\\u{3000}z\\u{2028}');
  t.is(safeText('\u3164\u115f'), '\\u{3164}\\u{115f}');
  t.is(safeText('\ud800'), '\\u{d800}', 'a lone surrogate');
});

test('the result is bounded, with an ellipsis when cut, and surrogate pairs are never split', (t) => {
  t.is(safeText('x'.repeat(SAFE_TEXT_CHARS)), 'x'.repeat(SAFE_TEXT_CHARS));
  const cut = safeText('x'.repeat(SAFE_TEXT_CHARS + 1));
  t.is(cut.length, SAFE_TEXT_CHARS);
  t.true(cut.endsWith('…'));
  t.is(safeText('abcdef', 4), 'abc…');
  t.is(safeText('\n\n\n', 5), '\\n\\n…');
  t.is(safeText('😀😀😀', 5), '😀😀…');
});

test('a 3 MB value costs what a short one does: only the characters shown are examined', (t) => {
  const huge = '\u200b'.repeat(3_000_000);
  const out = safeText(huge, 64);
  t.true(out.length <= 64);
  t.true(out.startsWith('\\u{200b}'));
});
