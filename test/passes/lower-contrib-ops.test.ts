/**
 * lower-contrib-ops, one contrib op at a time: a one-node model run by onnxruntime's own kernel
 * against its lowering (standard ONNX only) on the same seeded inputs (the harness). The attention
 * family is in lower-contrib-attention.test.ts; LayerNormalization and NhwcConv in lower-layernorm /
 * lower-nhwc-conv.
 */
import { describe, expect, test } from 'vitest';
import { lowerContribOps } from '../../passes/lower/lower-contrib-ops.js';
import { quantizeInt4Blocks, quantizeInt8Blocks } from '../../passes/lib/blocks.js';
import { attr } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Target } from '../../src/target.js';
import { portable } from '../../targets/portable.js';
import { tensorrt } from '../../targets/tensorrt.js';
import { webgpu } from '../../targets/webgpu.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { checkPass, ops, runModel } from './harness.js';
import { cloneModel } from '../../src/ir/clone.js';
import { PassManager } from '../../src/pass/manager.js';

const MS = { domain: 'com.microsoft' };

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 31 - 1; });
}

function model(build: (b: ModelBuilder) => void, opset = 17): Model {
  const b = new ModelBuilder({ opset, opsets: { 'com.microsoft': 1 } });
  build(b);
  return b.build();
}

/** Lower for `target`; every com.microsoft node is gone and the outputs match ORT's kernel. */
async function lowered(m: Model, target: Target = portable, tol: { atol?: number; rtol?: number; feeds?: Record<string, Tensor> } = {}) {
  const { after, changes } = await checkPass(m, lowerContribOps, { target, inputDims: { batch: 2, seq: 5 }, ...tol });
  expect(changes).toBeGreaterThan(0);
  expect(after.graph.nodes.filter((n) => n.domain === 'com.microsoft').map((n) => n.opType)).toEqual([]);
  return after;
}

describe('lower-contrib-ops: activations', () => {
  test.each(['Gelu', 'FastGelu', 'QuickGelu'])('%s', async (op) => {
    await lowered(model((b) => b.output(b.node(op, [b.input('x', 'float32', ['batch', 'seq', 16])], op === 'QuickGelu' ? { alpha: attr.float('alpha', 1.5) } : {}, MS), 'y')));
  });

  test.each(['BiasGelu', 'FastGelu'])('%s with a bias', async (op) => {
    await lowered(model((b) => {
      const bias = b.constant(Tensor.float32(values(16, 3)), 'bias');
      b.output(b.node(op, [b.input('x', 'float32', ['batch', 'seq', 16]), bias], {}, MS), 'y');
    }));
  });
});

describe('lower-contrib-ops: FusedConv and FusedMatMul', () => {
  const conv = (activation: string | undefined, params: number[] | undefined, withZ: boolean) => model((b) => {
    const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
    const w = b.constant(Tensor.float32(values(4 * 3 * 9, 7), [4, 3, 3, 3]), 'W');
    const bias = b.constant(Tensor.float32(values(4, 8)), 'B');
    const z = withZ ? b.input('z', 'float32', ['batch', 4, 8, 8]) : undefined;
    const attrs: Record<string, unknown> = { pads: [1, 1, 1, 1], kernel_shape: [3, 3] };
    if (activation) attrs.activation = activation;
    if (params) attrs.activation_params = attr.floats('activation_params', params);
    b.output(b.node('FusedConv', z ? [x, w, bias, z] : [x, w, bias], attrs, MS), 'y');
  });

  test.each([
    ['Relu', undefined], ['Tanh', undefined], ['Sigmoid', undefined], ['LeakyRelu', [0.2]], ['Clip', [-0.5, 0.5]], ['HardSigmoid', [0.3, 0.4]],
  ] as [string, number[] | undefined][])('activation %s', async (act, params) => {
    const after = await lowered(conv(act, params, false));
    expect(ops(after).Conv).toBe(1);
  });

  test('with the sum input Z, no activation', async () => {
    await lowered(conv(undefined, undefined, true));
  });

  test('FusedMatMul with transB and alpha', async () => {
    await lowered(model((b) => {
      const w = b.constant(Tensor.float32(values(6 * 16, 5), [6, 16]), 'W');
      b.output(b.node('FusedMatMul', [b.input('a', 'float32', ['batch', 'seq', 16]), w], { transB: 1, alpha: attr.float('alpha', 0.5) }, MS), 'y');
    }));
  });
});

