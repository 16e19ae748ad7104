import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { eliminateNoopTranspose } from '../../passes/cleanup/eliminate-noop-transpose.js';
import { checkPass, ops } from './harness.js';
import { fixture, firstOutputOf, insertAfter } from './elim-util.js';

describe('eliminate-noop-transpose', () => {
  test('identity perm goes; so does a default perm on rank 1', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 3, 4]);
    const v = b.input('v', 'float32', [5]);
    const t = b.node('Transpose', [b.node('Relu', [x])], { perm: [0, 1, 2] });
    b.output(b.node('Neg', [t]), 'y');
    b.output(b.node('Neg', [b.node('Transpose', [v])]), 'z');
    const { after, changes } = await checkPass(b.build(), eliminateNoopTranspose, { inputDims: { batch: 2 } });
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Relu: 1, Neg: 2 });
  });

  test('a perm that moves only size-1 dims goes', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [1, 1, 5]);
    b.output(b.node('Transpose', [b.node('Relu', [x])], { perm: [1, 0, 2] }), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopTranspose);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Relu: 1 });
  });

  test('no rewrite: a real permutation, a default perm on rank 2, size-1 dims that change the shape', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const s = b.input('s', 'float32', [3, 3]);
    const u = b.input('u', 'float32', [1, 5, 1]);
    b.output(b.node('Transpose', [x], { perm: [1, 0] }), 'y1');
    b.output(b.node('Transpose', [s]), 'y2'); // same shape, but the data moves
    b.output(b.node('Transpose', [u], { perm: [1, 0, 2] }), 'y3'); // same data order, shape [5, 1, 1]
    const { after, changes } = await checkPass(b.build(), eliminateNoopTranspose);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Transpose: 3 });
  });

  test('bert-tiny: an identity Transpose inserted by a layout pass goes, the real ones stay', async () => {
    const model = fixture('bert-tiny-op17');
    const real = ops(model).Transpose!;
    insertAfter(model, firstOutputOf(model, 'MatMul', 0), 'Transpose', [], { perm: [0, 1, 2] });
    insertAfter(model, firstOutputOf(model, 'Softmax', 0), 'Transpose', [], { perm: [0, 1, 2, 3] });
    const { syntheticInputs } = await import('../../src/inputs.js');
    const feeds = syntheticInputs(model, { seed: 2, dims: { batch: 2, sequence: 5 }, intHigh: 2 });
    const { after, changes } = await checkPass(model, eliminateNoopTranspose, { feeds });
    expect(changes).toBe(2);
    expect(ops(after).Transpose).toBe(real);
  });
});
