/**
 * docs/webhook.md states each webhook's path, failurePolicy, timeout and reinvocationPolicy in
 * a table; it must say what manifests/base/webhook-configurations.yaml (what operators apply)
 * says, or operators would read one thing and run another.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWebhookConfigurations } from '../../webhook/configurations.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('the per-webhook table in docs/webhook.md matches the manifest', async (t) => {
  const doc = await readFile(join(ROOT, 'docs', 'webhook.md'), 'utf8');
  const documented = doc
    .split('\n')
    .filter((line) => /^\| (Mutating|Validating) \| `/.test(line))
    .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim().replaceAll('`', '')).join(' | '));
  const [mutating, validating] = await loadWebhookConfigurations();
  const fromManifest = [
    ...(mutating.webhooks ?? []).map((w) => ['Mutating', w.name, w.clientConfig.service?.path, w.failurePolicy, w.timeoutSeconds, w.reinvocationPolicy ?? '—'].join(' | ')),
    ...(validating.webhooks ?? []).map((w) => ['Validating', w.name, w.clientConfig.service?.path, w.failurePolicy, w.timeoutSeconds, '—'].join(' | ')),
  ];
  t.deepEqual(documented, fromManifest);
});
