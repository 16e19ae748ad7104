/**
 * QOperator models for targets that lack QLinearConv / QLinearMatMul (issue 19): the hand-built
 * fixture cnn-tiny-qoperator-op13 (fixtures/make_qoperator_fixture.py) compiled for every target.
 * The ORT CPU targets, wasm and portable keep the ops (they run them); tensorrt gets the QDQ form
 * (qoperator-to-qdq), made symmetric int8 by qdq-to-int8-symmetric; cuda and webgpu get float
 * (qoperator-to-float). Every result passes its target's capability check and is judged against the
 * fixture's stored outputs (ORT on the model as given) on the target's runtime where this machine has
 * it (onnxruntime-web's wasm EP for wasm) and on the CPU stand-in otherwise: exactly (fp32) where
 * the ops are kept, within int8 where they are re-expressed.
 * One-node tests hold the rewrite to ORT's own QLinearConv / QLinearMatMul kernels.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { TOLERANCES, type Tolerance } from '../src/bench/validate.js';
import { compile } from '../src/compile.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { cloneModel } from '../src/ir/clone.js';
import { DataType } from '../src/ir/dtype.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { verifyModel } from '../src/ir/verify.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { PassManager } from '../src/pass/manager.js';
import { qoperatorToFloat } from '../passes/precision/qoperator-to-float.js';
import { qoperatorToQdq } from '../passes/precision/qoperator-to-qdq.js';
import { checkPlacement } from '../targets/capabilities/check.js';
import { TARGETS } from '../targets/index.js';
import { loadFixture, runtimeFor, validateAgainst, whyFailed } from './helpers/target-matrix.js';
import { ops, runModel } from './passes/harness.js';

const NAME = 'cnn-tiny-qoperator-op13';
const DIR = path.resolve(import.meta.dirname, '../fixtures/models', NAME);
const target = (name: string) => TARGETS.find((t) => t.name === name)!;

/** What each target's compiled model must hold: the form the QOperator ops take there. */
const FORM: Record<string, 'kept' | 'qdq' | 'float'> = {
  portable: 'kept', 'x86-avx2': 'kept', 'x86-avx512': 'kept', 'x86-vnni': 'kept', arm64: 'kept', wasm: 'kept',
  tensorrt: 'qdq', cuda: 'float', webgpu: 'float',
};
const Q_OPS = ['QLinearConv', 'QLinearMatMul', 'QuantizeLinear', 'DequantizeLinear'];
const qOps = (m: Model) => Object.fromEntries(Object.entries(ops(m)).filter(([op]) => Q_OPS.includes(op)));

