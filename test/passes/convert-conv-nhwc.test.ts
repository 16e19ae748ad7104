import { describe, expect, test } from 'vitest';
import { convertConvNhwc, oihwToOhwi } from '../../passes/layout/convert-conv-nhwc.js';
import { inputLayoutPass } from '../../passes/layout/apply-input-layout.js';
import { findPass } from '../../passes/index.js';
import { cpuStandIn } from '../../src/bench/stand-in.js';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor, transposeTensor } from '../../src/ir/tensor.js';
import { PassManager, type PipelineStep } from '../../src/pass/manager.js';
import { cloneModel } from '../../src/ir/clone.js';
import { compareTensors } from '../../src/compare.js';
import { cuda } from '../../targets/cuda.js';
import { NHWC_LAYOUT } from '../../targets/lib/pipelines.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { checkPass, ops, runModel } from './harness.js';

function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -0.5, hi = 0.5): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

/**
 * A small MobileNet/ResNet-like trunk: stem Conv (stride 2) + Clip, a depthwise Conv (group = C) +
 * Relu, a pointwise Conv, a residual Add, a Conv with dilation and asymmetric pads, a weight shared
 * by two Convs, GlobalAveragePool, Flatten, Gemm.
 */
function trunk(opset = 13): Model {
  const t = rand(3);
  const b = new ModelBuilder({ opset });
  const x = b.input('x', 'float32', ['n', 3, 17, 15]);
  const clip = (v: ReturnType<typeof b.input>) => (opset >= 11
    ? b.node('Clip', [v, b.constant(Tensor.float32([0], []), 'lo'), b.constant(Tensor.float32([6], []), 'hi')])
    : b.node('Clip', [v], { min: 0, max: 6 }));
  const stem = clip(b.node('Conv', [x, b.constant(t([8, 3, 3, 3]), 'w_stem'), b.constant(t([8]), 'b_stem')], { strides: [2, 2], pads: [1, 1, 1, 1] }, { name: 'stem' }));
  const dw = b.node('Relu', [b.node('Conv', [stem, b.constant(t([8, 1, 3, 3]), 'w_dw')], { group: 8, pads: [1, 1, 1, 1] }, { name: 'dw' })]);
  const pw = b.node('Conv', [dw, b.constant(t([8, 8, 1, 1]), 'w_pw'), b.constant(t([8]), 'b_pw')], {}, { name: 'pw' });
  const res = b.node('Add', [pw, stem]);
  const shared = b.constant(t([8, 8, 3, 3], -0.2, 0.2), 'w_shared');
  const d1 = b.node('Conv', [res, shared], { dilations: [2, 2], pads: [2, 1, 2, 3] }, { name: 'dilated' });
  const d2 = b.node('Conv', [b.node('Relu', [d1]), shared], { pads: [1, 1, 1, 1] }, { name: 'shared2' });
  const gap = b.node('GlobalAveragePool', [d2]);
  const fc = b.node('Gemm', [b.node('Flatten', [gap], { axis: 1 }), b.constant(t([5, 8]), 'w_fc'), b.constant(t([5]), 'b_fc')], { transB: 1 });
  b.output(fc, 'logits');
  return b.build();
}

const layout = (): PipelineStep[] => NHWC_LAYOUT.map((s) => (typeof s === 'string' ? findPass(s)! : { fixedPoint: s.fixedPoint.map((n) => findPass(n)!) }));

