/**
 * Route an admission request to its handler by endpoint and by the kind of object the request
 * carries (not by URL alone): one MutatingWebhookConfiguration and one Validating... each have
 * a webhook per kind, and both point at the same two paths. Objects we do not own pass
 * untouched, so a too-wide webhook rule costs latency, never correctness.
 */
import { KNI_GROUP, KNI_KIND } from '../core/constants.js';
import { isRecord } from '../core/json-value.js';
import { isIpsecSecretName } from '../core/secret.js';
import type { AdmissionRequest } from './admission-review.js';
import type { ClusterView } from './cluster-view.js';
import { type Decision, allow } from './decision.js';
import { type NodeInfoAdmissionDeps, mutateNodeInfo, validateNodeInfoRequest } from './nodeinfo-admission.js';
import { mutateIpsecSecret, validateIpsecSecret } from './secret-admission.js';

export const Endpoint = { Mutate: 'mutate', Validate: 'validate' } as const;
export type Endpoint = (typeof Endpoint)[keyof typeof Endpoint];

/** Which of our object kinds a request is about; a metrics label. */
export const Subject = { IpsecSecret: 'ipsec-secret', NodeInfo: 'kmeshnodeinfo', Other: 'other' } as const;
export type Subject = (typeof Subject)[keyof typeof Subject];

export interface AdmissionDeps extends NodeInfoAdmissionDeps {
  readonly cluster: ClusterView;
}

export function subjectOf(req: AdmissionRequest): Subject {
  const { group, kind } = req.kind;
  if (group === '' && kind === 'Secret') {
    const name = req.name !== '' ? req.name : nameOf(req.object);
    return isIpsecSecretName(req.namespace, name) ? Subject.IpsecSecret : Subject.Other;
  }
  if (group === KNI_GROUP && kind === KNI_KIND) return Subject.NodeInfo;
  return Subject.Other;
}

/** `budgetMs`: how long a read from the API may take. */
export async function decide(endpoint: Endpoint, req: AdmissionRequest, deps: AdmissionDeps, budgetMs: number): Promise<Decision> {
  switch (subjectOf(req)) {
    case Subject.IpsecSecret:
      return endpoint === Endpoint.Mutate ? mutateIpsecSecret(req) : validateIpsecSecret(req, deps.cluster);
    case Subject.NodeInfo:
      return endpoint === Endpoint.Mutate ? mutateNodeInfo(req, deps, budgetMs) : validateNodeInfoRequest(req, deps, budgetMs);
    case Subject.Other:
      return allow();
  }
}

function nameOf(obj: Readonly<Record<string, unknown>> | null): string {
  const meta = obj?.metadata;
  return isRecord(meta) && typeof meta.name === 'string' ? meta.name : '';
}