describe(`${NAME} for every target`, () => {
  const fx = loadFixture(DIR);
  const stored = testDataSets(DIR).map((d) => readTestDataSet(d).outputs);
  // the stored outputs: ORT on the model as given (the reference for every target)
  const refOutputs = stored.map((outs) => Object.fromEntries(outs.map((o, i) => [o.name || fx.original.graph.outputs[i]!.name, o.tensor])));

  test('the fixture is what it claims: QOperator ops, uint8 activations, int8 per-channel weights, int32 biases', () => {
    expect(qOps(fx.original)).toEqual({ QuantizeLinear: 2, QLinearConv: 3, DequantizeLinear: 2, QLinearMatMul: 1 });
    for (const n of fx.original.graph.nodes.filter((n) => n.opType === 'QLinearConv')) {
      expect(n.inputs[3]!.initializer!.dataType).toBe(DataType.INT8);
      expect(n.inputs[4]!.initializer!.dims).toEqual([n.inputs[3]!.initializer!.dims[0]]);
      expect(n.inputs[7]!.initializer!.dataType).toBe(DataType.UINT8);
      expect(n.inputs[8]!.initializer!.dataType).toBe(DataType.INT32);
    }
  });

  test.each(TARGETS.map((t) => t.name))('%s', async (name) => {
    const t = target(name);
    const form = FORM[name];
    expect(form, `no expected form for target '${name}': add it to FORM`).toBeDefined();
    const compiled = cloneModel(fx.original);
    const report = await compile(compiled, t, { runtime: onnxruntimeNode, verifyEach: true });
    expect(verifyModel(compiled)).toEqual([]);
    expect(report.violations).toEqual([]);
    const q = qOps(compiled);
    if (form === 'kept') {
      expect(q).toEqual(qOps(fx.original));
    } else {
      expect(q.QLinearConv ?? 0).toBe(0);
      expect(q.QLinearMatMul ?? 0).toBe(0);
    }
    if (form === 'qdq') {
      // TensorRT's explicit quantization: every Q/DQ int8 with zero point 0, the weights still int8
      expect(q.QuantizeLinear).toBeGreaterThanOrEqual(4);
      for (const n of compiled.graph.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear')) {
        const zp = n.inputs[2]!.initializer!;
        expect(zp.dataType).toBe(DataType.INT8);
        expect(Array.from(zp.toTypedArray() as Int8Array).every((v) => v === 0)).toBe(true);
      }
      const weights = compiled.graph.nodes.filter((n) => n.opType === 'DequantizeLinear' && n.inputs[0]!.initializer);
      expect(weights.length).toBe(4);
    }
    if (form === 'float') expect(q).toEqual({});
    if (t.capabilities) {
      const placement = checkPlacement(compiled, t.capabilities);
      expect(placement.violations).toEqual([]);
      // nothing of the model's own computation on the CPU fallback
      expect(placement.cpuPlaced.map((c) => c.op)).toEqual([]);
    }
    const { runtime, standIn } = await runtimeFor(t);
    const tolerance: Tolerance = form === 'kept' ? TOLERANCES.fp32! : TOLERANCES.int8!;
    const v = await validateAgainst(fx.original, refOutputs, compiled, runtime, fx.sets, tolerance);
    expect(v.ok, whyFailed(v)).toBe(true);
    const worst = v.cases.flatMap((c) => c.outputs);
    const cosine = Math.min(...worst.map((o) => o.cosine));
    const maxAbs = Math.max(...worst.map((o) => o.maxAbsError));
    console.log(`| ${name} | ${form} | yes | ${tolerance.name}${standIn ? ' (stand-in)' : ''} ok | ${cosine.toFixed(6)} | ${maxAbs.toExponential(2)} | ${report.before.nodes} -> ${report.after.nodes} | ${JSON.stringify(report.after.opHistogram)} |`);
  });
});

describe('pipelines', () => {
  test('tensorrt writes QDQ before making it symmetric; cuda and webgpu go to float; the others have neither', () => {
    const names = (n: string) => (target(n).pipeline as unknown[]).filter((s): s is string => typeof s === 'string');
    const trt = names('tensorrt');
    expect(trt.indexOf('qoperator-to-qdq')).toBeGreaterThanOrEqual(0);
    expect(trt.indexOf('qoperator-to-qdq')).toBeLessThan(trt.indexOf('qdq-to-int8-symmetric'));
    for (const n of ['cuda', 'webgpu']) expect(names(n)).toContain('qoperator-to-float');
    for (const n of ['portable', 'x86-avx2', 'x86-avx512', 'x86-vnni', 'arm64', 'wasm']) {
      expect(names(n)).not.toContain('qoperator-to-qdq');
      expect(names(n)).not.toContain('qoperator-to-float');
    }
  });

  test('asked for a target that runs QLinearConv (x86-avx2), both passes do nothing and say why', async () => {
    const m = cloneModel(loadFixture(DIR).original);
    const explained: string[] = [];
    const run = await new PassManager([qoperatorToQdq, qoperatorToFloat], { target: target('x86-avx2'), onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(run.passes.map((p) => p.changes)).toEqual([0, 0]);
    expect(explained.join('\n')).toMatch(/target 'x86-avx2' runs QLinearConv, QLinearMatMul: the model keeps its QOperator ops/);
  });

  test('qoperator-to-qdq asked for webgpu (no QuantizeLinear) does nothing and says so', async () => {
    const m = cloneModel(loadFixture(DIR).original);
    const explained: string[] = [];
    const run = await new PassManager([qoperatorToQdq], { target: target('webgpu'), onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(run.passes[0]!.changes).toBe(0);
    expect(explained.join('\n')).toMatch(/target 'webgpu' has no QuantizeLinear: no QDQ form runs there/);
  });
});

// ---- one-node models against ORT's own kernels ----

/** Seeded values in [lo, hi] (integers when `int`). */
function seeded(n: number, seed: number, lo: number, hi: number, int = false): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = lo + (s / 2 ** 32) * (hi - lo);
    out.push(int ? Math.round(v) : v);
  }
  return out;
}

interface ConvCase { group: number; stride: number; yzp: number; weightType: 'int8' | 'uint8'; perChannel: boolean; bias: boolean }

/** xq uint8 [2, C, 7, 7] -> QLinearConv -> yq uint8: the graph input and output quantized, the op alone. */
function qlinearConv(c: ConvCase): Model {
  const b = new ModelBuilder({ opset: 13 });
  const C = 4, M = 8, K = 3;
  const x = b.input('xq', 'uint8', [2, C, 7, 7]);
  const cg = C / c.group;
  const wn = M * cg * K * K;
  const w8 = c.weightType === 'int8'
    ? Tensor.fromTypedArray(DataType.INT8, [M, cg, K, K], Int8Array.from(seeded(wn, 3, -127, 127, true)))
    : Tensor.fromTypedArray(DataType.UINT8, [M, cg, K, K], Uint8Array.from(seeded(wn, 3, 0, 255, true)));
  const ns = c.perChannel ? M : 1;
  const dims = c.perChannel ? [M] : [];
  const ws = Tensor.float32(seeded(ns, 5, 0.002, 0.01), dims);
  const wzp = c.weightType === 'int8'
    ? Tensor.fromTypedArray(DataType.INT8, dims, new Int8Array(ns))
    : Tensor.fromTypedArray(DataType.UINT8, dims, Uint8Array.from(seeded(ns, 7, 100, 150, true)));
  const inputs = [
    x, b.constant(Tensor.float32([0.02], []), 'x_scale'), b.constant(Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(120)), 'x_zp'),
    b.constant(w8, 'w'), b.constant(ws, 'w_scale'), b.constant(wzp, 'w_zp'),
    b.constant(Tensor.float32([0.03], []), 'y_scale'), b.constant(Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(c.yzp)), 'y_zp'),
  ];
  if (c.bias) inputs.push(b.constant(Tensor.fromTypedArray(DataType.INT32, [M], Int32Array.from(seeded(M, 11, -4000, 4000, true))), 'bias'));
  b.output(b.node('QLinearConv', inputs, { kernel_shape: [K, K], pads: [1, 1, 1, 1], strides: [c.stride, c.stride], group: c.group }, { name: 'qconv' }), 'yq');
  return b.build();
}