describe('lower-contrib-ops: normalizations', () => {
  const gamma = (b: ModelBuilder) => b.constant(Tensor.float32(values(16, 11).map((v) => 1 + v / 4)), 'gamma');
  const beta = (b: ModelBuilder) => b.constant(Tensor.float32(values(16, 12)), 'beta');

  test('SkipLayerNormalization with bias, its sum output used', async () => {
    const after = await lowered(model((b) => {
      const x = b.input('x', 'float32', ['batch', 'seq', 16]);
      const skip = b.input('skip', 'float32', ['batch', 'seq', 16]);
      const bias = b.constant(Tensor.float32(values(16, 13)), 'bias');
      const [y, , , sum] = b.nodeN('SkipLayerNormalization', [x, skip, gamma(b), beta(b), bias], { epsilon: attr.float('epsilon', 1e-5) }, { ...MS, outputs: 4 });
      b.output(y!, 'y');
      b.output(sum!, 'sum');
    }));
    expect(ops(after).ReduceMean).toBe(2);
  });

  test('SkipSimplifiedLayerNormalization and SimplifiedLayerNormalization (RMSNorm)', async () => {
    await lowered(model((b) => {
      const x = b.input('x', 'float32', ['batch', 'seq', 16]);
      const skip = b.input('skip', 'float32', ['batch', 'seq', 16]);
      const [s] = b.nodeN('SkipSimplifiedLayerNormalization', [x, skip, gamma(b)], { epsilon: attr.float('epsilon', 1e-6) }, { ...MS, outputs: 1 });
      b.output(b.node('SimplifiedLayerNormalization', [s!, gamma(b)], { axis: -1, epsilon: attr.float('epsilon', 1e-6) }), 'y');
    }));
  });

  test('EmbedLayerNormalization without position ids (0..S-1), with segments', async () => {
    await lowered(model((b) => {
      const ids = b.input('ids', 'int32', ['batch', 'seq']);
      const seg = b.input('seg', 'int32', ['batch', 'seq']);
      const word = b.constant(Tensor.float32(values(8 * 16, 21), [8, 16]), 'word');
      const pos = b.constant(Tensor.float32(values(12 * 16, 22), [12, 16]), 'pos');
      const segE = b.constant(Tensor.float32(values(2 * 16, 23), [2, 16]), 'segE');
      const [y] = b.nodeN('EmbedLayerNormalization', [ids, seg, word, pos, segE, gamma(b), beta(b)], { epsilon: attr.float('epsilon', 1e-5) }, { ...MS, outputs: 2 });
      b.output(y!, 'y');
    }), portable, { atol: 1e-4, feeds: { ids: Tensor.int32([1, 7, 0, 3, 5, 2, 6, 4, 1, 0], [2, 5]), seg: Tensor.int32([0, 0, 1, 1, 1, 0, 0, 0, 1, 1], [2, 5]) } });
  });
});

/** A MatMulNBits model: W [K, N] quantized in blocks (bits 4 asymmetric / symmetric, or 8). */
function matMulNBits(k: number, n: number, bs: number, bits: 4 | 8, symmetric: boolean): Model {
  const w = values(k * n, 31);
  const at = (col: number, kk: number) => w[kk * n + col]!;
  const q = bits === 8 ? quantizeInt8Blocks(at, k, n, bs) : quantizeInt4Blocks(at, k, n, bs, symmetric);
  return model((b) => {
    const bq = b.constant(Tensor.fromTypedArray(DataType.UINT8, [n, q.nBlocks, (bs * bits) / 8], q.packed), 'Bq');
    const scales = b.constant(Tensor.float32(q.scales), 'scales');
    const zp = q.zeroPoints ? b.constant(Tensor.fromTypedArray(DataType.UINT8, [q.zeroPoints.length], q.zeroPoints), 'zp') : undefined;
    const bias = b.constant(Tensor.float32(values(n, 32)), 'bias');
    const a = b.input('a', 'float32', ['batch', 'seq', k]);
    b.output(b.node('MatMulNBits', [a, bq, scales, zp, undefined, bias], { K: k, N: n, bits, block_size: bs, accuracy_level: 0 }, MS), 'y');
  }, 21);
}

