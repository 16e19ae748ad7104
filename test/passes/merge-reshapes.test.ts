import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { mergeReshapes } from '../../passes/cleanup/merge-reshapes.js';
import { checkPass, ops } from './harness.js';

const shapeOfReshape = (m: { graph: { nodes: { opType: string; inputs: ({ initializer?: Tensor } | undefined)[] }[] } }): bigint[] =>
  Array.from(m.graph.nodes.find((n) => n.opType === 'Reshape')!.inputs[1]!.initializer!.toTypedArray() as BigInt64Array);

describe('merge-reshapes', () => {
  test('Reshape of Reshape becomes one Reshape of the original input', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const r1 = b.node('Reshape', [x, b.constant(Tensor.int64([6, 4]), 's1')]);
    b.output(b.node('Reshape', [r1, b.constant(Tensor.int64([4, -1]), 's2')]), 'y');
    const { after, changes } = await checkPass(b.build(), mergeReshapes);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Reshape: 1 });
    expect(after.graph.nodes[0]!.inputs[0]!.name).toBe('x');
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y']);
  });

  test('Flatten, Squeeze and Unsqueeze feeding a Reshape with a constant shape', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['n', 1, 6]);
    const f = b.node('Flatten', [x], { axis: 1 });
    const sq = b.node('Squeeze', [x, b.constant(Tensor.int64([1]), 'ax1')]);
    const un = b.node('Unsqueeze', [x, b.constant(Tensor.int64([0]), 'ax0')]);
    const shape = b.constant(Tensor.int64([-1, 2, 3]), 'shape');
    b.output(b.node('Reshape', [f, shape]), 'a');
    b.output(b.node('Reshape', [sq, shape]), 'b');
    b.output(b.node('Reshape', [un, shape]), 'c');
    const { after, changes } = await checkPass(b.build(), mergeReshapes, { inputDims: { n: 2 } });
    expect(changes).toBe(3);
    expect(ops(after)).toEqual({ Reshape: 3 });
    for (const n of after.graph.nodes) expect(n.inputs[0]!.name).toBe('x');
  });

  test('an inner Reshape with other uses stays for them', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 6]);
    const r1 = b.node('Reshape', [x, b.constant(Tensor.int64([3, 4]), 's1')]);
    b.output(b.node('Reshape', [r1, b.constant(Tensor.int64([12]), 's2')]), 'y');
    b.output(b.node('Relu', [r1]), 'z');
    const { after, changes } = await checkPass(b.build(), mergeReshapes);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Reshape: 2, Relu: 1 });
  });

  test('a 0 in the outer shape is kept when the copied dim is the same in both inputs', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['n', 3, 4]);
    const r1 = b.node('Reshape', [x, b.constant(Tensor.int64([0, 12]), 's1')]);
    b.output(b.node('Reshape', [r1, b.constant(Tensor.int64([0, 2, 6]), 's2')]), 'y');
    const { after, changes } = await checkPass(b.build(), mergeReshapes, { inputDims: { n: 2 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Reshape: 1 });
    expect(shapeOfReshape(after)).toEqual([0n, 2n, 6n]);
  });

  test('a 0 copying a static dim that differs becomes that number', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const r1 = b.node('Reshape', [x, b.constant(Tensor.int64([6, 4]), 's1')]);
    b.output(b.node('Reshape', [r1, b.constant(Tensor.int64([0, 2, 2]), 's2')]), 'y');
    const { after, changes } = await checkPass(b.build(), mergeReshapes);
    expect(changes).toBe(1);
    expect(shapeOfReshape(after)).toEqual([6n, 2n, 2n]);
  });

  test('does not fire when a 0 would copy a different, unknown dim', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['n', 3, 4]);
    const r1 = b.node('Reshape', [x, b.constant(Tensor.int64([-1, 4]), 's1')]); // [3n, 4]
    b.output(b.node('Reshape', [r1, b.constant(Tensor.int64([0, 2, 2]), 's2')]), 'y');
    const { after, changes } = await checkPass(b.build(), mergeReshapes, { inputDims: { n: 2 } });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Reshape: 2 });
  });

  test('does not fire when the outer shape is not a constant', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 6]);
    const s = b.input('s', 'int64', [2]);
    const r1 = b.node('Reshape', [x, b.constant(Tensor.int64([3, 4]), 's1')]);
    b.output(b.node('Reshape', [r1, s]), 'y');
    const feeds = { x: Tensor.float32(Array.from({ length: 12 }, (_, i) => i), [2, 6]), s: Tensor.int64([4, 3]) };
    const { changes } = await checkPass(b.build(), mergeReshapes, { feeds });
    expect(changes).toBe(0);
  });

  test('allowzero=1: a 0 is a literal size, the shape is used as it is', async () => {
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', [0, 3]);
    const r1 = b.node('Reshape', [x, b.constant(Tensor.int64([3, 0]), 's1')], { allowzero: 1 });
    b.output(b.node('Reshape', [r1, b.constant(Tensor.int64([0, 5]), 's2')], { allowzero: 1 }), 'y');
    const { after, changes } = await checkPass(b.build(), mergeReshapes);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Reshape: 1 });
    expect(shapeOfReshape(after)).toEqual([0n, 5n]);
  });
});
