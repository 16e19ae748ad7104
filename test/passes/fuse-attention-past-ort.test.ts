/**
 * The ONNX Runtime facts fuse-attention-past relies on, checked on one-node com.microsoft
 * MultiHeadAttention models in onnxruntime-node (CPU EP) against the decoder's own formula
 * (GPT-2 with past: Where(causal, q k^T * scale, finfo.min) + (1 - mask) * finfo.min, softmax, @ v).
 * If a runtime upgrade changes one of them, this file says which.
 */
import { describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { runModel } from './harness.js';

const N = 2, D = 4, HD = N * D;
const NEG = -3.4028234663852886e38;

interface Case { b: number; s: number; p: number; mask: number[][] }

function data(c: Case, seed: number) {
  const r = seededRandom(seed);
  const t = (dims: number[]) => Tensor.float32(Array.from({ length: dims.reduce((a, x) => a * x, 1) }, () => r() * 2 - 1), dims);
  return { q: t([c.b, c.s, HD]), k: t([c.b, c.s, HD]), v: t([c.b, c.s, HD]), pk: t([c.b, N, c.p, D]), pv: t([c.b, N, c.p, D]) };
}

/** The decoder's attention in float32 steps as exported: y [b, s, H*D]. */
function reference(c: Case, x: ReturnType<typeof data>): Float32Array {
  const { b, s, p } = c, t = p + s, f = Math.fround;
  const q = x.q.toTypedArray() as Float32Array, k = x.k.toTypedArray() as Float32Array, v = x.v.toTypedArray() as Float32Array;
  const pk = x.pk.toTypedArray() as Float32Array, pv = x.pv.toTypedArray() as Float32Array;
  // key/value at [bi, h, j, d]: the cache, then this step's
  const kv = (cache: Float32Array, cur: Float32Array, bi: number, h: number, j: number, d: number): number =>
    j < p ? cache[((bi * N + h) * p + j) * D + d]! : cur[(bi * s + (j - p)) * HD + h * D + d]!;
  const y = new Float32Array(b * s * HD);
  for (let bi = 0; bi < b; bi++) {
    for (let h = 0; h < N; h++) {
      for (let i = 0; i < s; i++) {
        const w = new Array<number>(t);
        for (let j = 0; j < t; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot = f(dot + f(q[(bi * s + i) * HD + h * D + d]! * kv(pk, k, bi, h, j, d)));
          const scaled = f(dot / 2);
          const causal = j <= p + i ? scaled : NEG;
          w[j] = f(causal + f((1 - c.mask[bi]![j]!) * NEG));
        }
        const max = Math.max(...w);
        const e = w.map((z) => Math.exp(z - max));
        const sum = e.reduce((a, z) => a + z, 0);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < t; j++) acc += (e[j]! / sum) * kv(pv, v, bi, h, j, d);
          y[(bi * s + i) * HD + h * D + d] = acc;
        }
      }
    }
  }
  return y;
}

/** The bias the pass builds: Where(j > p + i, NEG, 0) + (1 - mask) * NEG, [b, 1, s, t] (in float32). */
function fullBias(c: Case): Tensor {
  const t = c.p + c.s, out: number[] = [];
  for (let bi = 0; bi < c.b; bi++) for (let i = 0; i < c.s; i++) for (let j = 0; j < t; j++) out.push(Math.fround((j > c.p + i ? NEG : 0) + Math.fround((1 - c.mask[bi]![j]!) * NEG)));
  return Tensor.float32(out, [c.b, 1, c.s, t]);
}

