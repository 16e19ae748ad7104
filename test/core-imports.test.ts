/**
 * Layering, checked on the import statements:
 *
 * 1. The compiler core must run in a browser too (DESIGN.md): src/onnx, src/ir, src/io.ts,
 *    src/runtime.ts, src/compare.ts, src/compile.ts, src/calibrate.ts, passes/ and targets/ import
 *    no Node built-ins and not onnxruntime-node, and use no Node-only globals. Node adapters live in
 *    src/node and src/cli.
 * 2. Passes and targets run no models: passes/ and targets/ import no io, inputs, bench, runtime
 *    adapter or Node code (src/io.ts, src/inputs.ts, src/bench, src/node, src/cli, src/web,
 *    src/ort-session.ts, src/calibrate.ts) and no onnxruntime package. What a pass needs from a run
 *    comes in as data (quantize-static's statistics from compile's calibration stage) or through
 *    the Runtime interface in PassOptions. src/layout.ts is allowed: pure metadata and tensor
 *    helpers (apply-input-layout records the layout with them), it runs nothing.
 * 3. The IR, the analyses, the pass framework and the codec run nothing themselves: src/ir,
 *    src/analysis, src/pass, src/onnx import no bench, runtime adapter or Node code, no Node
 *    built-ins and no onnxruntime package. The Session / Runtime interfaces in src/runtime.ts stay
 *    allowed: they are how the core asks for a run without knowing the runtime.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const CORE = ['src/onnx', 'src/ir', 'src/analysis', 'src/pass', 'src/web', 'src/io.ts', 'src/runtime.ts', 'src/compare.ts', 'src/compile.ts', 'src/calibrate.ts', 'src/target.ts', 'src/inputs.ts', 'passes', 'targets'];
const NODE_BUILTINS = ['fs', 'path', 'os', 'child_process', 'url', 'util', 'crypto', 'stream', 'module', 'worker_threads', 'buffer', 'process'];

/** Code that runs models, reads or writes files, or drives a runtime (files, or folders ending in '/'). */
const RUNTIME_CODE = ['src/bench/', 'src/node/', 'src/cli/', 'src/web/', 'src/ort-session.ts', 'src/calibrate.ts'];
const IO_CODE = ['src/io.ts', 'src/inputs.ts'];

/**
 * Imports that break rule 2 or 3 and are known, each with why it stays for now ('FILE -> IMPORT').
 * Empty: keep it so; a new entry needs its reason and an issue.
 */
const ALLOWED: Record<string, string> = {};

function files(p: string): string[] {
  const full = path.join(ROOT, p);
  if (!fs.existsSync(full)) return [];
  if (fs.statSync(full).isFile()) return [full];
  return fs.readdirSync(full).flatMap((f) => files(path.join(p, f))).filter((f) => f.endsWith('.ts'));
}

interface Import {
  /** the importing file, relative to the root */
  file: string;
  /** as written */
  spec: string;
  /** a relative import resolved to a source path relative to the root (`.js` read as `.ts`) */
  target?: string;
  /** a package or Node built-in: its name without `node:` */
  bare?: string;
  builtin: boolean;
}

const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;