describe('convert-conv-nhwc', () => {
  test('OIHW -> OHWI moves each weight to [m, y, x, c]', () => {
    const w = Tensor.float32(Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i), [2, 3, 2, 2]);
    const o = oihwToOhwi(w);
    expect(o.dims).toEqual([2, 2, 2, 3]);
    const v = o.toTypedArray();
    // [m=1, y=0, x=1, c=2] = W[1, 2, 0, 1] = ((1*3 + 2)*2 + 0)*2 + 1
    expect(v[((1 * 2 + 0) * 2 + 1) * 3 + 2]).toBe(((1 * 3 + 2) * 2 + 0) * 2 + 1);
  });

  for (const opset of [13, 18]) {
    test(`opset ${opset}: every Conv becomes NhwcConv, the trunk keeps 2 Transposes (start, end), outputs equal (stand-in on the CPU)`, async () => {
      const model = trunk(opset);
      const { after } = await checkPass(model, layout(), { target: cuda, inputDims: { n: 2 } });
      const h = ops(after);
      expect(h.Conv ?? 0).toBe(0);
      expect(h.NhwcConv).toBe(5);
      expect(h.GlobalAveragePool ?? 0).toBe(0);
      expect(h.ReduceMean).toBe(1);
      expect(h.Transpose).toBe(2);
      // the shared weight is transposed once
      expect(after.graph.nodes.filter((n) => n.opType === 'NhwcConv').map((n) => n.inputs[1]!.name).filter((nm) => nm.startsWith('w_shared'))).toEqual(['w_shared_ohwi', 'w_shared_ohwi']);
      expect(after.opsetVersion('com.microsoft')).toBeGreaterThanOrEqual(1);
    });
  }

  test('with --input-layout NHWC the input Transpose cancels: one Transpose left, on [n,1,1,C]', async () => {
    const model = trunk();
    const after = cloneModel(model);
    await new PassManager([inputLayoutPass({ x: 'NHWC' }), ...layout()], { target: cuda, verifyEach: true }).run(after);
    expect(ops(after).Transpose).toBe(1);
    expect(ops(after).NhwcConv).toBe(5);
    const last = after.graph.nodes.find((n) => n.opType === 'Transpose')!;
    expect(last.inputs[0]!.producer!.opType).toBe('ReduceMean');
    // same numbers: the original on NCHW data, the result on the same data channels-last
    const xs = rand(9)([2, 3, 17, 15]);
    const nhwc = transposeTensor(xs, [0, 2, 3, 1])!;
    const want = await runModel(model, { x: xs });
    const got = await runModel(cpuStandIn(after).model, { x: nhwc });
    const c = compareTensors(got.logits!, want.logits!, { rtol: 1e-4, atol: 1e-5 });
    expect(c.ok, c.problem).toBe(true);
  });

  test('targets whose layout is NCHW are left alone, and non-float / non-constant weights stay', async () => {
    const { after, changes } = await checkPass(trunk(), [convertConvNhwc], { target: x86Avx2, inputDims: { n: 1 } });
    expect(changes).toBe(0);
    expect(ops(after).Conv).toBe(5);
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const w = b.input('w', 'float32', [2, 2, 1, 1]);
    b.output(b.node('Conv', [x, w]), 'y');
    const r = await checkPass(b.build(), [convertConvNhwc], { target: cuda });
    expect(r.changes).toBe(0);
  });

  test('the CPU stand-in computes NhwcConv by its definition (checked against a convolution written out by hand)', async () => {
    // x NHWC [1, 4, 5, 2], W OHWI [3, 3, 3, 2], B [3], pads 1, stride 2 on H
    const [H, W, C, M, K] = [4, 5, 2, 3, 3];
    const x = rand(5)([1, H, W, C]), w = rand(6)([M, K, K, C]), bias = rand(7)([M]);
    const b = new ModelBuilder({ opset: 13, opsets: { 'com.microsoft': 1 } });
    const xi = b.input('x', 'float32', [1, H, W, C]);
    b.output(b.node('NhwcConv', [xi, b.constant(w, 'w'), b.constant(bias, 'b')], { pads: [1, 1, 1, 1], strides: [2, 1] }, { domain: 'com.microsoft' }), 'y');
    const { model, replaced } = cpuStandIn(b.build());
    expect(replaced).toEqual({ 'com.microsoft::NhwcConv': 1 });
    const y = (await runModel(model, { x })).y!;
    const [OH, OW] = [Math.floor((H + 2 - K) / 2) + 1, W];
    expect(y.dims).toEqual([1, OH, OW, M]);
    const xv = x.toTypedArray() as Float32Array, wv = w.toTypedArray() as Float32Array, bv = bias.toTypedArray() as Float32Array;
    const yv = y.toTypedArray() as Float32Array;
    for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) for (let m = 0; m < M; m++) {
      let s = bv[m]!;
      for (let ky = 0; ky < K; ky++) for (let kx = 0; kx < K; kx++) for (let c = 0; c < C; c++) {
        const iy = oy * 2 + ky - 1, ix = ox + kx - 1;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
        s += xv[(iy * W + ix) * C + c]! * wv[((m * K + ky) * K + kx) * C + c]!;
      }
      expect(yv[(oy * OW + ox) * M + m]).toBeCloseTo(s, 5);
    }
    // a model without such ops is returned as it is
    const plain = trunk();
    expect(cpuStandIn(plain)).toEqual({ model: plain, replaced: {} });
  });
});
