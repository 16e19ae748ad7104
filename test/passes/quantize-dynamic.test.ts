import { describe, expect, test } from 'vitest';
import { MIN_WEIGHT_ELEMENTS, quantizeDynamic, quantizeWeight, quantRange, weightSpec } from '../../passes/quantize/quantize-dynamic.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/model.js';
import type { Target } from '../../src/target.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { accuracy, compiledFixture, initializerNames, opCount, quantize, rand } from './quantize-util.js';

/** x86-avx2 without com.microsoft ops: the pass must use the standard form. */
const noContrib: Target = {
  ...x86Avx2,
  name: 'x86-avx2-standard-only',
  capabilities: { ...x86Avx2.capabilities!, domains: x86Avx2.capabilities!.domains.filter((d) => d !== 'com.microsoft') },
};

/** x [batch, 64] -> MatMul(W1 [64,128]) + b1 -> Relu -> Gemm(transB, alpha 0.5, W2 stored [64,128], C [64]) -> MatMul(W3 [64, 8]) (small) */
function mlp(): Model {
  const t = rand(7);
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float32', ['batch', 64]);
  const h = b.node('Relu', [b.node('Add', [b.node('MatMul', [x, b.constant(t([64, 128]), 'w1')], {}, { name: 'fc1' }), b.constant(t([128]), 'b1')])]);
  const g = b.node('Gemm', [h, b.constant(t([64, 128]), 'w2'), b.constant(t([64]), 'b2')], { transB: 1, alpha: 0.5 }, { name: 'fc2' });
  b.output(b.node('MatMul', [g, b.constant(t([64, 8]), 'w3')], {}, { name: 'head' }), 'y');
  return b.build();
}

describe('quantize-dynamic: weight quantization', () => {
  test('symmetric per-channel int8, reduce range: hand-checked values in [-64, 63]', () => {
    // [K=2, N=3]
    const w = Float32Array.from([1, -2, 0.25, -0.25, 0.5, -1]);
    const q = quantizeWeight(w, 2, 3, { type: 'int8', symmetric: true, perChannel: true, reduceRange: true });
    expect(Array.from(q.scales)).toEqual([1 / 63, 2 / 63, 1 / 63].map(Math.fround));
    // 0.25 * 63 = 15.75 -> 16; 0.5 / (2 / 63) = 15.75 -> 16
    expect(Array.from(q.q)).toEqual([63, -63, 16, -16, 16, -63]);
    expect(Array.from(q.zeroPoints)).toEqual([0, 0, 0]);
    expect(quantRange({ type: 'int8', reduceRange: true })).toEqual([-64, 63]);
  });

  test('full range uses [-127, 127]; per-tensor one scale; uint8 asymmetric reduced to [0, 127]', () => {
    const t = rand(3)([32, 16], -3, 2);
    const w = t.toTypedArray() as Float32Array;
    const full = quantizeWeight(w, 32, 16, { type: 'int8', symmetric: true, perChannel: true, reduceRange: false });
    expect(Math.max(...Array.from(full.q, Math.abs))).toBe(127);
    const reduced = quantizeWeight(w, 32, 16, { type: 'int8', symmetric: true, perChannel: true, reduceRange: true });
    expect(Math.min(...reduced.q)).toBeGreaterThanOrEqual(-64);
    expect(Math.max(...reduced.q)).toBeLessThanOrEqual(63);
    const tensor = quantizeWeight(w, 32, 16, { type: 'int8', symmetric: true, perChannel: false, reduceRange: true });
    expect(tensor.scales.length).toBe(1);
    const u8 = quantizeWeight(w, 32, 16, { type: 'uint8', symmetric: false, perChannel: true, reduceRange: true });
    expect(Math.min(...u8.q)).toBe(0);
    expect(Math.max(...u8.q)).toBe(127);
    // dequantized error within half a step
    for (let i = 0; i < w.length; i++) {
      const c = i % 16;
      expect(Math.abs((u8.q[i]! - u8.zeroPoints[c]!) * u8.scales[c]! - w[i]!)).toBeLessThanOrEqual(u8.scales[c]! / 2 + 1e-6);
      expect(Math.abs(reduced.q[i]! * reduced.scales[c]! - w[i]!)).toBeLessThanOrEqual(reduced.scales[c]! / 2 + 1e-6);
    }
  });

  test('the x86-avx2 preset: int8 symmetric per-channel with reduce range', () => {
    expect(weightSpec(x86Avx2.quantization)).toEqual({ type: 'int8', symmetric: true, perChannel: true, reduceRange: true });
  });
});

