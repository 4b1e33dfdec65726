/**
 * KmeshNodeInfo (kmesh.net/v1alpha1), the object each node publishes about itself: the SPI it
 * receives with, its addresses, boot ID and pod CIDRs. Peers build their kernel state from it,
 * so a wrong value here means broken or misdirected traffic: validate strictly.
 */
import { KMESH_NAMESPACE, KNI_API_VERSION, KNI_KIND, SPI_MAX } from './constants.js';
import { parseCidr, parseIp } from './ip.js';
import { type FieldError, type Result, fail, ok, reportFew } from './result.js';
import { safeText } from './safe-text.js';
import { describeJsonValue, isRecord } from './json-value.js';

export interface KmeshNodeInfoSpec {
  /** SPI this node receives with; 0 when it has no key yet. */
  readonly spi: number;
  /** The node's InternalIP addresses, as text (hashed as text by key derivation). */
  readonly addresses: readonly string[];
  /** /proc/sys/kernel/random/boot_id of the node: a 36-character UUID. */
  readonly bootID: string;
  /** The node's pod CIDRs, canonical (note Kmesh's spelling, capital S). */
  readonly podCIDRS: readonly string[];
}

export interface KmeshNodeInfo {
  readonly apiVersion: typeof KNI_API_VERSION;
  readonly kind: typeof KNI_KIND;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly resourceVersion?: string;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [k: string]: unknown;
  };
  readonly spec: KmeshNodeInfoSpec;
}

const SPEC_FIELDS = ['spi', 'addresses', 'bootID', 'podCIDRS'] as const;
/**
 * List bounds a real node never reaches (Kubernetes gives a Node at most two pod CIDRs, one per
 * family, and a handful of addresses). They are checked before any item is looked at: the
 * mutating webhook runs before the CRD's schema, so these are the only limits there, and every
 * peer validates the same lists again.
 */
export const MAX_NODE_ADDRESSES = 64;
export const MAX_POD_CIDRS = 64;
/** Longer than any address (45 characters) or CIDR text: refused without parsing. */
export const MAX_ADDRESS_CHARS = 64;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Validate a spec; `field` prefixes error paths. */
export function validateNodeInfoSpec(spec: unknown, field = 'spec'): Result<KmeshNodeInfoSpec> {
  if (!isRecord(spec)) return fail([{ field, message: `must be an object with ${SPEC_FIELDS.join(', ')}, got ${describeJsonValue(spec)}` }]);
  const unknown = Object.keys(spec)
    .filter((k) => !(SPEC_FIELDS as readonly string[]).includes(k))
    .map((k) => ({ field: `${field}.${safeText(k, 64)}`, message: `unknown field; allowed fields are ${SPEC_FIELDS.join(', ')}` }));
  const errors = reportFew(unknown, field, 'unknown fields');
  const { spi, addresses, bootID, podCIDRS } = spec;
  if (typeof spi !== 'number' || !Number.isSafeInteger(spi) || spi < 0 || spi > SPI_MAX) {
    errors.push({ field: `${field}.spi`, message: `must be an integer from 0 to ${SPI_MAX} (0 = no key yet), got ${describeJsonValue(spi)}` });
  }
  if (typeof bootID !== 'string' || !UUID.test(bootID)) {
    errors.push({ field: `${field}.bootID`, message: `must be a 36-character UUID (the node's /proc/sys/kernel/random/boot_id), got ${describeJsonValue(bootID)}` });
  }
  for (const e of [...checkAddresses(addresses, `${field}.addresses`), ...checkCidrs(podCIDRS, `${field}.podCIDRS`)]) errors.push(e);
  if (errors.length > 0) return fail(errors);
  return ok(spec as unknown as KmeshNodeInfoSpec);
}

function checkAddresses(v: unknown, field: string): FieldError[] {
  if (!Array.isArray(v) || v.length === 0) return [{ field, message: `must be a non-empty list of IP addresses (the node's InternalIPs), got ${describeJsonValue(v)}` }];
  if (v.length > MAX_NODE_ADDRESSES) return [{ field, message: `at most ${MAX_NODE_ADDRESSES} addresses (a node has a handful), got ${v.length}` }];
  const errors: FieldError[] = [];
  const seen = new Map<string, number>();
  v.forEach((item: unknown, i) => {
    const ip = typeof item === 'string' && item.length <= MAX_ADDRESS_CHARS ? parseIp(item) : undefined;
    if (!ip) return void errors.push({ field: `${field}[${i}]`, message: `must be an IPv4 or IPv6 address, got ${describeJsonValue(item)}` });
    const first = seen.get(ip.canonical);
    if (first !== undefined) errors.push({ field: `${field}[${i}]`, message: `duplicates ${field}[${first}] (${ip.canonical})` });
    else seen.set(ip.canonical, i);
  });
  return errors;
}

function checkCidrs(v: unknown, field: string): FieldError[] {
  if (!Array.isArray(v)) return [{ field, message: `must be a list of CIDRs like 10.244.1.0/24, got ${describeJsonValue(v)}` }];
  if (v.length > MAX_POD_CIDRS) return [{ field, message: `at most ${MAX_POD_CIDRS} pod CIDRs (Kubernetes gives a node one per address family), got ${v.length}` }];
  const errors: FieldError[] = [];
  const seen = new Map<string, number>();
  v.forEach((item: unknown, i) => {
    const cidr = typeof item === 'string' && item.length <= MAX_ADDRESS_CHARS ? parseCidr(item) : undefined;
    const at = `${field}[${i}]`;
    if (!cidr) return void errors.push({ field: at, message: `must be a CIDR like 10.244.1.0/24 or fd00:10:244:1::/64, got ${describeJsonValue(item)}` });
    if (cidr.hasHostBits) return void errors.push({ field: at, message: `has host bits set; did you mean ${cidr.network}?` });
    if (cidr.network !== item) return void errors.push({ field: at, message: `must be written canonically as ${cidr.network}` });
    const first = seen.get(cidr.network);
    if (first !== undefined) errors.push({ field: at, message: `duplicates ${field}[${first}] (${cidr.network})` });
    else seen.set(cidr.network, i);
  });
  return errors;
}

/** Validate a whole KmeshNodeInfo object: identity fields plus the spec. */
export function validateNodeInfo(obj: unknown): Result<KmeshNodeInfo> {
  if (!isRecord(obj)) return fail([{ field: 'object', message: `must be a ${KNI_KIND} object, got ${describeJsonValue(obj)}` }]);
  const errors: FieldError[] = [];
  if (obj.apiVersion !== KNI_API_VERSION) errors.push({ field: 'apiVersion', message: `must be "${KNI_API_VERSION}", got ${describeJsonValue(obj.apiVersion)}` });
  if (obj.kind !== KNI_KIND) errors.push({ field: 'kind', message: `must be "${KNI_KIND}", got ${describeJsonValue(obj.kind)}` });
  const meta = obj.metadata;
  if (!isRecord(meta) || typeof meta.name !== 'string' || meta.name === '') {
    errors.push({ field: 'metadata.name', message: 'required: the node name' });
  }
  if (isRecord(meta) && meta.namespace !== undefined && meta.namespace !== KMESH_NAMESPACE) {
    errors.push({ field: 'metadata.namespace', message: `must be "${KMESH_NAMESPACE}", got ${describeJsonValue(meta.namespace)}` });
  }
  const spec = validateNodeInfoSpec(obj.spec);
  if (!spec.ok) for (const e of spec.errors) errors.push(e);
  if (errors.length > 0) return fail(errors);
  return ok(obj as unknown as KmeshNodeInfo);
}
