import { describe, expect, test } from 'vitest';
import { MIN_WEIGHT_ELEMENTS } from '../../passes/quantize/quantize-dynamic.js';
import { dequantizeInt4Blocks, quantizeInt4, quantizeInt4Blocks } from '../../passes/quantize/quantize-int4.js';
import { toAttribute } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { compareTensors } from '../../src/compare.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { runModel } from './harness.js';
import { accuracy, compiledFixture, feeds, initializerNames, opCount, quantize, rand } from './quantize-util.js';

/** x [batch, 64] -> MatMul(W1 [64, 96]) -> Gemm(transB, alpha 0.5, W2 stored [64, 96], C [64]) -> y; plus e = Gather(E [100, 64], ids) */
function model(k = 64): Model {
  const t = rand(11);
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float32', ['batch', k]);
  const h = b.node('MatMul', [x, b.constant(t([k, 96]), 'w1')], {}, { name: 'fc1' });
  b.output(b.node('Gemm', [h, b.constant(t([64, 96]), 'w2'), b.constant(t([64]), 'b2')], { transB: 1, alpha: 0.5 }, { name: 'fc2' }), 'y');
  const ids = b.input('ids', 'int64', ['batch', 3]);
  b.output(b.node('Gather', [b.constant(t([100, 64]), 'emb'), ids], {}, { name: 'embed' }), 'e');
  return b.build();
}

/**
 * The model with every quantized weight replaced by its dequantized float value, computed from our
 * own packing: ORT's MatMulNBits (at accuracy_level 0, float compute) must match it closely.
 */
function withAccuracyLevel0(m: Model): Model {
  const c = cloneModel(m);
  for (const n of c.graph.nodes) if (n.opType === 'MatMulNBits') n.attributes.set('accuracy_level', toAttribute('accuracy_level', 0));
  return c;
}

describe('quantize-int4: packing', () => {
  test('symmetric: hand-checked codes, low nibble first, scale = m / -8, zero point 8', () => {
    // K = 16 (one block of 16), N = 2; column 0 = (k - 8) / 2, column 1 = 2 at k = 3, else 0
    const col = (n: number, k: number): number => (n === 0 ? (k - 8) / 2 : k === 3 ? 2 : 0);
    const q = quantizeInt4Blocks(col, 16, 2, 16, true);
    expect(q.nBlocks).toBe(1);
    expect(q.zeroPoints).toBeUndefined();
    // column 0: largest magnitude -4 -> scale 0.5, code = x / 0.5 + 8 = k
    // column 1: largest magnitude 2 -> scale -0.25, code(2) = -8 + 8 = 0, code(0) = 8
    expect(Array.from(q.scales)).toEqual([0.5, -0.25]);
    expect(Array.from(q.packed.subarray(0, 8))).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    expect(Array.from(q.packed.subarray(8))).toEqual([0x88, 0x08, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88]);
    const back = dequantizeInt4Blocks(q, 16, 2, 16);
    for (let k = 0; k < 16; k++) {
      expect(back[k]).toBe(col(0, k));
      expect(back[16 + k]! + 0).toBe(col(1, k));
    }
  });

  test('K padded to whole blocks with the zero point; asymmetric zero points packed two blocks a byte', () => {
    // K = 40 with block 16: 3 blocks, the last one 8 long
    const q = quantizeInt4Blocks((_, k) => k, 40, 1, 16, true);
    expect(q.nBlocks).toBe(3);
    expect(q.packed.length).toBe(3 * 8);
    expect(Array.from(q.packed.subarray(20))).toEqual([0x88, 0x88, 0x88, 0x88]);
    // asymmetric: block b holds values in [b, b + 1.5]; zero point 0 for blocks of non-negative values
    const a = quantizeInt4Blocks((_, k) => (k < 16 ? -1 + k / 10 : k < 32 ? -3 + k / 100 : 1), 48, 1, 16, false);
    expect(a.zeroPoints!.length).toBe(2);
    const zps = [a.zeroPoints![0]! & 0xf, a.zeroPoints![0]! >> 4, a.zeroPoints![1]! & 0xf];
    // block 0: [-1, 0.5] -> scale 0.1, zp 10; block 1: [-2.84, 0] -> zp 15; block 2: [0, 1] -> zp 0
    expect(zps).toEqual([10, 15, 0]);
    expect(a.zeroPoints![1]! >> 4).toBe(0);
    const back = dequantizeInt4Blocks(a, 48, 1, 16);
    for (let k = 0; k < 48; k++) expect(Math.abs(back[k]! - (k < 16 ? -1 + k / 10 : k < 32 ? -3 + k / 100 : 1))).toBeLessThanOrEqual(a.scales[Math.floor(k / 16)]! / 2 + 1e-6);
  });
});

