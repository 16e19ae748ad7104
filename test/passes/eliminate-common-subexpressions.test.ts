import { describe, expect, test } from 'vitest';
import { attr } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { eliminateCommonSubexpressions } from '../../passes/cleanup/eliminate-common-subexpressions.js';
import { checkPass, ops } from './harness.js';
import { addIf, fixture } from './elim-util.js';

const bool = (v: boolean): Tensor => Tensor.fromTypedArray(DataType.BOOL, [], Uint8Array.of(v ? 1 : 0));

describe('eliminate-common-subexpressions', () => {
  test('duplicate chains merge in one sweep', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 4]);
    const a1 = b.node('Sigmoid', [b.node('Relu', [x])]);
    const a2 = b.node('Sigmoid', [b.node('Relu', [x])]);
    b.output(b.node('Add', [a1, a2]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateCommonSubexpressions, { inputDims: { batch: 3 } });
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Relu: 1, Sigmoid: 1, Add: 1 });
    const add = after.graph.outputs[0]!.producer!;
    expect(add.inputs[0]).toBe(add.inputs[1]);
  });

  test('equal attributes merge (order of attributes does not matter); different ones do not', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const s0 = b.node('Softmax', [x], { axis: 0 });
    const s0b = b.node('Softmax', [x], { axis: 0 });
    const s1 = b.node('Softmax', [x], { axis: 1 });
    const g1 = b.node('Gemm', [x, x], { transB: 1, alpha: 0.5 });
    const g2 = b.node('Gemm', [x, x], { alpha: 0.5, transB: 1 });
    const g3 = b.node('Gemm', [x, x], { alpha: 0.25, transB: 1 });
    b.output(b.node('Sum', [s0, s0b, s1]), 'y');
    b.output(b.node('Sum', [g1, g2, g3]), 'z');
    const { after, changes } = await checkPass(b.build(), eliminateCommonSubexpressions);
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Softmax: 2, Gemm: 2, Sum: 2 });
  });

  test('Constant nodes with equal tensors merge; different dims or values do not', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 2]);
    const c1 = b.node('Constant', [], { value: Tensor.float32([1, 2, 3, 4], [2, 2]) });
    const c2 = b.node('Constant', [], { value: Tensor.float32([1, 2, 3, 4], [2, 2]) });
    const c3 = b.node('Constant', [], { value: Tensor.float32([1, 2, 3, 4], [4]) }); // same bytes, other dims
    const c4 = b.node('Constant', [], { value: Tensor.float32([1, 2, 3, 5], [2, 2]) });
    b.output(b.node('Sum', [x, c1, c2, c4]), 'y');
    b.output(b.node('Reshape', [c3, b.constant(Tensor.int64([2, 2]), 's')]), 'z');
    const { after, changes } = await checkPass(b.build(), eliminateCommonSubexpressions);
    expect(changes).toBe(1);
    expect(ops(after).Constant).toBe(3);
  });

  test('never merged: random ops, Dropout in training mode, If nodes', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [3]);
    const cond = b.input('cond', 'bool', []);
    const r1 = b.node('RandomUniformLike', [x], { seed: attr.float('seed', 1) });
    const r2 = b.node('RandomUniformLike', [x], { seed: attr.float('seed', 1) });
    const r3 = b.node('RandomNormal', [], { shape: [3], seed: attr.float('seed', 2) });
    const r4 = b.node('RandomNormal', [], { shape: [3], seed: attr.float('seed', 2) });
    const zero = b.constant(Tensor.float32([0], []), 'zero');
    const on = b.constant(bool(true), 'on');
    const d1 = b.node('Dropout', [x, zero, on]);
    const d2 = b.node('Dropout', [x, zero, on]);
    const branch = (t: ReturnType<typeof b.node>) => { t.type = tensorType(DataType.FLOAT, [3]); return t; };
    const i1 = addIf(b, cond, 1, (t, e) => [[branch(t.node('Neg', [x]))], [branch(e.node('Abs', [x]))]]).outs[0]!;
    const i2 = addIf(b, cond, 1, (t, e) => [[branch(t.node('Neg', [x]))], [branch(e.node('Abs', [x]))]]).outs[0]!;
    b.output(b.node('Sum', [r1, r2, r3, r4]), 'random');
    b.output(b.node('Sum', [d1, d2, i1, i2]), 'y');
    const model = b.build();
    const { after, changes } = await checkPass(model, eliminateCommonSubexpressions, { atol: 10, rtol: 10 });
    expect(changes).toBe(0);
    expect(ops(after)).toMatchObject({ RandomUniformLike: 2, RandomNormal: 2, Dropout: 2, If: 2 });
  });

  test('Dropouts in inference mode merge', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [3]);
    b.output(b.node('Add', [b.node('Dropout', [x]), b.node('Dropout', [x])]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateCommonSubexpressions);
    expect(changes).toBe(1);
    expect(ops(after).Dropout).toBe(1);
  });

  test('two duplicate graph outputs keep both names', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [3]);
    b.output(b.node('Relu', [x]), 'y1');
    b.output(b.node('Relu', [x]), 'y2');
    const { after, changes } = await checkPass(b.build(), eliminateCommonSubexpressions);
    expect(changes).toBe(1);
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y1', 'y2']);
    expect(ops(after)).toEqual({ Relu: 1, Identity: 1 });
  });

  test('duplicates inside an If branch merge; a node is not merged with one of the enclosing graph', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [3]);
    const cond = b.input('cond', 'bool', []);
    const outer = b.node('Neg', [x]);
    const { outs } = addIf(b, cond, 1, (t, e) => {
      const s = t.node('Add', [t.node('Neg', [x]), t.node('Neg', [x])]);
      s.type = tensorType(DataType.FLOAT, [3]);
      const ev = e.node('Abs', [x]);
      ev.type = tensorType(DataType.FLOAT, [3]);
      return [[s], [ev]];
    });
    b.output(b.node('Add', [outs[0]!, outer]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateCommonSubexpressions);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Neg: 2, If: 1, Add: 2, Abs: 1 });
  });

  test('gpt2-tiny: the exporter\'s repeated Shape/Gather/Unsqueeze/Constant chains merge', async () => {
    const model = fixture('gpt2-tiny-op14');
    const n0 = model.graph.nodeCount;
    const shapes0 = ops(model).Shape!;
    const { after, changes } = await checkPass(model, eliminateCommonSubexpressions, { inputDims: { batch: 2, sequence: 5 } });
    expect(changes).toBeGreaterThan(50);
    expect(after.graph.nodeCount).toBe(n0 - changes);
    expect(ops(after).Shape!).toBeLessThan(shapes0);
    // a second run finds nothing more
    const again = await checkPass(after, eliminateCommonSubexpressions, { inputDims: { batch: 2, sequence: 5 } });
    expect(again.changes).toBe(0);
  });
});
