/**
 * Validation failures in the apiserver's field.ErrorList format, because clients show the
 * resulting 422 message verbatim ("Secret \"x\" is invalid: data[a b]: Invalid value: ...").
 */

import { StatusError } from './status.js';

export type FieldErrorType = 'Invalid' | 'Required' | 'Forbidden' | 'NotSupported' | 'Duplicate' | 'TooLong' | 'TooMany';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  value?: unknown;
  /** How Go prints `value` when JSON would differ (a uint64 zero prints as 0x0). */
  rendered?: string;
  detail?: string;
}

const TYPE_TEXT: Record<FieldErrorType, string> = {
  Invalid: 'Invalid value',
  Required: 'Required value',
  Forbidden: 'Forbidden',
  NotSupported: 'Unsupported value',
  Duplicate: 'Duplicate value',
  TooLong: 'Too long',
  TooMany: 'Too many',
};

const CAUSE_TYPE: Record<FieldErrorType, string> = {
  Invalid: 'FieldValueInvalid',
  Required: 'FieldValueRequired',
  Forbidden: 'FieldValueForbidden',
  NotSupported: 'FieldValueNotSupported',
  Duplicate: 'FieldValueDuplicate',
  TooLong: 'FieldValueTooLong',
  TooMany: 'FieldValueTooMany',
};

/** Only these error types echo the offending value, as in field.Error.ErrorBody. */
const SHOWS_VALUE = new Set<FieldErrorType>(['Invalid', 'NotSupported', 'Duplicate', 'TooMany']);

export function errorBody(e: FieldError): string {
  let body = TYPE_TEXT[e.type];
  if (SHOWS_VALUE.has(e.type)) {
    body += `: ${e.rendered ?? JSON.stringify(e.value ?? null)}`;
  }
  if (e.detail !== undefined && e.detail !== '') {
    body += `: ${e.detail}`;
  }
  return body;
}

/** apierrors.NewInvalid: kind (not resource) in the message and details. */
export function invalid(group: string, kind: string, name: string, errors: readonly FieldError[]): StatusError {
  const qualifiedKind = group === '' ? kind : `${kind}.${group}`;
  const texts = errors.map((e) => `${e.field}: ${errorBody(e)}`);
  const aggregate = texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`;
  return new StatusError({
    message: `${qualifiedKind} "${name}" is invalid: ${aggregate ?? ''}`,
    reason: 'Invalid',
    details: {
      name,
      ...(group === '' ? {} : { group }),
      kind,
      causes: errors.map((e) => ({ reason: CAUSE_TYPE[e.type], message: errorBody(e), field: e.field })),
    },
    code: 422,
  });
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function dns1123SubdomainErrors(field: string, value: string): FieldError[] {
  if (value.length > 253) {
    return [{ type: 'Invalid', field, value, detail: 'must be no more than 253 characters' }];
  }
  if (!DNS1123_SUBDOMAIN.test(value)) {
    return [{
      type: 'Invalid',
      field,
      value,
      detail: "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    }];
  }
  return [];
}

export function dns1123LabelErrors(field: string, value: string): FieldError[] {
  if (value.length > 63) {
    return [{ type: 'Invalid', field, value, detail: 'must be no more than 63 characters' }];
  }
  if (!DNS1123_LABEL.test(value)) {
    return [{
      type: 'Invalid',
      field,
      value,
      detail: "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    }];
  }
  return [];
}
