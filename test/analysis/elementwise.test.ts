/** Shape rules of elementwise ops, reductions and contractions, on models with symbolic dims. */
import { describe, expect, test } from 'vitest';
import { formatSymType, inferShapes, RULES } from '../../src/analysis/index.js';
import type { Value } from '../../src/ir/graph.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Dim } from '../../src/ir/types.js';

/** Build a model with `build`, infer, and return the formatted types of the returned values. */
function infer(build: (b: ModelBuilder) => Value | Value[], opset = 17): string[] {
  const b = new ModelBuilder({ opset });
  const out = build(b);
  const outs = Array.isArray(out) ? out : [out];
  outs.forEach((v) => b.output(v));
  const r = inferShapes(b.build(), RULES, { apply: false });
  return outs.map((v) => formatSymType(r.types.get(v)));
}

const one = (build: (b: ModelBuilder) => Value | Value[], opset?: number): string => infer(build, opset)[0]!;
const x = (b: ModelBuilder, shape: Dim[], name = 'x', type = 'float32'): Value => b.input(name, type, shape);
let counter = 0;
const ints = (b: ModelBuilder, values: number[], dims?: number[]): Value => b.constant(Tensor.int64(values, dims ?? [values.length]), `c${counter++}`);

describe('unary', () => {
  test('keeps type and shape', () => {
    for (const op of ['Relu', 'Gelu', 'Sigmoid', 'Softmax', 'Erf', 'CumSum', 'Trilu', 'LpNormalization', 'Clip']) {
      expect(one((b) => b.node(op, [x(b, ['batch', 'seq', 768])]))).toBe('float32[batch,seq,768]');
    }
  });
  test('IsNaN, IsInf and Not give bool', () => {
    expect(one((b) => b.node('IsNaN', [x(b, ['n', 3])]))).toBe('bool[n,3]');
    expect(one((b) => b.node('Not', [x(b, ['n'], 'x', 'bool')]))).toBe('bool[n]');
  });
  test('Dropout mask is bool from opset 10, the data type before', () => {
    expect(infer((b) => b.nodeN('Dropout', [x(b, ['batch', 16])], {}, { outputs: 2 }))).toEqual(['float32[batch,16]', 'bool[batch,16]']);
    expect(infer((b) => b.nodeN('Dropout', [x(b, ['batch', 16])], {}, { outputs: 2 }), 7)).toEqual(['float32[batch,16]', 'float32[batch,16]']);
  });
});

describe('broadcasting', () => {
  test('attention mask + scores', () => {
    expect(one((b) => b.node('Add', [x(b, ['batch', 1, 'seq'], 'm'), x(b, ['batch', 'heads', 'seq', 1], 's')]))).toBe('float32[batch,batch,seq,seq]');
    expect(one((b) => b.node('Add', [x(b, ['batch', 1, 1, 'seq'], 'm'), x(b, ['batch', 'heads', 'seq', 'seq'], 's')]))).toBe('float32[batch,heads,seq,seq]');
  });
  test('unifies equal dims of different names', () => {
    expect(infer((b) => {
      const a = x(b, ['n', 4], 'a');
      return [b.node('Mul', [a, x(b, ['m', 4], 'b')]), b.node('Relu', [a])];
    })).toEqual(['float32[m,4]', 'float32[m,4]']);
  });
  test('rejects incompatible constant dims', () => {
    expect(() => one((b) => b.node('Sub', [x(b, [3, 4], 'a'), x(b, [3, 5], 'b')]))).toThrow(/4 and 5/);
  });
  test('comparisons give bool, Where takes its type from input 1', () => {
    expect(one((b) => b.node('Less', [x(b, ['n', 1], 'a'), x(b, ['m'], 'b')]))).toBe('bool[n,m]');
    expect(one((b) => b.node('Where', [x(b, ['seq', 'seq'], 'c', 'bool'), x(b, [], 'a', 'int32'), x(b, ['batch', 1, 1, 'seq'], 'b', 'int32')]))).toBe('int32[batch,1,seq,seq]');
  });
  test('variadic Sum/Max and PRelu', () => {
    expect(one((b) => b.node('Sum', [x(b, ['n', 1], 'a'), x(b, [1, 'm'], 'b'), x(b, [], 'c')]))).toBe('float32[n,m]');
    expect(one((b) => b.node('PRelu', [x(b, ['n', 8, 'h', 'w'], 'a'), x(b, [8, 1, 1], 's')]))).toBe('float32[n,8,h,w]');
  });
  test('legacy broadcast=1 (opset 6) keeps A\'s shape', () => {
    expect(one((b) => b.node('Add', [x(b, [2, 3, 4, 5], 'a'), x(b, [3, 4], 'b')], { broadcast: 1, axis: 1 }), 6)).toBe('float32[2,3,4,5]');
  });
});

