import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { eliminateNoopPad } from '../../passes/cleanup/eliminate-noop-pad.js';
import { checkPass, ops } from './harness.js';
import { fixture, insertAfter } from './elim-util.js';

describe('eliminate-noop-pad', () => {
  test('opset 13: all-zero pads input goes (constant mode and reflect)', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 3, 4]);
    const zeros = b.constant(Tensor.int64([0, 0, 0, 0, 0, 0]), 'zeros');
    const a = b.node('Pad', [b.node('Relu', [x]), zeros, b.constant(Tensor.float32([5], []), 'five')]);
    const c = b.node('Pad', [a, zeros], { mode: 'reflect' });
    b.output(b.node('Neg', [c]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopPad, { inputDims: { batch: 2 } });
    expect(changes).toBe(2);
    expect(ops(after)).toEqual({ Relu: 1, Neg: 1 });
  });

  test('opset 10: all-zero pads attribute goes', async () => {
    const b = new ModelBuilder({ opset: 10 });
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.node('Pad', [b.node('Relu', [x])], { pads: [0, 0, 0, 0], value: 1.5 }), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopPad);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Relu: 1 });
  });

  test('no rewrite: nonzero pads, negative pads, pads known only at run time', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 3]);
    const p = b.input('p', 'int64', [4]);
    b.output(b.node('Pad', [x, b.constant(Tensor.int64([0, 1, 0, 0]), 'p1')]), 'y1');
    b.output(b.node('Pad', [x, b.constant(Tensor.int64([0, 0, 0, -1]), 'p2')]), 'y2');
    b.output(b.node('Pad', [x, p]), 'y3');
    const feeds = { x: Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]), p: Tensor.int64([0, 0, 1, 0]) };
    const { after, changes } = await checkPass(b.build(), eliminateNoopPad, { feeds });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Pad: 3 });
  });

  test('cnn-tiny: a zero Pad before a Conv goes', async () => {
    const model = fixture('cnn-tiny-op13');
    const n0 = model.graph.nodeCount;
    const conv = model.graph.nodes.filter((n) => n.opType === 'Conv')[1]!;
    const zeros = model.graph.addInitializer('pads0', Tensor.int64([0, 0, 0, 0, 0, 0, 0, 0]));
    insertAfter(model, conv.inputs[0]!, 'Pad', [zeros]);
    const { after, changes } = await checkPass(model, eliminateNoopPad, { inputDims: { batch: 2 } });
    expect(changes).toBe(1);
    expect(after.graph.nodeCount).toBe(n0);
    expect(ops(after).Pad).toBeUndefined();
  });
});
