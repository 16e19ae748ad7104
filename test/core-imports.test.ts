/**
 * The compiler core must run in a browser too (DESIGN.md): src/onnx, src/ir, src/io.ts,
 * src/runtime.ts, src/compare.ts, passes/ and targets/ import no Node built-ins and not
 * onnxruntime-node, and use no Node-only globals. Node adapters live in src/node and src/cli.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const CORE = ['src/onnx', 'src/ir', 'src/analysis', 'src/pass', 'src/web', 'src/io.ts', 'src/runtime.ts', 'src/compare.ts', 'src/compile.ts', 'src/target.ts', 'src/inputs.ts', 'passes', 'targets'];
const NODE_BUILTINS = ['fs', 'path', 'os', 'child_process', 'url', 'util', 'crypto', 'stream', 'module', 'worker_threads', 'buffer', 'process'];

function files(p: string): string[] {
  const full = path.join(ROOT, p);
  if (!fs.existsSync(full)) return [];
  if (fs.statSync(full).isFile()) return [full];
  return fs.readdirSync(full).flatMap((f) => files(path.join(p, f))).filter((f) => f.endsWith('.ts'));
}

test('the core imports no Node built-ins, no onnxruntime-node and no Node adapters', () => {
  const problems: string[] = [];
  const all = CORE.flatMap(files);
  expect(all.length).toBeGreaterThan(10);
  for (const file of all) {
    const src = fs.readFileSync(file, 'utf8');
    const rel = path.relative(ROOT, file);
    for (const m of src.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      const bare = spec.replace(/^node:/, '').split('/')[0]!;
      if (spec.startsWith('node:') || NODE_BUILTINS.includes(bare)) problems.push(`${rel} imports ${spec}`);
      if (spec.startsWith('onnxruntime-node')) problems.push(`${rel} imports ${spec}`);
      if (spec.startsWith('.')) {
        const target = path.relative(ROOT, path.resolve(path.dirname(file), spec));
        if (target.startsWith('src/node') || target.startsWith('src/cli')) problems.push(`${rel} imports the Node adapter ${spec}`);
      }
    }
    const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    for (const global of [/\bprocess\./, /(?<![A-Za-z])Buffer\./, /\brequire\(/, /\b__dirname\b/]) {
      if (global.test(code)) problems.push(`${rel} uses ${global.source}`);
    }
  }
  expect(problems).toEqual([]);
});
