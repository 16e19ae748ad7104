import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { eliminateNoopReshape } from '../../passes/cleanup/eliminate-noop-reshape.js';
import { checkPass, ops } from './harness.js';
import { fixture } from './elim-util.js';

describe('eliminate-noop-reshape', () => {
  test('static: Reshape to the same shape goes (also with 0 and -1 in the target)', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const a = b.node('Reshape', [b.node('Relu', [x]), b.constant(Tensor.int64([2, 3, 4]), 's1')]);
    const c = b.node('Reshape', [a, b.constant(Tensor.int64([0, 3, -1]), 's2')]);
    b.output(b.node('Neg', [c]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopReshape);
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Relu: 1, Neg: 1 });
    expect(after.graph.initializers).toHaveLength(0);
  });

  test('symbolic: Reshape(x, [Shape(x)[0], 4]) on x: [batch, 4] goes', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 4]);
    const r = b.node('Relu', [x]);
    const d0 = b.node('Gather', [b.node('Shape', [r]), b.constant(Tensor.int64([0]), 'i0')], { axis: 0 });
    const target = b.node('Concat', [d0, b.constant(Tensor.int64([4]), 'four')], { axis: 0 });
    b.output(b.node('Reshape', [r, target]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopReshape, { inputDims: { batch: 3 } });
    expect(changes).toBe(1);
    expect(ops(after).Reshape).toBeUndefined();
    expect(after.graph.outputs[0]!.name).toBe('y');
    expect(after.graph.outputs[0]!.producer!.opType).toBe('Relu');
  });

  test('no rewrite: a Reshape that changes the shape, or to a shape known only at run time', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const s = b.input('s', 'int64', [3]);
    const z = b.input('z', 'float32', ['batch', 4]);
    b.output(b.node('Reshape', [x, b.constant(Tensor.int64([3, 2, 4]), 's1')]), 'y');
    b.output(b.node('Reshape', [x, b.constant(Tensor.int64([2, 12]), 's2')]), 'y2');
    b.output(b.node('Reshape', [z, b.constant(Tensor.int64([2, -1]), 's3')]), 'y3'); // batch*4/2: not [batch, 4]
    const feeds = { x: Tensor.float32(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]), s: Tensor.int64([4, 3, 2]), z: Tensor.float32([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]) };
    b.output(b.node('Reshape', [x, s]), 'y4');
    const { after, changes } = await checkPass(b.build(), eliminateNoopReshape, { feeds });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Reshape: 4 });
  });

  test('gpt2-tiny: Reshapes whose target rebuilds the input shape go', async () => {
    const model = fixture('gpt2-tiny-op14');
    const before = ops(model).Reshape!;
    const { after, changes } = await checkPass(model, eliminateNoopReshape, { inputDims: { batch: 2, sequence: 5 } });
    expect(changes).toBeGreaterThan(0);
    expect(ops(after).Reshape).toBe(before - changes);
  });
});
