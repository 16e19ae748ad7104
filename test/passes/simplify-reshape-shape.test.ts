import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { simplifyReshapeShape } from '../../passes/cleanup/simplify-reshape-shape.js';
import { eliminateDeadNodes } from '../../passes/cleanup/eliminate-dead-nodes.js';
import { checkPass, ops } from './harness.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');

function headSplit() {
  // x: [batch, seq, 8] -> Reshape(x, [batch, seq, 2, 4]) with the shape computed from Shape(x)
  const b = new ModelBuilder({ opset: 14 });
  const x = b.input('x', 'float32', ['batch', 'seq', 8]);
  const shape = b.node('Shape', [x]);
  const dim = (i: number) => b.node('Unsqueeze', [b.node('Gather', [shape, b.constant(Tensor.int64([i], []))], { axis: 0 }), b.constant(Tensor.int64([0]))]);
  const s = b.node('Concat', [dim(0), dim(1), b.constant(Tensor.int64([2])), b.constant(Tensor.int64([4]))], { axis: 0 });
  b.output(b.node('Reshape', [x, s]), 'y');
  return b.build();
}

describe('simplify-reshape-shape', () => {
  test('a shape computed from the input becomes [0, 0, 2, 4]; the arithmetic goes', async () => {
    for (const inputDims of [{ batch: 2, seq: 5 }, { batch: 1, seq: 9 }]) {
      const { after, changes } = await checkPass(headSplit(), simplifyReshapeShape, { inputDims });
      expect(changes).toBe(1);
      expect(ops(after)).toEqual({ Reshape: 1 });
      const shape = after.graph.nodes[0]!.inputs[1]!.initializer!;
      expect(Array.from(shape.toTypedArray(), Number)).toEqual([0, 0, 2, 4]);
    }
  });

  test('merging heads: [batch, seq, -1]', async () => {
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', ['batch', 'seq', 2, 4]);
    const shape = b.node('Shape', [x]);
    const pick = (i: number) => b.node('Unsqueeze', [b.node('Gather', [shape, b.constant(Tensor.int64([i], []))], { axis: 0 }), b.constant(Tensor.int64([0]))]);
    b.output(b.node('Reshape', [x, b.node('Concat', [pick(0), pick(1), b.constant(Tensor.int64([-1]))], { axis: 0 })]), 'y');
    const { after } = await checkPass(b.build(), simplifyReshapeShape, { inputDims: { batch: 3, seq: 4 } });
    expect(Array.from(after.graph.nodes[0]!.inputs[1]!.initializer!.toTypedArray(), Number)).toEqual([0, 0, -1]);
  });

  test('does not fire when two entries are not the input\'s dims', async () => {
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', ['batch', 'seq', 8]);
    const y = b.input('y', 'float32', ['m', 'n']);
    const s = b.node('Concat', [b.node('Shape', [y]), b.constant(Tensor.int64([-1]))], { axis: 0 });
    b.output(b.node('Reshape', [x, s]), 'z');
    const { changes } = await checkPass(b.build(), simplifyReshapeShape, { inputDims: { batch: 2, seq: 4, m: 4, n: 2 } });
    expect(changes).toBe(0);
  });

  test('on gpt2-tiny: every Reshape gets a constant shape, outputs equal at two sizes', async () => {
    const { model } = readModel(path.join(FIXTURES, 'gpt2-tiny-op14/model.onnx'));
    const before = ops(model);
    for (const inputDims of [{ batch: 2, sequence: 5 }, { batch: 1, sequence: 11 }]) {
      const { after, changes } = await checkPass(model, [simplifyReshapeShape, eliminateDeadNodes], { inputDims });
      expect(changes).toBeGreaterThan(10);
      expect(ops(after).Reshape).toBe(before.Reshape);
      expect(ops(after).Concat ?? 0).toBeLessThan(before.Concat! / 2);
    }
  });
});
