/**
 * docs/webhook.md shows the webhook configurations; they must be exactly what
 * webhookConfigurations() renders, or operators would apply something we never tested.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { webhookConfigurations } from '../../webhook/configurations.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('the YAML in docs/webhook.md is what webhookConfigurations() renders', async (t) => {
  const doc = await readFile(join(ROOT, 'docs', 'webhook.md'), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  const rendered = webhookConfigurations({ caBundle: '<base64 PEM of ca.crt>' }).map((c) => stringify(c)).join('---\n');
  t.is(block, rendered);
});
