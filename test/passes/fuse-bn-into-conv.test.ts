import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseBnIntoConv } from '../../passes/fuse/fuse-bn-into-conv.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { attr } from '../../src/ir/attribute.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph, type Value } from '../../src/ir/graph.js';
import { tensorType } from '../../src/ir/types.js';
import { PassManager } from '../../src/pass/manager.js';
import { Tensor } from '../../src/ir/tensor.js';
import { seededRandom } from '../../src/inputs.js';
import { readModel } from '../../src/node/files.js';
import { checkPass, ops } from './harness.js';

const fixtures = path.resolve(__dirname, '../../fixtures/models');

function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

/** BatchNormalization with non-trivial statistics over `c` channels. */
function bn(b: ModelBuilder, x: Value, c: number, seed: number, attrs: Record<string, unknown> = { epsilon: 0.003 }): Value {
  const t = rand(seed);
  return b.node('BatchNormalization', [
    x,
    b.constant(t([c], 0.5, 2), 'bn_scale'),
    b.constant(t([c], -0.5, 0.5), 'bn_bias'),
    b.constant(t([c], -0.3, 0.3), 'bn_mean'),
    b.constant(t([c], 0.2, 3), 'bn_var'),
  ], attrs);
}

describe('fuse-bn-into-conv', () => {
  test('Conv (with bias) -> BN -> Relu', async () => {
    const t = rand(1);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
    const conv = b.node('Conv', [x, b.constant(t([4, 3, 3, 3]), 'w'), b.constant(t([4]), 'b')], { pads: [1, 1, 1, 1] });
    b.output(b.node('Relu', [bn(b, conv, 4, 2)]), 'y');
    const { after, changes } = await checkPass(b.build(), fuseBnIntoConv, { inputDims: { batch: 2 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Conv: 1, Relu: 1 });
    // the old weights are gone, the new ones are new initializers
    expect(after.graph.initializers.map((v) => v.name).sort()).toEqual(['b_bn', 'w_bn']);
  });

  test('grouped Conv without bias, BN output is a graph output (name kept)', async () => {
    const t = rand(3);
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 4, 6, 6]);
    const conv = b.node('Conv', [x, b.constant(t([6, 2, 3, 3]), 'w')], { group: 2 });
    b.output(bn(b, conv, 6, 4, { epsilon: 0.01 }), 'y');
    const { after } = await checkPass(b.build(), fuseBnIntoConv);
    expect(ops(after)).toEqual({ Conv: 1 });
    expect(after.graph.outputs[0]!.name).toBe('y');
    expect(after.graph.outputs[0]!.producer!.opType).toBe('Conv');
  });

  test('1-D Conv weight given by a Constant node', async () => {
    const t = rand(5);
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 3, 10]);
    const w = b.node('Constant', [], { value: t([5, 3, 2]) });
    b.output(bn(b, b.node('Conv', [x, w]), 5, 6, { epsilon: 0.002 }), 'y');
    const { after } = await checkPass(b.build(), fuseBnIntoConv);
    expect(ops(after)).toEqual({ Conv: 1 });
  });

  test('ConvTranspose, with groups (weight [C_in, C_out/group, k...])', async () => {
    const t = rand(7);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 4, 5, 5]);
    const ct = b.node('ConvTranspose', [x, b.constant(t([4, 3, 3, 3]), 'w'), b.constant(t([6]), 'b')], { group: 2, strides: [2, 2] });
    b.output(bn(b, ct, 6, 8, { epsilon: 0.004 }), 'y');
    const { after } = await checkPass(b.build(), fuseBnIntoConv);
    expect(ops(after)).toEqual({ ConvTranspose: 1 });
  });

  test('ConvTranspose without groups or bias', async () => {
    const t = rand(9);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 3, 4, 4]);
    const ct = b.node('ConvTranspose', [x, b.constant(t([3, 5, 2, 2]), 'w')]);
    b.output(bn(b, ct, 5, 10), 'y');
    const { after } = await checkPass(b.build(), fuseBnIntoConv);
    expect(ops(after)).toEqual({ ConvTranspose: 1 });
  });

  test('Gemm transB=1 with C [N], alpha and beta', async () => {
    const t = rand(11);
    const b = new ModelBuilder({ opset: 13 });
    const a = b.input('a', 'float32', ['batch', 6]);
    const gemm = b.node('Gemm', [a, b.constant(t([4, 6]), 'B'), b.constant(t([4]), 'C')], { transB: 1, alpha: 0.5, beta: 1.5 });
    b.output(bn(b, gemm, 4, 12), 'y');
    const { after } = await checkPass(b.build(), fuseBnIntoConv, { inputDims: { batch: 3 } });
    expect(ops(after)).toEqual({ Gemm: 1 });
  });

  test('Gemm without C, and Gemm with C [M, N] and [M, 1]', async () => {
    const t = rand(13);
    for (const cdims of [undefined, [3, 4], [3, 1], []]) {
      const b = new ModelBuilder({ opset: 17 });
      const a = b.input('a', 'float32', [6, 3]);
      const C = cdims ? b.constant(t(cdims), 'C') : undefined;
      const gemm = b.node('Gemm', [a, b.constant(t([6, 4]), 'B'), C], { transA: 1, beta: 0.25 });
      b.output(bn(b, gemm, 4, 14), 'y');
      const { after } = await checkPass(b.build(), fuseBnIntoConv);
      expect(ops(after)).toEqual({ Gemm: 1 });
    }
  });

  test('MatMul with a rank-2 input and constant weight -> MatMul + Add', async () => {
    const t = rand(15);
    const b = new ModelBuilder({ opset: 17 });
    const a = b.input('a', 'float32', ['batch', 6]);
    const mm = b.node('MatMul', [a, b.constant(t([6, 5]), 'w')]);
    b.output(bn(b, mm, 5, 16), 'y');
    const { after } = await checkPass(b.build(), fuseBnIntoConv, { inputDims: { batch: 4 } });
    expect(ops(after)).toEqual({ MatMul: 1, Add: 1 });
  });

  test('does not fire: MatMul output of rank 3 (BN channel axis 1 is not the last dim)', async () => {
    const t = rand(17);
    const b = new ModelBuilder({ opset: 17 });
    const a = b.input('a', 'float32', [2, 4, 6]);
    const mm = b.node('MatMul', [a, b.constant(t([6, 4]), 'w')]);
    b.output(bn(b, mm, 4, 18), 'y');
    const { after, changes } = await checkPass(b.build(), fuseBnIntoConv);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ MatMul: 1, BatchNormalization: 1 });
  });

  test('does not fire: Conv output with another use', async () => {
    const t = rand(19);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 3, 5, 5]);
    const conv = b.node('Conv', [x, b.constant(t([4, 3, 1, 1]), 'w')]);
    b.output(bn(b, conv, 4, 20), 'y');
    b.output(b.node('Relu', [conv]), 'z');
    const { after, changes } = await checkPass(b.build(), fuseBnIntoConv);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Conv: 1, BatchNormalization: 1, Relu: 1 });
  });

  test('does not fire: Conv output is a graph output', async () => {
    const t = rand(21);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 3, 5, 5]);
    const conv = b.node('Conv', [x, b.constant(t([4, 3, 1, 1]), 'w')]);
    b.output(bn(b, conv, 4, 22), 'y');
    b.output(conv, 'c');
    const { changes } = await checkPass(b.build(), fuseBnIntoConv);
    expect(changes).toBe(0);
  });

  test('does not fire: non-constant weight, non-constant BN statistics', async () => {
    const t = rand(23);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 3, 5, 5]);
    const w = b.input('w', 'float32', [4, 3, 1, 1]);
    b.output(bn(b, b.node('Conv', [x, w]), 4, 24), 'y');
    const mean = b.input('mean', 'float32', [4]);
    const conv2 = b.node('Conv', [x, b.constant(t([4, 3, 1, 1]), 'w2')]);
    b.output(b.node('BatchNormalization', [conv2, b.constant(t([4]), 's'), b.constant(t([4]), 'bb'), mean, b.constant(t([4], 0.5, 1), 'v')]), 'z');
    const { after, changes } = await checkPass(b.build(), fuseBnIntoConv);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Conv: 2, BatchNormalization: 2 });
  });

  test('does not fire: float64 weights', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 3]);
    const mm = b.node('Cast', [b.node('MatMul', [b.node('Cast', [x], { to: 11 }), b.constant(Tensor.fromTypedArray(11, [3, 2], Float64Array.from([1, 2, 3, 4, 5, 6])), 'w')])], { to: 1 });
    b.output(bn(b, mm, 2, 26), 'y');
    const { changes } = await checkPass(b.build(), fuseBnIntoConv);
    expect(changes).toBe(0);
  });

  test('a weight shared with another Conv is left for it', async () => {
    const t = rand(27);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 3, 5, 5]);
    const w = b.constant(t([4, 3, 3, 3]), 'w');
    b.output(bn(b, b.node('Conv', [x, w]), 4, 28), 'y');
    b.output(b.node('Conv', [x, w]), 'z');
    const { after, before } = await checkPass(b.build(), fuseBnIntoConv);
    expect(ops(after)).toEqual({ Conv: 2 });
    const old = after.graph.initializers.find((v) => v.name === 'w')!;
    expect(old.uses.length).toBe(1);
    // the original tensor was not written into
    const orig = before.graph.initializers.find((v) => v.name === 'w')!.initializer!.toTypedArray();
    expect(Array.from(old.initializer!.toTypedArray() as Float32Array)).toEqual(Array.from(orig as Float32Array));
  });

  test('BN chain: Conv -> BN -> BN folds twice', async () => {
    const t = rand(29);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const conv = b.node('Conv', [x, b.constant(t([3, 2, 3, 3]), 'w')]);
    b.output(bn(b, bn(b, conv, 3, 30), 3, 31, { epsilon: 0.02 }), 'y');
    const { after } = await checkPass(b.build(), fuseBnIntoConv);
    expect(ops(after)).toEqual({ Conv: 1 });
  });

  test('does not fire: training form (opset 12 BN with its optional outputs)', async () => {
    const t = rand(33);
    const b = new ModelBuilder({ opset: 12 });
    const x = b.input('x', 'float32', [2, 3, 4, 4]);
    const conv = b.node('Conv', [x, b.constant(t([3, 3, 1, 1]), 'w')]);
    const c = 3;
    const [y] = b.nodeN('BatchNormalization', [conv, b.constant(t([c], 0.5, 2)), b.constant(t([c])), b.constant(t([c])), b.constant(t([c], 0.5, 2))], { epsilon: 0.001 }, { outputs: 5 });
    b.output(y!, 'y');
    // onnxruntime's inference build may lack training-mode BatchNormalization: check the pass alone
    const m = b.build();
    const report = await new PassManager([fuseBnIntoConv], { verifyEach: true }).run(m);
    expect(report.rewrites).toBe(0);
    expect(ops(m)).toEqual({ Conv: 1, BatchNormalization: 1 });
  });

  test('does not fire: training_mode=1 (opset 15)', async () => {
    const t = rand(35);
    const b = new ModelBuilder({ opset: 15 });
    const x = b.input('x', 'float32', [2, 3, 4, 4]);
    const conv = b.node('Conv', [x, b.constant(t([3, 3, 1, 1]), 'w')]);
    b.output(bn(b, conv, 3, 36, { epsilon: 0.001, training_mode: 1 }), 'y');
    const m = b.build();
    const report = await new PassManager([fuseBnIntoConv], { verifyEach: true }).run(m);
    expect(report.rewrites).toBe(0);
    expect(ops(m)).toEqual({ Conv: 1, BatchNormalization: 1 });
  });

  test('inside an If branch (subgraphs recurse)', async () => {
    const t = rand(37);
    const b = new ModelBuilder({ opset: 17 });
    const cond = b.input('cond', 'bool', []);
    const x = b.input('x', 'float32', [1, 3, 4, 4]);
    const iff = b.graph.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['y'] });
    for (const [name, seed] of [['then_branch', 38], ['else_branch', 39]] as const) {
      const g = new Graph(name, iff);
      const gb = new GraphBuilder(g);
      const conv = gb.node('Conv', [x, gb.constant(t([2, 3, 3, 3]), `${name}_w`)]);
      const r = rand(seed);
      const y = gb.node('BatchNormalization', [conv, gb.constant(r([2], 0.5, 2)), gb.constant(r([2])), gb.constant(r([2])), gb.constant(r([2], 0.5, 2))], { epsilon: 0.005 });
      y.type = tensorType(DataType.FLOAT, [1, 2, 2, 2]);
      gb.output(y);
      iff.attributes.set(name, attr.graph(name, g));
    }
    b.output(iff.outputs[0]!, undefined, tensorType(DataType.FLOAT, [1, 2, 2, 2]));
    const { after, changes } = await checkPass(b.build(), fuseBnIntoConv);
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ If: 1, Conv: 2 });
  });

  test('cnn-tiny-op13: the BatchNormalization after a MaxPool stays', async () => {
    const model = readModel(path.join(fixtures, 'cnn-tiny-op13/model.onnx')).model;
    const { after, changes } = await checkPass(model, fuseBnIntoConv, { inputDims: { batch: 2 } });
    expect(changes).toBe(0);
    expect(ops(after).BatchNormalization).toBe(1);
    const bnNode = after.graph.nodes.find((n) => n.opType === 'BatchNormalization')!;
    expect(bnNode.inputs[0]!.producer!.opType).toBe('MaxPool');
  });
});
