import { describe, expect, test } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { eliminateUnusedInitializers } from '../../passes/cleanup/eliminate-unused-initializers.js';
import { checkPass } from './harness.js';
import { addIf, fixture } from './elim-util.js';

describe('eliminate-unused-initializers', () => {
  test('removes initializers no node uses, keeps used ones', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [4]);
    const w = b.constant(Tensor.float32([1, 2, 3, 4]), 'w');
    b.constant(Tensor.float32([5, 6, 7, 8]), 'unused1');
    b.constant(Tensor.int64([1]), 'unused2');
    b.output(b.node('Add', [x, w]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateUnusedInitializers);
    expect(changes).toBe(2);
    expect(after.graph.initializers.map((v) => v.name)).toEqual(['w']);
  });

  test('keeps an initializer used only inside an If branch, and one that is also a graph input', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const cond = b.input('cond', 'bool', []);
    const x = b.input('x', 'float32', [3]);
    const c = b.constant(Tensor.float32([10, 20, 30]), 'c');
    // IR < 4 style: an initializer that is also a graph input (a default the caller may override)
    const d = b.input('d', 'float32', [3]);
    b.graph.setInitializer(d, Tensor.float32([1, 1, 1]));
    const { outs } = addIf(b, cond, 1, (t, e) => {
      const tv = t.node('Add', [x, c]);
      tv.type = tensorType(DataType.FLOAT, [3]);
      const ev = e.node('Neg', [x]);
      ev.type = tensorType(DataType.FLOAT, [3]);
      return [[tv], [ev]];
    });
    b.output(outs[0]!, 'y');
    const { after, changes } = await checkPass(b.build(), eliminateUnusedInitializers);
    expect(changes).toBe(0);
    expect(after.graph.initializers.map((v) => v.name).sort()).toEqual(['c', 'd']);
  });

  test('removes an unused initializer of a subgraph', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const cond = b.input('cond', 'bool', []);
    const x = b.input('x', 'float32', [3]);
    const { outs, then } = addIf(b, cond, 1, (t, e) => {
      t.constant(Tensor.float32([1]), 'inner_unused');
      const tv = t.node('Abs', [x]);
      tv.type = tensorType(DataType.FLOAT, [3]);
      const ev = e.node('Neg', [x]);
      ev.type = tensorType(DataType.FLOAT, [3]);
      return [[tv], [ev]];
    });
    b.output(outs[0]!, 'y');
    const model = b.build();
    expect(then.initializers).toHaveLength(1);
    const { after, changes } = await checkPass(model, eliminateUnusedInitializers);
    expect(changes).toBe(1);
    const ifNode = after.graph.nodes.find((n) => n.opType === 'If')!;
    expect(ifNode.subgraphs().every((g) => g.initializers.length === 0)).toBe(true);
  });

  test('cnn-tiny: leftovers of a rewrite go, the weights stay', async () => {
    const model = fixture('cnn-tiny-op13');
    const n0 = model.graph.initializers.length;
    // what a fold leaves behind: the old weight, no longer used
    const conv = model.graph.nodes.find((n) => n.opType === 'Conv')!;
    const w = conv.inputs[1]!;
    const copy = model.graph.addInitializer(`${w.name}_folded`, w.initializer!);
    model.graph.setInput(conv, 1, copy);
    const { after, changes } = await checkPass(model, eliminateUnusedInitializers, { inputDims: { batch: 2 } });
    expect(changes).toBe(1);
    expect(after.graph.initializers).toHaveLength(n0);
    expect(after.graph.initializers.some((v) => v.name === w.name)).toBe(false);
  });
});
