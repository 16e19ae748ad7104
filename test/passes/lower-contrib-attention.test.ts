/**
 * lower-contrib-ops, attention family (passes/lib/lowerings/attention.ts): each of Attention,
 * MultiHeadAttention, GroupQueryAttention and RotaryEmbedding as a one-node model run by
 * onnxruntime-node's own kernel, against the lowered model (target portable: standard ops only) on
 * seeded random inputs of two sizes of the dynamic dims each, padded masks included; then decoders
 * compiled for x86-avx2 (fused) and that output compiled for portable (lowered again).
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { lowerContribOps } from '../../passes/lower/lower-contrib-ops.js';
import { compareTensors } from '../../src/compare.js';
import { compile } from '../../src/compile.js';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { PassManager } from '../../src/pass/manager.js';
import { portable } from '../../targets/portable.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { ops, runModel } from './harness.js';

const MS = { domain: 'com.microsoft' };
const LOWEST = -3.4028234663852886e38;
const TOL = { rtol: 1e-3, atol: 1e-4 };

const rand = seededRandom(11);
function randn(dims: number[]): Tensor {
  return Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1), dims);
}

/** cos/sin tables [P, R/2] of rotary angles p / 10000^(2i/R). */
function tables(P: number, R: number): [Tensor, Tensor] {
  const c: number[] = [], s: number[] = [];
  for (let p = 0; p < P; p++) for (let i = 0; i < R / 2; i++) { const a = p / 10000 ** ((2 * i) / R); c.push(Math.cos(a)); s.push(Math.sin(a)); }
  return [Tensor.float32(c, [P, R / 2]), Tensor.float32(s, [P, R / 2])];
}

function contribCount(m: Model): number {
  let n = 0;
  for (const g of m.allGraphs()) for (const x of g.nodes) if (x.domain === 'com.microsoft') n++;
  return n;
}

/** Lower `model` for portable; the explanations given. */
async function lowered(model: Model): Promise<{ after: Model; explained: string[] }> {
  const after = cloneModel(model);
  const explained: string[] = [];
  await new PassManager([lowerContribOps], { target: portable, verifyEach: true, onExplain: (_p, m) => { explained.push(m); } }).run(after);
  expect(verifyModel(after)).toEqual([]);
  return { after, explained };
}

/** The lowered model has no contrib op and gives the kernel's outputs on every feed set. */
async function expectLowered(model: Model, feedSets: Record<string, Tensor>[]): Promise<Model> {
  const { after, explained } = await lowered(model);
  expect(contribCount(after), explained.join('\n')).toBe(0);
  for (const [i, feeds] of feedSets.entries()) {
    const want = await runModel(model, feeds);
    const got = await runModel(after, feeds);
    for (const [name, t] of Object.entries(want)) {
      const c = compareTensors(got[name]!, t, TOL);
      expect(c.ok, `feeds ${i}, output '${name}': ${c.problem}`).toBe(true);
    }
  }
  return after;
}

// ---------------------------------------------------------------------------------------------

describe('RotaryEmbedding', () => {
  const N = 2, H = 8, P = 32;
  function model(o: { rank: 3 | 4; interleaved?: number; rotaryDim?: number; numHeads?: boolean; offset?: boolean }): Model {
    const R = o.rotaryDim ?? H;
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', o.rank === 4 ? ['batch', N, 'seq', H] : ['batch', 'seq', N * H]);
    const pos = b.input('pos', 'int64', o.offset ? [1] : ['batch', 'seq']);
    const [c, s] = tables(P, R);
    const attrs: Record<string, unknown> = { interleaved: o.interleaved ?? 0 };
    if (o.rotaryDim) attrs.rotary_embedding_dim = o.rotaryDim;
    if (o.numHeads ?? o.rotaryDim) attrs.num_heads = N;
    b.output(b.node('RotaryEmbedding', [x, pos, b.constant(c, 'cos'), b.constant(s, 'sin')], attrs, MS), 'y');
    return b.build();
  }
  function feeds(rank: 3 | 4, B: number, S: number, offset?: number): Record<string, Tensor> {
    const pos = offset !== undefined ? Tensor.int64([offset], [1]) : Tensor.int64(Array.from({ length: B * S }, () => Math.floor(rand() * P)), [B, S]);
    return { x: randn(rank === 4 ? [B, N, S, H] : [B, S, N * H]), pos };
  }

  test.each([
    ['4-D [b, N, s, H], rotate-half', { rank: 4 }],
    ['4-D, interleaved', { rank: 4, interleaved: 1 }],
    ['3-D [b, s, N*H] with num_heads, rotate-half', { rank: 3, numHeads: true }],
    ['3-D without num_heads (head size from the cache)', { rank: 3 }],
    ['3-D, interleaved', { rank: 3, interleaved: 1, numHeads: true }],
    ['3-D, partial rotary 4 of 8', { rank: 3, rotaryDim: 4 }],
    ['4-D, partial rotary 4 of 8, interleaved', { rank: 4, rotaryDim: 4, interleaved: 1 }],
  ] as const)('%s: the kernel\'s outputs at two batch/sequence sizes', async (_n, o) => {
    await expectLowered(model(o), [feeds(o.rank, 2, 3), feeds(o.rank, 1, 5)]);
  });

  test('one position offset (position_ids of one element): positions offset + i', async () => {
    await expectLowered(model({ rank: 3, numHeads: true, offset: true }), [feeds(3, 2, 3, 4), feeds(3, 1, 6, 0)]);
  });
});

