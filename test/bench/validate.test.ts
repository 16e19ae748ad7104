/** Validation catches a broken model and bisects to the node that broke; it passes a faithful one. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bisect, defaultSweep, judge, TOLERANCES, validate } from '../../src/bench/validate.js';
import { outputMetrics } from '../../src/bench/metrics.js';
import { syntheticInputs } from '../../src/inputs.js';
import { cloneModel } from '../../src/ir/clone.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel, writeModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CNN = path.join(ROOT, 'fixtures/models/cnn-tiny-op13/model.onnx');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-validate-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** A copy of `model` whose weight `name` went through `change` (element-wise on float32 values). */
function withWeight(model: Model, name: string, change: (values: Float32Array) => void): Model {
  const m = cloneModel(model);
  const v = m.graph.local(name)!;
  const values = v.initializer!.toTypedArray() as Float32Array;
  change(values);
  v.initializer = Tensor.fromTypedArray(DataType.FLOAT, v.initializer!.dims, values);
  return m;
}

function nextUp(x: number): number {
  const f = new Float32Array([x]);
  const i = new Int32Array(f.buffer);
  i[0]! += x >= 0 ? 1 : -1;
  return f[0]!;
}

describe('validate', () => {
  const original = readModel(CNN).model;
  const weight = original.graph.initializers.find((v) => v.initializer!.dims.length === 4)!.name;

  test('one ulp in one weight passes fp32; 1% on the weight fails, and bisect names its Conv', async () => {
    const ulp = withWeight(original, weight, (w) => { w[0] = nextUp(w[0]!); });
    const ok = await validate(original, ulp, onnxruntimeNode, { tolerance: 'fp32' });
    expect(ok.ok).toBe(true);
    expect(ok.cases.length).toBe(2); // batch swept over two sizes
    expect(ok.worst!.maxAbsError).toBeLessThan(1e-5);

    const broken = withWeight(original, weight, (w) => { for (let i = 0; i < w.length; i++) w[i] = w[i]! * 1.01; });
    const bad = await validate(original, broken, onnxruntimeNode, { tolerance: 'fp32' });
    expect(bad.ok).toBe(false);
    expect(bad.worst!.problem).toMatch(/values beyond|cosine/);

    const feeds = syntheticInputs(original, { dims: defaultSweep(original)[0]! });
    const found = await bisect(original, broken, onnxruntimeNode, feeds, 'fp32');
    const consumer = original.graph.local(weight)!.uses[0]!.node;
    expect(found?.refNode).toBe(`${consumer}`);
  });

  test('the int8 profile accepts a 1% weight change that fp32 refuses', async () => {
    const broken = withWeight(original, weight, (w) => { for (let i = 0; i < w.length; i++) w[i] = w[i]! * 1.01; });
    const res = await validate(original, broken, onnxruntimeNode, { tolerance: TOLERANCES.int8! });
    expect(res.ok).toBe(true);
  });

  test('fp16 judges the max error against the output scale: a small error on a near-zero logit passes, 2% of the largest fails', () => {
    const ref = Tensor.float32([0.01, -3, 10, 2, 0.5], [1, 5]);
    const near = Tensor.float32([0.0155, -3.004, 10.008, 2.002, 0.5], [1, 5]);
    const m = outputMetrics('y', ref, near);
    expect(m.maxScaledError).toBeCloseTo(0.0008, 6);
    expect(judge(m, TOLERANCES.fp16!).ok).toBe(true);
    const far = Tensor.float32([0.01, -3, 10.2, 2, 0.5], [1, 5]);
    const v = judge(outputMetrics('y', ref, far), TOLERANCES.fp16!);
    expect(v.ok).toBe(false);
    expect(v.problem).toMatch(/2\.00% of the output's largest magnitude \(budget 1%\)/);
  });

  test('the worst output reported is a failing one, even when a passing one has a lower cosine', async () => {
    const broken = withWeight(original, weight, (w) => { w[0] = w[0]! + 1; });
    const res = await validate(original, broken, onnxruntimeNode, { tolerance: TOLERANCES.fp32! });
    expect(res.ok).toBe(false);
    expect(res.worst?.problem).toBeDefined();
  });

  test('metrics: cosine, SNR and top-k on known vectors', () => {
    const a = Tensor.float32([1, 2, 3, 4, 5, 5, 4, 3, 2, 1], [2, 5]);
    const b = Tensor.float32([1, 2, 3, 5, 4, 5, 4, 3, 2, 1], [2, 5]);
    const m = outputMetrics('y', a, b);
    expect(m.maxAbsError).toBe(1);
    expect(m.top1).toBe(0.5);
    expect(m.top5).toBe(1);
    expect(m.cosine).toBeCloseTo(109 / 110, 6);
    expect(m.snrDb).toBeCloseTo(10 * Math.log10(110 / 2), 6);
  });

  test('CLI: exit 1 and a bisect line for a broken model, exit 0 for the same model', () => {
    const broken = path.join(tmp, 'broken.onnx');
    writeModel(withWeight(original, weight, (w) => { for (let i = 0; i < w.length; i++) w[i] = w[i]! * 1.01; }), broken);
    const bad = spawnSync(process.execPath, [BIN, 'validate', CNN, broken, '--bisect', '--json', path.join(tmp, 'v.json')], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/FAIL \(fp32\)/);
    expect(bad.stdout).toMatch(/first divergence: '.+' \(reference node '.+' \(Conv\)/);
    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'v.json'), 'utf8'));
    expect(json.ok).toBe(false);
    expect(json.bisect.value).toBeTruthy();
    const good = spawnSync(process.execPath, [BIN, 'validate', CNN, CNN, '--inputs', path.dirname(CNN)], { encoding: 'utf8' });
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/test_data_set_1/);
  });

  test('compile refuses to write a model that fails validation (a pass that breaks numerics, from a plugin)', () => {
    const plugin = path.join(tmp, 'bad-pass.mjs');
    fs.writeFileSync(plugin, `
      export const breakRelu = {
        name: 'break-relu', description: 'turns Relu into Sigmoid (wrong on purpose)', level: 1, subgraphs: 'recurse',
        run(graph) { let n = 0; for (const node of graph.nodes) if (node.opType === 'Relu') { node.opType = 'Sigmoid'; n++; } return n; },
      };`);
    const out = path.join(tmp, 'compiled.onnx');
    const report = path.join(tmp, 'report.json');
    const r = spawnSync(process.execPath, [BIN, 'compile', CNN, '-o', out, '--plugin', plugin, '--report', report], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^retarget: .*model\.onnx: validating the compiled model: it differs from the original \(fp32\)/);
    expect(fs.existsSync(out)).toBe(false);
    expect(JSON.parse(fs.readFileSync(report, 'utf8')).validation.ok).toBe(false);
    const anyway = spawnSync(process.execPath, [BIN, 'compile', CNN, '-o', out, '--plugin', plugin, '--no-validate'], { encoding: 'utf8' });
    expect(anyway.status).toBe(0);
    expect(fs.existsSync(out)).toBe(true);
  });
});
