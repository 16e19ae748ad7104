import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { lowerContribOps } from '../../passes/lower/lower-contrib-ops.js';
import { compile } from '../../src/compile.js';
import { cloneModel } from '../../src/ir/clone.js';
import { readModel } from '../../src/node/files.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { compareTensors } from '../../src/compare.js';
import { cuda } from '../../targets/cuda.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { checkPlacement } from '../../targets/capabilities/check.js';
import { ops, runModel } from './harness.js';

const CNN = path.resolve(import.meta.dirname, '../../fixtures/models/cnn-tiny-op13');

describe('lower-contrib-ops: NhwcConv', () => {
  test('a cuda model (NhwcConv) compiled for x86-avx2: standard Conv again, the Transposes between convolutions cancelled, same outputs', async () => {
    const original = readModel(path.join(CNN, 'model.onnx')).model;
    const gpu = cloneModel(original);
    await compile(gpu, cuda);
    expect(ops(gpu).NhwcConv).toBeGreaterThan(1);
    const transposesOnGpu = ops(gpu).Transpose ?? 0;
    const cpu = cloneModel(gpu);
    const report = await compile(cpu, x86Avx2);
    expect(report.passes.find((p) => p.name === 'lower-contrib-ops')!.changes).toBeGreaterThan(0);
    expect(ops(cpu).NhwcConv).toBeUndefined();
    expect((ops(cpu).Conv ?? 0) + (ops(cpu).FusedConv ?? 0)).toBe(ops(gpu).NhwcConv);
    // one Transpose pair per model boundary at most, not one per convolution
    expect(ops(cpu).Transpose ?? 0).toBeLessThanOrEqual(transposesOnGpu);
    expect(checkPlacement(cpu, x86Avx2.capabilities!).violations).toEqual([]);
    for (const dir of testDataSets(CNN)) {
      const set = readTestDataSet(dir);
      const feeds = Object.fromEntries(set.inputs.map((t, i) => [t.name || original.graph.inputs[i]!.name, t.tensor]));
      const want = await runModel(original, feeds);
      const got = await runModel(cpu, feeds);
      for (const [k, t] of Object.entries(want)) {
        const c = compareTensors(got[k]!, t, { atol: 1e-4, rtol: 1e-3 });
        expect(c.ok, `${k}: ${c.problem}`).toBe(true);
      }
    }
  });

  test('a target that runs NhwcConv keeps it (the pass does nothing for cuda)', async () => {
    const gpu = readModel(path.join(CNN, 'model.onnx')).model;
    await compile(gpu, cuda);
    const before = ops(gpu);
    const { PassManager } = await import('../../src/pass/manager.js');
    const run = await new PassManager([lowerContribOps], { target: cuda }).run(gpu);
    expect(run.passes[0]!.changes).toBe(0);
    expect(ops(gpu)).toEqual(before);
  });
});
