/**
 * Server-side Table columns of the core kinds the node plugin works with, as kube-apiserver's
 * printers render them (priority 1 columns are what `kubectl get -o wide` adds).
 */

import { asString, isRecord } from './json.js';
import { AGE_COLUMN, NAME_COLUMN, humanDuration, type TableColumn } from './resource-type.js';
import type { JsonObject, KubeObject } from './types.js';

const NONE = '<none>';

function record(obj: JsonObject, ...path: string[]): JsonObject {
  let current: unknown = obj;
  for (const key of path) current = isRecord(current) ? current[key] : undefined;
  return isRecord(current) ? current : {};
}

function records(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

const text = (name: string, description: string, cell: TableColumn['cell'], priority = 0): TableColumn =>
  ({ name, type: 'string', description, priority, cell });

// --- Node ---------------------------------------------------------------------------------

function nodeStatus(node: KubeObject): string {
  const ready = records(record(node, 'status').conditions).find((c) => c.type === 'Ready');
  const parts = [ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady'];
  if (record(node, 'spec').unschedulable === true) parts.push('SchedulingDisabled');
  return parts.join(',');
}

function nodeRoles(node: KubeObject): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(node.metadata.labels ?? {})) {
    if (key.startsWith('node-role.kubernetes.io/') && key.length > 'node-role.kubernetes.io/'.length) roles.add(key.slice('node-role.kubernetes.io/'.length));
    else if (key === 'kubernetes.io/role' && value !== '') roles.add(value);
  }
  return roles.size === 0 ? NONE : [...roles].sort().join(',');
}

function nodeAddress(node: KubeObject, type: string): string {
  const found = records(record(node, 'status').addresses).find((a) => a.type === type);
  return found === undefined ? NONE : asString(found.address);
}

function nodeInfo(node: KubeObject, key: string): string {
  return asString(record(node, 'status', 'nodeInfo')[key]) || '<unknown>';
}

export const NODE_COLUMNS: readonly TableColumn[] = [
  NAME_COLUMN,
  text('Status', 'The status of the node', nodeStatus),
  text('Roles', 'The roles of the node', nodeRoles),
  AGE_COLUMN,
  text('Version', 'Kubelet Version reported by the node.', (o) => asString(record(o, 'status', 'nodeInfo').kubeletVersion)),
  text('Internal-IP', 'List of internal IPs in the node.', (o) => nodeAddress(o, 'InternalIP'), 1),
  text('External-IP', 'List of external IPs in the node.', (o) => nodeAddress(o, 'ExternalIP'), 1),
  text('OS-Image', 'OS image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', (o) => nodeInfo(o, 'osImage'), 1),
  text('Kernel-Version', "Kernel version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", (o) => nodeInfo(o, 'kernelVersion'), 1),
  text('Container-Runtime', 'Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).', (o) => nodeInfo(o, 'containerRuntimeVersion'), 1),
];

// --- Pod ----------------------------------------------------------------------------------

/** The STATUS cell: phase, overridden by the pod's reason, container reasons, then deletion. */
function podStatus(pod: KubeObject): string {
  const status = record(pod, 'status');
  let reason = asString(status.reason) || asString(status.phase);
  for (const c of records(status.containerStatuses)) {
    const waiting = record(c, 'state', 'waiting');
    const terminated = record(c, 'state', 'terminated');
    if (asString(waiting.reason) !== '') reason = asString(waiting.reason);
    else if (asString(terminated.reason) !== '') reason = asString(terminated.reason);
  }
  if (pod.metadata.deletionTimestamp !== undefined) return status.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  return reason;
}

function podReady(pod: KubeObject): string {
  const total = records(record(pod, 'spec').containers).length;
  const ready = records(record(pod, 'status').containerStatuses).filter((c) => c.ready === true).length;
  return `${ready}/${total}`;
}

function podRestarts(pod: KubeObject): string {
  const n = records(record(pod, 'status').containerStatuses).reduce((sum, c) => sum + (typeof c.restartCount === 'number' ? c.restartCount : 0), 0);
  return String(n);
}

