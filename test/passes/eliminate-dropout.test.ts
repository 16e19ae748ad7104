import { describe, expect, test } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { syntheticInputs } from '../../src/inputs.js';
import { PassManager } from '../../src/pass/manager.js';
import { eliminateDropout } from '../../passes/cleanup/eliminate-dropout.js';
import { checkPass, ops } from './harness.js';
import { fixture, firstOutputOf, insertAfter } from './elim-util.js';

const bool = (v: boolean): Tensor => Tensor.fromTypedArray(DataType.BOOL, [], Uint8Array.of(v ? 1 : 0));

describe('eliminate-dropout', () => {
  test('opset 13: Dropout(x) and Dropout(x, ratio, training_mode=false) go', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 4]);
    const a = b.node('Dropout', [b.node('Relu', [x])]);
    const ratio = b.constant(Tensor.float32([0.5], []), 'ratio');
    const c = b.node('Dropout', [a, ratio, b.constant(bool(false), 'train')]);
    b.output(b.node('Sigmoid', [c]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateDropout, { inputDims: { batch: 3 } });
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Relu: 1, Sigmoid: 1 });
    expect(after.graph.initializers).toHaveLength(0); // ratio and training_mode went with the node
  });

  test('a Dropout that is a graph output keeps the output name', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.node('Dropout', [b.node('Tanh', [x])]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateDropout);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Tanh: 1 });
    expect(after.graph.outputs[0]!.name).toBe('y');
  });

  test('a used mask becomes a constant all-true tensor when the shape is static', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 3]);
    const [y, mask] = b.nodeN('Dropout', [x], {}, { outputs: 2 });
    b.output(b.node('Neg', [y!]), 'y');
    b.output(b.node('Not', [mask!]), 'not_mask');
    b.output(mask!, 'mask');
    const { after, changes } = await checkPass(b.build(), eliminateDropout);
    expect(changes).toBe(1);
    expect(ops(after).Dropout).toBeUndefined();
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y', 'not_mask', 'mask']);
    const t = after.graph.initializers.find((v) => v.initializer?.dataType === DataType.BOOL)!.initializer!;
    expect(t.dims).toEqual([2, 3]);
    expect(Array.from(t.toTypedArray())).toEqual([1, 1, 1, 1, 1, 1]);
  });

  test('no rewrite: mask used with a symbolic shape; training_mode true; training_mode not constant', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 3]);
    const train = b.input('train', 'bool', []);
    const [y, mask] = b.nodeN('Dropout', [x], {}, { outputs: 2 });
    b.output(y!, 'y');
    b.output(mask!, 'mask');
    const zero = b.constant(Tensor.float32([0], []), 'zero');
    b.output(b.node('Dropout', [x, zero, b.constant(bool(true), 'on')]), 'z'); // ratio 0: deterministic
    b.output(b.node('Dropout', [x, zero, train]), 'w');
    const feeds = { x: Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]), train: bool(false) };
    const { after, changes } = await checkPass(b.build(), eliminateDropout, { feeds });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Dropout: 3 });
  });

  test('opset 10: ratio attribute, mask of type bool', async () => {
    const b = new ModelBuilder({ opset: 10 });
    const x = b.input('x', 'float32', [4]);
    const [y, mask] = b.nodeN('Dropout', [x], { ratio: 0.3 }, { outputs: 2 });
    b.output(b.node('Where', [mask!, y!, x]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateDropout);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Where: 1 });
  });

  test('opset 6: only with is_test set (its default means training)', async () => {
    const b = new ModelBuilder({ opset: 6 });
    const x = b.input('x', 'float32', [4]);
    const a = b.node('Dropout', [x], { is_test: 1 });
    b.output(b.node('Dropout', [a]), 'y');
    const model = b.build();
    // onnxruntime has no Dropout before opset 7: structural check only
    const report = await new PassManager([eliminateDropout], { verifyEach: true }).run(model);
    expect(report.passes[0]!.changes).toBe(1);
    expect(ops(model)).toEqual({ Dropout: 1 });
    expect(model.graph.nodes[0]!.attr('is_test')).toBeUndefined();
  });

  test('bert-tiny: Dropouts as a training export leaves them (inference mode) go', async () => {
    const model = fixture('bert-tiny-op17');
    const n0 = model.graph.nodeCount;
    const g = model.graph;
    const ratio = g.addInitializer('dropout_ratio', Tensor.float32([0.1], []));
    const off = g.addInitializer('dropout_training', bool(false));
    insertAfter(model, firstOutputOf(model, 'LayerNormalization', 0), 'Dropout', [ratio]);
    insertAfter(model, firstOutputOf(model, 'Softmax', 0), 'Dropout', [ratio, off]);
    insertAfter(model, firstOutputOf(model, 'LayerNormalization', 2), 'Dropout', []);
    // token_type_ids must be 0 or 1
    const feeds = syntheticInputs(model, { seed: 3, dims: { batch: 2, sequence: 5 }, intHigh: 2 });
    const { after, changes } = await checkPass(model, eliminateDropout, { feeds });
    expect(changes).toBe(3);
    expect(after.graph.nodeCount).toBe(n0);
    expect(ops(after).Dropout).toBeUndefined();
  });
});
