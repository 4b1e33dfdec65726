/**
 * Webhook matchConditions: CEL expressions compiled and evaluated as kube-apiserver does for
 * admission webhooks. The environment declares what Kubernetes declares for them: `object` and
 * `oldObject` untyped (dyn, null where the operation has none), `request` typed after the
 * AdmissionRequest (so a misspelt field such as `request.nam` does not compile, as on a real
 * server), and the result must be a bool. Writing a configuration whose expression does not
 * compile is refused (validateMatchConditions); at call time every condition is evaluated and the
 * dispatcher applies failurePolicy to errors (evaluateMatchConditions only reports them).
 *
 * CEL itself comes from @marcbachmann/cel-js: its type checker accepts declared object schemas,
 * which is what turns a wrong field of `request` into a write-time error.
 */

import { Environment } from '@marcbachmann/cel-js';
import type { FieldError } from './field-errors.js';
import { isRecord } from './json.js';
import { qualifiedNameErrors } from './meta-validation.js';
import type { JsonObject, KubeObject } from './types.js';

const GROUP_VERSION_KIND = { group: 'string', version: 'string', kind: 'string' } as const;
const GROUP_VERSION_RESOURCE = { group: 'string', version: 'string', resource: 'string' } as const;

/** The fields of Kubernetes' CEL AdmissionRequest type (no uid; object and oldObject are variables of their own). */
const ADMISSION_REQUEST = {
  kind: GROUP_VERSION_KIND,
  resource: GROUP_VERSION_RESOURCE,
  subResource: 'string',
  requestKind: GROUP_VERSION_KIND,
  requestResource: GROUP_VERSION_RESOURCE,
  requestSubResource: 'string',
  name: 'string',
  namespace: 'string',
  operation: 'string',
  userInfo: { username: 'string', uid: 'string', groups: 'list<string>', extra: 'map<string, list<string>>' },
  dryRun: 'bool',
  options: 'dyn',
} as const;

const environment = new Environment()
  .registerVariable('object', 'dyn')
  .registerVariable('oldObject', 'dyn')
  .registerVariable({ name: 'request', schema: ADMISSION_REQUEST });

/** The apiserver's limit per webhook. */
export const MAX_MATCH_CONDITIONS = 64;

interface CelErrorLike {
  summary?: unknown;
  message: string;
  node?: { pos?: unknown } | undefined;
}

/** cel-go's issue format ("ERROR: <input>:1:9: ...", the line, a caret), which the apiserver prints. */
function describeIssue(expression: string, err: CelErrorLike): string {
  const summary = typeof err.summary === 'string' ? err.summary : (err.message.split('\n')[0] ?? err.message);
  const pos = typeof err.node?.pos === 'number' ? err.node.pos : undefined;
  if (pos === undefined) return `ERROR: <input>: ${summary}`;
  const before = expression.slice(0, pos).split('\n');
  const lineNo = before.length;
  const column = (before.at(-1) ?? '').length;
  const line = expression.split('\n')[lineNo - 1] ?? '';
  return `ERROR: <input>:${lineNo}:${column + 1}: ${summary}\n | ${line}\n | ${'.'.repeat(column)}^`;
}

/** Why the expression would not compile on a real apiserver, or undefined when it does. */
export function compileError(expression: string): string | undefined {
  const result = environment.check(expression);
  if (!result.valid) {
    const err = result.error;
    if (err !== undefined && err.summary === 'Unknown variable: authorizer') {
      return 'compilation failed: the local API does not implement the CEL authorizer library (Kubernetes does); no configuration of this project uses it';
    }
    return `compilation failed: ${err === undefined ? 'unknown error' : describeIssue(expression, err)}`;
  }
  return result.type === 'bool' ? undefined : 'must evaluate to bool';
}

/** validateMatchConditions of the admissionregistration validation, field paths and wording included. */
export function validateMatchConditions(conditions: unknown, path: string): FieldError[] {
  if (conditions === undefined || conditions === null) return [];
  if (!Array.isArray(conditions)) return [{ type: 'Invalid', field: path, value: conditions, detail: 'must be a list' }];
  const errors: FieldError[] = [];
  if (conditions.length > MAX_MATCH_CONDITIONS) {
    errors.push({ type: 'TooMany', field: path, value: conditions.length, detail: `must have at most ${MAX_MATCH_CONDITIONS} items` });
  }
  const names = new Set<string>();
  conditions.forEach((condition: unknown, i) => {
    const p = `${path}[${i}]`;
    const c = isRecord(condition) ? condition : {};
    const expression = typeof c.expression === 'string' ? c.expression.trim() : '';
    if (expression === '') {
      errors.push({ type: 'Required', field: `${p}.expression` });
    } else {
      const why = compileError(expression);
      if (why !== undefined) errors.push({ type: 'Invalid', field: `${p}.expression`, value: expression, detail: why });
    }
    const name = typeof c.name === 'string' ? c.name : '';
    if (name === '') {
      errors.push({ type: 'Required', field: `${p}.name` });
    } else {
      errors.push(...qualifiedNameErrors(`${p}.name`, name));
      if (names.has(name)) errors.push({ type: 'Duplicate', field: `${p}.name`, value: name });
      names.add(name);
    }
  });
  return errors;
}

/** JSON integers are CEL ints in Kubernetes (unstructured int64), not doubles: `x + 1` must type. */
function celValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(celValue);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, celValue(v)]));
  return value;
}

export interface MatchInput {
  object: KubeObject | null;
  oldObject: KubeObject | null;
  /** The AdmissionRequest fields, with Go's omitempty (an unset name or namespace is absent). */
  request: JsonObject;
}

/**
 * matchconditions.Matcher without the failurePolicy part: any false condition skips the webhook
 * (even when others failed); otherwise evaluation errors are reported for the caller's policy.
 */
export type MatchOutcome = { matches: boolean } | { errors: string[] };

export function evaluateMatchConditions(conditions: unknown, input: MatchInput): MatchOutcome {
  if (!Array.isArray(conditions) || conditions.length === 0) return { matches: true };
  const context = { object: celValue(input.object), oldObject: celValue(input.oldObject), request: celValue(input.request) };
  const errors: string[] = [];
  for (const condition of conditions) {
    const expression = isRecord(condition) && typeof condition.expression === 'string' ? condition.expression.trim() : '';
    const compiled = compileError(expression);
    if (compiled !== undefined) {
      errors.push(`compilation error: ${compiled}`);
      continue;
    }
    let result: unknown;
    try {
      result = environment.evaluate(expression, context);
    } catch (err) {
      const summary = isRecord(err) && typeof err.summary === 'string' ? err.summary : String(err);
      errors.push(`expression '${expression}' resulted in error: ${summary}`);
      continue;
    }
    if (result === false) return { matches: false };
  }
  return errors.length > 0 ? { errors } : { matches: true };
}
