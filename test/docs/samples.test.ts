/**
 * Every TypeScript sample in README.md and docs/*.md must compile against the package's exports
 * and, unless marked `// needs: ...`, run: a sample that drifts from the API fails here.
 * (test/webhook/docs.test.ts checks the docs' webhook configuration against the code.)
 */
import test from 'ava';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Sample, compileSamples, extractSamples, runSample } from './code-samples.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');

async function docSamples(): Promise<Sample[]> {
  const docs = ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  const samples: Sample[] = [];
  for (const doc of docs) samples.push(...extractSamples(doc, await readFile(join(ROOT, doc), 'utf8')));
  return samples;
}

test('every TypeScript sample in README.md and docs/ type-checks against the package and the runnable ones run', async (t) => {
  const samples = await docSamples();
  // The README's API sample, the node plugin loop and the dry run at least.
  t.true(samples.length >= 3, `found ${samples.length} samples`);
  t.true(samples.some((s) => s.code.includes("from 'kmesh-ipsec/nodeplugin'")), 'a sample imports the kernel layer');
  const checked = await compileSamples(ROOT, join(HERE, 'samples-out'), samples);
  const runnable = checked.filter((s) => s.needs === undefined);
  t.true(runnable.length >= 2, 'samples without `// needs:` are run');
  for (const s of runnable) {
    const r = await runSample(s.js, ROOT);
    t.is(r.code, 0, `${s.doc}:${s.line} exited with ${r.code}:\n${r.stderr}`);
  }
  t.log(`${samples.length} samples type-checked, ${runnable.length} run; type-check only: ${checked.filter((s) => s.needs !== undefined).map((s) => `${s.doc}:${s.line} (needs ${s.needs ?? ''})`).join(', ')}`);
});

test('a sample that does not compile fails, located in its markdown file', async (t) => {
  const bad = extractSamples('docs/broken.md', "text\n\n```ts\nimport { plan } from 'kmesh-ipsec';\nplan(42);\n```\n");
  const err = await t.throwsAsync(compileSamples(ROOT, join(HERE, 'samples-broken'), bad));
  t.regex(err.message, /^docs\/broken\.md:5:6: Argument of type 'number'/);
});

test('a sample importing something the package does not export fails', async (t) => {
  const bad = extractSamples('README.md', "```ts\nimport { Reconciler } from 'kmesh-ipsec';\nimport { x } from 'kmesh-ipsec/nodeplugin/reconciler/reconciler.js';\n```\n");
  const err = await t.throwsAsync(compileSamples(ROOT, join(HERE, 'samples-unexported'), bad));
  t.regex(err.message, /README\.md:2:\d+: .*has no exported member .*Reconciler/);
  t.regex(err.message, /README\.md:3:\d+: Cannot find module 'kmesh-ipsec\/nodeplugin\/reconciler\/reconciler\.js'/);
});
