/**
 * Quantized models for tensorrt (issue 19): qdq-to-int8-symmetric re-expresses a QDQ model from the
 * CPU / cuda / wasm static presets (uint8 asymmetric activation pairs, int32 biases, int8 weights) as
 * int8 symmetric QDQ (zero point 0), the form TensorRT's explicit quantization takes. Judged within
 * the int8 tolerance (cosine >= 0.99) against the model as given, on onnxruntime-node.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { outputMetrics } from '../src/bench/metrics.js';
import { judge, TOLERANCES } from '../src/bench/validate.js';
import { compile } from '../src/compile.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { cloneModel } from '../src/ir/clone.js';
import { DataType } from '../src/ir/dtype.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { verifyModel } from '../src/ir/verify.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { checkPlacement } from '../targets/capabilities/check.js';
import { TARGETS } from '../targets/index.js';
import { compileCopy, loadFixture, referenceOutputs, runtimeFor, validateAgainst, whyFailed } from './helpers/target-matrix.js';
import { runModel } from './passes/harness.js';

const target = (name: string) => TARGETS.find((t) => t.name === name)!;

/** Element types of every DequantizeLinear's input and every QuantizeLinear's zero point. */
function qdqTypes(m: Model): string[] {
  const out = new Set<string>();
  for (const n of m.graph.nodes) {
    const v = n.opType === 'DequantizeLinear' ? n.inputs[0] : n.opType === 'QuantizeLinear' ? n.inputs[2] : undefined;
    if (!v) continue;
    const t = v.initializer?.dataType ?? (v.producer?.opType === 'QuantizeLinear' ? v.producer.inputs[2]?.initializer?.dataType : undefined);
    out.add(`${n.opType}:${t === DataType.UINT8 ? 'uint8' : t === DataType.INT8 ? 'int8' : t === DataType.INT32 ? 'int32' : String(t)}`);
  }
  return [...out].sort();
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

/**
 * x -> u8 pair (zp 128) -> Conv (int8 per-channel weight DQ, zp 0; int32 bias DQ) -> u8 pair with zp 0
 * (the static quantizer's folded Relu) -> Flatten -> u8 pair (zp 10) -> MatMul (int8 weight DQ with a
 * nonzero zero point) -> y
 */
function handBuilt(): Model {
  const r = rng(7);
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', [1, 3, 8, 8]);
  const u8 = (v: number) => Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(v));
  const pair = (v: ReturnType<typeof b.input>, scale: number, zp: number, name: string) => {
    const s = b.constant(Tensor.float32([scale], []), `${name}_scale`);
    const z = b.constant(u8(zp), `${name}_zp`);
    return b.node('DequantizeLinear', [b.node('QuantizeLinear', [v, s, z], {}, { name: `${name}_q` }), s, z], {}, { name: `${name}_dq` });
  };
  const xd = pair(x, 2 / 255, 128, 'x');
  const wq = b.constant(Tensor.fromTypedArray(DataType.INT8, [4, 3, 3, 3], Int8Array.from({ length: 108 }, () => Math.round(r() * 254 - 127))), 'conv_w_q');
  const ws = b.constant(Tensor.float32([0.0009, 0.0011, 0.001, 0.0012], [4]), 'conv_w_scale');
  const wz = b.constant(Tensor.fromTypedArray(DataType.INT8, [4], new Int8Array(4)), 'conv_w_zp');
  const w = b.node('DequantizeLinear', [wq, ws, wz], { axis: 0 }, { name: 'conv_w_dq' });
  const bq = b.constant(Tensor.int32([1200, -800, 300, 2000]), 'conv_b_q');
  const bs = b.constant(Tensor.float32([0.0009 * 2 / 255, 0.0011 * 2 / 255, 0.001 * 2 / 255, 0.0012 * 2 / 255], [4]), 'conv_b_scale');
  const bz = b.constant(Tensor.fromTypedArray(DataType.INT32, [4], new Int32Array(4)), 'conv_b_zp');
  const bias = b.node('DequantizeLinear', [bq, bs, bz], { axis: 0 }, { name: 'conv_b_dq' });
  const conv = b.node('Conv', [xd, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv' });
  const cd = pair(conv, 0.1 / 255, 0, 'conv_out');
  const flat = pair(b.node('Flatten', [cd], { axis: 1 }, { name: 'flatten' }), 0.1 / 245, 10, 'flat');
  const mq = b.constant(Tensor.fromTypedArray(DataType.INT8, [256, 4], Int8Array.from({ length: 1024 }, () => Math.round(r() * 250 - 125))), 'mm_w_q');
  const mw = b.node('DequantizeLinear', [mq, b.constant(Tensor.float32([0.01], []), 'mm_w_scale'), b.constant(Tensor.fromTypedArray(DataType.INT8, [], Int8Array.of(3)), 'mm_w_zp')], {}, { name: 'mm_w_dq' });
  b.output(b.node('MatMul', [flat, mw], {}, { name: 'mm' }), 'y');
  return b.build();
}

describe('qdq-to-int8-symmetric', () => {
  test('a hand-built uint8 QDQ model compiled for tensorrt: no uint8 / int32 left, legal, within int8 of the model as given', async () => {
    const original = handBuilt();
    expect(qdqTypes(original)).toEqual(['DequantizeLinear:int32', 'DequantizeLinear:int8', 'DequantizeLinear:uint8', 'QuantizeLinear:uint8']);
    expect(checkPlacement(original, target('tensorrt').capabilities!).violations.length).toBeGreaterThan(0);
    const compiled = cloneModel(original);
    const report = await compile(compiled, target('tensorrt'), { runtime: onnxruntimeNode, verifyEach: true });
    // after qoperator-to-qdq (QLinearConv / QLinearMatMul written as QDQ first; nothing to do here)
    expect(report.pipeline.slice(0, 4)).toEqual(['lower-contrib-ops', 'qoperator-to-qdq', 'dequantize-integer-ops', 'qdq-to-int8-symmetric']);
    // 3 activation pairs, 1 bias dequantized, 1 weight requantized (zero point 3); the int8 conv weight kept
    expect(report.passes.find((p) => p.name === 'qdq-to-int8-symmetric')!.changes).toBe(5);
    expect(qdqTypes(compiled)).toEqual(['DequantizeLinear:int8', 'QuantizeLinear:int8']);
    expect(verifyModel(compiled)).toEqual([]);
    expect(checkPlacement(compiled, target('tensorrt').capabilities!).violations).toEqual([]);
    // every zero point is 0
    for (const n of compiled.graph.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear')) {
      expect(Array.from(n.inputs[2]!.initializer!.toTypedArray() as Int8Array).every((v) => v === 0)).toBe(true);
    }
    const r = rng(11);
    let worst = 1;
    for (let i = 0; i < 4; i++) {
      const feeds = { x: Tensor.float32(Float32Array.from({ length: 192 }, () => r() * 2 - 1), [1, 3, 8, 8]) };
      const ref = await runModel(original, feeds);
      const got = await runModel(compiled, feeds);
      const verdict = judge(outputMetrics('y', ref['y']!, got['y']!), TOLERANCES.int8!);
      expect(verdict.ok, verdict.problem).toBe(true);
      worst = Math.min(worst, verdict.cosine);
    }
    console.log(`hand-built u8 QDQ -> tensorrt: worst cosine vs the model as given ${worst.toFixed(6)}; ${JSON.stringify(report.after.opHistogram)}`);
  });

  test('a target that runs uint8 QDQ (x86-avx2) keeps the model as it is', async () => {
    const m = handBuilt();
    const report = await compile(m, target('x86-avx2'), { runtime: onnxruntimeNode, passes: ['qdq-to-int8-symmetric'] });
    expect(report.passes[0]!.changes).toBe(0);
    expect(qdqTypes(m)).toContain('QuantizeLinear:uint8');
  });

  test('cnn-tiny-op13, --quantize static for x86-avx2, then compiled for tensorrt: legal, within int8 of the x86 static model', async () => {
    const f = loadFixture(path.resolve(import.meta.dirname, '../fixtures/models/cnn-tiny-op13'));
    const x86 = target('x86-avx2');
    const trt = target('tensorrt');
    const { model: mA } = await compileCopy(f.original, x86, 'static', f.sets.map((s) => s.feeds));
    expect(qdqTypes(mA)).toContain('QuantizeLinear:uint8');
    const outputs = await referenceOutputs(mA, x86, f.sets);
    const { model, report } = await compileCopy(mA, trt, 'none');
    expect(report.passes.find((p) => p.name === 'qdq-to-int8-symmetric')!.changes).toBeGreaterThan(0);
    expect(qdqTypes(model)).toEqual(['DequantizeLinear:int8', 'QuantizeLinear:int8']);
    expect(checkPlacement(model, trt.capabilities!).violations).toEqual([]);
    const v = await validateAgainst(mA, outputs, model, (await runtimeFor(trt)).runtime, f.sets, TOLERANCES.int8!);
    expect(v.ok, whyFailed(v)).toBe(true);
    const vs = await validateAgainst(f.original, await referenceOutputs(f.original, x86, f.sets), model, (await runtimeFor(trt)).runtime, f.sets, TOLERANCES.int8!);
    console.log(`cnn-tiny-op13 x86-avx2 static -> tensorrt: worst cosine vs the x86 static model ${v.worst?.cosine.toFixed(6)} (max abs ${v.worst?.maxAbsError.toExponential(2)}), vs the float original ${vs.worst?.cosine.toFixed(6)}`);
  });
});

describe('compile CLI: a uint8 QDQ model recompiled for tensorrt is judged within int8 (its rounding changed); for x86-avx2, fp32', () => {
  test('x86-avx2 static model -> tensorrt: written, validated (int8); -> x86-avx2: int8 by default (it quantizes at run time), and fp32 holds when asked', () => {
    const BIN = path.resolve(import.meta.dirname, '../dist/src/cli/main.js');
    const CNN = path.resolve(import.meta.dirname, '../fixtures/models/cnn-tiny-op13');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-qdq-'));
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
    const x86 = path.join(tmp, 'x86-static.onnx');
    const a = run('compile', path.join(CNN, 'model.onnx'), '-t', 'x86-avx2', '--quantize', 'static', '--calibration', CNN, '-o', x86);
    expect(a.status, a.stderr).toBe(0);
    const trt = run('compile', x86, '-t', 'tensorrt', '--validate-inputs', CNN, '-o', path.join(tmp, 'trt.onnx'));
    expect(trt.status, trt.stderr).toBe(0);
    expect(trt.stderr).toMatch(/validated \(int8\)/);
    const again = run('compile', x86, '-t', 'x86-avx2', '--validate-inputs', CNN, '-o', path.join(tmp, 'again.onnx'));
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/validated \(int8\)/);
    const strict = run('compile', x86, '-t', 'x86-avx2', '--validate-inputs', CNN, '--tolerance', 'fp32', '-o', path.join(tmp, 'strict.onnx'));
    expect(strict.status, strict.stderr).toBe(0);
    expect(strict.stderr).toMatch(/validated \(fp32\)/);
  });
});
