/**
 * The security properties the manifests promise, asserted on what `kubectl kustomize` renders
 * (every install shape): least-privilege containers, RBAC without cluster-wide Secret access,
 * and admission webhooks that sit on nothing but the IPsec Secret and KmeshNodeInfos.
 */
import test from 'ava';
import type { V1ClusterRole, V1Container, V1DaemonSet, V1Deployment, V1MutatingWebhookConfiguration, V1PodSpec, V1PolicyRule, V1Role, V1RoleBinding, V1Service, V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { type KubeObject, type Renders, byKind, find, renderAll } from './render.js';

let r: Renders;
test.before(async () => {
  r = await renderAll();
});
test.after.always(async () => {
  await r.cleanup();
});

const all = (): KubeObject[] => [...r.default, ...r.withoutCertManager, ...r.withComponents, ...r.uninstall];

interface Workload {
  readonly where: string;
  readonly spec: V1PodSpec;
}
function workloads(objects: readonly KubeObject[]): Workload[] {
  return objects.flatMap((o) => {
    const spec = o.spec as { template?: { spec: V1PodSpec }; jobTemplate?: { spec: { template: { spec: V1PodSpec } } } } | undefined;
    const pod = spec?.template?.spec ?? spec?.jobTemplate?.spec.template.spec;
    return pod ? [{ where: `${o.kind} ${o.metadata.name}`, spec: pod }] : [];
  });
}
const containers = (spec: V1PodSpec): V1Container[] => [...(spec.initContainers ?? []), ...spec.containers];

/** Containers that program the host's kernel: they run as root with named capabilities. */
const HOST_AGENTS = new Set(['DaemonSet kmesh-ipsec-node/node', 'DaemonSet kmesh-ipsec-cleanup/cleanup']);

test('every container: no privilege escalation, read-only root, all capabilities dropped, RuntimeDefault seccomp, requests and limits', (t) => {
  for (const { where, spec } of workloads(all())) {
    for (const c of containers(spec)) {
      const at = `${where}/${c.name}`;
      const sc = c.securityContext ?? {};
      t.is(sc.allowPrivilegeEscalation, false, at);
      t.is(sc.readOnlyRootFilesystem, true, at);
      t.not(sc.privileged, true, at);
      t.deepEqual(sc.capabilities?.drop, ['ALL'], at);
      t.is((sc.seccompProfile ?? spec.securityContext?.seccompProfile)?.type, 'RuntimeDefault', at);
      for (const resource of ['cpu', 'memory']) {
        t.truthy(c.resources?.requests?.[resource], `${at} requests ${resource}`);
        t.truthy(c.resources?.limits?.[resource], `${at} limits ${resource}`);
      }
    }
  }
});

test('every container but the two host agents runs as non-root and adds no capability', (t) => {
  let checked = 0;
  for (const { where, spec } of workloads(all())) {
    for (const c of containers(spec)) {
      if (HOST_AGENTS.has(`${where}/${c.name}`)) continue;
      checked++;
      t.is(c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot, true, `${where}/${c.name}`);
      t.not(c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser, 0, `${where}/${c.name}`);
      t.is(c.securityContext?.capabilities?.add, undefined, `${where}/${c.name}`);
    }
    if (!containers(spec).some((c) => HOST_AGENTS.has(`${where}/${c.name}`))) t.not(spec.hostNetwork, true, where);
  }
  t.true(checked >= 4, 'webhook, rotation job and cleanup holder were checked');
});

test('host agents add only NET_ADMIN with BPF+PERFMON, or SYS_ADMIN on legacy kernels; host access is bpffs only', (t) => {
  const seen: string[] = [];
  for (const [variant, objects] of [['default', r.default], ['components', r.withComponents], ['uninstall', r.uninstall]] as const) {
    for (const { where, spec } of workloads(objects)) {
      for (const c of containers(spec)) {
        if (!HOST_AGENTS.has(`${where}/${c.name}`)) continue;
        seen.push(`${variant}:${where}`);
        const added = c.securityContext?.capabilities?.add;
        t.deepEqual(added, variant === 'components' ? ['NET_ADMIN', 'SYS_ADMIN'] : ['NET_ADMIN', 'BPF', 'PERFMON'], `${variant}: ${where}`);
        t.is(spec.hostNetwork, true);
        t.deepEqual(spec.volumes?.filter((v) => v.hostPath).map((v) => v.hostPath?.path), ['/sys/fs/bpf']);
        t.false(spec.hostPID ?? false);
        t.false(spec.hostIPC ?? false);
      }
    }
  }
  t.deepEqual(seen, ['default:DaemonSet kmesh-ipsec-node', 'components:DaemonSet kmesh-ipsec-node', 'uninstall:DaemonSet kmesh-ipsec-cleanup']);
});

test('the cleanup runs with exactly the node plugin\'s host access', (t) => {
  const node = find(r.default, 'DaemonSet', 'kmesh-ipsec-node') as unknown as V1DaemonSet;
  const cleanup = find(r.uninstall, 'DaemonSet', 'kmesh-ipsec-cleanup') as unknown as V1DaemonSet;
  const pick = (spec: V1PodSpec | undefined) => ({
    serviceAccountName: spec?.serviceAccountName, hostNetwork: spec?.hostNetwork, tolerations: spec?.tolerations,
    nodeSelector: spec?.nodeSelector, priorityClassName: spec?.priorityClassName, bpffs: spec?.volumes?.find((v) => v.name === 'bpffs'),
  });
  t.deepEqual(pick(cleanup.spec?.template.spec), pick(node.spec?.template.spec));
  const nodeContainer = node.spec?.template.spec?.containers[0];
  const cleanupContainer = cleanup.spec?.template.spec?.initContainers?.[0];
  t.deepEqual(cleanupContainer?.securityContext, nodeContainer?.securityContext);
  t.deepEqual(cleanupContainer?.command, ['kmesh-ipsec', 'node', 'cleanup']);
  t.deepEqual(cleanupContainer?.volumeMounts, nodeContainer?.volumeMounts?.filter((m) => m.name === 'bpffs'));
});

test('volume mounts: no subPath on Secrets or ConfigMaps, no Bidirectional propagation (privileged only)', (t) => {
  for (const { where, spec } of workloads(all())) {
    const configVolumes = new Set((spec.volumes ?? []).filter((v) => v.secret ?? v.configMap).map((v) => v.name));
    for (const c of containers(spec)) {
      for (const m of c.volumeMounts ?? []) {
        if (configVolumes.has(m.name)) t.is(m.subPath, undefined, `${where}/${c.name}: ${m.name}`);
        // The API refuses Bidirectional for unprivileged containers; kubectl --dry-run=client cannot see it.
        t.not(m.mountPropagation, 'Bidirectional', `${where}/${c.name}: ${m.name}`);
      }
    }
  }
});

test('the private stamp key is mounted only into the webhook; the IPsec key only into node plugins, optionally', (t) => {
  const mounting = (secret: string) => workloads(all()).filter(({ spec }) => spec.volumes?.some((v) => v.secret?.secretName === secret)).map((w) => w.where);
  t.deepEqual([...new Set(mounting('kmesh-ipsec-stamp-key'))], ['Deployment kmesh-ipsec-webhook']);
  t.deepEqual([...new Set(mounting('kmesh-ipsec'))], ['DaemonSet kmesh-ipsec-node']);
  const node = find(r.default, 'DaemonSet', 'kmesh-ipsec-node') as unknown as V1DaemonSet;
  t.is(node.spec?.template.spec?.volumes?.find((v) => v.secret?.secretName === 'kmesh-ipsec')?.secret?.optional, true);
  t.is(node.spec?.template.spec?.volumes?.find((v) => v.configMap?.name === 'kmesh-ipsec-stamp-jwks')?.configMap?.optional, undefined);
});

const rulesOf = (o: KubeObject): V1PolicyRule[] => (o as unknown as V1Role | V1ClusterRole).rules ?? [];

test('RBAC: no wildcards, no cluster-wide Secret access, Secret access only by name', (t) => {
  for (const o of all()) {
    if (o.kind !== 'Role' && o.kind !== 'ClusterRole') continue;
    for (const rule of rulesOf(o)) {
      const at = `${o.kind} ${o.metadata.name}`;
      for (const list of [rule.verbs, rule.resources ?? [], rule.apiGroups ?? []]) t.false(list.includes('*'), at);
      if ((rule.resources ?? []).includes('secrets')) {
        t.is(o.kind, 'Role', `${at}: Secrets only in a namespace`);
        t.true((rule.resourceNames ?? []).length > 0, `${at}: Secrets only by name`);
      }
    }
  }
});

test('RBAC: node plugins and the webhook get exactly what they need', (t) => {
  const rules = (kind: string, name: string) => rulesOf(find(r.default, kind, name)).map((x) => ({ apiGroups: x.apiGroups, resources: x.resources, verbs: x.verbs }));
  t.deepEqual(rules('Role', 'kmesh-ipsec-node'), [
    { apiGroups: ['kmesh.net'], resources: ['kmeshnodeinfos'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
    { apiGroups: ['kmesh.net'], resources: ['kmeshnodeinfos/status'], verbs: ['update', 'patch'] },
  ]);
  t.deepEqual(rules('ClusterRole', 'kmesh-ipsec-node'), [
    { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
    { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list', 'watch'] },
    { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  ]);
  t.deepEqual(rules('Role', 'kmesh-ipsec-webhook'), [{ apiGroups: ['kmesh.net'], resources: ['kmeshnodeinfos'], verbs: ['get', 'list', 'watch'] }]);
  t.deepEqual(rules('ClusterRole', 'kmesh-ipsec-webhook'), [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
  t.deepEqual(rulesOf(find(r.withComponents, 'Role', 'kmesh-ipsec-key-rotation')), [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['kmesh-ipsec'], verbs: ['get', 'update'] }]);
  // Each binding grants its role to its own service account only, in kmesh-system.
  for (const binding of [...byKind(r.withComponents, 'RoleBinding'), ...byKind(r.withComponents, 'ClusterRoleBinding')] as unknown as V1RoleBinding[]) {
    t.is(binding.roleRef.name, binding.metadata?.name ?? '');
    t.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: binding.metadata?.name, namespace: 'kmesh-system' }]);
  }
});

test('admission: the Secret webhooks see only kmesh-system/kmesh-ipsec, KmeshNodeInfo ones only kmeshnodeinfos; fail closed with 1-3 s timeouts', (t) => {
  const mutating = find(r.default, 'MutatingWebhookConfiguration', 'kmesh-ipsec') as unknown as V1MutatingWebhookConfiguration;
  const validating = find(r.default, 'ValidatingWebhookConfiguration', 'kmesh-ipsec') as unknown as V1ValidatingWebhookConfiguration;
  const webhooks = [...(mutating.webhooks ?? []), ...(validating.webhooks ?? [])];
  t.is(webhooks.length, 5);
  for (const w of webhooks) {
    const resources = (w.rules ?? []).flatMap((rule) => (rule.resources ?? []).map((res) => `${(rule.apiGroups ?? []).join(',')}/${res}`));
    t.is(w.sideEffects, 'None', w.name);
    t.deepEqual(w.admissionReviewVersions, ['v1'], w.name);
    t.true((w.timeoutSeconds ?? 10) >= 1 && (w.timeoutSeconds ?? 10) <= 3, w.name);
    t.is(w.objectSelector, undefined, `${w.name}: checking must not be opt-in by label`);
    if (resources.some((x) => x.startsWith('/secrets'))) {
      t.deepEqual(resources, ['/secrets'], w.name);
      t.deepEqual(w.namespaceSelector, { matchLabels: { 'kubernetes.io/metadata.name': 'kmesh-system' } }, w.name);
      t.deepEqual(w.matchConditions, [{ name: 'kmesh-ipsec-secret-only', expression: "request.name == 'kmesh-ipsec'" }], w.name);
    } else {
      t.deepEqual(new Set(resources), new Set(['kmesh.net/kmeshnodeinfos', ...(w.clientConfig.service?.path === '/validate' ? ['kmesh.net/kmeshnodeinfos/status'] : [])]), w.name);
    }
    const deletionsOnly = (w.rules ?? []).every((rule) => rule.operations?.join() === 'DELETE');
    t.is(w.failurePolicy, deletionsOnly ? 'Ignore' : 'Fail', w.name);
  }
  t.deepEqual((mutating.webhooks ?? []).map((w) => w.reinvocationPolicy), ['IfNeeded', 'IfNeeded']);
});

test('webhook Deployment: two replicas spread over nodes, a PDB, readiness on /readyz; node plugin on every node', (t) => {
  const deployment = find(r.default, 'Deployment', 'kmesh-ipsec-webhook') as unknown as V1Deployment;
  const pod = deployment.spec?.template.spec;
  t.is(deployment.spec?.replicas, 2);
  t.like(pod?.topologySpreadConstraints?.[0], { topologyKey: 'kubernetes.io/hostname', maxSkew: 1 });
  t.like(pod?.containers[0]?.readinessProbe?.httpGet, { path: '/readyz', scheme: 'HTTPS' });
  const pdb = find(r.default, 'PodDisruptionBudget', 'kmesh-ipsec-webhook') as unknown as { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
  t.is(pdb.spec.minAvailable, 1);
  t.like(deployment.spec?.template.metadata?.labels, pdb.spec.selector.matchLabels);

  const node = find(r.default, 'DaemonSet', 'kmesh-ipsec-node') as unknown as V1DaemonSet;
  const nodePod = node.spec?.template.spec;
  t.deepEqual(nodePod?.tolerations, [{ operator: 'Exists' }]);
  t.like(node.spec?.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  t.deepEqual(nodePod?.containers[0]?.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  t.like(nodePod?.containers[0]?.readinessProbe?.httpGet, { path: '/readyz', port: 'http' });
  t.like(nodePod?.containers[0]?.livenessProbe?.httpGet, { path: '/healthz', port: 'http' });
  t.is(nodePod?.containers[0]?.lifecycle?.preStop, undefined, 'uninstall is a separate step, not a hook on every update');
});

/** A NetworkPolicy as YAML spells it (client-node's type renames `from`). */
interface NetworkPolicy {
  spec?: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: { ports?: { protocol?: string; port?: number | string }[]; from?: { ipBlock?: { cidr: string }; podSelector?: unknown; namespaceSelector?: unknown }[] }[];
  };
}

test('NetworkPolicy: every install shape isolates the webhook pods; only TCP to the port the Service targets, only by address', (t) => {
  for (const [variant, objects] of [['default', r.default], ['without cert-manager', r.withoutCertManager], ['components', r.withComponents]] as const) {
    const policy = find(objects, 'NetworkPolicy', 'kmesh-ipsec-webhook') as unknown as NetworkPolicy;
    const deployment = find(objects, 'Deployment', 'kmesh-ipsec-webhook') as unknown as V1Deployment;
    const service = find(objects, 'Service', 'kmesh-ipsec-webhook') as unknown as V1Service;
    const container = deployment.spec?.template.spec?.containers[0];
    const target = container?.ports?.find((p) => p.name === service.spec?.ports?.[0]?.targetPort);
    t.deepEqual(policy.spec?.podSelector.matchLabels, deployment.spec?.template.metadata?.labels, `${variant}: selects the webhook pods`);
    t.deepEqual(policy.spec?.podSelector.matchLabels, service.spec?.selector, variant);
    t.deepEqual(policy.spec?.policyTypes, ['Ingress'], variant);
    t.is(policy.spec?.ingress?.length, 1, `${variant}: one rule`);
    const rule = policy.spec?.ingress?.[0];
    t.deepEqual(rule?.ports, [{ protocol: 'TCP', port: target?.containerPort }], `${variant}: only the webhook port`);
    t.true((rule?.from ?? []).length > 0, `${variant}: an empty from would admit everyone`);
    for (const peer of rule?.from ?? []) {
      t.truthy(peer.ipBlock, `${variant}: by address only`);
      t.is(peer.podSelector, undefined, `${variant}: no pod is admitted by its labels`);
      t.is(peer.namespaceSelector, undefined, `${variant}: no namespace is admitted by its labels`);
    }
  }
  // The one other pod in kmesh-system that listens is the node plugin, on the host network, which
  // NetworkPolicy does not govern; nothing else is left unselected by accident.
  t.true(workloads(r.default).every(({ where, spec }) => where === 'Deployment kmesh-ipsec-webhook' || spec.hostNetwork === true));
});

test('components/apiserver-client-auth: the webhook requires client certificates from the mounted CA, and nothing else changes', (t) => {
  const plain = find(r.default, 'Deployment', 'kmesh-ipsec-webhook') as unknown as V1Deployment;
  const guarded = find(r.withComponents, 'Deployment', 'kmesh-ipsec-webhook') as unknown as V1Deployment;
  const before = plain.spec?.template.spec?.containers[0];
  const after = guarded.spec?.template.spec?.containers[0];
  t.deepEqual(after?.args, [...(before?.args ?? []), '--client-ca=/etc/kmesh-ipsec/client-ca/ca.crt']);
  const mount = after?.volumeMounts?.find((m) => m.mountPath === '/etc/kmesh-ipsec/client-ca');
  t.like(mount, { name: 'client-ca', readOnly: true });
  t.deepEqual(after?.volumeMounts?.filter((m) => m !== mount), before?.volumeMounts);
  const volume = guarded.spec?.template.spec?.volumes?.find((v) => v.name === mount?.name);
  t.deepEqual(volume?.secret, { secretName: 'kmesh-ipsec-webhook-client-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o444 }, 'the certificate only, never a CA key stored next to it');
  t.deepEqual(guarded.spec?.template.spec?.volumes?.filter((v) => v !== volume), plain.spec?.template.spec?.volumes);
  // The probes carry no client certificate: they must stay on paths the webhook serves without one.
  t.like(after?.readinessProbe?.httpGet, { path: '/readyz' });
  t.like(after?.livenessProbe?.httpGet, { path: '/healthz' });
});
