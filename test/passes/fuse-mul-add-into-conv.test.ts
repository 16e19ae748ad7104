import { describe, expect, test } from 'vitest';
import { fuseMulAddIntoConv } from '../../passes/fuse/fuse-mul-add-into-conv.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { seededRandom } from '../../src/inputs.js';
import { checkPass, ops } from './harness.js';

function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

describe('fuse-mul-add-into-conv', () => {
  test('Conv -> Mul [C,1,1] -> Add [1,C,1,1] -> Relu folds into one Conv', async () => {
    const t = rand(1);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 3, 6, 6]);
    const conv = b.node('Conv', [x, b.constant(t([4, 3, 3, 3]), 'w'), b.constant(t([4]), 'b')], { pads: [1, 1, 1, 1] });
    const m = b.node('Mul', [conv, b.constant(t([4, 1, 1], 0.5, 2), 'scale')]);
    const a = b.node('Add', [b.constant(t([1, 4, 1, 1]), 'shift'), m]);
    b.output(b.node('Relu', [a]), 'y');
    const { after, changes } = await checkPass(b.build(), fuseMulAddIntoConv, { inputDims: { batch: 2 } });
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Conv: 1, Relu: 1 });
  });

  test('scalar Mul (constant first) into a Conv without bias; no bias is created', async () => {
    const t = rand(3);
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 5, 5]);
    const conv = b.node('Conv', [x, b.constant(t([3, 2, 2, 2]), 'w')]);
    b.output(b.node('Mul', [b.constant(Tensor.float32([1.7], []), 's'), conv]), 'y');
    const { after } = await checkPass(b.build(), fuseMulAddIntoConv);
    expect(ops(after)).toEqual({ Conv: 1 });
    expect(after.graph.nodes[0]!.inputs.length).toBe(2);
    expect(after.graph.outputs[0]!.name).toBe('y');
  });

  test('Add into a Conv without bias creates the bias; Sub subtracts', async () => {
    const t = rand(5);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 3, 4, 4]);
    const c1 = b.node('Conv', [x, b.constant(t([5, 3, 1, 1]), 'w1')]);
    const c2 = b.node('Conv', [x, b.constant(t([5, 3, 1, 1]), 'w2'), b.constant(t([5]), 'b2')]);
    b.output(b.node('Add', [c1, b.constant(t([5, 1, 1]), 'd1')]), 'y1');
    b.output(b.node('Sub', [c2, b.constant(t([1, 5, 1, 1]), 'd2')]), 'y2');
    const { after, changes } = await checkPass(b.build(), fuseMulAddIntoConv);
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Conv: 2 });
    for (const n of after.graph.nodes) expect(n.inputs.length).toBe(3);
  });

  test('1-D Conv with a [C,1] Mul; 3-D Conv with a [1] Add', async () => {
    const t = rand(7);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 2, 9]);
    const c1 = b.node('Conv', [x, b.constant(t([4, 2, 3]), 'w1'), b.constant(t([4]), 'b1')]);
    b.output(b.node('Mul', [c1, b.constant(t([4, 1]), 'k1')]), 'y1');
    const z = b.input('z', 'float32', [1, 2, 3, 3, 3]);
    const c2 = b.node('Conv', [z, b.constant(t([2, 2, 2, 2, 2]), 'w2')]);
    b.output(b.node('Add', [c2, b.constant(t([1]), 'k2')]), 'y2');
    const { after } = await checkPass(b.build(), fuseMulAddIntoConv);
    expect(ops(after)).toEqual({ Conv: 2 });
  });

  test('does not fire: per-element [C,H,W] Mul, [C] Add (broadcasts over W), rank-growing constant', async () => {
    const t = rand(9);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const conv = (name: string) => b.node('Conv', [x, b.constant(t([4, 2, 1, 1]), name)]);
    b.output(b.node('Mul', [conv('w1'), b.constant(t([4, 4, 4]), 'k1')]), 'y1');
    b.output(b.node('Add', [conv('w2'), b.constant(t([4]), 'k2')]), 'y2');
    b.output(b.node('Mul', [conv('w3'), b.constant(t([1, 1, 4, 1, 1]), 'k3')]), 'y3');
    b.output(b.node('Add', [conv('w4'), b.constant(t([2, 4, 1, 1]), 'k4')]), 'y4');
    const { after, changes } = await checkPass(b.build(), fuseMulAddIntoConv);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Conv: 4, Mul: 2, Add: 2 });
  });

  test('does not fire: multi-use Conv output, non-constant scale, non-constant weight, Sub with the constant first', async () => {
    const t = rand(11);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const s = b.input('s', 'float32', [4, 1, 1]);
    const c1 = b.node('Conv', [x, b.constant(t([4, 2, 1, 1]), 'w1')]);
    b.output(b.node('Mul', [c1, b.constant(t([4, 1, 1]), 'k1')]), 'y1');
    b.output(b.node('Relu', [c1]), 'r1');
    const c2 = b.node('Conv', [x, b.constant(t([4, 2, 1, 1]), 'w2')]);
    b.output(b.node('Mul', [c2, s]), 'y2');
    const c3 = b.node('Conv', [x, b.input('w3', 'float32', [4, 2, 1, 1])]);
    b.output(b.node('Mul', [c3, b.constant(t([4, 1, 1]), 'k3')]), 'y3');
    const c4 = b.node('Conv', [x, b.constant(t([4, 2, 1, 1]), 'w4')]);
    b.output(b.node('Sub', [b.constant(t([4, 1, 1]), 'k4'), c4]), 'y4');
    const { after, changes } = await checkPass(b.build(), fuseMulAddIntoConv);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Conv: 4, Mul: 3, Relu: 1, Sub: 1 });
  });

  test('a weight shared with another Conv is left for it', async () => {
    const t = rand(13);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const w = b.constant(t([3, 2, 3, 3]), 'w');
    const bias = b.constant(t([3]), 'b');
    b.output(b.node('Mul', [b.node('Conv', [x, w, bias]), b.constant(t([3, 1, 1]), 'k')]), 'y1');
    b.output(b.node('Conv', [x, w, bias]), 'y2');
    const { after } = await checkPass(b.build(), fuseMulAddIntoConv);
    expect(ops(after)).toEqual({ Conv: 2 });
    expect(after.graph.initializers.map((v) => v.name).sort()).toEqual(['b', 'b_fused', 'w', 'w_scaled']);
  });
});