// ---------------------------------------------------------------------------------------------

/** A 0/1 int32 mask [B, T] with `pad[b]` leading (left) or trailing (right) zeros. */
function padMask(T: number, pad: number[], side: 'left' | 'right'): Tensor {
  return Tensor.int32(pad.flatMap((p) => Array.from({ length: T }, (_, j) => ((side === 'left' ? j < p : j >= T - p) ? 0 : 1))), [pad.length, T]);
}

describe('Attention (BERT, fuse-attention\'s form)', () => {
  const N = 2, D = 16, IN = 12;
  function model(o: { mask?: boolean; unidirectional?: boolean; scale?: number; filter?: number }): Model {
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', ['batch', 'seq', IN]);
    const inputs = [x, b.constant(randn([IN, 3 * D]), 'w'), b.constant(randn([3 * D]), 'b')];
    if (o.mask) inputs.push(b.input('mask', 'int32', ['batch', 'seq']));
    const attrs: Record<string, unknown> = { num_heads: N };
    if (o.unidirectional) attrs.unidirectional = 1;
    if (o.scale) attrs.scale = o.scale;
    if (o.filter) attrs.mask_filter_value = o.filter;
    b.output(b.node('Attention', inputs, attrs, MS), 'y');
    return b.build();
  }
  const feeds = (B: number, S: number, pad?: number[], side: 'left' | 'right' = 'right'): Record<string, Tensor> =>
    ({ x: randn([B, S, IN]), ...(pad ? { mask: padMask(S, pad, side) } : {}) });

  test('no mask, default scale', async () => {
    await expectLowered(model({}), [feeds(2, 4), feeds(1, 7)]);
  });
  test('padding mask_index [b, s] (right-padded rows), scale set', async () => {
    await expectLowered(model({ mask: true, scale: 0.3 }), [feeds(2, 5, [0, 2]), feeds(3, 3, [1, 0, 2])]);
  });
  test('unidirectional (causal)', async () => {
    await expectLowered(model({ unidirectional: true }), [feeds(2, 5), feeds(1, 2)]);
  });
  test('unidirectional with a left-padded mask and mask_filter_value (padded query rows masked entirely)', async () => {
    await expectLowered(model({ unidirectional: true, mask: true, filter: -1e9 }), [feeds(2, 5, [0, 2], 'left'), feeds(2, 3, [1, 1], 'right')]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('MultiHeadAttention (fuse-attention-past\'s form and others)', () => {
  const N = 2, H = 8, D = N * H;
  interface Form { past?: boolean; bias?: boolean; unidirectional?: boolean; kpm?: boolean; qkvBias?: boolean; cross?: boolean }
  function model(o: Form): Model {
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const kvSeq = o.cross ? 'kv_seq' : 'seq';
    const q = b.input('q', 'float32', ['batch', 'seq', D]);
    const k = b.input('k', 'float32', ['batch', kvSeq, D]);
    const v = b.input('v', 'float32', ['batch', kvSeq, D]);
    const total = o.past ? 'total' : kvSeq;
    const inputs = [q, k, v,
      o.qkvBias ? b.constant(randn([3 * D]), 'qkv_bias') : undefined,
      o.kpm ? b.input('kpm', 'int32', ['batch', total]) : undefined,
      o.bias ? b.input('attn_bias', 'float32', ['batch', 1, 'seq', total]) : undefined,
      o.past ? b.input('past_key', 'float32', ['batch', N, 'past', H]) : undefined,
      o.past ? b.input('past_value', 'float32', ['batch', N, 'past', H]) : undefined];
    const attrs: Record<string, unknown> = { num_heads: N, scale: 0.25 };
    if (o.unidirectional) attrs.unidirectional = 1;
    const outs = b.nodeN('MultiHeadAttention', inputs, attrs, { ...MS, outputs: o.past ? 3 : 1 });
    b.output(outs[0]!, 'y');
    if (o.past) { b.output(outs[1]!, 'present_key'); b.output(outs[2]!, 'present_value'); }
    return b.build();
  }
  function feeds(o: Form, B: number, S: number, P: number, pad: number[] = []): Record<string, Tensor> {
    const L = o.cross ? S + 2 : S, T = (o.past ? P : 0) + L;
    const f: Record<string, Tensor> = { q: randn([B, S, D]), k: randn([B, L, D]), v: randn([B, L, D]) };
    if (o.past) { f.past_key = randn([B, N, P, H]); f.past_value = randn([B, N, P, H]); }
    const padding = pad.length ? pad : Array.from({ length: B }, () => 0);
    if (o.kpm) f.kpm = padMask(T, padding, 'left');
    if (o.bias) {
      // fuse-attention-past's bias: causal (lowest beyond p + i) plus left padding
      const m: number[] = [];
      for (let bb = 0; bb < B; bb++) for (let i = 0; i < S; i++) for (let j = 0; j < T; j++) m.push(j > T - S + i || j < padding[bb]! ? LOWEST : 0);
      f.attn_bias = Tensor.float32(m, [B, 1, S, T]);
    }
    return f;
  }

  test.each([
    ['past + attention_bias (causal + left padding), present outputs', { past: true, bias: true }],
    ['past + unidirectional', { past: true, unidirectional: true }],
    ['past + unidirectional + key_padding_mask', { past: true, unidirectional: true, kpm: true }],
    ['no past, packed q/k/v bias, attention_bias', { bias: true, qkvBias: true }],
    ['cross-attention (key length differs), no mask', { cross: true }],
  ] as const)('%s: two sequence/past lengths', async (_n, o) => {
    await expectLowered(model(o), [feeds(o, 2, 3, 4, [0, 2]), feeds(o, 1, 1, 6, [1]), feeds(o, 2, 4, 0, [1, 0])]);
  });

  test('a form not covered stays, with a reason (packed QKV: no key input)', async () => {
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const q = b.input('q', 'float32', ['batch', 'seq', N, 3, H]);
    b.output(b.node('MultiHeadAttention', [q], { num_heads: N }, MS), 'y');
    const { after, explained } = await lowered(b.build());
    expect(contribCount(after)).toBe(1);
    expect(explained.join('\n')).toMatch(/not lowered: packed QKV/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('GroupQueryAttention', () => {
  const N = 4, KV = 2, PMAX = 16;
  interface Form { past?: boolean; bias?: boolean; rotary?: 0 | 1; packed?: boolean }
  /** the head size: ORT's kernel takes rotary only for multiples of 16 */
  const headOf = (o: Form): number => (o.rotary !== undefined ? 16 : 8);
  function model(o: Form): Model {
    const H = headOf(o);
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const q = b.input('q', 'float32', ['batch', 'seq', o.packed ? (N + 2 * KV) * H : N * H]);
    const k = o.packed ? undefined : b.input('k', 'float32', ['batch', 'seq', KV * H]);
    const v = o.packed ? undefined : b.input('v', 'float32', ['batch', 'seq', KV * H]);
    const [c, s] = tables(PMAX, H);
    const inputs = [q, k, v,
      o.past ? b.input('past_key', 'float32', ['batch', KV, 'past', H]) : undefined,
      o.past ? b.input('past_value', 'float32', ['batch', KV, 'past', H]) : undefined,
      b.input('seqlens_k', 'int32', ['batch']), b.input('total', 'int32', []),
      o.rotary !== undefined ? b.constant(c, 'cos') : undefined, o.rotary !== undefined ? b.constant(s, 'sin') : undefined,
      undefined, o.bias ? b.input('attn_bias', 'float32', ['batch', 1, 'seq', 'total_len']) : undefined];
    const attrs: Record<string, unknown> = { num_heads: N, kv_num_heads: KV };
    if (o.rotary !== undefined) { attrs.do_rotary = 1; attrs.rotary_interleaved = o.rotary; }
    const outs = b.nodeN('GroupQueryAttention', inputs, attrs, { ...MS, outputs: 3 });
    b.output(outs[0]!, 'y'); b.output(outs[1]!, 'present_key'); b.output(outs[2]!, 'present_value');
    return b.build();
  }
  /** `pasts[b]`: row b's past length in a past buffer of `buffer` (default max(pasts)); total = max + S. */
  function feeds(o: Form, S: number, pasts: number[], biasRow?: number, buffer?: number): Record<string, Tensor> {
    const H = headOf(o);
    const B = pasts.length, T = (o.past ? Math.max(...pasts) : 0) + S, P = o.past ? buffer ?? T - S : 0;
    const f: Record<string, Tensor> = o.packed ? { q: randn([B, S, (N + 2 * KV) * H]) } : { q: randn([B, S, N * H]), k: randn([B, S, KV * H]), v: randn([B, S, KV * H]) };
    if (o.past) { f.past_key = randn([B, KV, P, H]); f.past_value = randn([B, KV, P, H]); }
    f.seqlens_k = Tensor.int32(pasts.map((p) => (o.past ? p : 0) + S - 1), [B]);
    f.total = Tensor.int32([T], []);
    if (o.bias) {
      // padding: key 0 masked for every query; row `biasRow` of batch 0 masked entirely
      const m: number[] = [];
      for (let bb = 0; bb < B; bb++) for (let i = 0; i < S; i++) for (let j = 0; j < T; j++) m.push(j === 0 || (bb === 0 && i === biasRow) ? LOWEST : rand() - 0.5);
      f.attn_bias = Tensor.float32(m, [B, 1, S, T]);
    }
    return f;
  }

  test('first prompt (no past), two sequence lengths', async () => {
    await expectLowered(model({}), [feeds({}, 4, [0, 0]), feeds({}, 2, [0])]);
  });
  test('past: decode steps with per-row past lengths (right-padded cache), a batch-1 continuation, a buffer longer than the total', async () => {
    const o = { past: true };
    await expectLowered(model(o), [feeds(o, 1, [5, 3]), feeds(o, 1, [2, 2, 6]), feeds(o, 3, [4]), feeds(o, 1, [4, 2], undefined, 9)]);
  });
  test('past + attention_bias (padding, a fully masked row: zeros)', async () => {
    const o = { past: true, bias: true };
    await expectLowered(model(o), [feeds(o, 1, [5, 5]), feeds(o, 3, [4], 1)]);
  });
  test.each([0, 1] as const)('do_rotary (interleaved=%s) with cos/sin caches, past', async (il) => {
    const o = { past: true, rotary: il };
    await expectLowered(model(o), [feeds(o, 1, [5, 3]), feeds(o, 3, [4]), feeds({ ...o }, 2, [0])]);
  });
  test('packed QKV (no key/value inputs), past', async () => {
    const o = { past: true, packed: true };
    await expectLowered(model(o), [feeds(o, 1, [5, 3]), feeds(o, 2, [3])]);
  });
  test('a form not covered stays, with a reason (softcap)', async () => {
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const H = 8;
    const x = (n: string, d: number): ReturnType<typeof b.input> => b.input(n, 'float32', ['batch', 'seq', d]);
    b.output(b.node('GroupQueryAttention', [x('q', N * H), x('k', KV * H), x('v', KV * H), undefined, undefined, b.input('seqlens_k', 'int32', ['batch']), b.input('total', 'int32', [])],
      { num_heads: N, kv_num_heads: KV, softcap: 30 }, { ...MS, outputs: 1 }), 'y');
    const { after, explained } = await lowered(b.build());
    expect(contribCount(after)).toBe(1);
    expect(explained.join('\n')).toMatch(/softcap=30 is not lowered/);
  });
});

// ---------------------------------------------------------------------------------------------

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');

describe('decoders compiled for x86-avx2 (fused), then for portable (lowered)', () => {
  test.each([
    ['llama-past-tiny-op14', { batch: 1 }, ['GroupQueryAttention', 'RotaryEmbedding']],
    ['gptj-past-tiny-op14', {}, ['MultiHeadAttention', 'RotaryEmbedding']],
    ['neox-past-tiny-op14', {}, ['MultiHeadAttention', 'RotaryEmbedding']],
    ['bert-tiny-op14', {}, ['Attention']],
  ] as const)('%s: no contrib op remains, the original\'s outputs on its test sets', async (name, dims, fused) => {
    const dir = path.join(FIXTURES, name);
    const original = readModel(path.join(dir, 'model.onnx')).model;
    const onOrt = cloneModel(original);
    await compile(onOrt, x86Avx2, { runtime: onnxruntimeNode, dims });
    for (const op of fused) expect(ops(onOrt)[op], op).toBeGreaterThan(0);
    const moved = cloneModel(onOrt);
    await compile(moved, portable, { runtime: onnxruntimeNode, dims });
    expect(contribCount(moved)).toBe(0);
    let checked = 0;
    for (const set of testDataSets(dir)) {
      const data = readTestDataSet(set);
      const feeds = Object.fromEntries(data.inputs.map((i, k) => [i.name || original.graph.inputs[k]!.name, i.tensor]));
      if ('batch' in dims && data.inputs[0]!.tensor.dims[0] !== dims.batch) continue;
      const want = await runModel(original, feeds);
      const got = await runModel(moved, feeds);
      for (const [k, t] of Object.entries(want)) {
        const c = compareTensors(got[k]!, t, TOL);
        expect(c.ok, `${path.basename(set)} '${k}': ${c.problem}`).toBe(true);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });
});
