import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseRmsnorm } from '../../passes/fuse/fuse-rmsnorm.js';
import { compile } from '../../src/compile.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Value } from '../../src/ir/graph.js';
import { toFloat16Bits } from '../../src/ir/half.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { checkPass, ops } from './harness.js';
import { rand } from './norm-models.js';
import { fixture } from './transformer-feeds.js';
import { TARGETS } from '../../targets/index.js';

function explained() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

interface RmsOptions {
  opset?: number;
  square?: 'pow' | 'mul';
  /** Div(x, Sqrt) | Mul(Reciprocal(Sqrt), x) | Mul(x, Div(1, Sqrt)) | Mul(x, Pow(s, -0.5)) | Div(x, Pow(s, 0.5)) */
  normalize?: 'div' | 'reciprocal' | 'div1' | 'pow-neg-half' | 'pow-half';
  epsFirst?: boolean;
  /** where the weight goes; [1, 1, H] dims; one element; none */
  weight?: 'right' | 'left' | 'rank3' | 'scalar' | 'none';
  /** float16 x: Cast to float and back, weight in float16 after the Cast back ('pair') or in float before it ('float-weight') */
  cast?: 'pair' | 'float-weight';
  /** reduce axis (default -1) */
  axis?: number;
  /** eps from a graph input instead of a constant */
  epsInput?: boolean;
  /** also output the mean of squares (an intermediate with another use) */
  leakMean?: boolean;
}

const H = 8;
const f16 = (vals: number[], dims: number[]): Tensor => Tensor.fromTypedArray(DataType.FLOAT16, dims, Uint16Array.from(vals, toFloat16Bits));

/** y = RMSNorm(x) * w, decomposed the ways exporters write it, on x [batch, seq, 8] */
function rmsNorm(o: RmsOptions = {}): Model {
  const opset = o.opset ?? 14;
  const t = rand(3);
  const b = new ModelBuilder({ opset });
  const half = o.cast !== undefined;
  const x0 = b.input('x', half ? 'float16' : 'float32', ['batch', 'seq', H]);
  const x = half ? b.node('Cast', [x0], { to: DataType.FLOAT }, { name: 'norm/Cast' }) : x0;
  const c = (v: number, name: string): Value => b.constant(Tensor.float32([v], []), name);
  const sq = o.square === 'mul' ? b.node('Mul', [x, x], {}, { name: 'norm/Square' }) : b.node('Pow', [x, c(2, 'two')], {}, { name: 'norm/Pow' });
  const axis = o.axis ?? -1;
  const mean = opset >= 18
    ? b.node('ReduceMean', [sq, b.constant(Tensor.int64([axis]), 'axes')], {}, { name: 'norm/ReduceMean' })
    : b.node('ReduceMean', [sq], { axes: [axis] }, { name: 'norm/ReduceMean' });
  const eps = o.epsInput ? b.input('eps', 'float32', []) : c(1e-5, 'eps');
  const s = b.node('Add', o.epsFirst ? [eps, mean] : [mean, eps], {}, { name: 'norm/Add' });
  const sqrt = (): Value => b.node('Sqrt', [s], {}, { name: 'norm/Sqrt' });
  let n: Value;
  switch (o.normalize ?? 'div') {
    case 'div': n = b.node('Div', [x, sqrt()], {}, { name: 'norm/Div' }); break;
    case 'reciprocal': n = b.node('Mul', [b.node('Reciprocal', [sqrt()], {}, { name: 'norm/Reciprocal' }), x], {}, { name: 'norm/Mul' }); break;
    case 'div1': n = b.node('Mul', [x, b.node('Div', [c(1, 'one'), sqrt()], {}, { name: 'norm/Div' })], {}, { name: 'norm/Mul' }); break;
    case 'pow-neg-half': n = b.node('Mul', [x, b.node('Pow', [s, c(-0.5, 'neg_half')], {}, { name: 'norm/Rsqrt' })], {}, { name: 'norm/Mul' }); break;
    case 'pow-half': n = b.node('Div', [x, b.node('Pow', [s, c(0.5, 'half')], {}, { name: 'norm/Root' })], {}, { name: 'norm/Div' }); break;
  }
  const w = t([H], 0.5, 1.5);
  const wValues = Array.from(w.toTypedArray() as Float32Array);
  let y = n;
  if (o.cast === 'float-weight') y = b.node('Mul', [y, b.constant(w, 'weight')], {}, { name: 'norm/Mul_1' });
  if (half) y = b.node('Cast', [y], { to: DataType.FLOAT16 }, { name: 'norm/Cast_1' });
  const weight = (): Value => {
    if (o.cast === 'pair') return b.constant(f16(wValues, [H]), 'weight');
    if (o.weight === 'rank3') return b.constant(w.reshaped([1, 1, H]), 'weight');
    if (o.weight === 'scalar') return b.constant(Tensor.float32([1.5], [1]), 'weight');
    return b.constant(w, 'weight');
  };
  if (o.cast !== 'float-weight' && o.weight !== 'none') {
    y = o.weight === 'left' ? b.node('Mul', [weight(), y], {}, { name: 'norm/Mul_1' }) : b.node('Mul', [y, weight()], {}, { name: 'norm/Mul_1' });
  }
  b.output(y, 'y');
  if (o.leakMean) b.output(mean, 'mean');
  return b.build();
}

