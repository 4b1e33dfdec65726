/**
 * admissionregistration.k8s.io/v1 defaulting and the validation rules a misconfigured manifest
 * would trip on a real cluster. Defaulting matters beyond cosmetics: the admission dispatcher
 * reads failurePolicy, timeoutSeconds and selectors from the stored (defaulted) object.
 */

import type { FieldError } from './field-errors.js';
import { isRecord } from './json.js';
import { validateMatchConditions } from './match-conditions.js';
import type { KindStrategy } from './resource-type.js';
import type { JsonObject, KubeObject } from './types.js';

function webhooksOf(obj: KubeObject): JsonObject[] {
  return Array.isArray(obj.webhooks) ? obj.webhooks.filter(isRecord) : [];
}

function defaultWebhook(hook: JsonObject, mutating: boolean): void {
  hook.failurePolicy ??= 'Fail';
  hook.matchPolicy ??= 'Equivalent';
  hook.namespaceSelector ??= {};
  hook.objectSelector ??= {};
  hook.timeoutSeconds ??= 10;
  if (mutating) hook.reinvocationPolicy ??= 'Never';
  if (Array.isArray(hook.rules)) {
    for (const rule of hook.rules.filter(isRecord)) rule.scope ??= '*';
  }
  const cc = hook.clientConfig;
  if (isRecord(cc) && isRecord(cc.service)) cc.service.port ??= 443;
}

const SIDE_EFFECTS = ['None', 'NoneOnDryRun'];
const FAILURE_POLICIES = ['Ignore', 'Fail'];
const OPERATIONS = ['*', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT'];
const REINVOCATION_POLICIES = ['IfNeeded', 'Never'];

function nonEmptyStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string');
}

function validateClientConfig(cc: unknown, path: string): FieldError[] {
  if (!isRecord(cc)) return [{ type: 'Required', field: path, detail: 'exactly one of url or service is required' }];
  const hasUrl = typeof cc.url === 'string';
  const hasService = isRecord(cc.service);
  if (hasUrl === hasService) {
    return [{ type: 'Required', field: path, detail: 'exactly one of url or service is required' }];
  }
  if (typeof cc.url === 'string') {
    let url: URL | undefined;
    try {
      url = new URL(cc.url);
    } catch {
      return [{ type: 'Invalid', field: `${path}.url`, value: cc.url, detail: 'host must be specified' }];
    }
    if (url.protocol !== 'https:') {
      return [{ type: 'Invalid', field: `${path}.url`, value: cc.url, detail: "'https' is the only allowed URL scheme" }];
    }
  }
  if (isRecord(cc.service)) {
    const errors: FieldError[] = [];
    if (typeof cc.service.name !== 'string' || cc.service.name === '') {
      errors.push({ type: 'Required', field: `${path}.service.name`, detail: 'service name is required' });
    }
    if (typeof cc.service.namespace !== 'string' || cc.service.namespace === '') {
      errors.push({ type: 'Required', field: `${path}.service.namespace`, detail: 'service namespace is required' });
    }
    return errors;
  }
  return [];
}

function validateRules(rules: unknown, path: string): FieldError[] {
  if (!Array.isArray(rules)) return [];
  const errors: FieldError[] = [];
  rules.forEach((rule: unknown, i) => {
    const p = `${path}[${i}]`;
    if (!isRecord(rule)) return;
    for (const f of ['operations', 'apiGroups', 'apiVersions', 'resources']) {
      if (!nonEmptyStrings(rule[f])) errors.push({ type: 'Required', field: `${p}.${f}` });
    }
    if (Array.isArray(rule.operations)) {
      for (const op of rule.operations) {
        if (typeof op !== 'string' || !OPERATIONS.includes(op)) {
          errors.push({ type: 'NotSupported', field: `${p}.operations`, value: op, detail: 'supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"' });
        }
      }
    }
  });
  return errors;
}

function validateWebhook(hook: JsonObject, i: number, seen: Set<string>, mutating: boolean): FieldError[] {
  const p = `webhooks[${i}]`;
  const errors: FieldError[] = [];
  const name = hook.name;
  if (typeof name !== 'string' || name === '') {
    errors.push({ type: 'Required', field: `${p}.name` });
  } else {
    if (name.split('.').length < 3) {
      errors.push({ type: 'Invalid', field: `${p}.name`, value: name, detail: 'should be a domain with at least three segments separated by dots' });
    }
    if (seen.has(name)) errors.push({ type: 'Duplicate', field: `${p}.name`, value: name });
    seen.add(name);
  }
  if (!nonEmptyStrings(hook.admissionReviewVersions)) {
    errors.push({ type: 'Required', field: `${p}.admissionReviewVersions`, detail: 'must specify one of v1, v1beta1' });
  } else if (!hook.admissionReviewVersions.some((v) => v === 'v1' || v === 'v1beta1')) {
    errors.push({ type: 'Invalid', field: `${p}.admissionReviewVersions`, value: hook.admissionReviewVersions, detail: 'must include at least one of v1, v1beta1' });
  }
  if (hook.sideEffects === undefined) {
    errors.push({ type: 'Required', field: `${p}.sideEffects`, detail: 'must specify one of None, NoneOnDryRun' });
  } else if (typeof hook.sideEffects !== 'string' || !SIDE_EFFECTS.includes(hook.sideEffects)) {
    errors.push({ type: 'NotSupported', field: `${p}.sideEffects`, value: hook.sideEffects, detail: 'supported values: "None", "NoneOnDryRun"' });
  }
  if (typeof hook.failurePolicy !== 'string' || !FAILURE_POLICIES.includes(hook.failurePolicy)) {
    errors.push({ type: 'NotSupported', field: `${p}.failurePolicy`, value: hook.failurePolicy, detail: 'supported values: "Fail", "Ignore"' });
  }
  const timeout = hook.timeoutSeconds;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > 30) {
    errors.push({ type: 'Invalid', field: `${p}.timeoutSeconds`, value: timeout, detail: 'the timeout value must be between 1 and 30 seconds' });
  }
  if (mutating && (typeof hook.reinvocationPolicy !== 'string' || !REINVOCATION_POLICIES.includes(hook.reinvocationPolicy))) {
    errors.push({ type: 'NotSupported', field: `${p}.reinvocationPolicy`, value: hook.reinvocationPolicy, detail: 'supported values: "IfNeeded", "Never"' });
  }
  errors.push(...validateClientConfig(hook.clientConfig, `${p}.clientConfig`));
  errors.push(...validateRules(hook.rules, `${p}.rules`));
  // As on a real apiserver: an expression that does not compile is refused here, not at call time.
  errors.push(...validateMatchConditions(hook.matchConditions, `${p}.matchConditions`));
  return errors;
}

function strategyFor(mutating: boolean): KindStrategy {
  return {
    normalize(obj) {
      for (const hook of webhooksOf(obj)) defaultWebhook(hook, mutating);
    },
    validate(obj) {
      const seen = new Set<string>();
      return webhooksOf(obj).flatMap((hook, i) => validateWebhook(hook, i, seen, mutating));
    },
  };
}

export const mutatingWebhookConfigStrategy = strategyFor(true);
export const validatingWebhookConfigStrategy = strategyFor(false);
