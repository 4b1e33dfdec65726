/**
 * Who is writing a KmeshNodeInfo. Every node plugin runs under the same service account, so
 * RBAC cannot tell node A's plugin from node B's; the API server can, because a projected
 * service-account token is bound to its pod and (Kubernetes ≥ 1.30, ServiceAccountTokenPodNodeInfo)
 * the authenticated user carries the node name in `extra`. Nothing a client sends can set that
 * extra except impersonation, which needs the admin-level `impersonate` verb on `userextras`.
 */
import type { UserInfo } from './admission-review.js';

/** userInfo.extra key the API server fills from a node-bound service-account token. */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** Service accounts of the node plugins: ours and Kmesh's daemon (mixed clusters share the objects). */
export const DEFAULT_AGENT_USERNAMES = [
  'system:serviceaccount:kmesh-system:kmesh-ipsec-node',
  'system:serviceaccount:kmesh-system:kmesh',
] as const;

/**
 * Kubernetes' own controllers that delete KmeshNodeInfos: the garbage collector (a KmeshNodeInfo
 * is owned by its Node, so it goes when the Node goes) and the namespace controller (when
 * kmesh-system is deleted). They may delete any node's object and write nothing.
 */
export const DEFAULT_DELETER_USERNAMES = [
  'system:serviceaccount:kube-system:generic-garbage-collector',
  'system:serviceaccount:kube-system:namespace-controller',
] as const;

export interface IdentityPolicy {
  /** Usernames that may delete any node's object, and do nothing else. */
  readonly deleterUsernames: ReadonlySet<string>;
  /** Usernames whose node-bound token lets them write their own node's object. */
  readonly agentUsernames: ReadonlySet<string>;
  /** Usernames that may write any node's object (repair by hand, garbage collection). */
  readonly privilegedUsernames: ReadonlySet<string>;
  /** Groups whose members may write any node's object. */
  readonly privilegedGroups: ReadonlySet<string>;
  /** Fixed username → node mapping, for clusters whose tokens carry no node name. */
  readonly userNodes: ReadonlyMap<string, string>;
}

export type Writer =
  | { readonly kind: 'privileged'; readonly username: string; readonly via: string }
  | { readonly kind: 'node'; readonly username: string; readonly node: string; readonly via: 'token' | 'mapping' }
  | { readonly kind: 'unknown'; readonly username: string; readonly reason: string };

export function identityPolicy(options: {
  agentUsernames?: Iterable<string>;
  privilegedUsernames?: Iterable<string>;
  privilegedGroups?: Iterable<string>;
  userNodes?: Iterable<readonly [string, string]>;
  deleterUsernames?: Iterable<string>;
} = {}): IdentityPolicy {
  return {
    deleterUsernames: new Set(options.deleterUsernames ?? DEFAULT_DELETER_USERNAMES),
    agentUsernames: new Set(options.agentUsernames ?? DEFAULT_AGENT_USERNAMES),
    privilegedUsernames: new Set(options.privilegedUsernames ?? []),
    privilegedGroups: new Set(options.privilegedGroups ?? []),
    userNodes: new Map(options.userNodes ?? []),
  };
}

/** Classify the requester. Privilege is checked first so an admin with a mapping is still an admin. */
export function identifyWriter(user: UserInfo, policy: IdentityPolicy): Writer {
  const { username } = user;
  if (policy.privilegedUsernames.has(username)) return { kind: 'privileged', username, via: `user ${username}` };
  const group = user.groups.find((g) => policy.privilegedGroups.has(g));
  if (group !== undefined) return { kind: 'privileged', username, via: `group ${group}` };
  const mapped = policy.userNodes.get(username);
  if (mapped !== undefined) return { kind: 'node', username, node: mapped, via: 'mapping' };

  const bound = Object.hasOwn(user.extra, NODE_NAME_EXTRA) ? user.extra[NODE_NAME_EXTRA] : undefined;
  if (!policy.agentUsernames.has(username)) {
    return { kind: 'unknown', username, reason: `${username || '(anonymous)'} is not a node plugin service account (${[...policy.agentUsernames].join(', ') || 'none configured'})` };
  }
  if (bound === undefined || bound.length === 0) {
    return { kind: 'unknown', username, reason: `the token of ${username} is not bound to a node (no ${NODE_NAME_EXTRA}); use a projected service-account token` };
  }
  const [node] = bound;
  if (bound.length !== 1 || node === undefined || node === '') {
    return { kind: 'unknown', username, reason: `the token of ${username} names ${bound.length} nodes in ${NODE_NAME_EXTRA}; expected exactly one` };
  }
  return { kind: 'node', username, node, via: 'token' };
}
