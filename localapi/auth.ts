/**
 * Bearer-token authentication and an optional authorization hook. With anonymous access off
 * (the default here, as with --anonymous-auth=false), a missing or unknown token is a 401.
 */

import type { IncomingMessage } from 'node:http';
import { forbidden } from './status.js';
import type { UserInfo } from './types.js';

/** What an authorizer decides on, mirroring SubjectAccessReview's resourceAttributes. */
export interface AuthorizationRequest {
  user: UserInfo;
  /** get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  group: string;
  resource: string;
  /** '' for the main resource, else e.g. 'status'. */
  subresource: string;
  namespace: string;
  name: string;
}

/** Returns true to allow; false (or a reason string) to answer 403 Forbidden. */
export type Authorizer = (request: AuthorizationRequest) => boolean | string;

export const ANONYMOUS: UserInfo = { username: 'system:anonymous', groups: ['system:unauthenticated'] };

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

export function authenticate(req: IncomingMessage, tokens: ReadonlyMap<string, UserInfo>): UserInfo | undefined {
  const token = bearerToken(req);
  return token === undefined ? undefined : tokens.get(token);
}

export function authorize(authorizer: Authorizer | undefined, request: AuthorizationRequest): void {
  if (authorizer === undefined) return;
  const verdict = authorizer(request);
  if (verdict === true) return;
  const where = request.namespace === '' ? 'at the cluster scope' : `in the namespace "${request.namespace}"`;
  const resource = request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`;
  const why = `User "${request.user.username}" cannot ${request.verb} resource "${resource}" in API group "${request.group}" ${where}`;
  throw forbidden(
    { group: request.group, resource: request.resource },
    request.name,
    typeof verdict === 'string' && verdict !== '' ? `${why}: ${verdict}` : why,
  );
}
