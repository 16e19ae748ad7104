import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseRotary } from '../../passes/fuse/fuse-rotary.js';
import { compile } from '../../src/compile.js';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { compareTensors } from '../../src/compare.js';
import { portable } from '../../targets/portable.js';
import { checkPass, ops, runModel } from './harness.js';

const B = 2, N = 3, S = 4, H = 8, P = 16;

interface RopeOptions {
  /** x [batch, heads, seq, head] (default) or [batch, seq, heads, head] */
  layout?: 'bnsh' | 'bsnh';
  /** rotate only the first R elements of each head, then Concat the rest back */
  rotaryDim?: number;
  /** -x2 as Mul(x2, -1) instead of Neg */
  mulNeg?: boolean;
  /** operand orders swapped: Add(sin term, cos term), Mul(cos, x), Mul(sin, rotate_half) */
  swapped?: boolean;
  /** Slice the tables to the key length before the Gather (as transformers 4.3x does) */
  prefix?: boolean;
  /** Concat(x1, -x2): a rotation the other way */
  wrongWay?: boolean;
  /** a sin table whose halves differ (not what rotate_half's tables are) */
  unequalHalves?: boolean;
  /** cos/sin computed on the fly: Cos(position * inv_freq) */
  onTheFly?: boolean;
  /** ... with an inv_freq whose halves differ (not cat(f, f): not rotate_half's angles) */
  onTheFlyUnequal?: boolean;
  /** interleaved (GPT-J's rotate_every_two: stack((-x[..., 1::2], x[..., ::2]), -1).flatten(-2)), tables repeat_interleave'd */
  interleaved?: boolean;
}

function tables(R: number, unequal = false, interleaved = false): [Tensor, Tensor] {
  const cos = new Float32Array(P * R), sin = new Float32Array(P * R);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < R / 2; i++) {
      const a = p / 10000 ** ((2 * i) / R);
      if (interleaved) {
        cos[p * R + 2 * i] = cos[p * R + 2 * i + 1] = Math.cos(a);
        sin[p * R + 2 * i] = sin[p * R + 2 * i + 1] = Math.sin(a);
        continue;
      }
      cos[p * R + i] = cos[p * R + i + R / 2] = Math.cos(a);
      sin[p * R + i] = sin[p * R + i + R / 2] = Math.sin(a);
      if (unequal) sin[p * R + i + R / 2] = Math.sin(a + 0.1);
    }
  }
  return [Tensor.float32(cos, [P, R]), Tensor.float32(sin, [P, R])];
}

/** y = rope(x) the way transformers writes it, on x of the given layout */
function rope(o: RopeOptions = {}): Model {
  const R = o.rotaryDim ?? H;
  const b = new ModelBuilder({ opset: 14 });
  const bnsh = (o.layout ?? 'bnsh') === 'bnsh';
  const x = b.input('x', 'float32', bnsh ? ['batch', N, 'seq', H] : ['batch', 'seq', N, H]);
  const pos = b.input('position_ids', 'int64', ['batch', 'seq']);
  const i64 = (v: number[], name: string): Value => b.constant(Tensor.int64(v), name);
  const slice = (v: Value, from: number, to: number, name: string): Value => b.node('Slice', [v, i64([from], `${name}_s`), i64([to], `${name}_e`), i64([-1], `${name}_a`), i64([1], `${name}_st`)], {}, { name });
  const headAxis = bnsh ? 1 : 2;
  let cosE: Value, sinE: Value;
  if (o.onTheFly || o.onTheFlyUnequal) {
    const inv = Tensor.float32(Array.from({ length: R }, (_, i) => 1 / 10000 ** ((2 * (o.onTheFlyUnequal ? i / 2 : i % (R / 2))) / R)), [R]);
    const pf = b.node('Cast', [b.node('Unsqueeze', [pos, i64([2], 'ax_pos')])], { to: 1 });
    const freqs = b.node('Mul', [pf, b.constant(inv, 'inv_freq')]);
    cosE = b.node('Unsqueeze', [b.node('Cos', [freqs]), i64([headAxis], 'ax_c')]);
    sinE = b.node('Unsqueeze', [b.node('Sin', [freqs]), i64([headAxis], 'ax_s')]);
  } else {
    const [ct, st] = tables(R, o.unequalHalves, o.interleaved);
    const embed = (t: Tensor, name: string): Value => {
      let table = b.constant(t, `${name}_table`);
      if (o.prefix) {
        const len = b.node('Add', [b.node('Gather', [b.node('Shape', [x]), i64([bnsh ? 2 : 1], `${name}_i`)], { axis: 0 }), i64([5], `${name}_past`)]);
        table = b.node('Slice', [table, i64([0], `${name}_ts`), len, i64([0], `${name}_ta`), i64([1], `${name}_tst`)], {}, { name: `${name}_prefix` });
      }
      return b.node('Unsqueeze', [b.node('Gather', [table, pos], { axis: 0 }, { name: `${name}_gather` }), i64([headAxis], `${name}_ax`)]);
    };
    cosE = embed(ct, 'cos');
    sinE = embed(st, 'sin');
  }
  const xr = R === H ? x : slice(x, 0, R, 'x_rot');
  const x1 = slice(xr, 0, R / 2, 'x1'), x2 = slice(xr, R / 2, 1 << 30, 'x2');
  const neg = (v: Value): Value => (o.mulNeg ? b.node('Mul', [v, b.constant(Tensor.float32([-1], []), 'minus_one')]) : b.node('Neg', [v]));
  const step2 = (v: Value, from: number, name: string): Value => b.node('Slice', [v, i64([from], `${name}_s`), i64([1 << 30], `${name}_e`), i64([-1], `${name}_a`), i64([2], `${name}_st`)], {}, { name });
  const unsq = (v: Value, name: string): Value => b.node('Unsqueeze', [v, i64([-1], name)]);
  const rh = o.interleaved
    ? b.node('Reshape', [b.node('Concat', [unsq(neg(step2(xr, 1, 'x_odd')), 'u_odd'), unsq(step2(xr, 0, 'x_even'), 'u_even')], { axis: -1 }), b.node('Shape', [xr])], {}, { name: 'rotate_every_two' })
    : o.wrongWay ? b.node('Concat', [x1, neg(x2)], { axis: -1 }) : b.node('Concat', [neg(x2), x1], { axis: -1 }, { name: 'rotate_half' });
  const c = o.swapped ? b.node('Mul', [cosE, xr]) : b.node('Mul', [xr, cosE]);
  const s = o.swapped ? b.node('Mul', [sinE, rh]) : b.node('Mul', [rh, sinE]);
  let y = o.swapped ? b.node('Add', [s, c], {}, { name: 'attn/Add' }) : b.node('Add', [c, s], {}, { name: 'attn/Add' });
  if (R !== H) y = b.node('Concat', [y, slice(x, R, 1 << 30, 'x_pass')], { axis: -1 });
  b.output(y, 'y');
  return b.build();
}

