import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseMatmulAddIntoGemm } from '../../passes/fuse/fuse-matmul-add-into-gemm.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { seededRandom } from '../../src/inputs.js';
import { readModel } from '../../src/node/files.js';
import { readTestDataSet } from '../../src/node/testdata.js';
import { checkPass, ops } from './harness.js';

const fixtures = path.resolve(__dirname, '../../fixtures/models');

function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

describe('fuse-matmul-add-into-gemm', () => {
  test('MatMul([batch, K], W) + b[N] -> Gemm; Add with the bias first', async () => {
    const t = rand(1);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 6]);
    const h = b.node('Add', [b.node('MatMul', [x, b.constant(t([6, 5]), 'w1')]), b.constant(t([5]), 'b1')]);
    const y = b.node('Add', [b.constant(t([3]), 'b2'), b.node('MatMul', [b.node('Relu', [h]), b.constant(t([5, 3]), 'w2')])]);
    b.output(y, 'y');
    const { after, changes } = await checkPass(b.build(), fuseMatmulAddIntoGemm, { inputDims: { batch: 4 } });
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Gemm: 2, Relu: 1 });
    expect(after.graph.outputs[0]!.name).toBe('y');
  });

  test('C of shape [1, N], [M, N], [M, 1], [1, 1], scalar, and a non-constant C', async () => {
    const t = rand(3);
    for (const cdims of [[1, 4], [3, 4], [3, 1], [1, 1], [], [1]]) {
      const b = new ModelBuilder({ opset: 13 });
      const x = b.input('x', 'float32', [3, 5]);
      b.output(b.node('Add', [b.node('MatMul', [x, b.constant(t([5, 4]), 'w')]), b.constant(t(cdims), 'c')]), 'y');
      const { after } = await checkPass(b.build(), fuseMatmulAddIntoGemm);
      expect(ops(after), `C ${JSON.stringify(cdims)}`).toEqual({ Gemm: 1 });
    }
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['m', 5]);
    const w = b.input('w', 'float32', [5, 4]);
    const c = b.input('c', 'float32', [4]);
    b.output(b.node('Add', [b.node('MatMul', [x, w]), c]), 'y');
    const { after } = await checkPass(b.build(), fuseMatmulAddIntoGemm, { inputDims: { m: 2 } });
    expect(ops(after)).toEqual({ Gemm: 1 });
  });

  test('does not fire: rank-3 MatMul, multi-use MatMul output, C that grows the output, int64, C [K] mismatch', async () => {
    const t = rand(5);
    const b = new ModelBuilder({ opset: 17 });
    const x3 = b.input('x3', 'float32', [2, 3, 5]);
    b.output(b.node('Add', [b.node('MatMul', [x3, b.constant(t([5, 4]), 'w1')]), b.constant(t([4]), 'c1')]), 'y1');
    const x = b.input('x', 'float32', [3, 5]);
    const mm = b.node('MatMul', [x, b.constant(t([5, 4]), 'w2')]);
    b.output(b.node('Add', [mm, b.constant(t([4]), 'c2')]), 'y2');
    b.output(b.node('Relu', [mm]), 'r2');
    const x1 = b.input('x1', 'float32', [1, 5]);
    b.output(b.node('Add', [b.node('MatMul', [x1, b.constant(t([5, 4]), 'w3')]), b.constant(t([3, 4]), 'c3')]), 'y3');
    const xi = b.input('xi', 'int64', [3, 5]);
    b.output(b.node('Add', [b.node('MatMul', [xi, b.constant(Tensor.int64(Array.from({ length: 10 }, (_, i) => i), [5, 2]), 'w4')]), b.constant(Tensor.int64([1, 2]), 'c4')]), 'y4');
    const xn = b.input('xn', 'float32', [3, 5]);
    b.output(b.node('Add', [b.node('MatMul', [xn, b.constant(t([5, 1]), 'w5')]), b.constant(t([1, 6]), 'c5')]), 'y5');
    const { after, changes } = await checkPass(b.build(), fuseMatmulAddIntoGemm);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ MatMul: 5, Add: 5, Relu: 1 });
  });

  test('bert-tiny-op17: its MatMul inputs are rank 3, nothing fires', async () => {
    const model = readModel(path.join(fixtures, 'bert-tiny-op17/model.onnx')).model;
    const before = ops(model);
    const data = readTestDataSet(path.join(fixtures, 'bert-tiny-op17/test_data_set_1'));
    const feeds = Object.fromEntries(data.inputs.map((i) => [i.name, i.tensor]));
    const { after, changes } = await checkPass(model, fuseMatmulAddIntoGemm, { feeds });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual(before);
    expect(before.MatMul).toBe(16);
  });
});