describe('quantize-dynamic: rewrites', () => {
  test('DynamicQuantizeMatMul where the target has it: bias Add absorbed, Gemm transB/alpha/C folded, tiny MatMul kept', async () => {
    const model = mlp();
    const quant = { mode: 'dynamic' as const };
    const { after, changes } = await quantize(model, quantizeDynamic, quant, x86Avx2);
    expect(changes).toBe(2);
    expect(opCount(after, 'DynamicQuantizeMatMul')).toBe(2);
    expect(opCount(after, 'Gemm') + opCount(after, 'Add')).toBe(0);
    expect(opCount(after, 'MatMul')).toBe(1); // w3: 64*8 < MIN_WEIGHT_ELEMENTS
    expect(64 * 8).toBeLessThan(MIN_WEIGHT_ELEMENTS);
    const inits = initializerNames(after);
    expect(inits.has('w1') || inits.has('w2')).toBe(false);
    expect(inits.has('w3')).toBe(true);
    expect(after.opsetImports.some((o) => o.domain === 'com.microsoft')).toBe(true);
    const r = (quant as { report?: Record<string, unknown> }).report?.['quantize-dynamic'] as { quantized: number; weightBytesBefore: number; weightBytesAfter: number; nodes: string[] };
    expect(r.quantized).toBe(2);
    expect(r.nodes).toEqual(['fc1', 'fc2']);
    expect(r.weightBytesBefore).toBe(2 * 64 * 128 * 4);
    expect(r.weightBytesAfter).toBeLessThan(r.weightBytesBefore / 3.5);
    const acc = await accuracy(model, after, [1, 2, 3], { batch: 5 });
    expect(acc.cosine).toBeGreaterThanOrEqual(0.99);
  });

  test('standard form (DynamicQuantizeLinear + MatMulInteger) on a target without com.microsoft', async () => {
    const model = mlp();
    const { after, changes } = await quantize(model, quantizeDynamic, { mode: 'dynamic' }, noContrib);
    expect(changes).toBe(2);
    expect(opCount(after, 'DynamicQuantizeMatMul')).toBe(0);
    expect(opCount(after, 'DynamicQuantizeLinear')).toBe(2);
    expect(opCount(after, 'MatMulInteger')).toBe(2);
    expect(after.opsetImports.some((o) => o.domain === 'com.microsoft')).toBe(false);
    const acc = await accuracy(model, after, [1, 2], { batch: 3 });
    expect(acc.cosine).toBeGreaterThanOrEqual(0.99);
  });

  test('embedding tables -> GatherBlockQuantized (8 bits, blocks of 32) where the target runs it; a Gather elsewhere', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const ids = b.input('ids', 'int64', ['batch', 3]);
    const table = rand(5)([200, 64]);
    b.output(b.node('Gather', [b.constant(table, 'emb'), ids], {}, { name: 'embed' }), 'e');
    const model = b.build();
    const { after, changes } = await quantize(model, quantizeDynamic, { mode: 'dynamic' }, x86Avx2);
    expect(changes).toBeGreaterThan(0);
    const g = after.graph.nodes.find((n) => n.opType === 'GatherBlockQuantized')!;
    expect(Number((g.attr('bits') as { value: number }).value)).toBe(8);
    expect(initializerNames(after).has('emb')).toBe(false);
    const acc = await accuracy(model, after, [1, 2], { batch: 2 });
    expect(acc.cosine).toBeGreaterThanOrEqual(0.9999);
    const plain = await quantize(model, quantizeDynamic, { mode: 'dynamic' }, noContrib);
    expect(opCount(plain.after, 'Gather')).toBe(1);
    expect(opCount(plain.after, 'GatherBlockQuantized')).toBe(0);
  });

  test('uint8 asymmetric weights (a preset asking for them) run in both forms', async () => {
    const model = mlp();
    const u8: Target = { ...x86Avx2, quantization: { ...x86Avx2.quantization!, weights: 'uint8', symmetricWeights: false } };
    for (const target of [u8, { ...noContrib, quantization: u8.quantization! }]) {
      const { after, changes } = await quantize(model, quantizeDynamic, { mode: 'dynamic' }, target);
      expect(changes).toBe(2);
      const acc = await accuracy(model, after, [4], { batch: 2 });
      expect(acc.cosine).toBeGreaterThanOrEqual(0.99);
    }
  });

  test('does nothing without mode dynamic; keepFloat by node name and by op type', async () => {
    const model = mlp();
    expect((await quantize(model, quantizeDynamic, { mode: 'int4' }, x86Avx2)).changes).toBe(0);
    const byName = await quantize(model, quantizeDynamic, { mode: 'dynamic', keepFloat: ['fc1'] }, x86Avx2);
    expect(opCount(byName.after, 'DynamicQuantizeMatMul')).toBe(1);
    expect(initializerNames(byName.after).has('w1')).toBe(true);
    const byOp = await quantize(model, quantizeDynamic, { mode: 'dynamic', keepFloat: ['Gemm'] }, x86Avx2);
    expect(opCount(byOp.after, 'DynamicQuantizeMatMul')).toBe(1);
    expect(opCount(byOp.after, 'Gemm')).toBe(1);
  });
});

describe('quantize-dynamic: fixtures', () => {
  for (const name of ['gpt2-tiny-op14', 'bert-tiny-op17']) {
    test(`${name}: runs in onnxruntime, quantized MatMuls replaced, cosine >= 0.99`, async () => {
      const { model, ranges } = await compiledFixture(name, x86Avx2);
      const quant = { mode: 'dynamic' as const };
      const { after, changes } = await quantize(model, quantizeDynamic, quant, x86Avx2);
      const r = (quant as { report?: Record<string, unknown> }).report!['quantize-dynamic'] as { quantized: number };
      expect(changes).toBeGreaterThan(0);
      expect(r.quantized).toBe(changes);
      expect(opCount(after, 'DynamicQuantizeMatMul')).toBe(r.quantized);
      // the quantized weights' float initializers are gone
      const quantizedWeights = model.graph.nodes
        .filter((n) => (n.opType === 'MatMul' || n.opType === 'Gemm') && n.inputs[1]?.initializer && n.inputs[1].initializer.elementCount >= MIN_WEIGHT_ELEMENTS)
        .map((n) => n.inputs[1]!.name);
      expect(quantizedWeights.length).toBe(r.quantized);
      const inits = initializerNames(after);
      for (const w of quantizedWeights) expect(inits.has(w), w).toBe(false);
      const acc = await accuracy(model, after, [1, 2, 3], { batch: 1, sequence: 16, seq: 16, batch_size: 1, sequence_length: 16 }, ranges);
      expect(acc.cosine).toBeGreaterThanOrEqual(0.99);
    });
  }
});
