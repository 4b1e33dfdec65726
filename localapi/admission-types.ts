/** The request attributes admission sees, and the interface the registry calls it through. */

import type { ResourceType } from './resource-type.js';
import type { JsonObject, KubeObject, Operation, UserInfo } from './types.js';

export interface AdmissionAttributes {
  resource: ResourceType;
  /** '' for the main resource, else e.g. 'status'. */
  subresource: string;
  operation: Operation;
  /** Request namespace; '' for cluster-scoped kinds except Namespace, where it is the name. */
  namespace: string;
  name: string;
  object: KubeObject | null;
  oldObject: KubeObject | null;
  /** CreateOptions / UpdateOptions / DeleteOptions with kind and apiVersion, as sent in AdmissionReview. */
  options: JsonObject;
  dryRun: boolean;
  user: UserInfo;
}

export interface Admission {
  /** Runs mutating admission; resolves with the (possibly patched) object. */
  mutate(attrs: AdmissionAttributes, warnings: string[]): Promise<KubeObject | null>;
  /** Runs validating admission; rejects with a StatusError on denial. */
  validate(attrs: AdmissionAttributes, warnings: string[]): Promise<void>;
}