export const POD_COLUMNS: readonly TableColumn[] = [
  NAME_COLUMN,
  text('Ready', 'The aggregate readiness state of this pod for accepting traffic.', podReady),
  text('Status', 'The aggregate status of the containers in this pod.', podStatus),
  text('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.', podRestarts),
  AGE_COLUMN,
  text('IP', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', (o) => asString(record(o, 'status').podIP) || NONE, 1),
  text('Node', 'NodeName is a request to schedule this pod onto a specific node.', (o) => asString(record(o, 'spec').nodeName) || NONE, 1),
  text('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node.', (o) => asString(record(o, 'status').nominatedNodeName) || NONE, 1),
  text('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', (o) => {
    const gates = records(record(o, 'spec').readinessGates);
    return gates.length === 0 ? NONE : gates.map((g) => asString(g.conditionType)).join(', ');
  }, 1),
];

// --- Event --------------------------------------------------------------------------------

function eventFirstSeen(e: KubeObject, now: Date): string {
  return humanDuration(asString(e.firstTimestamp) || asString(e.eventTime) || undefined, now);
}

function eventLastSeen(e: KubeObject, now: Date): string {
  const series = record(e, 'series');
  if (asString(series.lastObservedTime) !== '') return humanDuration(asString(series.lastObservedTime), now);
  return asString(e.lastTimestamp) === '' ? eventFirstSeen(e, now) : humanDuration(asString(e.lastTimestamp), now);
}

function eventObject(e: KubeObject): string {
  const involved = record(e, 'involvedObject');
  const kind = asString(involved.kind).toLowerCase();
  return asString(involved.name) === '' ? kind : `${kind}/${asString(involved.name)}`;
}

function eventSource(e: KubeObject): string {
  const source = record(e, 'source');
  const component = asString(source.component) || asString(e.reportingComponent);
  const instance = asString(source.host) || asString(e.reportingInstance);
  return instance === '' ? component : `${component}, ${instance}`;
}

function eventCount(e: KubeObject): number {
  const series = record(e, 'series');
  if (typeof series.count === 'number') return series.count;
  return typeof e.count === 'number' && e.count > 0 ? e.count : 1;
}

export const EVENT_COLUMNS: readonly TableColumn[] = [
  text('Last Seen', 'Time when this Event was last seen', eventLastSeen),
  text('Type', 'Type of this event (Normal, Warning), new types could be added in the future.', (o) => asString(o.type)),
  text('Reason', 'Reason is why the action was taken. It is human-readable. This field can have at most 128 characters.', (o) => asString(o.reason)),
  text('Object', 'The object that this event is about. Mapped from event.involvedObject.', eventObject),
  text('Subobject', 'The subobject that this event is about. Mapped from event.involvedObject.fieldPath.', (o) => asString(record(o, 'involvedObject').fieldPath), 1),
  text('Source', 'The component reporting this event. Should be a short machine understandable string.', eventSource, 1),
  text('Message', 'A human-readable description of the status of this operation.', (o) => asString(o.message).trim()),
  text('First Seen', 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)', eventFirstSeen, 1),
  { name: 'Count', type: 'integer', description: 'The number of times this event has occurred.', priority: 1, cell: eventCount },
  { ...NAME_COLUMN, priority: 1 },
];

/** Field selectors of core/v1 Events (kubectl describe selects on involvedObject.*). */
export const EVENT_FIELDS: Readonly<Record<string, (obj: KubeObject) => string>> = {
  ...Object.fromEntries(['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath']
    .map((key) => [`involvedObject.${key}`, (o: KubeObject) => asString(record(o, 'involvedObject')[key])])),
  reason: (o) => asString(o.reason),
  reportingComponent: (o) => asString(o.reportingComponent),
  source: (o) => asString(record(o, 'source').component) || asString(o.reportingComponent),
  type: (o) => asString(o.type),
};

/** Field selectors of Pods (the node plugin lists its own with spec.nodeName). */
export const POD_FIELDS: Readonly<Record<string, (obj: KubeObject) => string>> = {
  'spec.nodeName': (o) => asString(record(o, 'spec').nodeName),
  'spec.restartPolicy': (o) => asString(record(o, 'spec').restartPolicy),
  'spec.schedulerName': (o) => asString(record(o, 'spec').schedulerName),
  'spec.serviceAccountName': (o) => asString(record(o, 'spec').serviceAccountName),
  'spec.hostNetwork': (o) => String(record(o, 'spec').hostNetwork === true),
  'status.phase': (o) => asString(record(o, 'status').phase),
  'status.podIP': (o) => asString(record(o, 'status').podIP),
  'status.nominatedNodeName': (o) => asString(record(o, 'status').nominatedNodeName),
};