/** aq uint8 [3, 5, 16] -> QLinearMatMul(Bq [16, 6]) -> yq uint8. */
function qlinearMatMul(weightType: 'int8' | 'uint8', perColumn: boolean): Model {
  const b = new ModelBuilder({ opset: 13 });
  const a = b.input('aq', 'uint8', [3, 5, 16]);
  const n = perColumn ? 6 : 1;
  const dims = perColumn ? [6] : [];
  const w = weightType === 'int8'
    ? Tensor.fromTypedArray(DataType.INT8, [16, 6], Int8Array.from(seeded(96, 13, -127, 127, true)))
    : Tensor.fromTypedArray(DataType.UINT8, [16, 6], Uint8Array.from(seeded(96, 13, 0, 255, true)));
  const wzp = weightType === 'int8'
    ? Tensor.fromTypedArray(DataType.INT8, dims, new Int8Array(n))
    : Tensor.fromTypedArray(DataType.UINT8, dims, Uint8Array.from(seeded(n, 17, 110, 140, true)));
  b.output(b.node('QLinearMatMul', [
    a, b.constant(Tensor.float32([0.015], []), 'a_scale'), b.constant(Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(130)), 'a_zp'),
    b.constant(w, 'b'), b.constant(Tensor.float32(seeded(n, 19, 0.004, 0.012), dims), 'b_scale'), b.constant(wzp, 'b_zp'),
    b.constant(Tensor.float32([0.05], []), 'y_scale'), b.constant(Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(128)), 'y_zp'),
  ], {}, { name: 'qmatmul' }), 'yq');
  return b.build();
}

/** ORT's kernel on the op vs ORT on the rewritten model (optimizations off: no QDQ fusion back into the op). */
async function compareQuantized(original: Model, feeds: Record<string, Tensor>, pass = qoperatorToQdq, on = 'tensorrt'): Promise<{ rewritten: Model; differ: number; maxStep: number; total: number }> {
  const rewritten = cloneModel(original);
  const run = await new PassManager([pass], { target: target(on), verifyEach: true }).run(rewritten);
  expect(run.passes[0]!.changes).toBe(1);
  expect(verifyModel(rewritten)).toEqual([]);
  const want = (await runModel(original, feeds)).yq!.toTypedArray() as Uint8Array;
  const got = (await runModel(rewritten, feeds)).yq!.toTypedArray() as Uint8Array;
  expect(got.length).toBe(want.length);
  let differ = 0, maxStep = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (d) differ++;
    maxStep = Math.max(maxStep, d);
  }
  return { rewritten, differ, maxStep, total: want.length };
}

