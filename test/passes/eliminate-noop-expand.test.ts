import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { eliminateNoopExpand } from '../../passes/cleanup/eliminate-noop-expand.js';
import { checkPass, ops } from './harness.js';
import { fixture, firstOutputOf, insertAfter } from './elim-util.js';

describe('eliminate-noop-expand', () => {
  test('Expand to [1, 4], to a shorter shape, and to Shape(x) go', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 4]);
    const r = b.node('Relu', [x]);
    const a = b.node('Expand', [r, b.constant(Tensor.int64([1, 4]), 's1')]);
    const c = b.node('Expand', [a, b.constant(Tensor.int64([1]), 's2')]);
    const d = b.node('Expand', [c, b.node('Shape', [r])]);
    b.output(b.node('Neg', [d]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopExpand, { inputDims: { batch: 3 } });
    expect(changes).toBe(3);
    expect(ops(after)).toEqual({ Relu: 1, Neg: 1 });
  });

  test('no rewrite: Expand that broadcasts, adds a dim, or to a shape known only at run time', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 1]);
    const v = b.input('v', 'float32', [3]);
    const z = b.input('z', 'float32', ['n', 3]);
    const s = b.input('s', 'int64', [2]);
    b.output(b.node('Expand', [x, b.constant(Tensor.int64([2, 3]), 's1')]), 'y1');
    b.output(b.node('Expand', [v, b.constant(Tensor.int64([2, 3]), 's2')]), 'y2');
    b.output(b.node('Expand', [z, b.constant(Tensor.int64([4, 3]), 's3')]), 'y3'); // n may be 1
    b.output(b.node('Expand', [z, s]), 'y4');
    const feeds = { x: Tensor.float32([1, 2], [2, 1]), v: Tensor.float32([1, 2, 3]), z: Tensor.float32([1, 2, 3], [1, 3]), s: Tensor.int64([2, 3]) };
    const { after, changes } = await checkPass(b.build(), eliminateNoopExpand, { feeds });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Expand: 4 });
  });

  test('a static Expand to the same shape goes', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    b.output(b.node('Expand', [b.node('Relu', [x]), b.constant(Tensor.int64([2, 3]), 's')]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopExpand);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Relu: 1 });
  });

  test('gpt2-tiny: Expand(h, Shape(h)) inside the model goes', async () => {
    const model = fixture('gpt2-tiny-op14');
    const n0 = model.graph.nodeCount;
    const h = firstOutputOf(model, 'Softmax', 0);
    const g = model.graph;
    const expand = insertAfter(model, h, 'Expand', [h]);
    g.setInput(expand, 1, g.addNode({ opType: 'Shape', inputs: [h], outputs: 1 }).outputs[0]!);
    g.toposort();
    const { after, changes } = await checkPass(model, eliminateNoopExpand, { inputDims: { batch: 2, sequence: 5 } });
    expect(changes).toBe(1);
    expect(ops(after).Expand).toBeUndefined();
    expect(after.graph.nodeCount).toBe(n0); // the Shape went with it
  });
});
