import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { mergeTransposes } from '../../passes/layout/merge-transposes.js';
import { checkPass, ops } from './harness.js';

describe('merge-transposes', () => {
  test('merges two Transposes into one with the composed perm', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3, 4, 5]);
    const t1 = b.node('Transpose', [x], { perm: [0, 2, 3, 1] });
    const t2 = b.node('Transpose', [t1], { perm: [3, 1, 0, 2] });
    b.output(b.node('Relu', [t2]), 'y');
    const { after, changes } = await checkPass(b.build(), mergeTransposes);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Transpose: 1, Relu: 1 });
    const t = after.graph.nodes.find((n) => n.opType === 'Transpose')!;
    expect(t.inputs[0]!.name).toBe('x');
  });

  test('a chain of three folds to one; graph output keeps its name', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const t1 = b.node('Transpose', [x], { perm: [1, 0, 2] });
    const t2 = b.node('Transpose', [t1], { perm: [0, 2, 1] });
    b.output(b.node('Transpose', [t2], { perm: [2, 1, 0] }), 'y');
    const { after, changes } = await checkPass(b.build(), mergeTransposes);
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Transpose: 1 });
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y']);
  });

  test('inverse perms cancel; default perms (reversal) too', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['n', 3, 4]);
    const a = b.node('Transpose', [b.node('Transpose', [x], { perm: [2, 0, 1] })], { perm: [1, 2, 0] });
    const c = b.node('Transpose', [b.node('Transpose', [a])]);
    const d = b.node('Transpose', [b.node('Transpose', [c], { perm: [1, 0, 2] })]);
    b.output(b.node('Sigmoid', [d]), 'y');
    const { after } = await checkPass(b.build(), mergeTransposes, { inputDims: { n: 2 } });
    // the last pair: [1,0,2] then reversal [2,1,0] -> q = [p1[2], p1[1], p1[0]] = [2,0,1]
    expect(ops(after)).toEqual({ Transpose: 1, Sigmoid: 1 });
    expect(after.graph.nodes[0]!.inputs[0]!.name).toBe('x');
  });

  test('does not fire when the inner Transpose has another use', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const t1 = b.node('Transpose', [x], { perm: [1, 0] });
    b.output(b.node('Transpose', [t1], { perm: [1, 0] }), 'y');
    b.output(b.node('Relu', [t1]), 'z');
    const { after, changes } = await checkPass(b.build(), mergeTransposes);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Transpose: 2, Relu: 1 });
  });

  test('does not fire when the inner Transpose is a graph output', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const t1 = b.output(b.node('Transpose', [x], { perm: [1, 0] }), 't');
    b.output(b.node('Transpose', [t1], { perm: [1, 0] }), 'y');
    const { changes } = await checkPass(b.build(), mergeTransposes);
    expect(changes).toBe(0);
  });

  test('cancelling pair between a graph input and a graph output keeps both names', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.node('Transpose', [b.node('Transpose', [x], { perm: [1, 0] })], { perm: [1, 0] }), 'y');
    const { after } = await checkPass(b.build(), mergeTransposes);
    expect(ops(after)).toEqual({ Identity: 1 });
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y']);
  });
});
