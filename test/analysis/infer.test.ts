/** The inference driver: symbolic dims, declared types, custom ops, pinned dims, write-back. */
import { describe, expect, test } from 'vitest';
import { formatSymType, inferShapes, InferenceError, parseSym, RULES, Sym } from '../../src/analysis/index.js';
import { evaluateNode } from '../../src/analysis/evaluator.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { parseModel, serializeModel } from '../../src/io.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';

describe('Sym', () => {
  const h = Sym.symbol('h'), seq = Sym.symbol('seq'), batch = Sym.symbol('batch');

  test('canonical text', () => {
    expect(seq.mul(2).toString()).toBe('2*seq');
    expect(seq.add(1).toString()).toBe('seq+1');
    expect(batch.mul(seq).toString()).toBe('batch*seq');
    expect(seq.mul(batch).equals(batch.mul(seq))).toBe(true);
    expect(seq.sub(seq).toString()).toBe('0');
    expect(h.sub(1).floorDiv(2).add(1).toString()).toBe('floor((h+1)/2)');
  });

  test('floor/ceil normalize, so equal dims compare equal', () => {
    // conv k3 s2 p1 vs pool k2 s2 ceil_mode: both floor((h+1)/2); (h-2)/2+1 vs h/2
    expect(h.sub(2).floorDiv(2).add(1).equals(h.floorDiv(2))).toBe(true);
    expect(h.sub(3).ceilDiv(2).add(1).equals(h.floorDiv(2))).toBe(true);
    expect(seq.mul(4).floorDiv(2).toString()).toBe('2*seq');
    expect(seq.mul(2).add(1).floorDiv(2).toString()).toBe('seq');
    expect(h.floorDiv(2).subst(new Map([['h', Sym.const(225)]])).value).toBe(112);
  });

  test('text parses back to the same expression; other dim_params are one symbol', () => {
    for (const e of [seq.mul(2).add(1), batch.mul(seq).sub(3), h.sub(1).floorDiv(2).add(1), h.add(5).floorDiv(4).mul(seq)]) {
      expect(parseSym(e.toString()).equals(e)).toBe(true);
    }
    expect(parseSym('batch_size').symbols()).toEqual(new Set(['batch_size']));
    expect(parseSym('Add/Add_1_output_0_dim_0').symbols()).toEqual(new Set(['Add/Add_1_output_0_dim_0']));
  });
});

describe('inferShapes', () => {
  test('custom ops give unknown outputs and inference goes on past them', () => {
    const b = new ModelBuilder({ opset: 17, opsets: { 'my.ops': 1 } });
    const x = b.input('x', 'float32', ['batch', 4]);
    const c = b.node('Mystery', [x], {}, { domain: 'my.ops' });
    const y = b.node('Relu', [c]);
    const z = b.node('Sigmoid', [x]);
    const r = inferShapes(b.build(), RULES);
    expect(r.unknownOps).toEqual(new Map([['my.ops::Mystery', 1]]));
    expect(r.types.get(y)).toBeUndefined();
    expect(formatSymType(r.types.get(z))).toBe('float32[batch,4]');
  });

  test('a type declared for a custom op output (value_info) is used downstream', () => {
    const b = new ModelBuilder({ opset: 17, opsets: { 'my.ops': 1 } });
    const x = b.input('x', 'float32', ['batch', 4]);
    const c = b.node('Mystery', [x], {}, { domain: 'my.ops' });
    c.type = { kind: 'tensor', elemType: 1, shape: ['batch', 8] };
    const y = b.node('MatMul', [c, b.constant(Tensor.float32(new Array(16).fill(0.5), [8, 2]))]);
    const r = inferShapes(b.build(), RULES);
    expect(formatSymType(r.types.get(y))).toBe('float32[batch,2]');
  });

  test('a declared shape that contradicts inference is an error naming the node and both shapes', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 4]);
    const y = b.node('MatMul', [x, b.constant(Tensor.float32(new Array(12).fill(1), [4, 3]))], {}, { name: 'proj' });
    y.type = { kind: 'tensor', elemType: 1, shape: ['batch', 5] };
    expect(() => inferShapes(b.build(), RULES)).toThrow(InferenceError);
    expect(() => inferShapes(b.build(), RULES)).toThrow(/node 'proj' \(MatMul\): inferred float32\[batch,3\] but the model declares float32\[batch,5\]/);
  });

  test('dims that must be equal are unified; the user-visible name wins', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 'seq']);
    const m = b.input('mask', 'float32', ['n', 'seq']);
    const y = b.node('Add', [x, m]);
    const r = inferShapes(b.build(), RULES);
    expect(formatSymType(r.types.get(y))).toBe('float32[batch,seq]');
    expect(r.unified.get('n')?.toString()).toBe('batch');
  });

  test('pinned dims make everything concrete; inferred types are saved as value_info and read back', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 'seq', 8]);
    const shape = b.node('Shape', [x]);
    const first = b.node('Gather', [shape, b.constant(Tensor.int64([0], []))], { axis: 0 });
    const flat = b.node('Concat', [b.node('Unsqueeze', [first, b.constant(Tensor.int64([0]))]), b.constant(Tensor.int64([-1]))], { axis: 0 });
    const y = b.node('Reshape', [x, flat]);
    b.output(y, 'y');
    const model = b.build();
    const symbolic = inferShapes(model, RULES, { evaluate: evaluateNode });
    expect(formatSymType(symbolic.types.get(y))).toBe('float32[batch,8*seq]');
    const reloaded = parseModel(concatChunks(serializeModel(model).chunks)).model;
    expect(reloaded.graph.outputs[0]!.type).toEqual({ kind: 'tensor', elemType: 1, shape: ['batch', '8*seq'] });
    const pinned = inferShapes(reloaded, RULES, { dims: { batch: 2, seq: 5 }, evaluate: evaluateNode });
    expect(formatSymType(pinned.types.get(reloaded.graph.outputs[0]!))).toBe('float32[2,40]');
  });
});
