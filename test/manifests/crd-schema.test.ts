/**
 * The KmeshNodeInfo CRD's OpenAPI schema against the core's own table (test/core/nodeinfo-table.ts):
 * it must accept every spec the core accepts, and refuse every malformed one OpenAPI can
 * express, naming the same field. The few it cannot express are listed with the reason; for
 * them the test asserts the schema lets them through, so moving a rule in or out of the CRD
 * means updating this list.
 *
 * The schema is evaluated with ajv (JSON Schema draft 2020-12 is close to the OpenAPI v3
 * subset Kubernetes allows). Kubernetes-only keys are translated knowingly:
 *   x-kubernetes-list-type: set    -> uniqueItems (the API server refuses duplicate items)
 *   x-kubernetes-list-type: map    -> uniqueness by the map keys (checked below, not by ajv)
 *   objects with properties        -> additionalProperties: false (kubectl's default strict
 *                                     field validation refuses unknown fields; with Warn they
 *                                     are pruned)
 *   format cidr                    -> Go's net.ParseCIDR rules (the API server's check):
 *                                     address, "/", decimal prefix within the family
 *   format int64                   -> any integer
 * x-kubernetes-validations (CEL) are refused: the CRD has none (see its comment), and a rule
 * added later needs an evaluator here before it ships.
 */
import test from 'ava';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MANIFESTS_DIR } from '../../webhook/configurations.js';
import { accepted, bad, good } from '../core/nodeinfo-table.js';

/** Core rules OpenAPI cannot express, and why; the webhook enforces them (docs/webhook.md). */
const NOT_EXPRESSIBLE: Record<string, string> = {
  'duplicate IPv6 in two spellings': 'equal IPv6 values in different text: needs IP parsing (Kubernetes CEL ip() library)',
  'CIDR with host bits': 'host bits: needs CIDR arithmetic (Kubernetes CEL cidr() library)',
  'IPv6 CIDR with host bits': 'host bits: needs CIDR arithmetic (Kubernetes CEL cidr() library)',
  'non-canonical IPv6 CIDR': 'canonical IPv6 text (zero runs): beyond a practical RE2 pattern',
};

type Schema = Record<string, unknown>;

const crd = parse(await readFile(join(MANIFESTS_DIR, 'base', 'crd-kmeshnodeinfos.yaml'), 'utf8'), { version: '1.1' }) as {
  spec: { versions: { name: string; schema: { openAPIV3Schema: Schema }; additionalPrinterColumns: { name: string; jsonPath: string }[] }[] };
};
const version = crd.spec.versions[0];
if (!version) throw new Error('CRD has no version');
const openApi = version.schema.openAPIV3Schema;

function translate(node: Schema, path: string): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'x-kubernetes-validations') throw new Error(`${path}: CEL rules need an evaluator in this test before they ship`);
    if (key === 'x-kubernetes-list-type') {
      if (value === 'set') out.uniqueItems = true;
      continue;
    }
    if (key === 'x-kubernetes-list-map-keys' || key === 'x-kubernetes-preserve-unknown-fields') continue;
    if (key.startsWith('x-kubernetes-')) throw new Error(`${path}: ${key} has no translation here`);
    if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value as Record<string, Schema>).map(([k, v]) => [k, translate(v, `${path}.${k}`)]));
    else if (key === 'items') out.items = translate(value as Schema, `${path}[]`);
    else if (key === 'anyOf') out.anyOf = (value as Schema[]).map((v, i) => translate(v, `${path}.anyOf[${String(i)}]`));
    else out[key] = value;
  }
  if (node.properties && node['x-kubernetes-preserve-unknown-fields'] !== true) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ allErrors: true, strict: true });
addFormatsPlugin.default(ajv, ['ipv4', 'ipv6', 'date-time']);
ajv.addFormat('int64', { type: 'number', validate: Number.isSafeInteger });
ajv.addFormat('cidr', (text: string) => {
  const [address = '', prefix, ...rest] = text.split('/');
  const family = isIP(address);
  return rest.length === 0 && prefix !== undefined && /^[0-9]+$/.test(prefix) && family !== 0 && Number(prefix) <= (family === 4 ? 32 : 128);
});
const check = ajv.compile(translate(openApi, 'openAPIV3Schema'));

const object = (spec: unknown, status?: unknown) => ({
  apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'node-a', namespace: 'kmesh-system' }, spec, ...(status === undefined ? {} : { status }),
});
const validate = (obj: unknown): ErrorObject[] => (check(obj) ? [] : [...(check.errors ?? [])]);
/** ajv's error location as the core names fields: spec.addresses[1]. */
const fieldOf = (e: ErrorObject): string => {
  const path = e.instancePath.slice(1).split('/').reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
  return e.keyword === 'additionalProperties' ? `${path}.${(e.params as { additionalProperty: string }).additionalProperty}` : path;
};

for (const [name, spec] of accepted) {
  test(`CRD accepts what the core accepts: ${name}`, (t) => {
    t.deepEqual(validate(object(spec)).map(fieldOf), []);
  });
}