describe('symbolic contents', () => {
  test('Shape -> Gather -> Div -> Concat -> Reshape keeps batch and seq', () => {
    expect(one((b) => {
      const inp = x(b, ['batch', 'seq', 768]);
      const s = b.node('Shape', [inp]);
      const g = (i: number): Value => b.node('Unsqueeze', [b.node('Gather', [s, ints(b, [i], [])], { axis: 0 }), ints(b, [0])]);
      const head = b.node('Div', [g(2), ints(b, [12])]);
      const target = b.node('Concat', [g(0), g(1), ints(b, [12]), head], { axis: 0 });
      return b.node('Reshape', [inp, target]);
    })).toBe('float32[batch,seq,12,64]');
  });
  test('Mul of dims flattens symbolically; Div of symbols when exact', () => {
    expect(one((b) => {
      const inp = x(b, ['batch', 'seq', 'hidden']);
      const s = b.node('Shape', [inp]);
      const d = (i: number): Value => b.node('Gather', [s, ints(b, [i])], { axis: 0 });
      const bs = b.node('Mul', [d(0), d(1)]);
      const back = b.node('Div', [bs, d(0)]);
      return b.node('Reshape', [inp, b.node('Concat', [bs, b.node('Sub', [b.node('Add', [back, d(2)]), d(1)])], { axis: 0 })]);
    })).toBe('float32[batch*seq,hidden]');
  });
  test('Div of a dim by a constant is a floor division', () => {
    expect(one((b) => {
      const inp = x(b, ['n', 'len']);
      const half = b.node('Div', [b.node('Shape', [inp]), ints(b, [1, 2])]);
      return b.node('Reshape', [x(b, ['n', 'len'], 'y'), half]);
    })).toBe('float32[n,floor(len/2)]');
  });
  test('Where(Equal(shape, -1), 1, shape): the PyTorch Expand pattern', () => {
    expect(one((b) => {
      const inp = x(b, ['batch', 1, 'seq']);
      const s = b.node('Shape', [inp]);
      const target = b.node('Where', [b.node('Equal', [s, ints(b, [-1], [])]), ints(b, [1], []), s]);
      return b.node('Expand', [x(b, [1], 'y'), target]);
    })).toBe('float32[batch,1,seq]');
  });
  test('Not/Or of decided comparisons', () => {
    expect(one((b) => {
      const inp = x(b, ['batch', 'seq']);
      const s = b.node('Shape', [inp]);
      const keep = b.node('Or', [b.node('Not', [b.node('Equal', [s, ints(b, [-1], [])])]), b.node('Less', [s, ints(b, [0], [])])]);
      const t = b.node('Cast', [keep], { to: 7 });
      return b.node('Reshape', [x(b, [1, 1], 'y'), t]);
    })).toBe('float32[1,1]');
  });
  test('undecidable comparisons give no contents', () => {
    expect(one((b) => {
      const s = b.node('Shape', [x(b, ['a', 'b'])]);
      const t = b.node('Where', [b.node('Equal', [s, ints(b, [4], [])]), ints(b, [1], []), s]);
      return b.node('Expand', [x(b, [1], 'y'), t]);
    })).toMatch(/^float32\[unk__\d+,unk__\d+\]$/);
  });
  test('Neg, Abs, Max, ReduceProd on shape vectors', () => {
    expect(one((b) => {
      const inp = x(b, ['batch', 'seq', 4]);
      const s = b.node('Shape', [inp]);
      const n = b.node('ReduceProd', [s], { keepdims: 1 });
      const m = b.node('Max', [b.node('Abs', [b.node('Neg', [n])]), ints(b, [0])]);
      return b.node('Reshape', [inp, m]);
    })).toBe('float32[4*batch*seq]');
  });
});

