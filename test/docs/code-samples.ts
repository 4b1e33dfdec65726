/**
 * The TypeScript samples of the markdown docs, checked the way a user would meet them: each
 * ```ts block becomes a module under dist/ (inside this package, so `import ... from
 * 'kmesh-ipsec'` resolves through the package's own `exports`, as it would from an installed
 * copy), is type-checked with the project's strict options and, unless its first line says
 * `// needs: <what>` (root, a kernel feature, a cluster), run with node.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import ts from 'typescript';
import { runCommand, type CommandResult } from '../../nodeplugin/command.js';

export interface Sample {
  /** Markdown file, relative to the repository root. */
  readonly doc: string;
  /** 1-based line of the sample's first code line. */
  readonly line: number;
  readonly code: string;
  /** Set when the sample declares it needs something a test run lacks: type-check only. */
  readonly needs?: string;
}

const FENCE = /^```ts\n([\s\S]*?)^```$/gm;
const NEEDS = /^\/\/ needs: (.+)$/;

export function extractSamples(doc: string, markdown: string): Sample[] {
  return [...markdown.matchAll(FENCE)].map((m) => {
    const code = m[1] ?? '';
    const line = markdown.slice(0, m.index).split('\n').length + 1;
    const needs = NEEDS.exec(code.split('\n', 1)[0] ?? '')?.[1];
    return { doc, line, code, ...(needs === undefined ? {} : { needs }) };
  });
}

export interface CheckedSample extends Sample {
  /** The compiled module to run. */
  readonly js: string;
}

/**
 * Writes the samples as modules into `dir` (emptied first) and compiles them. Throws with every
 * diagnostic, located in the markdown (doc:line:column), if any sample does not type-check.
 */
export async function compileSamples(root: string, dir: string, samples: readonly Sample[]): Promise<CheckedSample[]> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const files = new Map<string, Sample>();
  for (const s of samples) {
    const file = join(dir, `${basename(s.doc, '.md')}-${s.line}.ts`);
    // `export {}` keeps a sample without imports a module (no shared globals between samples).
    await writeFile(file, `${s.code}export {};\n`);
    files.set(file, s);
  }
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {
    rootDir: dir,
    outDir: dir,
    declaration: false,
    sourceMap: false,
    // A sample may show a value without using it.
    noUnusedLocals: false,
  }, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); } });
  if (!config) throw new Error('tsconfig.json could not be read');
  const program = ts.createProgram([...files.keys()], config.options);
  const emitted = program.emit();
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics];
  if (diagnostics.length > 0) throw new Error(diagnostics.map((d) => locate(d, files)).join('\n'));
  return [...files].map(([file, s]) => ({ ...s, js: file.replace(/\.ts$/, '.js') }));
}

function locate(d: ts.Diagnostic, files: ReadonlyMap<string, Sample>): string {
  const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  const sample = d.file === undefined ? undefined : files.get(d.file.fileName);
  if (d.file === undefined || d.start === undefined || sample === undefined) return text;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${sample.doc}:${sample.line + line}:${character + 1}: ${text}`;
}

/** Runs a compiled sample with node from `cwd`, bounded in time. */
export function runSample(js: string, cwd: string): Promise<CommandResult> {
  return runCommand([process.execPath, js], { cwd, timeoutMs: 60_000, allowFailure: true });
}
