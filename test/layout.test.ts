import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { inputLayoutPass } from '../passes/layout/apply-input-layout.js';
import { compile } from '../src/compile.js';
import { syntheticInputs } from '../src/inputs.js';
import { cloneModel } from '../src/ir/clone.js';
import { Tensor } from '../src/ir/tensor.js';
import { feedsForLayouts, toChannelsLast } from '../src/layout.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { x86Avx2 } from '../targets/x86-avx2.js';

const CNN = path.resolve(import.meta.dirname, '../fixtures/models/cnn-tiny-op13/model.onnx');

describe('input layouts', () => {
  test('toChannelsLast moves [n, c, h, w] to [n, h, w, c]', () => {
    const t = Tensor.float32(Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i), [2, 3, 2, 2]);
    const o = toChannelsLast(t);
    expect(o.dims).toEqual([2, 2, 2, 3]);
    // [b=1, y=1, x=0, c=2] = t[1, 2, 1, 0]
    expect(o.toTypedArray()[((1 * 2 + 1) * 2 + 0) * 3 + 2]).toBe(((1 * 3 + 2) * 2 + 1) * 2 + 0);
  });

  test('feedsForLayouts: NCHW data for an NHWC model is transposed, data already channels-last is not, other models are untouched', async () => {
    const original = readModel(CNN).model;
    const nhwc = cloneModel(original);
    await compile(nhwc, x86Avx2, { before: [inputLayoutPass({ '*': 'NHWC' })] });
    const [name] = original.graph.inputs.map((v) => v.name) as [string];
    const feeds = syntheticInputs(original, { seed: 1, dims: { batch: 1 } });
    const x = feeds[name]!;
    expect(feedsForLayouts(nhwc, feeds)[name]!.dims).toEqual(toChannelsLast(x).dims);
    const already = { [name]: toChannelsLast(x) };
    expect(feedsForLayouts(nhwc, already)[name]).toBe(already[name]);
    expect(feedsForLayouts(original, feeds)[name]).toBe(x);
  });

  test('static int8 with --input-layout NHWC calibrates on data made for the original (NCHW)', async () => {
    const m = readModel(CNN).model;
    const calibration = Array.from({ length: 4 }, (_, i) => syntheticInputs(m, { seed: 50 + i, dims: { batch: 1 } }));
    const report = await compile(m, x86Avx2, { before: [inputLayoutPass({ '*': 'NHWC' })], quantize: { mode: 'static', calibration }, runtime: onnxruntimeNode });
    expect(report.violations).toEqual([]);
    expect(m.graph.nodes.filter((n) => n.opType === 'QuantizeLinear').length).toBeGreaterThan(0);
  });
});