const dims = { inputDims: { batch: 2, seq: 3 } };
/** float16 x [2, 3, H], seeded */
const halfFeeds = { feeds: { x: f16(Array.from(rand(11)([2 * 3 * H], -2, 2).toTypedArray() as Float32Array), [2, 3, H]) } };

describe('fuse-rmsnorm', () => {
  test.each([
    ['Pow, Div(x, Sqrt), weight right, opset 14 (axes attribute)', {}],
    ['Mul(x, x), Mul(Reciprocal(Sqrt), x), weight left, opset 18 (axes input)', { square: 'mul', normalize: 'reciprocal', weight: 'left', opset: 18 }],
    ["Mul(x, Div(1, Sqrt)) (Llama's x * rsqrt), Add(eps, mean)", { normalize: 'div1', epsFirst: true }],
    ['Mul(x, Pow(s, -0.5)), weight [1, 1, H]', { normalize: 'pow-neg-half', weight: 'rank3' }],
    ['Div(x, Pow(s, 0.5)), one-element weight', { normalize: 'pow-half', weight: 'scalar' }],
    ['no weight (a weight of ones is made)', { weight: 'none', normalize: 'div1' }],
  ] as [string, RmsOptions][])('%s -> SimplifiedLayerNormalization', async (_name, o) => {
    const { after, changes } = await checkPass(rmsNorm(o), fuseRmsnorm, dims);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ SimplifiedLayerNormalization: 1 });
    const n = after.graph.nodes[0]!;
    expect(n.domain).toBe('');
    expect(n.name).toBe('norm/SimplifiedLayerNormalization');
    expect(n.inputs[0]!.name).toBe('x');
    expect(n.inputs[1]!.initializer?.dims).toEqual([H]);
    expect(n.attr('epsilon')?.value).toBeCloseTo(1e-5, 10);
    expect(n.attr('axis')?.value).toBe(-1);
    expect(after.graph.outputs[0]!.name).toBe('y');
  });

  test('float16 x with Cast to float and back, float16 weight after it: one SimplifiedLayerNormalization on x (float16)', async () => {
    const { after } = await checkPass(rmsNorm({ cast: 'pair', normalize: 'div1' }), fuseRmsnorm, { ...halfFeeds, rtol: 2e-3, atol: 2e-3 });
    expect(ops(after)).toEqual({ SimplifiedLayerNormalization: 1 });
    const n = after.graph.nodes[0]!;
    expect(n.inputs.map((v) => v?.name)).toEqual(['x', 'weight']);
    expect(n.attr('stash_type')?.value).toBe(1);
  });

  test('float weight before the Cast back: the float core is fused, the Casts stay', async () => {
    const { after } = await checkPass(rmsNorm({ cast: 'float-weight' }), fuseRmsnorm, { ...halfFeeds, rtol: 1e-3, atol: 1e-3 });
    expect(ops(after)).toEqual({ Cast: 2, SimplifiedLayerNormalization: 1 });
    expect(after.graph.nodes.find((n) => n.opType === 'SimplifiedLayerNormalization')!.inputs.map((v) => v?.name)).toEqual(['norm/Cast_out', 'weight']);
  });

  test('explains: reduce over a non-last axis, eps not a constant, an intermediate used elsewhere', async () => {
    const cases: [RmsOptions, string][] = [
      [{ axis: 1 }, "RMSNorm of 'x' at node 'norm/Div' (Div): node 'norm/ReduceMean' (ReduceMean): reduces over axis 1 of a rank-3 input, not the last axis"],
      [{ axis: 1, opset: 18 }, "RMSNorm of 'x' at node 'norm/Div' (Div): node 'norm/ReduceMean' (ReduceMean): reduces over axis 1 of a rank-3 input, not the last axis"],
      [{ epsInput: true }, "RMSNorm of 'x' at node 'norm/Div' (Div): node 'norm/Add' (Add): epsilon 'eps' is not a constant scalar"],
      [{ leakMean: true }, "RMSNorm of 'x' at node 'norm/Div' (Div): intermediate 'mean' (node 'norm/ReduceMean' (ReduceMean)) is also used outside the pattern"],
    ];
    for (const [o, message] of cases) {
      const e = explained();
      const feeds = o.epsInput ? { inputDims: { batch: 2, seq: 3 } } : dims;
      const r = await checkPass(rmsNorm(o), fuseRmsnorm, { ...feeds, onExplain: e.onExplain } as never);
      expect(r.changes).toBe(0);
      expect(ops(r.after).SimplifiedLayerNormalization).toBeUndefined();
      expect(e.messages).toEqual([message]);
    }
  });

  // prenorm-tiny-op17: the final norm (Pow/ReduceMean/Add/Sqrt/Div(1, .)/Mul/Mul); llama-past-tiny-op14:
  // 2 layers x 2 + the final one. Numeric check on each test_data_set_* of the fixture.
  test.each([
    ['prenorm-tiny-op17', 1],
    ['llama-past-tiny-op14', 5],
  ] as const)('%s: %i SimplifiedLayerNormalization, no pieces left, same outputs on its test data', async (name, count) => {
    const model = fixture(name);
    const sets = testDataSets(path.join('fixtures/models', name));
    expect(sets.length).toBeGreaterThan(0);
    for (const dir of sets) {
      const data = readTestDataSet(dir);
      const feeds = Object.fromEntries(data.inputs.map((i) => [i.name, i.tensor]));
      const { after, changes } = await checkPass(model, fuseRmsnorm, { feeds, rtol: 1e-3, atol: 1e-4 });
      expect(changes).toBe(count);
      const h = ops(after);
      expect(h.SimplifiedLayerNormalization).toBe(count);
      for (const piece of ['Pow', 'ReduceMean', 'Sqrt']) expect(h[piece]).toBeUndefined();
      const norms = after.graph.nodes.filter((n) => n.opType === 'SimplifiedLayerNormalization');
      expect(norms.every((n) => n.inputs[1]!.initializer?.dims.length === 1)).toBe(true);
      if (name === 'prenorm-tiny-op17') {
        expect(norms[0]!.name).toBe('/norm/SimplifiedLayerNormalization');
        expect(norms[0]!.attr('epsilon')?.value).toBeCloseTo(1e-6, 12);
      }
    }
  });

  test('targets: every ORT target runs it before fuse-layernorm-contrib; CPU keeps Add + RMSNorm, CUDA takes the skip fusion', async () => {
    const names = (t: (typeof TARGETS)[number]): string[] => t.pipeline.flatMap((s) => (typeof s === 'string' ? [s] : s.fixedPoint));
    for (const t of TARGETS) {
      const p = names(t);
      if (t.runtime.startsWith('onnxruntime')) {
        expect(p.indexOf('fuse-rmsnorm'), t.name).toBeGreaterThanOrEqual(0);
        expect(p.indexOf('fuse-rmsnorm'), t.name).toBeLessThan(p.indexOf('fuse-layernorm-contrib'));
      } else {
        expect(p, t.name).not.toContain('fuse-rmsnorm');
      }
    }
    // compile rewrites the model in place: one copy per target
    const cpu = fixture('llama-past-tiny-op14');
    await compile(cpu, TARGETS.find((t) => t.name === 'x86-avx2')!, {});
    expect(ops(cpu).SimplifiedLayerNormalization).toBe(5);
    const gpu = fixture('llama-past-tiny-op14');
    await compile(gpu, TARGETS.find((t) => t.name === 'cuda')!, {});
    const h = ops(gpu);
    expect([h.SimplifiedLayerNormalization, h.SkipSimplifiedLayerNormalization]).toEqual([1, 4]);
  });
});
