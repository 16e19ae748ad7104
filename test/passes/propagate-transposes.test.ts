import { describe, expect, test } from 'vitest';
import { propagateTransposes } from '../../passes/layout/propagate-transposes.js';
import { mergeTransposes } from '../../passes/layout/merge-transposes.js';
import { attrInt, attrInts } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor, transposeTensor } from '../../src/ir/tensor.js';
import { seededRandom } from '../../src/inputs.js';
import type { ManagerOptions } from '../../src/pass/manager.js';
import { checkPass, ops, type CheckOptions } from './harness.js';

function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

const NHWC = [0, 2, 3, 1];
const NCHW = [0, 3, 1, 2];
const transposes = (m: Model): number => ops(m).Transpose ?? 0;

/** checkPass with explanations collected */
async function check(model: Model, opts: CheckOptions = {}) {
  const explained: string[] = [];
  const o: CheckOptions & ManagerOptions = { ...opts, onExplain: (_pass, msg) => explained.push(msg) };
  const before = transposes(model);
  const res = await checkPass(model, propagateTransposes, o);
  return { ...res, explained, before, afterCount: transposes(res.after) };
}

describe('propagate-transposes', () => {
  test('Transpose -> Relu -> Add(lower-rank const) -> inverse Transpose: every Transpose vanishes', async () => {
    const t = rand(1);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['n', 3, 4, 5]);
    const y = b.node('Transpose', [x], { perm: NHWC });
    const a = b.node('Add', [b.node('Relu', [y]), b.constant(t([3]), 'bias')]);
    b.output(b.node('Transpose', [a], { perm: NCHW }), 'out');
    const { after, before, afterCount } = await check(b.build(), { inputDims: { n: 2 } });
    expect(before).toBe(2);
    expect(afterCount).toBe(0);
    expect(ops(after)).toEqual({ Relu: 1, Add: 1 });
    // the [3] bias, left-padded to [1,1,1,3] and permuted back: [1,3,1,1]
    const add = after.graph.nodes.find((n) => n.opType === 'Add')!;
    expect(add.inputs[1]!.initializer!.dims).toEqual([1, 3, 1, 1]);
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['out']);
  });

  test('full-rank constant, scalar constant and a same-perm Transpose on the other side', async () => {
    const t = rand(2);
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 3, 4, 5]);
    const z = b.input('z', 'float32', [2, 3, 4, 5]);
    const p = [2, 0, 3, 1];
    const inv = [1, 3, 0, 2];
    const y = b.node('Transpose', [x], { perm: p });
    const m = b.node('Mul', [b.constant(t([4, 2, 5, 3]), 'w'), y]);
    const s = b.node('Sub', [m, b.constant(Tensor.float32([0.5], []), 'half')]);
    const w = b.node('Where', [b.node('Greater', [s, b.constant(Tensor.float32([0], [1]), 'zero')]), s, b.node('Transpose', [z], { perm: p })]);
    b.output(b.node('Transpose', [b.node('Sigmoid', [w])], { perm: inv }), 'out');
    const { after, before, afterCount } = await check(b.build());
    expect(before).toBe(3);
    expect(afterCount).toBe(0);
    expect(ops(after)).toEqual({ Mul: 1, Sub: 1, Greater: 1, Where: 1, Sigmoid: 1 });
  });

  test('TF-style NHWC sandwich: Concat, Mul, Pad, Slice (opset 13: inputs)', async () => {
    const t = rand(3);
    const b = new ModelBuilder({ opset: 13 });
    const x1 = b.input('x1', 'float32', [1, 3, 6, 6]);
    const x2 = b.input('x2', 'float32', [1, 2, 6, 6]);
    const c = b.node('Concat', [b.node('Transpose', [x1], { perm: NHWC }), b.node('Transpose', [x2], { perm: NHWC })], { axis: 3 });
    const m = b.node('Mul', [c, b.constant(t([5]), 'scale')]);
    const pad = b.node('Pad', [m, b.constant(Tensor.int64([0, 1, 2, 0, 0, 3, 1, 0]), 'pads')], { mode: 'reflect' });
    const sl = b.node('Slice', [pad, b.constant(Tensor.int64([1, 0]), 'starts'), b.constant(Tensor.int64([8, 7]), 'ends'), b.constant(Tensor.int64([1, -2]), 'axes')]);
    b.output(b.node('Transpose', [sl], { perm: NCHW }), 'out');
    const { after, before, afterCount } = await check(b.build());
    expect(before).toBe(3);
    expect(afterCount).toBe(0);
    expect(ops(after)).toEqual({ Concat: 1, Mul: 1, Pad: 1, Slice: 1 });
    const concat = after.graph.nodes.find((n) => n.opType === 'Concat')!;
    expect(attrInt(concat.attr('axis'))).toBe(1);
    const pad2 = after.graph.nodes.find((n) => n.opType === 'Pad')!;
    expect(Array.from(pad2.inputs[1]!.initializer!.toTypedArray() as BigInt64Array, Number)).toEqual([0, 0, 1, 2, 0, 0, 3, 1]);
  });

  test('opset 9/10 attribute forms: Pad pads, Slice axes attributes', async () => {
    const b = new ModelBuilder({ opset: 9 });
    const x = b.input('x', 'float32', [1, 3, 5, 6]);
    const y = b.node('Transpose', [x], { perm: NHWC });
    const pad = b.node('Pad', [b.node('Relu', [y])], { pads: [0, 1, 0, 0, 0, 0, 2, 0] });
    const sl = b.node('Slice', [pad], { starts: [1, 0], ends: [5, 2], axes: [1, 3] });
    b.output(b.node('Transpose', [sl], { perm: NCHW }), 'out');
    const { after, afterCount } = await check(b.build());
    expect(afterCount).toBe(0);
    const slice = after.graph.nodes.find((n) => n.opType === 'Slice')!;
    expect(attrInts(slice.attr('axes'))).toEqual([2, 1]);
    const pad2 = after.graph.nodes.find((n) => n.opType === 'Pad')!;
    expect(attrInts(pad2.attr('pads'))).toEqual([0, 0, 1, 0, 0, 0, 0, 2]);
  });

  test('ReduceMean keepdims=0 over NHWC spatial axes: the output needs no Transpose (opset 13 attribute, opset 18 input)', async () => {
    for (const opset of [13, 18]) {
      const b = new ModelBuilder({ opset });
      const x = b.input('x', 'float32', [2, 4, 3, 5]);
      const y = b.node('Transpose', [x], { perm: NHWC });
      const axes = opset >= 18 ? [b.constant(Tensor.int64([1, 2]), 'axes')] : [];
      const r = b.node('ReduceMean', [y, ...axes], opset >= 18 ? { keepdims: 0 } : { axes: [1, 2], keepdims: 0 });
      b.output(b.node('Relu', [r]), 'out');
      const { after, before, afterCount } = await check(b.build());
      expect(before).toBe(1);
      expect(afterCount).toBe(0);
      expect(ops(after)).toEqual({ ReduceMean: 1, Relu: 1 });
    }
  });

  test('ReduceSum keepdims=1, axes attribute (opset 11) and input (opset 13); ArgMax keepdims=0', async () => {
    for (const opset of [11, 13]) {
      const b = new ModelBuilder({ opset });
      const x = b.input('x', 'float32', [2, 4, 3, 5]);
      const y = b.node('Transpose', [x], { perm: NHWC });
      const rs = opset >= 13
        ? b.node('ReduceSum', [y, b.constant(Tensor.int64([-1]), 'axes')], { keepdims: 1 })
        : b.node('ReduceSum', [y], { axes: [-1], keepdims: 1 });
      b.output(b.node('Transpose', [rs], { perm: NCHW }), 'sum');
      const y2 = b.node('Transpose', [b.input('x2', 'float32', [2, 4, 3, 5])], { perm: NHWC });
      // ArgMax over H of NHWC, keepdims=0: [N,W,C] from [N,C,W]: one Transpose [0,2,1] remains, after the small result
      b.output(b.node('ArgMax', [y2], { axis: 1, keepdims: 0 }), 'arg');
      const { after, before, afterCount } = await check(b.build());
      expect(before).toBe(3);
      expect(afterCount).toBe(1);
      const tr = after.graph.nodes.find((n) => n.opType === 'Transpose')!;
      expect(tr.inputs[0]!.producer!.opType).toBe('ArgMax');
      expect(attrInts(tr.attr('perm'))).toEqual([0, 2, 1]);
    }
  });

  test('Squeeze / Unsqueeze: axes attribute (opset 11) and input (opset 13)', async () => {
    for (const opset of [11, 13]) {
      const b = new ModelBuilder({ opset });
      const x = b.input('x', 'float32', [2, 1, 3, 4]);
      const y = b.node('Transpose', [x], { perm: NHWC }); // [2,3,4,1]
      const sq = opset >= 13 ? b.node('Squeeze', [y, b.constant(Tensor.int64([3]), 'sq_axes')]) : b.node('Squeeze', [y], { axes: [3] }); // [2,3,4]
      const e = b.node('Exp', [sq]);
      const un = opset >= 13 ? b.node('Unsqueeze', [e, b.constant(Tensor.int64([0, -1]), 'un_axes')]) : b.node('Unsqueeze', [e], { axes: [0, -1] }); // [1,2,3,4,1]
      b.output(b.node('Transpose', [un], { perm: [0, 1, 4, 2, 3] }), 'out'); // [1,2,1,3,4]
      const { after, before, afterCount } = await check(b.build());
      expect(before).toBe(2);
      expect(afterCount).toBeLessThanOrEqual(1);
      // the squeezed dim was the size-1 C: no perm is left that moves data (eliminate-noop-transpose may drop it)
      expect(ops(after).Exp).toBe(1);
    }
  });

  test('Split: every output meets the inverse Transpose', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 6, 3, 3]);
    const [s1, s2] = b.nodeN('Split', [b.node('Transpose', [x], { perm: NHWC }), b.constant(Tensor.int64([2, 4]), 'split')], { axis: 3 }, { outputs: 2 });
    b.output(b.node('Transpose', [s1!], { perm: NCHW }), 'a');
    b.output(b.node('Transpose', [b.node('Tanh', [s2!])], { perm: NCHW }), 'b');
    const { after, before, afterCount } = await check(b.build());
    expect(before).toBe(3);
    expect(afterCount).toBe(0);
    expect(attrInt(after.graph.nodes.find((n) => n.opType === 'Split')!.attr('axis'))).toBe(1);
  });

  test('Resize (opset 13, constant scales) and Softmax (opset 13: axis remapped)', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 3, 4]);
    const y = b.node('Transpose', [x], { perm: NHWC });
    const rz = b.node('Resize', [y, undefined, b.constant(Tensor.float32([1, 2, 2, 1]), 'scales')], { mode: 'nearest' });
    const sm = b.node('Softmax', [rz], { axis: -1 });
    b.output(b.node('Transpose', [sm], { perm: NCHW }), 'out');
    const { after, afterCount } = await check(b.build());
    expect(afterCount).toBe(0);
    const resize = after.graph.nodes.find((n) => n.opType === 'Resize')!;
    expect(Array.from(resize.inputs[2]!.initializer!.toTypedArray() as Float32Array)).toEqual([1, 1, 2, 2]);
    expect(attrInt(after.graph.nodes.find((n) => n.opType === 'Softmax')!.attr('axis'))).toBe(1);
  });

  test('Softmax before opset 13 does not commute: explained, not moved', async () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    const y = b.node('Transpose', [x], { perm: [0, 2, 1] });
    b.output(b.node('Transpose', [b.node('Softmax', [y], { axis: 2 })], { perm: [0, 2, 1] }), 'out');
    const { changes, afterCount, explained } = await check(b.build());
    expect(changes).toBe(0);
    expect(afterCount).toBe(2);
    expect(explained.some((m) => /before opset 13/.test(m))).toBe(true);
  });

  test('does not fire when moving would duplicate Transposes', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 3, 4, 4]);
    const y = b.node('Transpose', [x], { perm: NHWC });
    b.output(b.node('Relu', [y]), 'a');
    b.output(b.node('Sigmoid', [y]), 'b');
    const { changes, afterCount, explained } = await check(b.build());
    expect(changes).toBe(0);
    expect(afterCount).toBe(1);
    expect(explained.some((m) => /would make 2 Transposes out of 1/.test(m))).toBe(true);
  });

  test('does not fire when the other operand is neither transposed alike nor constant', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 3, 4, 4]);
    const z = b.input('z', 'float32', [1, 4, 4, 3]);
    const y = b.node('Transpose', [x], { perm: NHWC });
    b.output(b.node('Add', [y, z]), 'out');
    const { changes, explained } = await check(b.build());
    expect(changes).toBe(0);
    expect(explained.some((m) => /would add a Transpose/.test(m))).toBe(true);
  });

  test('a Transpose with several users moves when all of them cancel it', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 3, 4, 4]);
    const y = b.node('Transpose', [x], { perm: NHWC });
    b.output(b.node('Transpose', [b.node('Relu', [y])], { perm: NCHW }), 'a');
    b.output(b.node('Transpose', [b.node('Neg', [y])], { perm: NCHW }), 'b');
    b.output(b.node('Transpose', [y], { perm: [0, 3, 2, 1] }), 'c'); // merges: [0,1,3,2]
    const { after, before, afterCount } = await check(b.build());
    expect(before).toBe(4);
    expect(afterCount).toBe(1);
    const tr = after.graph.nodes.find((n) => n.opType === 'Transpose')!;
    expect(attrInts(tr.attr('perm'))).toEqual([0, 1, 3, 2]);
    expect(tr.inputs[0]!.name).toBe('x');
  });

  test('Transpose of a constant folds into a new constant; pairs cancel with merge-transposes in the pipeline', async () => {
    const t = rand(4);
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.node('Transpose', [b.constant(t([3, 2]), 'w')], { perm: [1, 0] });
    b.output(b.node('Add', [x, w]), 'out');
    const { after, afterCount } = await check(b.build());
    expect(afterCount).toBe(0);
    expect(after.graph.initializers.map((v) => v.initializer!.dims)).toEqual([[2, 3]]);
    const res = await checkPass(b.build(), [{ fixedPoint: [propagateTransposes, mergeTransposes] }]);
    expect(transposes(res.after)).toBe(0);
  });

  test('unary chain with Clip (inputs), LeakyRelu, Cast and an int Transpose on Equal', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    const y = b.node('Transpose', [x], { perm: [2, 0, 1] });
    const c = b.node('Clip', [b.node('LeakyRelu', [y], { alpha: 0.2 }), b.constant(Tensor.float32([-0.5], []), 'lo'), b.constant(Tensor.float32([0.5], []), 'hi')]);
    const k = b.node('Cast', [b.node('Mul', [c, b.constant(Tensor.float32([4], []), 'four')])], { to: 7 });
    const e = b.node('Equal', [k, b.constant(Tensor.int64([0, 1, -1, 2], [4, 1, 1]), 'ks')]);
    b.output(b.node('Transpose', [b.node('Cast', [e], { to: 1 })], { perm: [1, 2, 0] }), 'out');
    const { after, afterCount } = await check(b.build());
    expect(afterCount).toBe(0);
    expect(ops(after).Cast).toBe(2);
  });

  test('transposeTensor', () => {
    const t = Tensor.float32([0, 1, 2, 3, 4, 5], [2, 3]);
    const u = transposeTensor(t, [1, 0])!;
    expect(u.dims).toEqual([3, 2]);
    expect(Array.from(u.toTypedArray() as Float32Array)).toEqual([0, 3, 1, 4, 2, 5]);
  });
});

describe('propagate-transposes: diamonds', () => {
  test('SiLU in NHWC (x * Sigmoid(x)) between a pair: both users move together', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 3, 4, 4]);
    const y = b.node('Transpose', [x], { perm: NHWC });
    const m = b.node('Mul', [y, b.node('Sigmoid', [y])]);
    b.output(b.node('Transpose', [m], { perm: NCHW }), 'out');
    const { after, before, afterCount } = await check(b.build());
    expect(before).toBe(2);
    expect(afterCount).toBe(0);
    expect(ops(after)).toEqual({ Mul: 1, Sigmoid: 1 });
  });
});