describe('lower-contrib-ops: quantized ops keep their integer codes', () => {
  test.each([
    [64, 24, 32, 4, false], [40, 8, 16, 4, true], [64, 16, 32, 8, true],
  ] as [number, number, number, 4 | 8, boolean][])('MatMulNBits K %i N %i block %i, %i-bit (symmetric %s): int8 DequantizeLinear, exact', async (k, n, bs, bits, sym) => {
    const after = await lowered(matMulNBits(k, n, bs, bits, sym), portable, { atol: 1e-5 });
    expect(ops(after).DequantizeLinear).toBe(1);
    const codes = after.graph.initializers.find((v) => v.initializer!.dataType === DataType.INT8)!;
    expect(codes.initializer!.elementCount).toBe(n * Math.ceil(k / bs) * bs);
  });

  test('GatherBlockQuantized 4-bit asymmetric and 8-bit rows: int8 table, exact', async () => {
    const v = 10, d = 32, bs = 16;
    const table = values(v * d, 41);
    const at = (row: number, col: number) => table[row * d + col]!;
    const q4 = quantizeInt4Blocks(at, d, v, bs, false);
    const q8 = quantizeInt8Blocks(at, d, v, bs);
    const after = await lowered(model((b) => {
      const ids = b.input('ids', 'int64', ['batch', 'seq']);
      const data4 = b.constant(Tensor.fromTypedArray(DataType.UINT8, [v, d / 2], q4.packed), 'data4');
      const zp4 = b.constant(Tensor.fromTypedArray(DataType.UINT8, [v, Math.ceil(q4.nBlocks / 2)], q4.zeroPoints!), 'zp4');
      const data8 = b.constant(Tensor.fromTypedArray(DataType.UINT8, [v, d], q8.packed), 'data8');
      b.output(b.node('GatherBlockQuantized', [data4, ids, b.constant(Tensor.float32(q4.scales, [v, q4.nBlocks]), 's4'), zp4], { bits: 4, block_size: bs, gather_axis: 0, quantize_axis: 1 }, MS), 'y4');
      b.output(b.node('GatherBlockQuantized', [data8, ids, b.constant(Tensor.float32(q8.scales, [v, q8.nBlocks]), 's8')], { bits: 8, block_size: bs, gather_axis: 0, quantize_axis: 1 }, MS), 'y8');
    }, 21), portable, { atol: 1e-6 });
    expect(ops(after).Gather).toBe(4);
  });

  const dqmm = (signed: boolean) => model((b) => {
    const k = 16, n = 6;
    const codes = values(k * n, 51).map((x) => Math.round(x * 100) + (signed ? 0 : 128));
    const bq = b.constant(Tensor.fromTypedArray(signed ? DataType.INT8 : DataType.UINT8, [k, n], signed ? Int8Array.from(codes) : Uint8Array.from(codes)), 'Bq');
    const scale = b.constant(Tensor.float32(values(n, 52).map((x) => 0.01 + Math.abs(x) / 50)), 'scale');
    const zp = signed ? undefined : b.constant(Tensor.fromTypedArray(DataType.UINT8, [n], new Uint8Array(n).fill(128)), 'zp');
    const bias = b.constant(Tensor.float32(values(n, 53)), 'bias');
    b.output(b.node('DynamicQuantizeMatMul', [b.input('a', 'float32', ['batch', 'seq', k]), bq, scale, zp, bias], {}, MS), 'y');
  });

  test.each([true, false])('DynamicQuantizeMatMul (int8 weights %s) on portable: DynamicQuantizeLinear + MatMulInteger, its definition', async (signed) => {
    const after = await lowered(dqmm(signed), portable, { atol: 1e-5 });
    expect(ops(after).MatMulInteger).toBe(1);
  });

  test.each([true, false])('DynamicQuantizeMatMul (int8 weights %s) on tensorrt (no MatMulInteger): weight-only int8 DequantizeLinear, within int8 of the kernel', async (signed) => {
    const after = await lowered(dqmm(signed), tensorrt, { atol: 0.05, rtol: 0.05 });
    expect(ops(after).MatMulInteger).toBeUndefined();
    expect(ops(after).DequantizeLinear).toBe(1);
    expect(after.graph.initializers.filter((v) => v.initializer!.dataType === DataType.INT8)).toHaveLength(1);
  });

  test('DynamicQuantizeMatMul on webgpu (an ORT GPU EP without it): float weights, as dequantize-integer-ops makes them', async () => {
    const after = await lowered(dqmm(true), webgpu, { atol: 0.05, rtol: 0.05 });
    expect(ops(after).DequantizeLinear).toBeUndefined();
    expect(ops(after).MatMul).toBe(1);
  });

  test('a target that runs the op keeps it', async () => {
    const { changes } = await checkPass(matMulNBits(64, 24, 32, 4, false), lowerContribOps, { target: x86Avx2, inputDims: { batch: 2, seq: 5 } });
    expect(changes).toBe(0);
  });
});