describe('quantize-int4: rewrites', () => {
  for (const [blockSize, symmetric, k] of [[32, true, 64], [16, false, 64], [64, true, 80], [128, false, 200]] as const) {
    test(`MatMul/Gemm -> MatMulNBits, Gather -> GatherBlockQuantized, block ${blockSize}, ${symmetric ? 'symmetric' : 'with zero points'}, K ${k}: matches ORT`, async () => {
      const m = model(k);
      const quant = { mode: 'int4' as const, blockSize, symmetric, int8Budget: 0 }; // pure int4: this checks the 4-bit layout
      const { after, changes } = await quantize(m, quantizeInt4, quant, x86Avx2);
      const embeds = k === 64 || blockSize <= 64 ? 1 : 0; // D = 64: a whole number of blocks unless the block is 128
      expect(changes).toBe(2 + embeds);
      expect(opCount(after, 'MatMulNBits')).toBe(2);
      expect(opCount(after, 'GatherBlockQuantized')).toBe(embeds);
      expect(opCount(after, 'MatMul') + opCount(after, 'Gemm')).toBe(0);
      const inits = initializerNames(after);
      expect(inits.has('w1') || inits.has('w2')).toBe(false);
      for (const n of after.graph.nodes.filter((x) => x.opType === 'MatMulNBits')) {
        const b = n.inputs[1]!.initializer!;
        const kk = Number((n.attr('K') as { value: number }).value), nn = Number((n.attr('N') as { value: number }).value);
        expect(b.dims).toEqual([nn, Math.ceil(kk / blockSize), blockSize / 2]);
        expect(n.inputs[2]!.initializer!.dims).toEqual([nn * Math.ceil(kk / blockSize)]);
        expect(n.inputs[3] !== undefined).toBe(!symmetric);
      }
      const r = (quant as { report?: Record<string, unknown> }).report!['quantize-int4'] as { quantized: number; weightBytesBefore: number; weightBytesAfter: number };
      expect(r.quantized).toBe(2);
      expect(r.weightBytesAfter).toBeLessThan(r.weightBytesBefore / 4);
      const acc = await accuracy(m, after, [1, 2], { batch: 4 });
      expect(acc.cosine).toBeGreaterThanOrEqual(0.98);
      // exactness of the packing against ORT: float-compute MatMulNBits vs the weights we dequantize ourselves
      const exact = withAccuracyLevel0(after);
      const deq = cloneModel(m);
      for (const v of deq.graph.initializers) {
        if (v.name === 'w1') {
          const w = v.initializer!.toTypedArray() as Float32Array;
          const q = quantizeInt4Blocks((c, kk) => w[kk * 96 + c]!, k, 96, blockSize, symmetric);
          const d = dequantizeInt4Blocks(q, k, 96, blockSize);
          deq.graph.setInitializer(v, Tensor.float32(Array.from({ length: k * 96 }, (_, i) => d[(i % 96) * k + Math.floor(i / 96)]!), [k, 96]));
        } else if (v.name === 'w2' || v.name === 'emb') {
          const [rows, cols] = v.initializer!.dims as [number, number];
          if (v.name === 'emb' && !embeds) continue;
          const w = v.initializer!.toTypedArray() as Float32Array;
          const q = quantizeInt4Blocks((r0, c) => w[r0 * cols + c]!, cols, rows, blockSize, symmetric);
          deq.graph.setInitializer(v, Tensor.float32(dequantizeInt4Blocks(q, cols, rows, blockSize), [rows, cols]));
        }
      }
      const f = feeds(m, 5, { batch: 3 });
      const want = await runModel(deq, f);
      const got = await runModel(exact, f);
      for (const name of ['y', 'e']) {
        const c = compareTensors(got[name]!, want[name]!, { rtol: 1e-4, atol: 1e-4 });
        expect(c.ok, `${name}: ${c.problem}`).toBe(true);
      }
    });
  }

  test('embedding tables get 8 bits by default (GatherBlockQuantized bits 8, one byte a code), 4 with int8Budget 0: matches ORT', async () => {
    const m = model();
    const { after } = await quantize(m, quantizeInt4, { mode: 'int4' }, x86Avx2);
    const g = after.graph.nodes.find((n) => n.opType === 'GatherBlockQuantized')!;
    expect(Number((g.attr('bits') as { value: number }).value)).toBe(8);
    expect(g.inputs[0]!.initializer!.dims).toEqual([100, 64]);
    const f = feeds(m, 3, { batch: 2 });
    const want = (await runModel(m, f)).e!, got = (await runModel(after, f)).e!;
    const w = want.toTypedArray() as Float32Array, o = got.toTypedArray() as Float32Array;
    const table = m.graph.initializers.find((v) => v.name === 'emb')!.initializer!.toTypedArray() as Float32Array;
    const step = Math.max(...Array.from(table, Math.abs)) / 127;
    for (let i = 0; i < w.length; i++) expect(Math.abs(w[i]! - o[i]!)).toBeLessThanOrEqual(step / 2 + 1e-7);
    const pure = await quantize(m, quantizeInt4, { mode: 'int4', int8Budget: 0 }, x86Avx2);
    expect(Number((pure.after.graph.nodes.find((n) => n.opType === 'GatherBlockQuantized')!.attr('bits') as { value: number }).value)).toBe(4);
  });

  test('does nothing without mode int4; keepFloat; tiny weights stay float', async () => {
    const m = model();
    expect((await quantize(m, quantizeInt4, { mode: 'dynamic' }, x86Avx2)).changes).toBe(0);
    const kept = await quantize(m, quantizeInt4, { mode: 'int4', keepFloat: ['fc1', 'Gather'] }, x86Avx2);
    expect(opCount(kept.after, 'MatMulNBits')).toBe(1);
    expect(opCount(kept.after, 'GatherBlockQuantized')).toBe(0);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 32]);
    b.output(b.node('MatMul', [x, b.constant(rand(1)([32, 32]), 'w')]), 'y');
    expect(32 * 32).toBeLessThan(MIN_WEIGHT_ELEMENTS);
    expect((await quantize(b.build(), quantizeInt4, { mode: 'int4' }, x86Avx2)).changes).toBe(0);
  });
});