for (const [name, patch, field] of bad) {
  const why = NOT_EXPRESSIBLE[name];
  if (why !== undefined) {
    test(`CRD lets through what only the webhook can check: ${name} (${why})`, (t) => {
      t.deepEqual(validate(object({ ...good, ...patch })), []);
    });
    continue;
  }
  test(`CRD rejects what the core rejects: ${name}`, (t) => {
    const errors = validate(object({ ...good, ...patch }));
    t.true(errors.length > 0, 'accepted');
    // The same field as the core, or the list holding it (uniqueness is a property of the list).
    t.true(errors.some((e) => field === fieldOf(e) || field.startsWith(`${fieldOf(e)}[`)), `${field} not in ${errors.map(fieldOf).join(', ')}`);
  });
}

test('every entry the CRD cannot express names a case of the core table', (t) => {
  const names = new Set(bad.map(([name]) => name));
  t.deepEqual(Object.keys(NOT_EXPRESSIBLE).filter((n) => !names.has(n)), []);
});

test('a missing spec field is refused; Kmesh requires all four', (t) => {
  for (const field of Object.keys(good)) {
    const spec = Object.fromEntries(Object.entries(good).filter(([k]) => k !== field));
    t.true(validate(object(spec)).some((e) => e.keyword === 'required' && (e.params as { missingProperty: string }).missingProperty === field), field);
  }
  t.true(validate({ ...object(good), spec: undefined }).some((e) => e.keyword === 'required'));
});

const condition = (over: Record<string, unknown> = {}) => ({ type: 'Ready', status: 'True', reason: 'Programmed', message: 'ok', lastTransitionTime: '2026-12-01T10:00:00Z', observedGeneration: 3, ...over });

test('status: the Ready and KeyInSync conditions of the contract are accepted', (t) => {
  const status = { conditions: [condition(), condition({ type: 'KeyInSync', status: 'False', reason: 'PeersBehind', message: 'node-b still sends SPI 3' })] };
  t.deepEqual(validate(object(good, status)), []);
  t.deepEqual(validate(object(good, { conditions: [condition({ status: 'Unknown', reason: 'Starting', message: '' })] })), []);
});

test('status: malformed conditions are refused, naming the field', (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ status: 'Yes' }, 'status.conditions[0].status'],
    [{ reason: 'not camel case' }, 'status.conditions[0].reason'],
    [{ reason: '' }, 'status.conditions[0].reason'],
    [{ message: 'x'.repeat(1025) }, 'status.conditions[0].message'],
    [{ lastTransitionTime: 'yesterday' }, 'status.conditions[0].lastTransitionTime'],
    [{ observedGeneration: -1 }, 'status.conditions[0].observedGeneration'],
    [{ type: 'not a type!' }, 'status.conditions[0].type'],
  ];
  for (const [over, field] of cases) {
    t.true(validate(object(good, { conditions: [condition(over)] })).some((e) => fieldOf(e) === field), JSON.stringify(over));
  }
  t.true(validate(object(good, { conditions: Array.from({ length: 9 }, (_, i) => condition({ type: `T${String(i)}` })) })).some((e) => e.keyword === 'maxItems'));
  const noReason = Object.fromEntries(Object.entries(condition()).filter(([k]) => k !== 'reason'));
  t.true(validate(object(good, { conditions: [noReason] })).some((e) => e.keyword === 'required'));
});

test('status: conditions are a map keyed by type (the API server refuses two of one type)', (t) => {
  const conditions = (openApi.properties as Record<string, Schema>).status?.properties as Record<string, Schema>;
  t.like(conditions.conditions, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
});

test('the schema is structural: every node has a type, and anyOf branches only constrain values', (t) => {
  const problems: string[] = [];
  const visit = (node: Schema, path: string, inAnyOf: boolean): void => {
    if (inAnyOf) {
      for (const key of ['type', 'properties', 'items', 'description', 'default', 'additionalProperties', 'nullable']) if (key in node) problems.push(`${path}: ${key} inside anyOf`);
    } else if (typeof node.type !== 'string') problems.push(`${path}: no type`);
    if (node.type === 'array' && !node.items) problems.push(`${path}: array without items`);
    if (node.additionalProperties === false) problems.push(`${path}: additionalProperties: false is not allowed`);
    if (node.uniqueItems === true) problems.push(`${path}: uniqueItems is not allowed (use x-kubernetes-list-type)`);
    for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, Schema>)) visit(v, `${path}.${k}`, false);
    if (node.items) visit(node.items as Schema, `${path}[]`, false);
    for (const [i, v] of ((node.anyOf ?? []) as Schema[]).entries()) visit(v, `${path}.anyOf[${String(i)}]`, true);
  };
  visit(openApi, 'openAPIV3Schema', false);
  t.deepEqual(problems, []);
});

test('printer columns: SPI, Addresses, Ready, KeyInSync, Age; every path exists in the schema', (t) => {
  const columns = version.additionalPrinterColumns;
  t.deepEqual(columns.slice(0, 5).map((c) => c.name), ['SPI', 'Addresses', 'Ready', 'KeyInSync', 'Age']);
  for (const c of columns) {
    const [root = '', field = ''] = c.jsonPath.slice(1).split('.');
    if (root === 'metadata') continue;
    const props = ((openApi.properties as Record<string, Schema>)[root]?.properties ?? {}) as Record<string, Schema>;
    t.truthy(props[field.replace(/\[.*$/, '')], c.jsonPath);
  }
});
