/**
 * What an admission handler decides, before it is put into an AdmissionReview. Handlers return
 * this instead of building responses so that they stay pure and so that the server can label
 * metrics and logs by cause without parsing messages.
 */
import type { JsonPatchOperation } from '../core/secret-patch.js';
import { type FieldError, MAX_LISTED_ERRORS } from '../core/result.js';
import { denialMessage } from './admission-review.js';

/** Why a request was denied; a metrics label, so a small fixed set. */
export const DenyCause = {
  /** The object breaks a schema rule from core/. */
  Invalid: 'invalid',
  /** The SPI change breaks the monotonic-SPI rules. */
  SpiTransition: 'spi-transition',
  /** The writer may not write this KmeshNodeInfo. */
  Forbidden: 'forbidden',
  /** The KmeshNodeInfo claims addresses or CIDRs that are not the node's. */
  Claims: 'claims',
  /** The validity stamp is missing or does not verify. */
  Stamp: 'stamp',
  /** Cluster state needed for the decision is not known yet: fail closed. */
  NotSynced: 'not-synced',
  /** A bug or an unexpected failure in the webhook. */
  Internal: 'internal',
} as const;
export type DenyCause = (typeof DenyCause)[keyof typeof DenyCause];

export type Decision =
  | { readonly allowed: true; readonly patch: readonly JsonPatchOperation[]; readonly warnings: readonly string[] }
  | {
      readonly allowed: false;
      readonly cause: DenyCause;
      readonly code: number;
      readonly reason: string;
      readonly message: string;
      /** The first few field names (never values), as sent: escape before logging. */
      readonly fields: readonly string[];
      readonly warnings: readonly string[];
    };

export function allow(patch: readonly JsonPatchOperation[] = [], warnings: readonly string[] = []): Decision {
  return { allowed: true, patch, warnings };
}

const STATUS_FOR: Record<DenyCause, { code: number; reason: string }> = {
  invalid: { code: 422, reason: 'Invalid' },
  'spi-transition': { code: 422, reason: 'Invalid' },
  forbidden: { code: 403, reason: 'Forbidden' },
  claims: { code: 403, reason: 'Forbidden' },
  stamp: { code: 403, reason: 'Forbidden' },
  'not-synced': { code: 503, reason: 'ServiceUnavailable' },
  internal: { code: 500, reason: 'InternalError' },
};

/** Deny with field errors; `subject` names the object, e.g. `Secret kmesh-system/kmesh-ipsec`. */
export function deny(cause: DenyCause, subject: string, errors: readonly FieldError[], warnings: readonly string[] = []): Decision {
  return { allowed: false, cause, ...STATUS_FOR[cause], message: denialMessage(subject, errors), fields: errors.slice(0, MAX_LISTED_ERRORS).map((e) => e.field), warnings };
}
