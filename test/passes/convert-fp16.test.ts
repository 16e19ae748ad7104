import { describe, expect, test } from 'vitest';
import { convertFp16, float16BitsToNumber, float32BitsToFloat16Bits, float32ToFloat16Bits, tensorToFloat16 } from '../../passes/precision/convert-fp16.js';
import { toFloat16Bits } from '../../src/ir/half.js';
import { outputMetrics } from '../../src/bench/metrics.js';
import { intInputRanges, syntheticInputs } from '../../src/inputs.js';
import { serializeModel } from '../../src/io.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { attrInt } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { PassManager } from '../../src/pass/manager.js';
import type { QuantizeOptions } from '../../src/pass/pass.js';
import type { Target } from '../../src/target.js';
import { ortCpu } from '../../targets/capabilities/ort-cpu.js';
import { ortCuda } from '../../targets/capabilities/ort-cuda.js';
import { fixture } from './elim-util.js';
import { ops } from './harness.js';

const F32 = DataType.FLOAT;
const F16 = DataType.FLOAT16;

async function run(model: Model, feeds: Record<string, Tensor>, level: 'disabled' | 'all' = 'disabled'): Promise<Record<string, Tensor>> {
  const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(model).chunks), { graphOptimizationLevel: level });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** Serialized size without value_info (shape inference during the pass leaves types on every value). */
function modelBytes(model: Model): number {
  const m = cloneModel(model);
  for (const g of m.allGraphs()) for (const n of g.nodes) for (const v of n.outputs) if (v && !v.isReturned) { v.type = undefined; v.inValueInfo = false; }
  return concatChunks(serializeModel(m).chunks).length;
}

/** Bytes of constant data: initializers and Constant tensors. */
function constantBytes(model: Model): number {
  let n = initializerBytes(model);
  for (const g of model.allGraphs()) for (const k of g.nodes) { const a = k.attr('value'); if (k.opType === 'Constant' && a?.type === 'tensor') n += a.value.byteLength ?? 0; }
  return n;
}

function initializerBytes(model: Model): number {
  let n = 0;
  for (const g of model.allGraphs()) for (const v of g.initializers) n += v.initializer?.byteLength ?? 0;
  return n;
}

interface Converted { before: Model; after: Model; quantize: QuantizeOptions; report: Record<string, unknown> }

async function convert(model: Model, quantize: Omit<QuantizeOptions, 'mode'> = {}, extra: { target?: Target; stopAfterRewrites?: number } = {}): Promise<Converted> {
  const before = cloneModel(model);
  const after = cloneModel(model);
  const q: QuantizeOptions = { mode: 'fp16', ...quantize };
  await new PassManager([convertFp16], { quantize: q, verifyEach: true, ...extra }).run(after);
  expect(verifyModel(after)).toEqual([]);
  return { before, after, quantize: q, report: q.report ?? {} };
}

/** No Cast reads a Cast's output (the pass never stacks them; pairs that cancel must not remain). */
function expectNoCastChains(model: Model): void {
  for (const n of model.graph.nodes) {
    if (n.opType !== 'Cast') continue;
    const p = n.inputs[0]?.producer;
    expect(p?.opType === 'Cast', `${n} reads ${p}`).toBe(false);
  }
}

function interfaceTypes(model: Model): number[] {
  return [...model.graph.inputs, ...model.graph.outputs].map((v) => (v.type?.kind === 'tensor' ? v.type.elemType : -1));
}

/** Run both on the same feeds (fp16Io: fed float16 copies of the float inputs) and return the metrics per output. */
async function accuracy(c: Converted, feeds: Record<string, Tensor>, level: 'disabled' | 'all' = 'disabled') {
  const want = await run(c.before, feeds, level);
  const candFeeds: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) candFeeds[k] = c.quantize.fp16Io && t.dataType === F32 ? tensorToFloat16(t).tensor : t;
  const got = await run(c.after, candFeeds, level);
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  return Object.entries(want).map(([name, t]) => outputMetrics(name, t, got[name]!));
}

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}
function weights(dims: number[], seed: number, scale = 0.3): Tensor {
  const r = rand(seed);
  return Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * scale), dims);
}