function mha(attrs: Record<string, unknown>, extra: { kpm?: boolean; bias?: (string | number)[] }): Model {
  const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
  const q = b.input('q', 'float32', ['b', 's', HD]), k = b.input('k', 'float32', ['b', 's', HD]), v = b.input('v', 'float32', ['b', 's', HD]);
  const pk = b.input('pk', 'float32', ['b', N, 'p', D]), pv = b.input('pv', 'float32', ['b', N, 'p', D]);
  const kpm = extra.kpm ? b.input('kpm', 'int32', ['b', 't']) : undefined;
  const bias = extra.bias ? b.input('bias', 'float32', extra.bias) : undefined;
  const [y, pk2, pv2] = b.nodeN('MultiHeadAttention', [q, k, v, undefined, kpm, bias, pk, pv], { num_heads: N, scale: 0.5, ...attrs }, { domain: 'com.microsoft', outputs: 3 });
  b.output(y!, 'y');
  b.output(pk2!, 'present_key');
  b.output(pv2!, 'present_value');
  return b.build();
}

function maxDiff(a: Float32Array, b: Float32Array, rows?: (row: number) => boolean): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) if (!rows || rows(Math.floor(i / HD))) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

// row 1 left-padded by 2 on a prefill (past 0): its queries 0 and 1 are padding themselves
const PADDED_PREFILL: Case = { b: 2, s: 5, p: 0, mask: [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]] };
// padding in the past only (as test_data_set_1 of the fixture), and a decode step
const CASES: Case[] = [
  { b: 2, s: 3, p: 4, mask: [[1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]] },
  { b: 1, s: 1, p: 7, mask: [[1, 1, 1, 1, 1, 1, 1, 1]] },
  PADDED_PREFILL,
];
const isPaddedQuery = (row: number): boolean => row === 5 || row === 6; // batch 1, queries 0 and 1

describe('ORT MultiHeadAttention (CPU EP) as fuse-attention-past uses it', () => {
  test('past_key/past_value in, present = Concat(past, new) out; attention_bias [b, 1, s, t] = the masks: the decoder exactly, padded query rows too', async () => {
    const model = mha({}, { bias: ['b', 1, 's', 't'] });
    for (const [n, c] of CASES.entries()) {
      const x = data(c, n + 1);
      const got = await runModel(model, { ...x, bias: fullBias(c) });
      expect(maxDiff(got.y!.toTypedArray() as Float32Array, reference(c, x))).toBeLessThan(1e-5);
      expect(got.present_key!.dims).toEqual([c.b, N, c.p + c.s, D]);
    }
  });

  test('causal alone: unidirectional=1 is the Where mask with past (query i sees keys <= p + i)', async () => {
    const model = mha({ unidirectional: 1 }, {});
    for (const [n, c0] of CASES.entries()) {
      const c = { ...c0, mask: c0.mask.map((r) => r.map(() => 1)) };
      const x = data(c, n + 10);
      const got = await runModel(model, x);
      expect(maxDiff(got.y!.toTypedArray() as Float32Array, reference(c, x))).toBeLessThan(1e-5);
    }
  });

  test('unidirectional + key_padding_mask (mask_filter_value finfo.min) differs on padded query rows, so the padding goes into attention_bias', async () => {
    const model = mha({ unidirectional: 1, mask_filter_value: NEG }, { kpm: true });
    const c = PADDED_PREFILL, x = data(c, 20);
    const got = await runModel(model, { ...x, kpm: Tensor.int32(c.mask.flat(), [c.b, c.p + c.s]) });
    const y = got.y!.toTypedArray() as Float32Array, want = reference(c, x);
    expect(maxDiff(y, want, (r) => !isPaddedQuery(r))).toBeLessThan(1e-5);
    expect(maxDiff(y, want, isPaddedQuery)).toBeGreaterThan(1e-2);
  });

  test('attention_bias [b, 1, 1, t] (broadcast over the queries) is refused', async () => {
    const model = mha({ unidirectional: 1 }, { bias: ['b', 1, 1, 't'] });
    const c = CASES[0]!, x = data(c, 30);
    await expect(runModel(model, { ...x, bias: Tensor.float32(new Array(c.b * (c.p + c.s)).fill(0), [c.b, 1, 1, c.p + c.s]) })).rejects.toThrow(/dimension 2 should be same as sequence_length/);
  });
});
