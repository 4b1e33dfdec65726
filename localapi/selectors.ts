/**
 * labelSelector / fieldSelector query strings and metav1.LabelSelector objects, enough for
 * informers, kubectl -l/--field-selector and webhook namespace/object selectors.
 */

import { isRecord } from './json.js';
import { badRequest } from './status.js';

type Labels = Readonly<Record<string, string>>;

export type Requirement =
  | { key: string; op: 'exists' | 'notExists' }
  | { key: string; op: 'in' | 'notIn'; values: string[] }
  | { key: string; op: 'gt' | 'lt'; value: number };

export type LabelSelector = readonly Requirement[];

const KEY = String.raw`[A-Za-z0-9][-A-Za-z0-9_./]*`;
const VALUE = String.raw`[-A-Za-z0-9_.]*`;
const RE_NOT_EXISTS = new RegExp(`^!\\s*(${KEY})$`);
const RE_SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`);
const RE_EQ = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const RE_CMP = new RegExp(`^(${KEY})\\s*([<>])\\s*(-?\\d+)$`);
const RE_EXISTS = new RegExp(`^(${KEY})$`);

/** Splits on commas that are not inside a `(...)` value set. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function parseRequirement(text: string): Requirement {
  let m = RE_NOT_EXISTS.exec(text);
  if (m?.[1] !== undefined) return { key: m[1], op: 'notExists' };
  m = RE_SET.exec(text);
  if (m?.[1] !== undefined && m[3] !== undefined) {
    const values = m[3].split(',').map((v) => v.trim()).filter((v) => v !== '');
    return { key: m[1], op: m[2] === 'in' ? 'in' : 'notIn', values };
  }
  m = RE_EQ.exec(text);
  if (m?.[1] !== undefined && m[3] !== undefined) {
    return { key: m[1], op: m[2] === '!=' ? 'notIn' : 'in', values: [m[3]] };
  }
  m = RE_CMP.exec(text);
  if (m?.[1] !== undefined && m[3] !== undefined) {
    return { key: m[1], op: m[2] === '>' ? 'gt' : 'lt', value: Number(m[3]) };
  }
  m = RE_EXISTS.exec(text);
  if (m?.[1] !== undefined) return { key: m[1], op: 'exists' };
  throw badRequest(`unable to parse requirement: found '${text}', expected: key, !key, key=value, key!=value, key in (...), key notin (...)`);
}

export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  if (text === null || text === undefined) return [];
  return splitTopLevel(text).map(parseRequirement);
}

export function matchesLabels(selector: LabelSelector, labels: Labels | undefined): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case 'notExists':
        return !has;
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notIn':
        return v === undefined || !r.values.includes(v);
      case 'gt':
        return v !== undefined && Number(v) > r.value;
      case 'lt':
        return v !== undefined && Number(v) < r.value;
    }
  });
}

/**
 * metav1.LabelSelector (matchLabels + matchExpressions) as used by webhook selectors.
 * An empty or absent selector matches everything.
 */
export function labelSelectorFromObject(selector: unknown): LabelSelector {
  if (!isRecord(selector)) return [];
  const reqs: Requirement[] = [];
  if (isRecord(selector.matchLabels)) {
    for (const [key, value] of Object.entries(selector.matchLabels)) {
      reqs.push({ key, op: 'in', values: [String(value)] });
    }
  }
  if (Array.isArray(selector.matchExpressions)) {
    for (const expr of selector.matchExpressions) {
      if (!isRecord(expr) || typeof expr.key !== 'string') continue;
      const values = Array.isArray(expr.values) ? expr.values.map(String) : [];
      switch (expr.operator) {
        case 'In':
          reqs.push({ key: expr.key, op: 'in', values });
          break;
        case 'NotIn':
          reqs.push({ key: expr.key, op: 'notIn', values });
          break;
        case 'Exists':
          reqs.push({ key: expr.key, op: 'exists' });
          break;
        case 'DoesNotExist':
          reqs.push({ key: expr.key, op: 'notExists' });
          break;
        default:
          throw badRequest(`"${String(expr.operator)}" is not a valid label selector operator`);
      }
    }
  }
  return reqs;
}

export interface FieldRequirement {
  field: string;
  value: string;
  negate: boolean;
}

function unescapeFieldValue(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

/** Splits on separators not preceded by a backslash, as fields.ParseSelector does. */
function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === '\\' && i + 1 < s.length) {
      current += c + s.charAt(i + 1);
      i++;
    } else if (c === sep) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

export function parseFieldSelector(text: string | null | undefined): FieldRequirement[] {
  if (text === null || text === undefined || text.trim() === '') return [];
  return splitUnescaped(text, ',').map((part) => {
    const m = /^([^!=]+?)\s*(!=|==|=)\s*(.*)$/s.exec(part.trim());
    if (m?.[1] === undefined || m[3] === undefined) {
      throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
    }
    return { field: m[1].trim(), value: unescapeFieldValue(m[3]), negate: m[2] === '!=' };
  });
}

export function matchesFields(reqs: readonly FieldRequirement[], fields: Readonly<Record<string, string>>): boolean {
  return reqs.every((r) => (fields[r.field] === r.value) !== r.negate);
}