/** A target with a capability table: every op listed takes float and float16 unless `float32Only` names it. */
function tableTarget(opsList: string[], float32Only: string[] = []): Target {
  const kernels: Record<string, [number, number | null, string[] | null][]> = {};
  for (const op of opsList) kernels[`ai.onnx::${op}`] = [[1, null, float32Only.includes(op) ? ['tensor(float)'] : ['tensor(float)', 'tensor(float16)', 'tensor(int64)']]];
  return { name: 'test-gpu', description: 'test', runtime: 'onnxruntime', maxLevel: 3, pipeline: [], capabilities: { source: 'test', domains: ['ai.onnx'], kernels } };
}

describe('float16 rounding', () => {
  const bits = (x: number, sat = false): number => float32ToFloat16Bits(x, sat);
  test('edge values', () => {
    expect(bits(0)).toBe(0x0000);
    expect(bits(-0)).toBe(0x8000);
    expect(bits(1)).toBe(0x3c00);
    expect(bits(-2)).toBe(0xc000);
    expect(bits(65504)).toBe(0x7bff);
    expect(bits(65519)).toBe(0x7bff); // below the halfway point to 65536
    expect(bits(65520)).toBe(0x7c00); // halfway: rounds to even, i.e. to infinity (IEEE)
    expect(bits(65520, true)).toBe(0x7bff); // saturating (what initializers use)
    expect(bits(-1e9, true)).toBe(0xfbff);
    expect(bits(1e9)).toBe(0x7c00);
    expect(bits(Infinity, true)).toBe(0x7c00); // infinities stay infinities
    expect(bits(-Infinity)).toBe(0xfc00);
    const nan = bits(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
    expect(Number.isNaN(float16BitsToNumber(bits(NaN, true)))).toBe(true);
    // ties to even in the normal range: 1 + 2^-11 is halfway between 1 and 1 + 2^-10
    expect(bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(bits(2 ** -14)).toBe(0x0400); // smallest normal
  });

  test('subnormals', () => {
    expect(bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(bits(-(2 ** -24))).toBe(0x8001);
    expect(bits(2 ** -25)).toBe(0x0000); // halfway to the smallest: ties to even (0)
    expect(bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 units: ties to even (2)
    expect(bits(5 * 2 ** -25)).toBe(0x0002); // 2.5 units: ties to even (2)
    expect(bits(1023 * 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(bits(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up into the smallest normal
    expect(bits(1e-10)).toBe(0x0000);
    expect(bits(-1e-10)).toBe(0x8000);
    expect(float16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(float16BitsToNumber(0x7bff)).toBe(65504);
  });

  test('agrees with the evaluator on random float32 values, and round-trips every float16', () => {
    const r = rand(7);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < 200_000; i++) {
      // exponents spread over the float16 range and beyond
      u[0] = ((r() * 2 ** 32) >>> 0) & 0x8fffffff | ((((r() * 48) | 0) + 100) << 23);
      if (Number.isNaN(f[0]!)) continue;
      expect(float32BitsToFloat16Bits(u[0]!)).toBe(toFloat16Bits(f[0]!));
    }
    for (let h = 0; h < 0x10000; h++) {
      const x = float16BitsToNumber(h);
      if (Number.isNaN(x)) continue;
      expect(float32ToFloat16Bits(x)).toBe(h);
    }
  });

  test('tensorToFloat16 counts saturated and underflowed values and halves the bytes', () => {
    const t = Tensor.float32([1, -1e6, 70000, 65504, 1e-9, -1e-9, 0, Infinity, 0.1], [9]);
    const r = tensorToFloat16(t);
    expect(r.tensor.dataType).toBe(F16);
    expect(r.tensor.byteLength).toBe(18);
    expect(r.saturated).toBe(2);
    expect(r.underflowed).toBe(2);
    expect(Array.from(r.tensor.toTypedArray() as Uint16Array)).toEqual([0x3c00, 0xfbff, 0x7bff, 0x7bff, 0, 0x8000, 0, 0x7c00, 0x2e66]);
  });
});

describe('convert-fp16 on built graphs', () => {
  function mlp(): Model {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 16]);
    let h = x;
    for (let i = 0; i < 3; i++) {
      h = b.node('MatMul', [h, b.constant(weights([16, 16], 10 + i), `w${i}`)]);
      h = b.node('Add', [h, b.constant(weights([16], 20 + i, 0.1), `b${i}`)]);
      h = b.node('Relu', [h]);
    }
    b.output(b.node('Softmax', [h], { axis: -1 }), 'probs');
    b.output(h, 'hidden');
    return b.build();
  }

  test('MatMul/Add/Relu chain and Softmax: converted, float32 interface, bytes halve, accurate', async () => {
    const c = await convert(mlp());
    expect(interfaceTypes(c.after)).toEqual([F32, F32, F32]);
    expect(c.after.graph.outputs.map((v) => v.name)).toEqual(['probs', 'hidden']);
    expect(initializerBytes(c.after)).toBe(initializerBytes(c.before) / 2);
    for (const v of c.after.graph.initializers) expect(v.initializer!.dataType).toBe(F16);
    // one Cast in (x), one out per output
    expect(ops(c.after).Cast).toBe(3);
    expectNoCastChains(c.after);
    expect(c.report).toMatchObject({ mode: 'fp16', convertedNodes: 10, keptFloat32Nodes: 0, islands: 0, castsInserted: 3, initializersConverted: 6 });
    expect(c.report.bytesAfter).toBe((c.report.bytesBefore as number) / 2);
    const feeds = syntheticInputs(c.before, { seed: 3, dims: { batch: 4 } });
    for (const m of await accuracy(c, feeds)) {
      expect(m.cosine).toBeGreaterThanOrEqual(0.999);
      expect(m.maxAbsError).toBeLessThan(0.01);
    }
  });

  test('fp16Io: inputs and outputs become float16, no interface Casts', async () => {
    const c = await convert(mlp(), { fp16Io: true });
    expect(interfaceTypes(c.after)).toEqual([F16, F16, F16]);
    expect(ops(c.after).Cast).toBeUndefined();
    const feeds = syntheticInputs(c.before, { seed: 4, dims: { batch: 3 } });
    for (const m of await accuracy(c, feeds)) expect(m.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('not asked for fp16 (or another mode): nothing changes', async () => {
    const m = mlp();
    const after = cloneModel(m);
    const report = await new PassManager([convertFp16], { quantize: { mode: 'dynamic' } }).run(after);
    expect(report.passes[0]!.changes).toBe(0);
    const r2 = await new PassManager([convertFp16], {}).run(after);
    expect(r2.passes[0]!.changes).toBe(0);
    expect(initializerBytes(after)).toBe(initializerBytes(m));
  });

  function layerNormModel(): Model {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 5, 8]);
    const h = b.node('MatMul', [x, b.constant(weights([8, 8], 1), 'w')]);
    const ln = b.node('LayerNormalization', [h, b.constant(weights([8], 2, 1), 'gamma'), b.constant(weights([8], 3, 0.1), 'beta')], { axis: -1, epsilon: 1e-5 });
    const y = b.node('MatMul', [ln, b.constant(weights([8, 4], 4), 'w2')]);
    b.output(b.node('Add', [y, b.constant(weights([4], 5), 'b2')]), 'y');
    return b.build();
  }

  test('LayerNormalization stays float32 without a capability table: one island, Casts at its edges', async () => {
    const c = await convert(layerNormModel());
    const ln = c.after.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
    expect(ln.inputs.map((v) => v!.type?.kind === 'tensor' && v!.type.elemType)).toEqual([F32, F32, F32]);
    expect(c.report).toMatchObject({ islands: 1, keptFloat32Nodes: 1, keptFloat32: { 'ai.onnx::LayerNormalization': 1 } });
    // x -> fp16, MatMul out -> fp32 (LN), LN out -> fp16, y -> fp32
    expect(c.report.castsInserted).toBe(4);
    expectNoCastChains(c.after);
    for (const m of await accuracy(c, syntheticInputs(c.before, { seed: 1 }))) expect(m.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('with a table that lists a float16 LayerNormalization: converted with stash_type=1', async () => {
    const target = tableTarget(['MatMul', 'Add', 'LayerNormalization', 'Cast']);
    const c = await convert(layerNormModel(), {}, { target });
    const ln = c.after.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
    expect(attrInt(ln.attr('stash_type'))).toBe(1);
    expect(c.report).toMatchObject({ islands: 0, keptFloat32Nodes: 0, castsInserted: 2 });
    for (const m of await accuracy(c, syntheticInputs(c.before, { seed: 1 }))) expect(m.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('ops the target table has no float16 kernel for (or does not list) stay float32', async () => {
    // Softmax: float only; Relu: not listed at all
    const target = tableTarget(['MatMul', 'Add', 'Softmax', 'Cast'], ['Softmax']);
    const c = await convert(mlp(), {}, { target });
    const types = (op: string): number[] => c.after.graph.nodes.filter((n) => n.opType === op).map((n) => (n.outputs[0]!.type as { elemType: number } | undefined)?.elemType ?? -1);
    expect(types('MatMul')).toEqual([F16, F16, F16]);
    expect(c.report.keptFloat32).toEqual({ 'ai.onnx::Relu': 3, 'ai.onnx::Softmax': 1 });
    expectNoCastChains(c.after);
    for (const m of await accuracy(c, syntheticInputs(c.before, { seed: 2, dims: { batch: 2 } }))) expect(m.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('the table is read by kernelFor\'s version rule: a row ending below the model\'s opset is the newest and covers it; one starting above does not', async () => {
    const fp16 = ['tensor(float)', 'tensor(float16)'];
    const relu = async (rows: [number, number | null, string[] | null][]): Promise<Record<string, unknown>> => {
      const target = tableTarget(['MatMul', 'Add', 'Softmax', 'Cast', 'Relu']);
      target.capabilities!.kernels['ai.onnx::Relu'] = rows;
      return (await convert(mlp(), {}, { target })).report.keptFloat32 as Record<string, unknown>;
    };
    // mlp imports opset 17: [6, 14] is the newest row (a table transcribed before 17), so it covers 17
    expect(await relu([[6, 14, fp16]])).toEqual({});
    expect(await relu([[18, null, fp16]])).toEqual({ 'ai.onnx::Relu': 3 });
    expect(await relu([[6, 12, fp16], [18, null, fp16]])).toEqual({ 'ai.onnx::Relu': 3 }); // a gap: no kernel
  });

  test('keepFloat by op type and by node name', async () => {
    const m = mlp();
    const firstMatMul = m.graph.nodes.find((n) => n.opType === 'MatMul')!.name;
    const c = await convert(m, { keepFloat: ['Softmax', firstMatMul] });
    expect(c.report.keptFloat32).toMatchObject({ 'ai.onnx::Softmax': 1, 'ai.onnx::MatMul': 1 });
    // the first Add and Relu follow the float32 MatMul: one island of 3
    expect(c.report.islands).toBe(2);
    expectNoCastChains(c.after);
    for (const mm of await accuracy(c, syntheticInputs(c.before, { seed: 5, dims: { batch: 2 } }))) expect(mm.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('integer shape subgraph untouched; a float chain that only computes a shape stays float32', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 8]);
    const h = b.node('Relu', [b.node('MatMul', [x, b.constant(weights([8, 8], 1), 'w')])]);
    // new shape [batch * 2, 4] computed through float: Cast(batch) * 2.0 -> Floor -> Cast(int64)
    const batch = b.node('Gather', [b.node('Shape', [h]), b.constant(Tensor.int64([0], []), 'zero')], { axis: 0 });
    const twice = b.node('Floor', [b.node('Mul', [b.node('Cast', [batch], { to: F32 }), b.constant(Tensor.float32([2], []), 'two')])]);
    const rows = b.node('Unsqueeze', [b.node('Cast', [twice], { to: DataType.INT64 }), b.constant(Tensor.int64([0]), 'ax')]);
    const shape = b.node('Concat', [rows, b.constant(Tensor.int64([4]), 'four')], { axis: 0 });
    b.output(b.node('Reshape', [h, shape]), 'y');
    const c = await convert(b.build());
    const g = c.after.graph;
    const mul = g.nodes.find((n) => n.opType === 'Mul')!;
    expect(mul.outputs[0]!.type === undefined || (mul.outputs[0]!.type as { elemType: number }).elemType === F32).toBe(true);
    expect(g.nodes.filter((n) => n.opType === 'Cast').map((n) => attrInt(n.attr('to')))).toEqual(expect.arrayContaining([F32, DataType.INT64]));
    const two = g.initializers.find((v) => v.name === 'two')!;
    expect(two.initializer!.dataType).toBe(F32);
    for (const name of ['zero', 'ax', 'four']) expect(g.initializers.find((v) => v.name === name)!.initializer!.dataType).toBe(DataType.INT64);
    expect(c.report.keptFloat32).toEqual({ 'ai.onnx::Mul': 1, 'ai.onnx::Floor': 1 });
    const feeds = syntheticInputs(c.before, { seed: 2, dims: { batch: 3 } });
    const [m] = await accuracy(c, feeds);
    expect(m!.shape).toEqual([6, 4]);
    expect(m!.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('Cast to float of a mask is retargeted to float16; huge constants saturate; mixed consumers get a twin, no Cast chains', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 6]);
    const mask = b.input('attention_mask', 'int64', [2, 6]);
    const scores = b.node('MatMul', [x, b.constant(weights([6, 6], 9, 2), 'w')]);
    const m = b.node('Cast', [mask], { to: F32 });
    const bias = b.node('Mul', [b.node('Sub', [b.constant(Tensor.float32([1], []), 'one'), m]), b.constant(Tensor.float32([-3.4028234663852886e38], []), 'big')]);
    b.output(b.node('Softmax', [b.node('Add', [scores, bias])], { axis: -1 }), 'probs');
    // the same Cast also feeds a float32 island (ReduceSum): its value is needed in both precisions
    b.output(b.node('ReduceSum', [m, b.constant(Tensor.int64([1]), 'axes')], { keepdims: 0 }), 'lengths');
    const c = await convert(b.build());
    const casts = c.after.graph.nodes.filter((n) => n.opType === 'Cast');
    // original Cast (int64 -> float, for ReduceSum), its float16 twin, x -> fp16, probs -> fp32
    expect(casts.filter((n) => n.inputs[0]!.name === 'attention_mask').map((n) => attrInt(n.attr('to'))).sort()).toEqual([F32, F16]);
    expect(c.report.saturated).toBe(1);
    expectNoCastChains(c.after);
    const feeds = syntheticInputs(c.before, { seed: 8, intRanges: { attention_mask: 2 } });
    const metrics = await accuracy(c, feeds);
    for (const mm of metrics) expect(mm.cosine).toBeGreaterThanOrEqual(0.999);
    expect(metrics.find((mm) => mm.name === 'lengths')!.maxAbsError).toBe(0);
  });

  test('ConstantOfShape value and Constant nodes are converted', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['n', 4]);
    const h = b.node('MatMul', [x, b.node('Constant', [], { value: weights([4, 4], 3) })]);
    const fill = b.node('ConstantOfShape', [b.node('Shape', [h])], { value: Tensor.float32([0.25], [1]) });
    const scal = b.node('Constant', [], { value_float: 1.5 });
    b.output(b.node('Mul', [b.node('Add', [h, fill]), scal]), 'y');
    const c = await convert(b.build());
    const g = c.after.graph;
    const cos = g.nodes.find((n) => n.opType === 'ConstantOfShape')!;
    const va = cos.attr('value');
    expect(va?.type === 'tensor' && va.value.dataType).toBe(F16);
    for (const k of g.nodes.filter((n) => n.opType === 'Constant')) {
      const a = k.attr('value');
      expect(a?.type === 'tensor' && a.value.dataType).toBe(F16);
      expect(k.attr('value_float')).toBeUndefined();
    }
    expect(c.report.constantsConverted).toBe(3);
    for (const mm of await accuracy(c, syntheticInputs(c.before, { seed: 1, dims: { n: 3 } }))) expect(mm.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('the model\'s own Cast pairs around converted regions do not remain (fp16 -> fp32 -> fp16)', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float16', [3, 4]);
    const up = b.node('Cast', [x], { to: F32 });
    const h = b.node('MatMul', [up, b.constant(weights([4, 4], 1), 'w')]);
    b.output(b.node('Cast', [b.node('Relu', [h])], { to: F16 }), 'y');
    const c = await convert(b.build());
    expect(ops(c.after)).toEqual({ MatMul: 1, Relu: 1 });
    expect(interfaceTypes(c.after)).toEqual([F16, F16]);
    const feeds = { x: tensorToFloat16(weights([3, 4], 2, 1)).tensor };
    const want = await run(c.before, feeds);
    const got = await run(c.after, feeds);
    expect(outputMetrics('y', want.y!, got.y!).cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('an If that reads a converted value gets a float32 Cast; its branches stay float32', async () => {
    const m = fixture('control-flow-op13');
    const c = await convert(m);
    expectNoCastChains(c.after);
    for (const g of c.after.allGraphs()) {
      if (g === c.after.graph) continue;
      for (const v of g.initializers) expect(v.initializer!.dataType).not.toBe(F16);
    }
    const feeds = syntheticInputs(c.before, { seed: 1, dims: { batch: 2 } });
    for (const mm of await accuracy(c, feeds)) expect(mm.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('--stop-after-rewrites: a partial conversion is still a valid model', async () => {
    for (const n of [0, 1, 2, 5]) {
      const c = await convert(mlp(), {}, { stopAfterRewrites: n });
      expect(c.report.convertedNodes).toBe(n);
      expectNoCastChains(c.after);
      for (const mm of await accuracy(c, syntheticInputs(c.before, { seed: 1, dims: { batch: 2 } }))) expect(mm.cosine).toBeGreaterThanOrEqual(0.999);
    }
  });
});

describe('convert-fp16 on fixtures', () => {
  const cases: [string, Record<string, number>][] = [
    ['cnn-tiny-op13', { batch: 2 }],
    ['gpt2-tiny-op14', { batch: 2, sequence: 7 }],
    ['gpt2-tiny-op17', { batch: 2, sequence: 7 }],
    ['bert-tiny-op17', { batch: 2, sequence: 7 }],
    ['bert-tiny-op14', { batch: 2, sequence: 7 }],
    ['prenorm-tiny-op17', { batch: 2, sequence: 7 }],
  ];
  test('gpt2-tiny-op17 with fp16Io: logits float16, token ids still int64', async () => {
    const c = await convert(fixture('gpt2-tiny-op17'), { fp16Io: true });
    expect(interfaceTypes(c.after)).toEqual([DataType.INT64, F16]);
    expectNoCastChains(c.after);
    const feeds = syntheticInputs(c.before, { seed: 3, dims: { batch: 1, sequence: 9 }, intRanges: intInputRanges(c.before) });
    for (const m of await accuracy(c, feeds)) expect(m.cosine).toBeGreaterThanOrEqual(0.999);
  });

  const withTable = (name: string, capabilities: Target['capabilities']): Target => ({ name, description: name, runtime: 'onnxruntime', maxLevel: 3, pipeline: [], ...(capabilities ? { capabilities } : {}) });

  test('bert-tiny-op17 for the CUDA EP table: LayerNormalization converted (stash_type=1), no islands', async () => {
    const c = await convert(fixture('bert-tiny-op17'), {}, { target: withTable('cuda', ortCuda) });
    for (const n of c.after.graph.nodes.filter((k) => k.opType === 'LayerNormalization')) expect(attrInt(n.attr('stash_type'))).toBe(1);
    expect(c.report.keptFloat32).toEqual({});
    // int64 mask -> float16 (retargeted Cast), two outputs back to float32
    expect(c.report.castsInserted).toBe(2);
    expectNoCastChains(c.after);
    const feeds = syntheticInputs(c.before, { seed: 5, dims: { batch: 2, sequence: 6 }, intRanges: intInputRanges(c.before) });
    for (const m of await accuracy(c, feeds)) expect(m.cosine).toBeGreaterThanOrEqual(0.999);
  });

  test('gpt2-tiny-op14 for the ORT CPU table: only ops with CPU float16 kernels convert; still valid and accurate', async () => {
    const c = await convert(fixture('gpt2-tiny-op14'), {}, { target: withTable('cpu', ortCpu) });
    const kept = c.report.keptFloat32 as Record<string, number>;
    expect(kept['ai.onnx::Gemm'] ?? 0).toBeGreaterThan(0); // ORT CPU has no float16 Gemm
    expectNoCastChains(c.after);
    const feeds = syntheticInputs(c.before, { seed: 5, dims: { batch: 1, sequence: 5 }, intRanges: intInputRanges(c.before) });
    for (const m of await accuracy(c, feeds)) expect(m.cosine).toBeGreaterThanOrEqual(0.999);
  });

  for (const [name, dims] of cases) {
    test(`${name}: loads, runs, cosine >= 0.999 vs float32, about half the size`, async () => {
      const c = await convert(fixture(name));
      expect(interfaceTypes(c.after)).toEqual(interfaceTypes(c.before));
      expectNoCastChains(c.after);
      const sizeBefore = modelBytes(c.before), sizeAfter = modelBytes(c.after);
      // float weights halve; the files of these tiny models also carry their graph (node names, shape
      // subgraphs), so the whole file shrinks a little less
      const dataRatio = constantBytes(c.after) / constantBytes(c.before);
      expect(dataRatio).toBeGreaterThan(0.49);
      expect(dataRatio).toBeLessThan(0.52);
      expect(sizeAfter / sizeBefore).toBeLessThan(0.75);
      // token ids below the vocabulary (64), attention masks 0/1
      const feeds = syntheticInputs(c.before, { seed: 11, dims, intRanges: intInputRanges(c.before) });
      const summary: string[] = [];
      for (const level of ['disabled', 'all'] as const) {
        for (const m of await accuracy(c, feeds, level)) {
          expect(m.cosine, `${name} ${m.name} (${level})`).toBeGreaterThanOrEqual(0.999);
          if (m.top1 !== undefined) expect(m.top1).toBeGreaterThanOrEqual(0.9);
          summary.push(`${m.name}[${level}] cos=${m.cosine.toFixed(6)} maxAbs=${m.maxAbsError.toExponential(2)} maxRel=${m.maxRelError.toExponential(2)}`);
        }
      }
      const r = c.report;
      console.log(`${name}: ${sizeBefore} -> ${sizeAfter} bytes (${(sizeAfter / sizeBefore).toFixed(3)}), constant data x${dataRatio.toFixed(3)}; converted ${r.convertedNodes}, kept ${r.keptFloat32Nodes} in ${r.islands} islands ${JSON.stringify(r.keptFloat32)}, casts +${r.castsInserted} -${r.castsRemoved} retargeted ${r.castsRetargeted}, saturated ${r.saturated}\n  ${summary.join('\n  ')}`);
    });
  }
});