function importsOf(file: string, src = fs.readFileSync(file, 'utf8')): Import[] {
  const rel = path.relative(ROOT, file);
  const out: Import[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (spec.startsWith('.')) {
      const target = path.relative(ROOT, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts');
      out.push({ file: rel, spec, target, builtin: false });
    } else {
      const bare = spec.replace(/^node:/, '');
      out.push({ file: rel, spec, bare, builtin: spec.startsWith('node:') || NODE_BUILTINS.includes(bare.split('/')[0]!) });
    }
  }
  return out;
}

const under = (target: string | undefined, places: readonly string[]): boolean =>
  !!target && places.some((p) => (p.endsWith('/') ? target.startsWith(p) : target === p));

/** The imports of the files under `dirs` that `bad` names (a reason), less the allowed ones. */
function violations(dirs: readonly string[], bad: (i: Import) => string | undefined): string[] {
  const problems: string[] = [];
  for (const file of dirs.flatMap(files)) {
    for (const i of importsOf(file)) {
      const why = bad(i);
      if (why && !(`${i.file} -> ${i.spec}` in ALLOWED)) problems.push(`${i.file} imports ${i.spec}: ${why}`);
    }
  }
  return problems;
}

/** Rule 2: passes and targets run no models. */
const runsModels = (i: Import): string | undefined => {
  if (i.bare?.startsWith('onnxruntime')) return 'a runtime package';
  if (under(i.target, RUNTIME_CODE)) return 'runtime, bench or Node code';
  if (under(i.target, IO_CODE)) return 'io / input code';
  return undefined;
};

/** Rule 3: the IR, analyses, pass framework and codec run nothing. */
const notCore = (i: Import): string | undefined => {
  if (i.builtin) return 'a Node built-in';
  if (i.bare?.startsWith('onnxruntime')) return 'a runtime package';
  if (under(i.target, RUNTIME_CODE)) return 'runtime, bench or Node code';
  return undefined;
};

test('the core imports no Node built-ins, no onnxruntime-node and no Node adapters', () => {
  const problems: string[] = [];
  const all = CORE.flatMap(files);
  expect(all.length).toBeGreaterThan(10);
  for (const file of all) {
    const src = fs.readFileSync(file, 'utf8');
    const rel = path.relative(ROOT, file);
    for (const i of importsOf(file, src)) {
      if (i.builtin) problems.push(`${rel} imports ${i.spec}`);
      if (i.spec.startsWith('onnxruntime-node')) problems.push(`${rel} imports ${i.spec}`);
      if (under(i.target, ['src/node/', 'src/cli/'])) problems.push(`${rel} imports the Node adapter ${i.spec}`);
    }
    const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    for (const global of [/\bprocess\./, /(?<![A-Za-z])Buffer\./, /\brequire\(/, /\b__dirname\b/]) {
      if (global.test(code)) problems.push(`${rel} uses ${global.source}`);
    }
  }
  expect(problems).toEqual([]);
});

test('passes and targets run no models: no io, inputs, bench, runtime or Node code, no onnxruntime', () => {
  expect(['passes', 'targets'].flatMap(files).length).toBeGreaterThan(40);
  expect(violations(['passes', 'targets'], runsModels)).toEqual([]);
});

test('src/ir, src/analysis, src/pass and src/onnx import no bench, runtime adapter, Node built-ins or onnxruntime', () => {
  expect(violations(['src/ir', 'src/analysis', 'src/pass', 'src/onnx'], notCore)).toEqual([]);
});

test('the rules catch what they are for', () => {
  const fake = (file: string, line: string): Import[] => importsOf(path.join(ROOT, file), line);
  const [io] = fake('passes/quantize/x.ts', "import { serializeModel } from '../../src/io.js';");
  expect(runsModels(io!)).toMatch(/io/);
  const [bench] = fake('targets/lib/x.ts', "export { outputMetrics } from '../../src/bench/metrics.js';");
  expect(runsModels(bench!)).toMatch(/bench/);
  const [ort] = fake('passes/x.ts', "const ort = await import('onnxruntime-web');");
  expect(runsModels(ort!)).toMatch(/runtime package/);
  const [layout] = fake('passes/layout/x.ts', "import { INPUT_LAYOUT_KEY } from '../../src/layout.js';");
  expect(runsModels(layout!)).toBeUndefined();
  const [fsImport] = fake('src/ir/x.ts', "import fs from 'node:fs';");
  expect(notCore(fsImport!)).toMatch(/built-in/);
  const [runtime] = fake('src/pass/x.ts', "import type { Runtime } from '../runtime.js';");
  expect(notCore(runtime!)).toBeUndefined();
  const [node] = fake('src/analysis/x.ts', "import './../node/ort.js';");
  expect(notCore(node!)).toMatch(/Node code/);
});