describe('reductions', () => {
  test('ReduceMean keepdims, attribute axes (opset 17)', () => {
    expect(one((b) => b.node('ReduceMean', [x(b, ['batch', 'seq', 768])], { axes: [-1] }))).toBe('float32[batch,seq,1]');
    expect(one((b) => b.node('ReduceMax', [x(b, ['batch', 'seq', 768])], { axes: [0, 2], keepdims: 0 }))).toBe('float32[seq]');
    expect(one((b) => b.node('ReduceL2', [x(b, ['batch', 'seq', 768])], { keepdims: 0 }))).toBe('float32[]');
  });
  test('axes as input (ReduceSum 13+, ReduceMean 18+)', () => {
    expect(one((b) => b.node('ReduceSum', [x(b, ['batch', 'seq', 768]), ints(b, [1])], { keepdims: 0 }))).toBe('float32[batch,768]');
    expect(one((b) => b.node('ReduceMean', [x(b, ['batch', 'seq', 768]), ints(b, [-1])]), 18)).toBe('float32[batch,seq,1]');
    expect(one((b) => b.node('ReduceSum', [x(b, ['batch', 'seq']), ints(b, [], [0])], { noop_with_empty_axes: 1 }))).toBe('float32[batch,seq]');
    // run-time axes: the rank survives with keepdims
    expect(one((b) => b.node('ReduceSum', [x(b, ['batch', 1]), x(b, [1], 'axes', 'int64')]))).toMatch(/^float32\[unk__\d+,1\]$/);
  });
  test('ArgMax and TopK', () => {
    expect(one((b) => b.node('ArgMax', [x(b, ['batch', 'seq', 'vocab'])], { axis: -1, keepdims: 0 }))).toBe('int64[batch,seq]');
    expect(one((b) => b.node('ArgMin', [x(b, ['batch', 'seq'])]))).toBe('int64[1,seq]');
    expect(infer((b) => b.nodeN('TopK', [x(b, ['batch', 'vocab']), ints(b, [5])], {}, { outputs: 2 }))).toEqual(['float32[batch,5]', 'int64[batch,5]']);
    expect(infer((b) => b.nodeN('TopK', [x(b, ['batch', 'vocab'])], { k: 3, axis: 0 }, { outputs: 2 }), 9)).toEqual(['float32[3,vocab]', 'int64[3,vocab]']);
  });
});

describe('contractions', () => {
  test('MatMul: projection, batch broadcasting, 1-D promotion', () => {
    expect(one((b) => b.node('MatMul', [x(b, ['batch', 'seq', 768]), x(b, [768, 3072], 'w')]))).toBe('float32[batch,seq,3072]');
    expect(one((b) => b.node('MatMul', [x(b, ['batch', 12, 'seq', 64], 'q'), x(b, ['batch', 12, 64, 'seq'], 'k')]))).toBe('float32[batch,12,seq,seq]');
    expect(one((b) => b.node('MatMul', [x(b, [1, 'n', 'k'], 'a'), x(b, ['b', 'k', 'm'], 'w')]))).toBe('float32[b,n,m]');
    expect(one((b) => b.node('MatMul', [x(b, ['k'], 'a'), x(b, ['b', 'k', 'm'], 'w')]))).toBe('float32[b,m]');
    expect(one((b) => b.node('MatMul', [x(b, ['b', 'n', 'k'], 'a'), x(b, ['k'], 'v')]))).toBe('float32[b,n]');
    expect(one((b) => b.node('MatMulInteger', [x(b, ['n', 4], 'a', 'uint8'), x(b, [4, 8], 'w', 'uint8')]))).toBe('int32[n,8]');
    expect(() => one((b) => b.node('MatMul', [x(b, ['n', 4], 'a'), x(b, [5, 8], 'w')]))).toThrow(/4 and 5/);
  });
  test('MatMul unifies the contracted dims', () => {
    expect(infer((b) => {
      const a = x(b, ['n', 'k'], 'a');
      return [b.node('MatMul', [a, x(b, ['j', 'm'], 'w')]), b.node('Relu', [a])];
    })).toEqual(['float32[n,m]', 'float32[n,j]']);
  });
  test('Gemm with transB', () => {
    expect(one((b) => b.node('Gemm', [x(b, ['batch', 768]), x(b, [3072, 768], 'w'), x(b, [3072], 'c')], { transB: 1 }))).toBe('float32[batch,3072]');
    expect(one((b) => b.node('Gemm', [x(b, [768, 'batch']), x(b, [768, 10], 'w')], { transA: 1 }))).toBe('float32[batch,10]');
  });
  test('Einsum', () => {
    expect(one((b) => b.node('Einsum', [x(b, ['batch', 12, 'seq', 64], 'q'), x(b, ['batch', 12, 'kv', 64], 'k')], { equation: 'bhqd,bhkd->bhqk' }))).toBe('float32[batch,12,seq,kv]');
    expect(one((b) => b.node('Einsum', [x(b, ['n', 'k'], 'a'), x(b, ['k', 'm'], 'w')], { equation: 'ij,jk' }))).toBe('float32[n,m]');
    expect(one((b) => b.node('Einsum', [x(b, ['b', 2, 'n', 'k'], 'a'), x(b, [1, 'k', 'm'], 'w')], { equation: '...ij,...jk->...ik' }))).toBe('float32[b,2,n,m]');
    expect(one((b) => b.node('Einsum', [x(b, ['n', 'n'], 'a')], { equation: 'ii->' }))).toBe('float32[]');
    expect(one((b) => b.node('Einsum', [x(b, ['b', 3, 4], 'a')], { equation: '...ij' }))).toBe('float32[b,3,4]');
  });
  test('Det', () => {
    expect(one((b) => b.node('Det', [x(b, ['batch', 3, 3])]))).toBe('float32[batch]');
  });
});
