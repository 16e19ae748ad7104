import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { calibrationTensors, quantizeStatic } from '../../passes/quantize/quantize-static.js';
import {
  entropyThreshold, histogramQuantile, klDivergence, rangeFromStats, RunningHistogram, scaleZeroPoint, TensorStats,
} from '../../passes/lib/calibration.js';
import { calibrate, calibrationSets as stageSets, withCalibration, type QuantizedLayerError } from '../../src/calibrate.js';
import { compile, modelStats } from '../../src/compile.js';
import { seededRandom, syntheticInputs } from '../../src/inputs.js';
import { serializeModel } from '../../src/io.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { PassManager } from '../../src/pass/manager.js';
import type { Pass, QuantizeOptions } from '../../src/pass/pass.js';
import type { Runtime } from '../../src/runtime.js';
import type { Target } from '../../src/target.js';
import { portable } from '../../targets/portable.js';
import { tensorrt } from '../../targets/tensorrt.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { x86Vnni } from '../../targets/x86-vnni.js';
import { ops } from './harness.js';

const fixtures = path.resolve(__dirname, '../../fixtures/models');

/** The portable pipeline: cleanup and folding, no fusions (the quantizer sees standard ops). */
async function portableCompile(model: Model): Promise<void> {
  await compile(model, portable, {});
}

function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

/** Conv+Relu+Conv+GlobalAveragePool+Gemm with seeded weights (He-like scale so activations stay O(1)). */
function tinyCnn(): Model {
  const t = rand(7);
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['batch', 3, 16, 16]);
  const c1 = b.node('Conv', [x, b.constant(t([8, 3, 3, 3], -0.4, 0.4), 'w1'), b.constant(t([8], -0.1, 0.1), 'b1')], { pads: [1, 1, 1, 1] }, { name: 'conv1' });
  const r1 = b.node('Relu', [c1], {}, { name: 'relu1' });
  const c2 = b.node('Conv', [r1, b.constant(t([16, 8, 3, 3], -0.2, 0.2), 'w2'), b.constant(t([16], -0.1, 0.1), 'b2')], { pads: [1, 1, 1, 1], strides: [2, 2] }, { name: 'conv2' });
  const r2 = b.node('Relu', [c2], {}, { name: 'relu2' });
  const gap = b.node('GlobalAveragePool', [r2], {}, { name: 'gap' });
  const flat = b.node('Flatten', [gap], { axis: 1 }, { name: 'flatten' });
  const y = b.node('Gemm', [flat, b.constant(t([10, 16], -1, 1), 'wfc'), b.constant(t([10], -0.1, 0.1), 'bfc')], { transB: 1 }, { name: 'fc' });
  b.output(y, 'logits');
  return b.build();
}

function calibrationSets(model: Model, n: number, seed = 100): Record<string, Tensor>[] {
  return Array.from({ length: n }, (_, i) => syntheticInputs(model, { seed: seed + i, dims: { batch: 1 } }));
}

/** A runtime that counts session.run calls. */
function counting(rt: Runtime): { runtime: Runtime; runs: () => number } {
  let runs = 0;
  return {
    runs: () => runs,
    runtime: {
      name: rt.name,
      async createSession(bytes, opts) {
        const s = await rt.createSession(bytes, opts);
        return {
          inputNames: s.inputNames, outputNames: s.outputNames,
          run: (feeds, o) => { runs++; return s.run(feeds, o); },
          release: () => s.release(),
        };
      },
    },
  };
}

async function quantize(model: Model, quantizeOpts: Omit<QuantizeOptions, 'mode'>, target: Target = x86Vnni, runtime: Runtime = onnxruntimeNode): Promise<{ q: Model; options: QuantizeOptions }> {
  const q = cloneModel(model);
  const options: QuantizeOptions = { mode: 'static', ...quantizeOpts };
  // the pass with compile's calibration stage around it (the stage runs the model, the pass does not)
  await new PassManager([withCalibration(quantizeStatic)], { quantize: options, runtime, target, verifyEach: true }).run(q);
  expect(verifyModel(q)).toEqual([]);
  return { q, options };
}

const bytesOf = (m: Model): Uint8Array => concatChunks(serializeModel(m).chunks);

