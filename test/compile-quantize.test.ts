/**
 * `compile --quantize static` through each CPU target's whole pipeline (fusions included): the
 * quantized model must be one ONNX Runtime actually runs in int8. ORT's QDQ fusion only turns
 * ai.onnx Conv / MatMul with DequantizeLinear inputs into QLinearConv / QLinearMatMul; a contrib
 * fusion that ran first (FusedConv, Attention) would leave the QDQ pairs around an fp32 kernel.
 * Proof: ORT's own optimized graph (level all, written by `optimizedModelFilePath`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, test } from 'vitest';
import { compile } from '../src/compile.js';
import { syntheticInputs } from '../src/inputs.js';
import { serializeModel } from '../src/io.js';
import type { Model } from '../src/ir/model.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { concatChunks } from '../src/onnx/codec.js';
import { arm64 } from '../targets/arm64.js';
import { cuda } from '../targets/cuda.js';
import { x86Avx2 } from '../targets/x86-avx2.js';
import { x86Vnni } from '../targets/x86-vnni.js';

const fixtures = path.resolve(__dirname, '../fixtures/models');

function histogram(m: Model): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of m.graph.nodes) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

/** The op histogram of the graph ONNX Runtime runs after its own level-all optimization. */
async function ortOptimizedOps(bytes: Uint8Array): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-ortopt-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', optimizedModelFilePath: file, intraOpNumThreads: 1 });
    await s.release();
    return histogram(readModel(file).model);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('compile --quantize static for the CPU targets', () => {
  for (const target of [x86Avx2, x86Vnni, arm64]) {
    test(`${target.name}: cnn-tiny Convs stay ai.onnx Conv for the QDQ pass, and ORT runs every one as QLinearConv`, async () => {
      const { model } = readModel(path.join(fixtures, 'cnn-tiny-op13', 'model.onnx'));
      const calibration = Array.from({ length: 8 }, (_, i) => syntheticInputs(model, { seed: 100 + i, dims: { batch: 1 } }));
      const report = await compile(model, target, { quantize: { mode: 'static', calibration }, runtime: onnxruntimeNode });
      expect(report.violations).toEqual([]);
      const ops = histogram(model);
      expect(ops.FusedConv ?? 0).toBe(0);
      const convs = ops.Conv ?? 0;
      expect(convs).toBeGreaterThanOrEqual(3);
      const optimized = await ortOptimizedOps(concatChunks(serializeModel(model).chunks));
      expect(optimized.QLinearConv).toBe(convs);
      expect(optimized.Conv ?? 0).toBe(0);
      expect(optimized.FusedConv ?? 0).toBe(0);
    });
  }

  test('x86-avx2: gpt2-tiny keeps its projections as MatMuls (no Attention) and ORT runs them as QLinearMatMul', async () => {
    const { model } = readModel(path.join(fixtures, 'gpt2-tiny-op17', 'model.onnx'));
    const calibration = Array.from({ length: 4 }, (_, i) => syntheticInputs(model, { seed: 200 + i, dims: { batch: 1, sequence: 8 }, intHigh: 64 }));
    await compile(model, x86Avx2, { quantize: { mode: 'static', calibration }, runtime: onnxruntimeNode });
    const ops = histogram(model);
    expect(ops.Attention ?? 0).toBe(0);
    // every MatMul but the float lm_head reads a DequantizeLinear'd input
    const quantized = model.graph.nodes.filter((n) => n.opType === 'MatMul' && n.inputs.every((v) => v?.producer?.opType === 'DequantizeLinear')).length;
    expect(quantized).toBe((ops.MatMul ?? 0) - 1);
    const optimized = await ortOptimizedOps(concatChunks(serializeModel(model).chunks));
    expect(optimized.QLinearMatMul).toBe(quantized);
  });

  test('cuda: static keeps the Convs NCHW ai.onnx Conv (no NhwcConv: the QDQ quantizer and the CPU calibration need Conv)', async () => {
    const { model } = readModel(path.join(fixtures, 'cnn-tiny-op13', 'model.onnx'));
    const calibration = Array.from({ length: 4 }, (_, i) => syntheticInputs(model, { seed: 300 + i, dims: { batch: 1 } }));
    const report = await compile(model, cuda, { quantize: { mode: 'static', calibration }, runtime: onnxruntimeNode });
    expect(report.violations).toEqual([]);
    const ops = histogram(model);
    expect(ops.NhwcConv ?? 0).toBe(0);
    expect(model.graph.nodes.filter((n) => n.opType === 'Conv' && n.inputs[1]?.producer?.opType === 'DequantizeLinear').length).toBe(ops.Conv);
  });

  test('without --quantize the same target still fuses Conv + activation into FusedConv', async () => {
    const { model } = readModel(path.join(fixtures, 'cnn-tiny-op13', 'model.onnx'));
    await compile(model, x86Avx2, {});
    expect(histogram(model).FusedConv ?? 0).toBeGreaterThan(0);
  });
});
