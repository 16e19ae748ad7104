import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { appliedInputLayouts, inputLayoutPass } from '../../passes/layout/apply-input-layout.js';
import { propagateTransposes } from '../../passes/layout/propagate-transposes.js';
import { compareTensors } from '../../src/compare.js';
import { syntheticInputs } from '../../src/inputs.js';
import { attrInts } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor, transposeTensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { readModel } from '../../src/node/files.js';
import { PassManager, type PipelineStep } from '../../src/pass/manager.js';
import { ops, runModel } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CNN = path.join(here, '../../fixtures/models/cnn-tiny-op13/model.onnx');

/** Apply the steps to a copy; check the new model on the NHWC-transposed NCHW feeds against the original. */
async function checkLayout(model: Model, steps: PipelineStep[], dims: Record<string, number> = {}, nhwc?: string[]) {
  const after = cloneModel(model);
  await new PassManager(steps, { verifyEach: true }).run(after);
  expect(verifyModel(after)).toEqual([]);
  const feeds = syntheticInputs(model, { seed: 3, dims });
  const nhwcFeeds: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) nhwcFeeds[k] = !nhwc || nhwc.includes(k) ? transposeTensor(t, [0, 2, 3, 1])! : t;
  const want = await runModel(model, feeds);
  const got = await runModel(after, nhwcFeeds);
  for (const [name, t] of Object.entries(want)) {
    const c = compareTensors(got[name]!, t, { rtol: 1e-4, atol: 1e-5 });
    expect(c.ok, `output '${name}': ${c.problem}`).toBe(true);
  }
  return after;
}

describe('apply-input-layout', () => {
  test('cnn-tiny-op13: the input becomes [batch,32,32,3]; outputs equal the original on transposed feeds', async () => {
    const model = readModel(CNN).model;
    const after = await checkLayout(model, [inputLayoutPass({ input: 'NHWC' })], { batch: 2 });
    const input = after.graph.inputs.find((v) => v.name === 'input')!;
    expect(input.type).toMatchObject({ kind: 'tensor', shape: ['batch', 32, 32, 3] });
    // the Transpose stops at the first Conv
    expect(ops(after).Transpose).toBe(1);
    const t = after.graph.nodes.find((n) => n.opType === 'Transpose')!;
    expect(t.inputs[0]).toBe(input);
    expect(attrInts(t.attr('perm'))).toEqual([0, 3, 1, 2]);
    expect(t.outputs[0]!.users.map((n) => n.opType)).toEqual(['Conv']);
    expect(appliedInputLayouts(after)).toEqual({ input: 'NHWC' });
  });

  test("'*' picks every 4-D float input; running it again changes nothing", async () => {
    const model = readModel(CNN).model;
    const pass = inputLayoutPass({ '*': 'NHWC' });
    const after = await checkLayout(model, [pass, pass, { fixedPoint: [pass, propagateTransposes] }], { batch: 1 });
    expect(after.graph.inputs[0]!.type).toMatchObject({ shape: ['batch', 32, 32, 3] });
    expect(ops(after).Transpose).toBe(1);
  });

  test('the Transpose sinks through elementwise ops until a Conv; other inputs are left alone', async () => {
    const r = (n: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const b = new ModelBuilder({ opset: 17 });
    const img = b.input('img', 'float32', ['n', 3, 8, 8]);
    const vec = b.input('vec', 'float32', ['n', 4]);
    const a = b.node('Add', [b.node('Mul', [img, b.constant(Tensor.float32([1 / 255], []), 's')]), b.constant(Tensor.float32(r(3), [3, 1, 1]), 'mean')]);
    const c = b.node('Conv', [b.node('Relu', [a]), b.constant(Tensor.float32(r(4 * 3 * 9), [4, 3, 3, 3]), 'w')], { pads: [1, 1, 1, 1] });
    b.output(b.node('Add', [b.node('ReduceMean', [c], { axes: [2, 3], keepdims: 0 }), vec]), 'out');
    const model = b.build();
    const after = await checkLayout(model, [inputLayoutPass({ img: 'NHWC' })], { n: 2 }, ['img']);
    expect(after.graph.inputs.map((v) => (v.type?.kind === 'tensor' ? v.type.shape : undefined))).toEqual([['n', 8, 8, 3], ['n', 4]]);
    const t = after.graph.nodes.find((n) => n.opType === 'Transpose')!;
    expect(ops(after).Transpose).toBe(1);
    expect(t.outputs[0]!.users.map((n) => n.opType)).toEqual(['Conv']);
    // the [3,1,1] mean now broadcasts channels-last: [1,1,1,3]
    const add = after.graph.nodes.find((n) => n.opType === 'Add')!;
    expect(add.inputs[1]!.initializer!.dims).toEqual([1, 1, 1, 3]);
  });

  test('errors: unknown input, named input that is not 4-D', async () => {
    const b = new ModelBuilder({ opset: 17 });
    b.output(b.node('Relu', [b.input('x', 'float32', [2, 3])]), 'y');
    const m = b.build();
    await expect(new PassManager([inputLayoutPass({ nope: 'NHWC' })]).run(cloneModel(m))).rejects.toThrow(/no input 'nope'/);
    await expect(new PassManager([inputLayoutPass({ x: 'NHWC' })]).run(cloneModel(m))).rejects.toThrow(/not a 4-D/);
    // '*' skips it, with an explanation
    const explained: string[] = [];
    const report = await new PassManager([inputLayoutPass({ '*': 'NHWC' })], { onExplain: (_p, msg) => explained.push(msg) }).run(cloneModel(m));
    expect(report.passes[0]!.changes).toBe(0);
    expect(explained.some((e) => /not a 4-D/.test(e))).toBe(true);
  });
});
