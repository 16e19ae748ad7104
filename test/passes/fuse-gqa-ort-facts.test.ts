/**
 * The ONNX Runtime facts fuse-rotary and fuse-gqa rely on, checked with one-node models on
 * onnxruntime-node's CPU EP against a reference written here (the math of the Llama graph: additive
 * mask, softmax over all keys, ORT's Softmax op for the fully masked row).
 */
import { describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { runModel } from './harness.js';

const LOWEST = -3.4028234663852886e38;
const r = seededRandom(5);
const randn = (n: number): Float32Array => Float32Array.from({ length: n }, () => r() * 2 - 1);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('RotaryEmbedding (com.microsoft, ORT CPU)', () => {
  const Bt = 2, N = 3, S = 4, H = 8, P = 16;
  async function rotary(fourD: boolean, rotDim: number, interleaved: number): Promise<number> {
    const R = rotDim || H;
    const b = new ModelBuilder({ opset: 14, opsets: { 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', fourD ? [Bt, N, S, H] : [Bt, S, N * H]);
    const attrs: Record<string, unknown> = { interleaved, num_heads: N };
    if (rotDim) attrs.rotary_embedding_dim = rotDim;
    b.output(b.node('RotaryEmbedding', [x, b.input('pos', 'int64', [Bt, S]), b.input('cos', 'float32', [P, R / 2]), b.input('sin', 'float32', [P, R / 2])], attrs, { domain: 'com.microsoft' }), 'y');
    const xs = randn(Bt * N * S * H);
    const pos = [3, 4, 5, 6, 1, 1, 0, 1];
    const cs = new Float32Array((P * R) / 2), sn = new Float32Array((P * R) / 2);
    for (let p = 0; p < P; p++) for (let i = 0; i < R / 2; i++) { const a = p / 10000 ** ((2 * i) / R); cs[(p * R) / 2 + i] = Math.cos(a); sn[(p * R) / 2 + i] = Math.sin(a); }
    const y = (await runModel(b.build(), { x: Tensor.float32(xs, fourD ? [Bt, N, S, H] : [Bt, S, N * H]), pos: Tensor.int64(pos, [Bt, S]), cos: Tensor.float32(cs, [P, R / 2]), sin: Tensor.float32(sn, [P, R / 2]) })).y!.toTypedArray() as Float32Array;
    const at = (bb: number, n: number, s: number, h: number): number => (fourD ? ((bb * N + n) * S + s) * H + h : ((bb * S + s) * N + n) * H + h);
    const ref = Float32Array.from(xs);
    for (let bb = 0; bb < Bt; bb++) for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) {
      const p = pos[bb * S + s]!;
      for (let i = 0; i < R / 2; i++) {
        const c = cs[(p * R) / 2 + i]!, si = sn[(p * R) / 2 + i]!;
        const [i1, i2] = interleaved ? [2 * i, 2 * i + 1] : [i, i + R / 2];
        const x1 = xs[at(bb, n, s, i1)]!, x2 = xs[at(bb, n, s, i2)]!;
        ref[at(bb, n, s, i1)] = x1 * c - x2 * si;
        ref[at(bb, n, s, i2)] = x2 * c + x1 * si;
      }
    }
    return maxDiff(y, ref);
  }

  test.each([
    ['4-D input read as [batch, heads, seq, head]', true, 0, 0],
    ['3-D input [batch, seq, heads*head] with num_heads', false, 0, 0],
    ['partial: rotary_embedding_dim 4 of 8, the rest passed through', true, 4, 0],
    ['interleaved=1: pairs (2i, 2i+1)', true, 0, 1],
  ] as const)('%s: rotate-half with cos/sin[position_ids] (half tables [P, R/2])', async (_n, fourD, rd, il) => {
    expect(await rotary(fourD, rd, il)).toBeLessThan(1e-6);
  });
});

describe('GroupQueryAttention (com.microsoft, ORT CPU)', () => {
  const N = 4, KV = 2, H = 8;
  /** lift: feed GQA the bias with lowest replaced by -3e38 (the reference keeps lowest) */
  interface Case { B: number; S: number; P: number; mask: number[][]; seqlens: number[]; bias?: boolean; lift?: boolean }

  /** GQA output and present_key, and the reference (additive finfo.min mask, softmax over all T keys). */
  async function gqa(c: Case): Promise<{ rows: number[]; presentKey: number }> {
    const { B, S, P } = c, T = P + S;
    const b = new ModelBuilder({ opset: 14, opsets: { 'com.microsoft': 1 } });
    const ins = [
      b.input('q', 'float32', [B, S, N * H]), b.input('k', 'float32', [B, S, KV * H]), b.input('v', 'float32', [B, S, KV * H]),
      b.input('pk', 'float32', [B, KV, P, H]), b.input('pv', 'float32', [B, KV, P, H]), b.input('sl', 'int32', [B]), b.input('tl', 'int32', []),
    ];
    if (c.bias) ins.push(undefined as never, undefined as never, undefined as never, b.input('bias', 'float32', [B, 1, S, T]));
    const [o, prk] = b.nodeN('GroupQueryAttention', ins, { num_heads: N, kv_num_heads: KV, scale: 1 / Math.sqrt(H) }, { domain: 'com.microsoft', outputs: 3 });
    b.output(o!, 'o'); b.output(prk!, 'present_key');
    const qs = randn(B * S * N * H), ks = randn(B * S * KV * H), vs = randn(B * S * KV * H), pks = randn(B * KV * P * H), pvs = randn(B * KV * P * H);
    const bias = new Float32Array(B * S * T);
    for (let bb = 0; bb < B; bb++) for (let i = 0; i < S; i++) for (let j = 0; j < T; j++) bias[(bb * S + i) * T + j] = c.mask[bb]![j] === 1 && j <= P + i ? 0 : LOWEST;
    const feeds: Record<string, Tensor> = {
      q: Tensor.float32(qs, [B, S, N * H]), k: Tensor.float32(ks, [B, S, KV * H]), v: Tensor.float32(vs, [B, S, KV * H]),
      pk: Tensor.float32(pks, [B, KV, P, H]), pv: Tensor.float32(pvs, [B, KV, P, H]), sl: Tensor.int32(c.seqlens, [B]), tl: Tensor.int32([T], []),
    };
    if (c.bias) feeds.bias = Tensor.float32(c.lift ? bias.map((x) => (x === LOWEST ? -3e38 : x)) : bias, [B, 1, S, T]);
    const out = await runModel(b.build(), feeds);
    const got = out.o!.toTypedArray() as Float32Array;
    const K = (bb: number, kh: number, j: number, h: number): number => (j < P ? pks[((bb * KV + kh) * P + j) * H + h]! : ks[((bb * S + j - P) * KV + kh) * H + h]!);
    const V = (bb: number, kh: number, j: number, h: number): number => (j < P ? pvs[((bb * KV + kh) * P + j) * H + h]! : vs[((bb * S + j - P) * KV + kh) * H + h]!);
    const rows: number[] = [];
    for (let bb = 0; bb < B; bb++) for (let i = 0; i < S; i++) {
      let worst = 0;
      for (let n = 0; n < N; n++) {
        const kh = Math.floor(n / (N / KV));
        const sc = Array.from({ length: T }, (_, j) => {
          let d = 0;
          for (let h = 0; h < H; h++) d += qs[((bb * S + i) * N + n) * H + h]! * K(bb, kh, j, h);
          return Math.fround(Math.fround(d / Math.sqrt(H)) + bias[(bb * S + i) * T + j]!);
        });
        const m = Math.max(...sc);
        const e = sc.map((x) => Math.exp(x - m));
        const sum = e.reduce((a, x) => a + x, 0);
        for (let h = 0; h < H; h++) {
          let a = 0;
          for (let j = 0; j < T; j++) a += (e[j]! / sum) * V(bb, kh, j, h);
          worst = Math.max(worst, Math.abs(got[((bb * S + i) * N + n) * H + h]! - a));
        }
      }
      rows.push(worst);
    }
    const pk = out.present_key!.toTypedArray() as Float32Array;
    const refK = new Float32Array(B * KV * T * H);
    for (let bb = 0; bb < B; bb++) for (let kh = 0; kh < KV; kh++) for (let j = 0; j < T; j++) for (let h = 0; h < H; h++) refK[((bb * KV + kh) * T + j) * H + h] = K(bb, kh, j, h);
    return { rows, presentKey: maxDiff(pk, refK) };
  }

  const padded = [[1, 1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1, 1, 1]];

  test('seqlens_k = T - 1 for every row and the whole mask as attention_bias: exact on a left-padded decode step (batch 2)', async () => {
    const r1 = await gqa({ B: 2, S: 1, P: 8, mask: padded, seqlens: [8, 8], bias: true });
    expect(Math.max(...r1.rows)).toBeLessThan(1e-5);
    expect(r1.presentKey).toBe(0);
  });

  test("seqlens_k = sum(mask) - 1 (ORT's exporters, right padding): the left-padded row's keys land inside its past", async () => {
    const r2 = await gqa({ B: 2, S: 1, P: 8, mask: padded, seqlens: [8, 6] });
    expect(r2.rows[0]).toBeLessThan(1e-5);
    expect(r2.rows[1]).toBeGreaterThan(1e-2);
    expect(r2.presentKey).toBeGreaterThan(0.1);
  });

  test('batch 1, sequence 3, past 6, left-padded, with attention_bias: exact', async () => {
    const r3 = await gqa({ B: 1, S: 3, P: 6, mask: [padded[1]!], seqlens: [8], bias: true });
    expect(Math.max(...r3.rows)).toBeLessThan(1e-5);
  });

  test('batch 2 with sequence > 1 and a past is refused (the left-padded test set shape)', async () => {
    await expect(gqa({ B: 2, S: 3, P: 6, mask: padded, seqlens: [8, 8], bias: true })).rejects.toThrow(/batch_size must be 1 when sequence_length > 1 and past context is given/);
  });

  test('rows the bias masks entirely: GQA gives 0 where the reference (ORT Softmax of an all-lowest row: uniform) gives the mean of V', async () => {
    // left-padded prefill: queries 0 and 1 of row 2 are padding, their rows of the mask are all lowest
    const r4 = await gqa({ B: 2, S: 4, P: 0, mask: [[1, 1, 1, 1], [0, 0, 1, 1]], seqlens: [3, 3], bias: true });
    expect(Math.max(r4.rows[0]!, r4.rows[1]!, r4.rows[2]!, r4.rows[3]!, r4.rows[6]!, r4.rows[7]!)).toBeLessThan(1e-5);
    expect(Math.min(r4.rows[4]!, r4.rows[5]!)).toBeGreaterThan(1e-2);
    const b = new ModelBuilder({ opset: 14 });
    b.output(b.node('Softmax', [b.input('x', 'float32', [1, 4])], { axis: -1 }), 'y');
    const sm = await runModel(b.build(), { x: Tensor.float32([LOWEST, LOWEST, LOWEST, LOWEST], [1, 4]) });
    expect(Array.from(sm.y!.toTypedArray() as Float32Array)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  test('a decode step whose mask row is all zeros: zeros with lowest in the bias, the reference (uniform over all keys) with -3e38', async () => {
    const allMasked = { B: 2, S: 1, P: 5, mask: [[1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], seqlens: [5, 5], bias: true };
    const lowest = await gqa(allMasked);
    expect(lowest.rows[0]).toBeLessThan(1e-5);
    expect(lowest.rows[1]).toBeGreaterThan(1e-2);
    const lifted = await gqa({ ...allMasked, lift: true });
    expect(Math.max(...lifted.rows)).toBeLessThan(1e-5);
  });
});