/** top-1 agreement and worst cosine of the first output over `n` seeded inputs, both models in ORT (level all). */
async function agreement(ref: Model, cand: Model, n = 32): Promise<{ top1: number; minCosine: number }> {
  const a = await onnxruntimeNode.createSession(bytesOf(ref), { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const b = await onnxruntimeNode.createSession(bytesOf(cand), { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  let agree = 0, minCos = 1;
  try {
    for (let i = 0; i < n; i++) {
      const feeds = syntheticInputs(ref, { seed: 5000 + i, dims: { batch: 1 } });
      const name = ref.graph.outputs[0]!.name;
      const x = (await a.run(feeds))[name]!.toTypedArray() as Float32Array;
      const y = (await b.run(feeds))[name]!.toTypedArray() as Float32Array;
      const argmax = (v: Float32Array): number => v.reduce((best, val, j) => (val > v[best]! ? j : best), 0);
      if (argmax(x) === argmax(y)) agree++;
      let dot = 0, nx = 0, ny = 0;
      for (let j = 0; j < x.length; j++) { dot += x[j]! * y[j]!; nx += x[j]! ** 2; ny += y[j]! ** 2; }
      minCos = Math.min(minCos, dot / Math.sqrt(nx * ny));
    }
  } finally {
    await a.release();
    await b.release();
  }
  return { top1: agree / n, minCosine: minCos };
}

function initializerOf(m: Model, name: string): Tensor | undefined {
  return m.graph.initializers.find((v) => v.name === name)?.initializer;
}

/** Every Conv reads DQ(activation) and DQ(int8 weight), and its output (or its kept activation's) feeds a Q. */
function expectQdqAroundConvs(m: Model, weightType = DataType.INT8): void {
  const convs = m.graph.nodes.filter((n) => n.opType === 'Conv');
  expect(convs.length).toBeGreaterThan(0);
  for (const c of convs) {
    expect(c.inputs[0]!.producer?.opType, `${c} input`).toBe('DequantizeLinear');
    expect(c.inputs[0]!.producer!.inputs[0]!.producer?.opType).toBe('QuantizeLinear');
    const wdq = c.inputs[1]!.producer!;
    expect(wdq.opType).toBe('DequantizeLinear');
    expect(wdq.inputs[0]!.initializer?.dataType).toBe(weightType);
    const out = c.outputs[0]!;
    const next = out.uses.map((u) => u.node.opType);
    expect(next.every((op) => op === 'QuantizeLinear' || op === 'Relu' || op === 'Clip'), `${c} feeds ${next}`).toBe(true);
  }
}

describe('calibration statistics', () => {
  test('running histogram: growing ranges rebin exactly, quantiles match the data', () => {
    const r = seededRandom(1);
    const h = new RunningHistogram(2048);
    const all: number[] = [];
    for (let b = 0; b < 10; b++) {
      const scale = 1 + b; // each batch widens the range
      const batch = Array.from({ length: 2000 }, () => (r() * 2 - 1) * scale);
      all.push(...batch);
      h.add(batch);
    }
    expect(h.total).toBe(20000);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(20000);
    all.sort((a, b) => a - b);
    const span = all[all.length - 1]! - all[0]!;
    for (const q of [0.01, 0.25, 0.5, 0.75, 0.99]) {
      const exact = all[Math.floor(q * (all.length - 1))]!;
      expect(Math.abs(h.quantile(q) - exact)).toBeLessThan(span / 256);
    }
    expect(h.min).toBe(all[0]);
    expect(h.max).toBe(all[all.length - 1]);
  });

  test('constant tensors and NaN do not break the histogram', () => {
    const s = new TensorStats('entropy');
    s.add([0, 0, 0, NaN]);
    s.add([0, 0]);
    expect(rangeFromStats(s, { method: 'entropy' })).toEqual([0, 0]);
    const p = new TensorStats('percentile');
    p.add([3, 3, 3]);
    const [lo, hi] = rangeFromStats(p, { method: 'percentile' });
    expect(lo).toBeCloseTo(3, 5);
    expect(hi).toBeCloseTo(3, 5);
  });

  test('percentile of a uniform distribution', () => {
    const r = seededRandom(2);
    const s = new TensorStats('percentile');
    for (let b = 0; b < 5; b++) s.add(Array.from({ length: 20000 }, () => r()));
    const [lo, hi] = rangeFromStats(s, { method: 'percentile', percentile: 99 });
    expect(lo).toBeCloseTo(0.01, 2);
    expect(hi).toBeCloseTo(0.99, 2);
    const [slo, shi] = rangeFromStats(s, { method: 'percentile', percentile: 99, symmetric: true });
    expect(shi).toBeCloseTo(0.99, 2);
    expect(slo).toBeGreaterThanOrEqual(0);
    expect(histogramQuantile([1, 1, 1, 1], 0.25, 0.5)).toBeCloseTo(0.5);
  });

  test('KL divergence', () => {
    expect(klDivergence([1, 2, 3], [2, 4, 6])).toBeCloseTo(0, 12);
    expect(klDivergence([1, 1], [1, 3])).toBeCloseTo(0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.75), 10);
    expect(klDivergence([1, 1], [1, 0])).toBe(Infinity);
  });

  test('entropy threshold: uniform keeps (nearly) all, gaussian clips the tail, outliers are cut', () => {
    const bins = 2048;
    // uniform |x| on [0, 1)
    const uni = new Float64Array(bins).fill(100);
    expect(entropyThreshold(uni, 1 / bins)).toBeGreaterThan(0.9);
    // |N(0,1)| histogram up to 6 sigma
    const w = 6 / bins;
    const gauss = Float64Array.from({ length: bins }, (_, i) => Math.round(1e7 * Math.exp(-(((i + 0.5) * w) ** 2) / 2) * w));
    const tg = entropyThreshold(gauss, w);
    expect(tg).toBeGreaterThan(2);
    expect(tg).toBeLessThan(5.5);
    // Laplace-ish bulk with a few huge outliers: the threshold stays near the bulk
    const lap = new Float64Array(bins);
    for (let i = 0; i < bins; i++) lap[i] = Math.round(1e6 * Math.exp(-i / 40));
    lap[bins - 1] = 3;
    const tl = entropyThreshold(lap, 1);
    expect(tl).toBeLessThan(bins / 4);
    expect(tl).toBeGreaterThan(100);
  });

  test('scale and zero point', () => {
    const u = scaleZeroPoint(0, 2.55, 'uint8', false);
    expect(u.scale).toBeCloseTo(0.01, 12);
    expect(u.zeroPoint).toBe(0);
    const a = scaleZeroPoint(-1, 3, 'uint8', false);
    expect(a.scale).toBeCloseTo(4 / 255, 10);
    expect(a.zeroPoint).toBe(64);
    expect(scaleZeroPoint(-2, 1, 'int8', true)).toEqual({ scale: 2 / 127, zeroPoint: 0 });
    expect(scaleZeroPoint(-2, 1, 'int8', true, true)).toEqual({ scale: 2 / 63, zeroPoint: 0 });
    expect(scaleZeroPoint(0, 0, 'uint8', false)).toEqual({ scale: 1, zeroPoint: 0 });
    // ranges always include 0
    expect(scaleZeroPoint(1, 2, 'uint8', false).zeroPoint).toBe(0);
  });
});

describe('quantize-static', () => {
  test('does nothing unless quantize.mode is static', async () => {
    const m = tinyCnn();
    const q = cloneModel(m);
    await new PassManager([quantizeStatic], { runtime: onnxruntimeNode }).run(q);
    expect(ops(q)).toEqual(ops(m));
  });

  test('the pass runs no model: statistics handed to it as data quantize without a runtime, as the calibration stage does', async () => {
    const m = tinyCnn();
    const sets = calibrationSets(m, 4);
    // which values the plan needs ranges for (pure planning), observed by the stage's calibrate()
    let names: string[] = [];
    const probe: Pass = { name: 'probe', description: '', level: 1, subgraphs: 'skip', run(g, ctx) { names = calibrationTensors(g, ctx); return 0; } };
    const plan: QuantizeOptions = { mode: 'static', calibration: sets };
    await new PassManager([probe], { quantize: plan, target: x86Vnni }).run(cloneModel(m));
    expect(names).toContain('x');
    const statistics = await calibrate(m, onnxruntimeNode, stageSets(m, plan, {}), names, plan);
    expect(statistics.sets).toBe(4);
    expect([...statistics.tensors.keys()].sort()).toEqual([...names].sort());

    const alone = cloneModel(m);
    const options: QuantizeOptions = { mode: 'static', calibration: sets, statistics };
    await new PassManager([quantizeStatic], { quantize: options, target: x86Vnni, verifyEach: true }).run(alone);
    const staged = await quantize(m, { calibration: sets });
    expect(bytesOf(alone)).toEqual(bytesOf(staged.q));
    expect(options.report?.calibrationSets).toBe(4);

    // no statistics (no stage, or no runtime for it): left float, with a warning
    const none: QuantizeOptions = { mode: 'static', calibration: sets };
    const float = cloneModel(m);
    await new PassManager([withCalibration(quantizeStatic)], { quantize: none, target: x86Vnni }).run(float);
    expect(ops(float)).toEqual(ops(m));
    expect(String(none.report?.warnings)).toMatch(/no calibration statistics.*left float/);
  });

  test('tiny CNN: QDQ around the Convs, int8 weights, int32 biases, agrees with fp32, one run per calibration set', async () => {
    const m = tinyCnn();
    const sets = calibrationSets(m, 8);
    const counter = counting(onnxruntimeNode);
    const { q, options } = await quantize(m, { calibration: sets, method: 'minmax' }, x86Vnni, counter.runtime);
    // memory-bounded calibration: exactly one run per calibration set
    expect(counter.runs()).toBe(sets.length);
    expect(options.report?.calibrationSets).toBe(8);
    expectQdqAroundConvs(q);
    // asymmetric u8: the Relus are folded into the Convs' output ranges
    expect(ops(q).Relu ?? 0).toBe(0);
    // default keepFloat ['@last']: the classifier Gemm stays float
    const fc = q.graph.nodes.find((n) => n.opType === 'Gemm')!;
    expect(fc.inputs[1]!.initializer?.dataType).toBe(DataType.FLOAT);
    expect(options.report?.keptFloat).toEqual(['fc']);
    // biases as int32 behind a DequantizeLinear
    const conv1 = q.graph.nodes.find((n) => n.name === 'conv1')!;
    expect(conv1.inputs[2]!.producer!.inputs[0]!.initializer?.dataType).toBe(DataType.INT32);
    // per-channel weight scales along the output channels
    expect(conv1.inputs[1]!.producer!.inputs[1]!.initializer?.dims).toEqual([8]);
    // activation zero points are uint8
    const qnodes = q.graph.nodes.filter((n) => n.opType === 'QuantizeLinear');
    expect(qnodes.length).toBeGreaterThanOrEqual(3);
    for (const n of qnodes) expect(n.inputs[2]!.initializer?.dataType).toBe(DataType.UINT8);
    expect(bytesOf(q).length).toBeLessThan(bytesOf(m).length);
    const { top1, minCosine } = await agreement(m, q);
    expect(top1).toBeGreaterThanOrEqual(0.95);
    expect(minCosine).toBeGreaterThanOrEqual(0.99);
  });

  test('keepFloat [] quantizes the last Gemm too; a named node stays float', async () => {
    const m = tinyCnn();
    const sets = calibrationSets(m, 4);
    const all = await quantize(m, { calibration: sets, keepFloat: [] });
    const fc = all.q.graph.nodes.find((n) => n.opType === 'Gemm')!;
    expect(fc.inputs[1]!.producer?.opType).toBe('DequantizeLinear');
    expect(fc.inputs[1]!.producer!.inputs[0]!.initializer?.dataType).toBe(DataType.INT8);
    expect(all.q.graph.outputs[0]!.name).toBe('logits');
    const { top1 } = await agreement(m, all.q);
    expect(top1).toBeGreaterThanOrEqual(0.9);

    const kept = await quantize(m, { calibration: sets, keepFloat: ['conv2'] });
    const conv2 = kept.q.graph.nodes.find((n) => n.name === 'conv2')!;
    expect(conv2.inputs[1]!.initializer?.dataType).toBe(DataType.FLOAT);
    expect(conv2.inputs[1]!.name).toBe('w2');
    const conv1 = kept.q.graph.nodes.find((n) => n.name === 'conv1')!;
    expect(conv1.inputs[1]!.producer?.opType).toBe('DequantizeLinear');
    expect(kept.options.report?.keptFloat).toEqual(['conv2']);
    // conv2 kept float by name: the Gemm is quantized (keepFloat replaced the default)
    expect(kept.q.graph.nodes.find((n) => n.opType === 'Gemm')!.inputs[1]!.producer?.opType).toBe('DequantizeLinear');
  });

  test.each(['minmax', 'percentile', 'entropy'] as const)('calibration method %s gives valid scales and a working model', async (method) => {
    const m = tinyCnn();
    const sets = calibrationSets(m, 8);
    const { q, options } = await quantize(m, { calibration: sets, method });
    expect(options.report?.method).toBe(method);
    for (const n of q.graph.nodes.filter((x) => x.opType === 'QuantizeLinear')) {
      const s = (n.inputs[1]!.initializer!.toTypedArray() as Float32Array)[0]!;
      expect(Number.isFinite(s) && s > 0).toBe(true);
      const z = (n.inputs[2]!.initializer!.toTypedArray() as Uint8Array)[0]!;
      expect(z).toBeGreaterThanOrEqual(0);
      expect(z).toBeLessThanOrEqual(255);
    }
    const { top1, minCosine } = await agreement(m, q);
    expect(top1).toBeGreaterThanOrEqual(0.9);
    expect(minCosine).toBeGreaterThanOrEqual(0.98);
  });

  test('tensorrt preset: symmetric int8 activations with zero points of 0, Relu kept, float bias', async () => {
    const m = tinyCnn();
    const { q, options } = await quantize(m, { calibration: calibrationSets(m, 4) }, tensorrt);
    const qdq = q.graph.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
    expect(qdq.length).toBeGreaterThan(0);
    for (const n of qdq) {
      const z = n.inputs[2]!.initializer!;
      expect([DataType.INT8, DataType.INT32]).toContain(z.dataType);
      expect([...(z.toTypedArray() as Int8Array)].every((v) => v === 0)).toBe(true);
    }
    expect(ops(q).Relu).toBe(2);
    // TensorRT's DequantizeLinear is int8 only: biases stay float
    expect(String(options.report?.biases)).toMatch(/float/);
    const { top1, minCosine } = await agreement(m, q);
    expect(top1).toBeGreaterThanOrEqual(0.9);
    expect(minCosine).toBeGreaterThanOrEqual(0.98);
  });

  test('reduce range (x86-avx2): weights within 7 bits', async () => {
    const m = tinyCnn();
    const { q } = await quantize(m, { calibration: calibrationSets(m, 4) }, x86Avx2);
    for (const n of q.graph.nodes.filter((x) => x.opType === 'Conv')) {
      const w = n.inputs[1]!.producer!.inputs[0]!.initializer!.toTypedArray() as Int8Array;
      expect(Math.max(...w)).toBeLessThanOrEqual(63);
      expect(Math.min(...w)).toBeGreaterThanOrEqual(-64);
    }
  });

  test('no calibration data: synthetic inputs with a loud warning', async () => {
    const m = tinyCnn();
    const { q, options } = await quantize(m, {});
    expect(options.report?.calibrationSynthetic).toBe(true);
    expect((options.report?.warnings as string[]).some((w) => /WARNING.*SYNTHETIC/.test(w))).toBe(true);
    expect(ops(q).QuantizeLinear).toBeGreaterThan(0);
  });

  test('debug: a per-layer error table, worst first', async () => {
    const m = tinyCnn();
    const { options } = await quantize(m, { calibration: calibrationSets(m, 4), debug: true });
    const layers = options.report?.layers as QuantizedLayerError[];
    expect(layers.length).toBe(options.report?.quantizedTensors);
    for (let i = 1; i < layers.length; i++) expect(layers[i]!.snrDb).toBeGreaterThanOrEqual(layers[i - 1]!.snrDb);
    for (const l of layers) {
      expect(l.cosine).toBeGreaterThan(0.9);
      expect(Number.isFinite(l.maxAbsError)).toBe(true);
    }
    expect(layers.map((l) => l.op)).toContain('Relu');
  });

  test('cnn-tiny-op13 (portable compile first): loads in ORT, agrees with fp32, smaller file', async () => {
    const { model } = readModel(path.join(fixtures, 'cnn-tiny-op13', 'model.onnx'));
    await portableCompile(model);
    const sets = calibrationSets(model, 16);
    const counter = counting(onnxruntimeNode);
    const { q, options } = await quantize(model, { calibration: sets }, x86Vnni, counter.runtime);
    expect(counter.runs()).toBe(16);
    expectQdqAroundConvs(q);
    expect(Number(options.report?.quantizedNodes)).toBeGreaterThanOrEqual(4);
    // weights as int8: the file is smaller, the constant data much smaller
    expect(bytesOf(q).length).toBeLessThan(bytesOf(model).length);
    expect(modelStats(q).parameterBytes).toBeLessThan(modelStats(model).parameterBytes * 0.5);
    expect(ops(q).Clip ?? 0).toBe(0);
    expect(ops(q).Constant ?? 0).toBe(0);
    const { top1, minCosine } = await agreement(model, q);
    expect(top1).toBeGreaterThanOrEqual(0.95);
    expect(minCosine).toBeGreaterThanOrEqual(0.99);
  });
});
