/** The example plugin, loaded through the CLI as a user would, and checked numerically. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { attr } from '../src/ir/attribute.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { writeModel, readModel } from '../src/node/files.js';
import { loadPlugin } from '../src/node/plugins.js';
import { checkPass, ops } from './passes/harness.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const PLUGIN = path.join(ROOT, 'examples/plugins/fuse-hardswish.mjs');
let tmp: string;

beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-plugin-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

function hardswishModel(opset: number) {
  const b = new ModelBuilder({ opset });
  const x = b.input('x', 'float32', ['batch', 8]);
  const conv = b.node('Relu', [x]);
  const hs = b.node('HardSigmoid', [conv], { alpha: attr.float('alpha', 1 / 6), beta: attr.float('beta', 0.5) });
  b.output(b.node('Mul', [hs, conv]), 'y');
  return b.build();
}

test('the plugin loads and its pass fuses x*HardSigmoid(x) into HardSwish, numerically equal', async () => {
  const plugin = await loadPlugin(PLUGIN);
  expect(plugin.passes.map((p) => p.name)).toEqual(['fuse-hardswish']);
  const { after, changes } = await checkPass(hardswishModel(14), plugin.passes[0]!, { inputDims: { batch: 3 } });
  expect(changes).toBe(1);
  expect(ops(after)).toEqual({ Relu: 1, HardSwish: 1 });
});

test('through the CLI: --plugin runs the pass after the pipeline; --passes runs exactly it; --explain says why not', () => {
  const model = path.join(tmp, 'hs.onnx');
  writeModel(hardswishModel(14), model);
  const out = path.join(tmp, 'out.onnx');
  const report = path.join(tmp, 'report.json');
  const r = spawnSync(process.execPath, [BIN, 'compile', model, '-o', out, '--plugin', PLUGIN, '--report', report], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(readModel(out).model.graph.nodes.map((n) => n.opType)).toEqual(['Relu', 'HardSwish']);
  const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
  expect(rep.passes.find((p: { name: string }) => p.name === 'fuse-hardswish').changes).toBe(1);

  const only = spawnSync(process.execPath, [BIN, 'compile', model, '-o', out, '--plugin', PLUGIN, '--passes', 'fuse-hardswish', '--report', report], { encoding: 'utf8' });
  expect(only.status, only.stderr).toBe(0);
  expect(JSON.parse(fs.readFileSync(report, 'utf8')).passes.map((p: { name: string }) => p.name)).toEqual(['fuse-hardswish']);

  const old = path.join(tmp, 'hs13.onnx');
  writeModel(hardswishModel(13), old);
  const why = spawnSync(process.execPath, [BIN, 'compile', old, '-o', out, '--plugin', PLUGIN, '--passes', 'fuse-hardswish', '--explain'], { encoding: 'utf8' });
  expect(why.status).toBe(0);
  expect(why.stderr).toMatch(/\[fuse-hardswish\] .*HardSwish needs opset 14, the model imports 13/);
});

test('a missing plugin or an unknown pass is a clear error', () => {
  const model = path.join(tmp, 'hs.onnx');
  writeModel(hardswishModel(14), model);
  const missing = spawnSync(process.execPath, [BIN, 'compile', model, '-o', path.join(tmp, 'x.onnx'), '--plugin', path.join(tmp, 'nope.mjs')], { encoding: 'utf8' });
  expect(missing.status).toBe(1);
  expect(missing.stderr.trim()).toMatch(/nope\.mjs: no such plugin file$/);
  const unknown = spawnSync(process.execPath, [BIN, 'compile', model, '-o', path.join(tmp, 'x.onnx'), '--passes', 'no-such-pass'], { encoding: 'utf8' });
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toMatch(/unknown pass 'no-such-pass'/);
  expect(fs.existsSync(path.join(tmp, 'x.onnx'))).toBe(false);
});

test('the README\'s plugin example (under 30 lines, against the public API) works as written', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const code = /```js\n(\/\/ my-pass\.mjs\n[\s\S]*?)```/.exec(readme)?.[1];
  expect(code, 'README has the my-pass.mjs example').toBeDefined();
  expect(code!.trim().split('\n').length).toBeLessThan(30);
  // inside the package, so that `import ... from 'retarget'` resolves to it (package self-reference)
  const dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'readme-plugin-'));
  try {
    const plugin = path.join(dir, 'my-pass.mjs');
    fs.writeFileSync(plugin, code!);
    // the example's pattern reads Mul(x, HardSigmoid(x)) in that order (the complete example takes both)
    const b = new ModelBuilder({ opset: 14 });
    const x = b.node('Relu', [b.input('x', 'float32', ['batch', 8])]);
    b.output(b.node('Mul', [x, b.node('HardSigmoid', [x], { alpha: attr.float('alpha', 1 / 6), beta: attr.float('beta', 0.5) })]), 'y');
    const model = path.join(tmp, 'readme-hs.onnx');
    writeModel(b.build(), model);
    const out = path.join(tmp, 'readme-hs-out.onnx');
    const r = spawnSync(process.execPath, [BIN, 'compile', model, '-o', out, '--plugin', plugin], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(ops(readModel(out).model).HardSwish).toBe(1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
