/**
 * Splits an API path the way the apiserver's RequestInfoFactory does, including the legacy
 * /watch/ prefix and the namespaces/<name>/{status,finalize} special case.
 */

export type RequestInfo =
  | { type: 'root' | 'api' | 'apis' }
  | { type: 'group'; group: string }
  | { type: 'groupVersion'; group: string; version: string }
  | {
      type: 'resource';
      group: string;
      version: string;
      /** Set when the path names a namespace (for the Namespace kind itself: its name). */
      namespace: string | undefined;
      resource: string;
      name: string | undefined;
      subresource: string | undefined;
      /** Path used the deprecated /watch/ segment. */
      watchPath: boolean;
    }
  | { type: 'other' };

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

export function parseRequestPath(pathname: string): RequestInfo {
  const parts = pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const [prefix] = parts;
  if (parts.length === 0) return { type: 'root' };
  let group: string;
  let version: string | undefined;
  let rest: string[];
  if (prefix === 'api') {
    if (parts.length === 1) return { type: 'api' };
    group = '';
    version = parts[1];
    rest = parts.slice(2);
  } else if (prefix === 'apis') {
    if (parts.length === 1) return { type: 'apis' };
    group = parts[1] ?? '';
    if (parts.length === 2) return { type: 'group', group };
    version = parts[2];
    rest = parts.slice(3);
  } else {
    return { type: 'other' };
  }
  if (version === undefined) return { type: 'other' };
  if (rest.length === 0) return { type: 'groupVersion', group, version };
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    const next = rest[2];
    if (next !== undefined && !NAMESPACE_SUBRESOURCES.has(next)) rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest;
  if (resource === undefined || rest.length > 3) return { type: 'other' };
  return { type: 'resource', group, version, namespace, resource, name, subresource, watchPath };
}