function feeds(o: RopeOptions, seed: number): Record<string, Tensor> {
  const r = seededRandom(seed);
  const dims = (o.layout ?? 'bnsh') === 'bnsh' ? [B, N, S, H] : [B, S, N, H];
  return {
    x: Tensor.float32(Array.from({ length: B * N * S * H }, () => r() * 2 - 1), dims),
    // left padding of row 1 as generate() makes it: positions 1, 1, 0, 1 (pads get 1)
    position_ids: Tensor.int64([3, 4, 5, 6, 1, 1, 0, 1], [B, S]),
  };
}

function explained() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

describe('fuse-rotary on built graphs', () => {
  test.each([
    ['BNSH', {}],
    ['BSNH', { layout: 'bsnh' }],
    ['partial rotary (R = 4 of 8)', { rotaryDim: 4 }],
  ] as [string, RopeOptions][])('cos/sin computed on the fly (%s): the computed angles are the cache, row ids index them', async (_name, o) => {
    const opts = { ...o, onTheFly: true };
    const { after, changes } = await checkPass(rope(opts), fuseRotary, { feeds: feeds(opts, 3), rtol: 1e-4, atol: 1e-5 });
    expect(changes).toBe(1);
    const h = ops(after);
    expect(h.RotaryEmbedding).toBe(1);
    expect(h.Neg).toBeUndefined();
    const node = after.graph.nodes.find((n) => n.opType === 'RotaryEmbedding')!;
    // cos cache: the first half of each computed row, [rows, R/2]; ids: row numbers, not position_ids
    expect(node.inputs[2]!.producer!.opType).toBe('Reshape');
    expect(node.inputs[1]!.name).not.toBe('position_ids');
    expect(node.attr('rotary_embedding_dim')?.value).toBe(o.rotaryDim);
    // positions far beyond any table a guess would make: the graph's own angles, so the same outputs
    const far = feeds(opts, 5);
    far.position_ids = Tensor.int64([100000, 4, 77777, 6, 1, 1, 0, 65535], [B, S]);
    const want = await runModel(rope(opts), far), got = await runModel(after, far);
    expect(compareTensors(got.y!, want.y!, { rtol: 1e-4, atol: 1e-5 }).ok).toBe(true);
  });

  test.each([
    ['BNSH (after the head transpose), Neg', {}],
    ['BNSH, tables sliced to the key length first, Mul by -1, operands swapped', { prefix: true, mulNeg: true, swapped: true }],
    ['BSNH (before the head transpose): through a Reshape to [b, s, heads*head]', { layout: 'bsnh' }],
    ['partial rotary (R = 4 of 8), the pass-through Concat absorbed', { rotaryDim: 4 }],
    ['partial rotary, BSNH', { rotaryDim: 4, layout: 'bsnh', prefix: true }],
    ['interleaved (rotate_every_two), BNSH', { interleaved: true }],
    ['interleaved, partial rotary (R = 4 of 8), BSNH', { interleaved: true, rotaryDim: 4, layout: 'bsnh' }],
  ] as [string, RopeOptions][])('%s -> one RotaryEmbedding', async (_name, o) => {
    const { after, changes } = await checkPass(rope(o), fuseRotary, { feeds: feeds(o, 3), rtol: 1e-4, atol: 1e-5 });
    expect(changes).toBe(1);
    const h = ops(after);
    expect(h.RotaryEmbedding).toBe(1);
    for (const piece of ['Neg', 'Mul', 'Add', 'Gather', 'Concat']) expect(h[piece], `${piece} ${JSON.stringify(h)}`).toBeUndefined();
    const node = after.graph.nodes.find((n) => n.opType === 'RotaryEmbedding')!;
    expect(node.domain).toBe('com.microsoft');
    expect(node.name).toBe('attn/RotaryEmbedding');
    expect(node.attr('interleaved')?.value).toBe(o.interleaved ? 1 : 0);
    const R = o.rotaryDim ?? H;
    expect(node.inputs[2]!.initializer?.dims).toEqual([P, R / 2]);
    expect(node.attr('rotary_embedding_dim')?.value).toBe(R === H ? undefined : R);
    expect(node.inputs[1]!.name).toBe('position_ids');
    if ((o.layout ?? 'bnsh') === 'bsnh') expect(h.Reshape).toBe(2);
    else expect(node.inputs[0]!.name).toBe('x');
    expect(after.opsetVersion('com.microsoft')).toBe(1);
  });

  test('explains: a rotation the other way, tables whose halves differ, computed cos/sin not provably of equal halves', async () => {
    const cases: [RopeOptions, RegExp][] = [
      [{ wrongWay: true }, /Concat\(x1, -x2\) is not rotate_half's Concat\(-x2, x1\)/],
      [{ unequalHalves: true }, /sin: .*|table 'sin_table': the two halves of a row differ/],
      [{ onTheFlyUnequal: true }, /cos '.*': computed in the graph, but its rows are not provably cat\(f, f\) \(equal halves\)/],
    ];
    for (const [o, message] of cases) {
      const e = explained();
      const r = await checkPass(rope(o), fuseRotary, { feeds: feeds(o, 4), onExplain: e.onExplain } as never);
      expect(r.changes).toBe(0);
      expect(ops(r.after).RotaryEmbedding).toBeUndefined();
      expect(e.messages).toHaveLength(1);
      expect(e.messages[0]).toMatch(message);
    }
  });
});

// Llama with a KV cache (RoPE tables gathered by position_ids, rotate_half, GQA): one RotaryEmbedding
// per q and per k per layer, the same outputs on every test set (decode, the left-padded batch of 2,
// and the empty-cache prefill where the model folder has one).
const LLAMAS: [string, number][] = [['fixtures/models/llama-past-tiny-op14', 2]];

describe('fuse-rotary on Llama decoders (after the portable pipeline)', () => {
  test.each(LLAMAS)('%s: 2 RotaryEmbedding per layer, outputs as the original on every test set', async (dir, layers) => {
    const compiled = readModel(path.join(dir, 'model.onnx')).model;
    await compile(compiled, portable, { runtime: onnxruntimeNode });
    const sets = testDataSets(dir);
    expect(sets.length).toBeGreaterThanOrEqual(2);
    for (const set of sets) {
      const data = readTestDataSet(set);
      const f = Object.fromEntries(data.inputs.map((i) => [i.name, i.tensor]));
      const { after, changes } = await checkPass(compiled, fuseRotary, { feeds: f, rtol: 1e-3, atol: 1e-4 });
      expect(changes).toBe(2 * layers);
      const h = ops(after);
      expect(h.RotaryEmbedding).toBe(2 * layers);
      expect(h.Neg).toBeUndefined();
      const rot = after.graph.nodes.filter((n) => n.opType === 'RotaryEmbedding');
      // one cos/sin cache shared by every layer
      expect(new Set(rot.map((n) => n.inputs[2])).size).toBe(1);
      expect(rot.every((n) => n.inputs[1]!.name === 'position_ids')).toBe(true);
      // and the outputs torch computed for the set
      const got = await runModel(after, f);
      for (const o of data.outputs) {
        const c = compareTensors(got[o.name]!, o.tensor, { rtol: 1e-3, atol: 1e-4 });
        expect(c.ok, `${path.basename(set)} '${o.name}': ${c.problem}`).toBe(true);
      }
    }
  });
});