describe('lower-contrib-ops: ORT\'s QOperator ops become their QDQ form (within one uint8 step of the kernel)', () => {
  const u8 = (b: ModelBuilder, v: number, name: string) => b.constant(Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(v)), name);
  const f = (b: ModelBuilder, v: number, name: string) => b.constant(Tensor.float32([v], []), name);
  const qmodel = (build: (b: ModelBuilder, x: ReturnType<ModelBuilder['input']>) => ReturnType<ModelBuilder['node']>) => model((b) => {
    const x = b.input('x', 'uint8', [2, 4, 6, 6]);
    b.output(build(b, x), 'y');
  }, 13);
  const feeds = { x: Tensor.fromTypedArray(DataType.UINT8, [2, 4, 6, 6], Uint8Array.from(values(288, 61), (v) => Math.round((v + 1) * 127))) };

  test.each([
    ['QLinearAdd', (b: ModelBuilder, x: never) => b.node('QLinearAdd', [x, f(b, 0.02, 'as'), u8(b, 120, 'az'), x, f(b, 0.03, 'bs'), u8(b, 100, 'bz'), f(b, 0.05, 'ys'), u8(b, 128, 'yz')], {}, MS)],
    ['QLinearMul', (b: ModelBuilder, x: never) => b.node('QLinearMul', [x, f(b, 0.02, 'as'), u8(b, 120, 'az'), x, f(b, 0.03, 'bs'), u8(b, 100, 'bz'), f(b, 0.05, 'ys'), u8(b, 128, 'yz')], {}, MS)],
    ['QLinearSigmoid', (b: ModelBuilder, x: never) => b.node('QLinearSigmoid', [x, f(b, 0.05, 'xs'), u8(b, 128, 'xz'), f(b, 1 / 255, 'ys'), u8(b, 0, 'yz')], {}, MS)],
    ['QLinearLeakyRelu', (b: ModelBuilder, x: never) => b.node('QLinearLeakyRelu', [x, f(b, 0.05, 'xs'), u8(b, 128, 'xz'), f(b, 0.04, 'ys'), u8(b, 100, 'yz')], { alpha: attr.float('alpha', 0.1) }, MS)],
    ['QLinearGlobalAveragePool', (b: ModelBuilder, x: never) => b.node('QLinearGlobalAveragePool', [x, f(b, 0.05, 'xs'), u8(b, 128, 'xz'), f(b, 0.01, 'ys'), u8(b, 128, 'yz')], { channels_last: 0 }, MS)],
    ['QLinearAveragePool', (b: ModelBuilder, x: never) => b.node('QLinearAveragePool', [x, f(b, 0.05, 'xs'), u8(b, 128, 'xz'), f(b, 0.04, 'ys'), u8(b, 128, 'yz')], { kernel_shape: [2, 2], strides: [2, 2] }, MS)],
    ['QLinearConcat', (b: ModelBuilder, x: never) => b.node('QLinearConcat', [f(b, 0.05, 'ys'), u8(b, 128, 'yz'), x, f(b, 0.05, 's1'), u8(b, 128, 'z1'), x, f(b, 0.03, 's2'), u8(b, 100, 'z2')], { axis: 1 }, MS)],
  ] as [string, (b: ModelBuilder, x: never) => never][])('%s', async (_op, build) => {
    // compareTensors is exact on integers: the requantized uint8 may differ by one step (rounding)
    const m = qmodel(build as never);
    const after = cloneModel(m);
    await new PassManager([lowerContribOps], { target: portable, verifyEach: true }).run(after);
    expect(after.graph.nodes.filter((n) => n.domain === 'com.microsoft')).toEqual([]);
    expect(ops(after).QuantizeLinear).toBe(1);
    const want = (await runModel(m, feeds)).y!.toTypedArray() as Uint8Array;
    const got = (await runModel(after, feeds)).y!.toTypedArray() as Uint8Array;
    expect(got.length).toBe(want.length);
    const steps = Array.from(got, (g, i) => Math.abs(g - want[i]!));
    expect(Math.max(...steps)).toBeLessThanOrEqual(1);
    expect(steps.filter((d) => d > 0).length / steps.length).toBeLessThan(0.05);
  });
});