const X_CONV = { xq: Tensor.fromTypedArray(DataType.UINT8, [2, 4, 7, 7], Uint8Array.from(seeded(2 * 4 * 49, 23, 0, 255, true))) };
const A_MM = { aq: Tensor.fromTypedArray(DataType.UINT8, [3, 5, 16], Uint8Array.from(seeded(240, 29, 0, 255, true))) };

const CONV_CASES: ConvCase[] = [
  { group: 1, stride: 1, yzp: 0, weightType: 'int8', perChannel: true, bias: true },
  { group: 2, stride: 2, yzp: 128, weightType: 'int8', perChannel: true, bias: true },
  { group: 4, stride: 1, yzp: 100, weightType: 'uint8', perChannel: false, bias: false },
  { group: 1, stride: 1, yzp: 128, weightType: 'uint8', perChannel: true, bias: true },
];
const MATMUL_CASES = [['int8', false], ['int8', true], ['uint8', false], ['uint8', true]] as const;

/**
 * Both forms on one node with a uint8 graph input and output: qoperator-to-qdq (for tensorrt) gives
 * DequantizeLinear -> Conv / MatMul -> QuantizeLinear; qoperator-to-float (for cuda) the float op on
 * the weight dequantized here, Clip, and a QuantizeLinear for the uint8 output (the input, read
 * quantized, is dequantized where it is read). Either must give ORT's kernel's uint8 outputs.
 */
describe.each([
  ['qoperator-to-qdq', 'tensorrt', qoperatorToQdq, { DequantizeLinear: 2, QuantizeLinear: 1 }],
  ['qoperator-to-float', 'cuda', qoperatorToFloat, { DequantizeLinear: 1, Clip: 1, QuantizeLinear: 1 }],
] as const)('%s on one node (for %s), against ORT\'s QLinearConv / QLinearMatMul kernels', (_name, on, pass, qdq) => {
  test.each(CONV_CASES)('QLinearConv %o: the same uint8 outputs (at most one step apart where float rounding lands on a boundary)', async (c) => {
    const { rewritten, differ, maxStep, total } = await compareQuantized(qlinearConv(c), X_CONV, pass, on);
    expect(ops(rewritten)).toEqual({ ...qdq, Conv: 1 });
    // the per-channel weight DequantizeLinear along the output channels (axis 0)
    const wdq = rewritten.graph.nodes.find((n) => n.opType === 'DequantizeLinear' && n.inputs[0]!.initializer);
    if (c.perChannel && wdq) expect(wdq.attr('axis')?.value).toBe(0);
    expect(maxStep).toBeLessThanOrEqual(1);
    expect(differ / total).toBeLessThan(0.01);
  });

  test.each(MATMUL_CASES)('QLinearMatMul, %s weight, per column %s: the same uint8 outputs', async (wt, perColumn) => {
    const { rewritten, differ, maxStep, total } = await compareQuantized(qlinearMatMul(wt, perColumn), A_MM, pass, on);
    expect(ops(rewritten)).toEqual({ ...qdq, MatMul: 1 });
    expect(maxStep).toBeLessThanOrEqual(1);
    expect(differ / total).toBeLessThan(0.01);
  });
});

describe('the bias', () => {
  test('a bias scaled wrong would show: the bias is Bq * xs * ws[m], not Bq', async () => {
    const c: ConvCase = { group: 1, stride: 1, yzp: 128, weightType: 'int8', perChannel: true, bias: true };
    const { rewritten } = await compareQuantized(qlinearConv(c), X_CONV);
    const conv = rewritten.graph.nodes.find((n) => n.opType === 'Conv')!;
    const bias = conv.inputs[2]!.initializer!.toTypedArray() as Float32Array;
    const bq = seeded(8, 11, -4000, 4000, true);
    const ws = Float32Array.from(seeded(8, 5, 0.002, 0.01));
    bias.forEach((v, m) => expect(v).toBe(Math.fround(bq[m]! * Math.fround(0.02) * ws[m]!)));
  });

});