describe('quantize-int4: fixtures', () => {
  for (const name of ['gpt2-tiny-op14', 'bert-tiny-op17']) {
    test(`${name}: runs in onnxruntime, MatMulNBits per quantized MatMul, cosine >= 0.98`, async () => {
      const { model: m, ranges } = await compiledFixture(name, x86Avx2);
      const quant = { mode: 'int4' as const };
      const { after, changes } = await quantize(m, quantizeInt4, quant, x86Avx2);
      const r = (quant as { report?: Record<string, unknown> }).report!['quantize-int4'] as { quantized: number; embeddings: number };
      expect(r.quantized).toBeGreaterThan(0);
      expect(changes).toBe(r.quantized + r.embeddings);
      expect(opCount(after, 'MatMulNBits')).toBe(r.quantized);
      const quantizedWeights = m.graph.nodes
        .filter((n) => (n.opType === 'MatMul' || n.opType === 'Gemm') && n.inputs[1]?.initializer && n.inputs[1].initializer.elementCount >= MIN_WEIGHT_ELEMENTS)
        .map((n) => n.inputs[1]!.name);
      expect(quantizedWeights.length).toBe(r.quantized);
      const inits = initializerNames(after);
      for (const w of quantizedWeights) expect(inits.has(w), w).toBe(false);
      const acc = await accuracy(m, after, [1, 2, 3], { batch: 1, sequence: 16, seq: 16, batch_size: 1, sequence_length: 16 }, ranges);
      expect(acc.cosine).toBeGreaterThanOrEqual(0.98);
    });
  }
});

describe('quantize-int4: 8-bit weights within the size budget', () => {
  test('the longest-K MatMul gets 8 bits first; the budget caps how many', async () => {
    const { ModelBuilder } = await import('../../src/ir/builder.js');
    const { Tensor: T } = await import('../../src/ir/tensor.js');
    const { PassManager } = await import('../../src/pass/manager.js');
    const { quantizeInt4 } = await import('../../passes/quantize/quantize-int4.js');
    const { x86Avx2 } = await import('../../targets/x86-avx2.js');
    const build = () => {
      const b = new ModelBuilder({ opset: 17 });
      const x = b.input('x', 'float32', [2, 64]);
      const w = (k: number, n: number, name: string) => b.constant(T.float32(Array.from({ length: k * n }, (_, i) => Math.sin(i * 0.37)), [k, n]), name);
      const up = b.node('MatMul', [x, w(64, 256, 'up')], {}, { name: 'up' });
      const down = b.node('MatMul', [b.node('Relu', [up]), w(256, 64, 'down')], {}, { name: 'down' });
      b.output(b.node('MatMul', [down, w(64, 64, 'proj')], {}, { name: 'proj' }), 'y');
      return b.build();
    };
    const bitsOf = (m: ReturnType<typeof build>) => Object.fromEntries(m.graph.nodes.filter((n) => n.opType === 'MatMulNBits').map((n) => [n.name, Number(n.attr('bits')!.value)]));
    // fp32 weights: 64*256*4*2 + 64*64*4 = 147456 bytes. All 4-bit: up and down 8192 + 2048 bytes of
    // scales each, proj 2048 + 512: 23040. 8 bits costs 8192 more for down (K 256, first in line), 2048 for proj.
    const roomy = build();
    await new PassManager([quantizeInt4], { target: x86Avx2, quantize: { mode: 'int4', int8Budget: 0.22 } }).run(roomy);
    expect(bitsOf(roomy)).toEqual({ down_q8: 8, up_q4: 4, proj_q4: 4 }); // 31232 <= 32440; proj would make 33280
    const tight = build();
    await new PassManager([quantizeInt4], { target: x86Avx2, quantize: { mode: 'int4', int8Budget: 0.2 } }).run(tight);
    expect(bitsOf(tight)).toEqual({ down_q4: 4, up_q4: 4, proj_q8: 8 }); // down does not fit in 29491; proj does
    const none = build();
    await new PassManager([quantizeInt4], { target: x86Avx2, quantize: { mode: 'int4', int8Budget: 0 } }).run(none);
    expect(bitsOf(none)).toEqual({ down_q4: 4, up_q4: 4, proj_q4: 4 });
  });
});
