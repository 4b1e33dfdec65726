import test from 'ava';
import { validateNodeInfo, validateNodeInfoSpec } from '../../core/nodeinfo.js';
import { formatErrors } from '../../core/result.js';
import { accepted, bad, good } from './nodeinfo-table.js';

test('a good spec and object validate', (t) => {
  const r = validateNodeInfoSpec(good);
  t.true(r.ok, r.ok ? '' : formatErrors(r.errors));
  t.true(validateNodeInfo({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'n1', namespace: 'kmesh-system' }, spec: good }).ok);
});

for (const [name, spec] of accepted) {
  test(`spec accepts: ${name}`, (t) => {
    const r = validateNodeInfoSpec(spec);
    t.true(r.ok, r.ok ? '' : formatErrors(r.errors));
  });
}

for (const [name, patch, field, message] of bad) {
  test(`spec rejects: ${name}`, (t) => {
    const r = validateNodeInfoSpec({ ...good, ...patch });
    if (r.ok) return t.fail('accepted');
    const hit = r.errors.find((e) => e.field === field);
    t.truthy(hit, formatErrors(r.errors));
    t.regex(hit?.message ?? '', message);
  });
}

test('object: wrong apiVersion, kind, namespace and missing name are reported together', (t) => {
  const r = validateNodeInfo({ apiVersion: 'kmesh.net/v1', kind: 'Node', metadata: { namespace: 'default' }, spec: good });
  if (r.ok) return t.fail();
  t.deepEqual(r.errors.map((e) => e.field), ['apiVersion', 'kind', 'metadata.name', 'metadata.namespace']);
  const r2 = validateNodeInfo({ apiVersion: 'kmesh.net/v1alpha1', kind: 'KmeshNodeInfo', metadata: { name: 'n', namespace: 'default' }, spec: good });
  t.is(r2.ok ? '' : r2.errors[0]?.field, 'metadata.namespace');
});