describe('qoperator-to-float on a Q -> QLinearConv -> QLinearMatMul -> DQ chain', () => {
  /** x float [2, 4, 6, 6] -> Q -> QLinearConv (ReLU folded: y zp 0) -> QLinearConv 1x1 -> DQ -> y */
  function chain(): Model {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 4, 6, 6]);
    const u8 = (v: number, name: string) => b.constant(Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(v)), name);
    const f = (v: number, name: string) => b.constant(Tensor.float32([v], []), name);
    const xs = f(0.02, 'xs'), xz = u8(128, 'xz');
    const xq = b.node('QuantizeLinear', [x, xs, xz], {}, { name: 'q' });
    const w1 = b.constant(Tensor.fromTypedArray(DataType.INT8, [8, 4, 3, 3], Int8Array.from(seeded(288, 31, -127, 127, true))), 'w1');
    const s1 = f(0.04, 's1'), z1 = u8(0, 'z1');
    const y1 = b.node('QLinearConv', [xq, xs, xz, w1, b.constant(Tensor.float32(seeded(8, 37, 0.002, 0.006), [8]), 'ws1'), b.constant(Tensor.fromTypedArray(DataType.INT8, [8], new Int8Array(8)), 'wz1'), s1, z1,
      b.constant(Tensor.fromTypedArray(DataType.INT32, [8], Int32Array.from(seeded(8, 41, -3000, 3000, true))), 'b1')], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv1' });
    const w2 = b.constant(Tensor.fromTypedArray(DataType.INT8, [4, 8, 1, 1], Int8Array.from(seeded(32, 43, -127, 127, true))), 'w2');
    const s2 = f(0.03, 's2'), z2 = u8(128, 'z2');
    const y2 = b.node('QLinearConv', [y1, s1, z1, w2, b.constant(Tensor.float32(seeded(4, 47, 0.004, 0.01), [4]), 'ws2'), b.constant(Tensor.fromTypedArray(DataType.INT8, [4], new Int8Array(4)), 'wz2'), s2, z2], { kernel_shape: [1, 1] }, { name: 'conv2' });
    b.output(b.node('DequantizeLinear', [y2, s2, z2], {}, { name: 'dq' }), 'y');
    return b.build();
  }

  test('for webgpu: Clip -> Conv -> Clip -> Conv -> Clip, no Q/DQ left; within a step of each quantized tensor of ORT\'s kernels', async () => {
    const original = chain();
    const m = cloneModel(original);
    const run = await new PassManager([qoperatorToFloat], { target: target('webgpu'), verifyEach: true }).run(m);
    expect(run.passes[0]!.changes).toBe(2);
    expect(ops(m)).toEqual({ Clip: 3, Conv: 2 });
    expect(checkPlacement(m, target('webgpu').capabilities!).cpuPlaced).toEqual([]);
    // the clamp of conv1's output is its uint8 range with zero point 0: [0, 255 * 0.04] (the folded ReLU)
    const clip = m.graph.nodes.filter((n) => n.opType === 'Clip')[1]!;
    expect([clip.inputs[1]!.initializer!.toTypedArray()[0], clip.inputs[2]!.initializer!.toTypedArray()[0]]).toEqual([0, Math.fround(255 * 0.04)]);
    const feeds = { x: Tensor.float32(seeded(288, 53, -3, 3), [2, 4, 6, 6]) };
    const want = (await runModel(original, feeds)).y!.toTypedArray() as Float32Array;
    const got = (await runModel(m, feeds)).y!.toTypedArray() as Float32Array;
    let maxAbs = 0, dot = 0, nw = 0, ng = 0;
    for (let i = 0; i < want.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(got[i]! - want[i]!));
      dot += got[i]! * want[i]!; nw += want[i]! ** 2; ng += got[i]! ** 2;
    }
    const cosine = dot / Math.sqrt(nw * ng);
    expect(cosine).toBeGreaterThanOrEqual(0.99);
    // the rounding dropped: x's half step carried through the convs, and y's own half step; a few steps at most
    expect(maxAbs).toBeLessThan(4 * 0.03);
    // inputs beyond x's range [-2.56, 2.54] are clamped as QuantizeLinear clamps them: the float form without Clip would differ far more
    const far = { x: Tensor.float32(seeded(288, 53, -30, 30), [2, 4, 6, 6]) };
    const wantFar = (await runModel(original, far)).y!.toTypedArray() as Float32Array;
    const gotFar = (await runModel(m, far)).y!.toTypedArray() as Float32Array;
    let farAbs = 0;
    for (let i = 0; i < wantFar.length; i++) farAbs = Math.max(farAbs, Math.abs(gotFar[i]! - wantFar[i]!));
    expect(farAbs).toBeLessThan(4 * 0.03);
  });
});
