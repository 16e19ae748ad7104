import { describe, expect, test } from 'vitest';
import { attrInts } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { mergeSqueezeUnsqueeze } from '../../passes/cleanup/merge-squeeze-unsqueeze.js';
import { checkPass, ops } from './harness.js';

/** axes of the only node of `op`: from the attribute or the constant input */
function axesOf(m: Model, op: string): number[] {
  const n = m.graph.nodes.find((x) => x.opType === op)!;
  const a = attrInts(n.attr('axes'));
  if (a) return a;
  return Array.from(n.inputs[1]!.initializer!.toTypedArray() as BigInt64Array, Number);
}

/** Build Squeeze/Unsqueeze in the opset's form. */
function sq(b: ModelBuilder, opset: number, op: string, x: ReturnType<ModelBuilder['input']>, axes: number[]) {
  return opset >= 13 ? b.node(op, [x, b.constant(Tensor.int64(axes), 'axes')]) : b.node(op, [x], { axes });
}

describe.each([11, 13])('merge-squeeze-unsqueeze (opset %i)', (opset) => {
  test('Unsqueeze of Unsqueeze becomes one Unsqueeze with combined axes', async () => {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', [3, 4]);
    const y = sq(b, opset, 'Unsqueeze', x, [0]); // [1,3,4]
    b.output(b.node('Relu', [sq(b, opset, 'Unsqueeze', y, [-1])]), 'z'); // [1,3,4,1]
    const { after, changes } = await checkPass(b.build(), mergeSqueezeUnsqueeze);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Unsqueeze: 1, Relu: 1 });
    expect(axesOf(after, 'Unsqueeze')).toEqual([0, 3]);
    const n = after.graph.nodes.find((x) => x.opType === 'Unsqueeze')!;
    expect(n.attr('axes') !== undefined).toBe(opset < 13);
    expect(n.inputs.length).toBe(opset < 13 ? 1 : 2);
  });

  test('inner axes are mapped through the outer ones', async () => {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', ['n', 4]);
    const y = sq(b, opset, 'Unsqueeze', x, [1, -1]); // [n,1,4,1]
    b.output(sq(b, opset, 'Unsqueeze', y, [0, 2]), 'z'); // [1,n,1,1,4,1]
    const { after } = await checkPass(b.build(), mergeSqueezeUnsqueeze, { inputDims: { n: 2 } });
    expect(ops(after)).toEqual({ Unsqueeze: 1 });
    expect(axesOf(after, 'Unsqueeze')).toEqual([0, 2, 3, 5]);
  });

  test('Squeeze of Squeeze becomes one Squeeze', async () => {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', [1, 3, 1, 4, 1]);
    const y = sq(b, opset, 'Squeeze', x, [0]); // [3,1,4,1]
    b.output(sq(b, opset, 'Squeeze', y, [1, -1]), 'z'); // [3,4]
    const { after } = await checkPass(b.build(), mergeSqueezeUnsqueeze);
    expect(ops(after)).toEqual({ Squeeze: 1 });
    expect(axesOf(after, 'Squeeze')).toEqual([0, 2, 4]);
  });

  test('a Squeeze without axes after a Squeeze (static shape)', async () => {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', [1, 3, 1, 4]);
    const y = sq(b, opset, 'Squeeze', x, [0]); // [3,1,4]
    b.output(b.node('Squeeze', [y]), 'z'); // [3,4]
    const { after } = await checkPass(b.build(), mergeSqueezeUnsqueeze);
    expect(ops(after)).toEqual({ Squeeze: 1 });
    expect(axesOf(after, 'Squeeze')).toEqual([0, 2]);
  });

  test('Unsqueeze then Squeeze of the same axes cancel; Squeeze then Unsqueeze too', async () => {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', ['n', 4]);
    const u = sq(b, opset, 'Unsqueeze', b.node('Relu', [x]), [1, -1]); // [n,1,4,1]
    const s = sq(b, opset, 'Squeeze', u, [-1, 1]);
    const w = b.input('w', 'float32', [2, 1, 3]);
    const t = sq(b, opset, 'Unsqueeze', sq(b, opset, 'Squeeze', w, [1]), [-2]);
    b.output(b.node('Neg', [s]), 'y');
    b.output(b.node('Neg', [t]), 'v');
    const { after, changes } = await checkPass(b.build(), mergeSqueezeUnsqueeze, { inputDims: { n: 3 } });
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Relu: 1, Neg: 2 });
  });

  test('does not fire: different axes, or a multi-use inner node', async () => {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', [3, 4]);
    const u = sq(b, opset, 'Unsqueeze', x, [0]); // [1,3,4]
    b.output(b.node('Neg', [sq(b, opset, 'Squeeze', sq(b, opset, 'Unsqueeze', u, [3]), [0])]), 'a'); // squeeze a different axis
    b.output(b.node('Relu', [u]), 'b');
    const { after, changes } = await checkPass(b.build(), mergeSqueezeUnsqueeze);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Unsqueeze: 2, Squeeze: 1, Neg: 1, Relu: 1 });
  });

  test('a Squeeze without axes after an Unsqueeze also removes the input\'s own 1-dims: no cancel', async () => {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', [1, 4]);
    b.output(b.node('Squeeze', [sq(b, opset, 'Unsqueeze', x, [0])]), 'y');
    const { changes } = await checkPass(b.build(), mergeSqueezeUnsqueeze);
    expect(changes).toBe(0);
  });
});
