import { describe, expect, test } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { PassManager } from '../../src/pass/manager.js';
import { eliminateDeadNodes } from '../../passes/cleanup/eliminate-dead-nodes.js';
import { checkPass, ops } from './harness.js';
import { addIf, fixture, firstOutputOf } from './elim-util.js';

const f32 = (shape: (number | string)[]) => tensorType(DataType.FLOAT, shape);

describe('eliminate-dead-nodes', () => {
  test('removes a dead chain and the initializer only it used; keeps the live path', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 4]);
    const w = b.constant(Tensor.float32([1, 2, 3, 4]), 'w');
    const dead = b.node('Sigmoid', [b.node('Mul', [b.node('Relu', [x]), w])]);
    b.node('Tanh', [dead]);
    b.output(b.node('Exp', [x]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateDeadNodes, { inputDims: { batch: 3 } });
    expect(changes).toBe(4);
    expect(ops(after)).toEqual({ Exp: 1 });
    expect(after.graph.initializers).toHaveLength(0);
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y']);
  });

  test('a node with one output used stays (multi-output node)', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [4, 6]);
    const [a] = b.nodeN('Split', [x, b.constant(Tensor.int64([3, 3]), 'split')], { axis: 1 }, { outputs: 2 });
    b.output(b.node('Relu', [a!]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateDeadNodes);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Split: 1, Relu: 1 });
  });

  test('keeps a node whose only use is inside an If branch (outer-scope read)', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const cond = b.input('cond', 'bool', []);
    const x = b.input('x', 'float32', [3]);
    const r = b.node('Relu', [x]); // read only by the then branch
    const { outs } = addIf(b, cond, 1, (t, e) => {
      const tv = t.node('Neg', [r]);
      tv.type = f32([3]);
      const ev = e.node('Abs', [x]);
      ev.type = f32([3]);
      return [[tv], [ev]];
    });
    b.output(outs[0]!, 'y');
    const { after, changes } = await checkPass(b.build(), eliminateDeadNodes);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Relu: 1, If: 1, Neg: 1, Abs: 1 });
  });

  test('keeps a node whose output an If branch returns directly', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const cond = b.input('cond', 'bool', []);
    const x = b.input('x', 'float32', [3]);
    const r = b.node('Relu', [x]); // no node uses it: the then branch returns it as its output
    const { outs } = addIf(b, cond, 1, (_t, e) => {
      const ev = e.node('Abs', [x]);
      ev.type = f32([3]);
      return [[r], [ev]];
    });
    b.output(outs[0]!, 'y');
    // valid ONNX, but onnxruntime refuses outer values returned directly: no numeric check here
    const model = b.build();
    const report = await new PassManager([eliminateDeadNodes], { verifyEach: true }).run(model);
    expect(report.passes[0]!.changes).toBe(0);
    expect(ops(model)).toEqual({ Relu: 1, If: 1, Abs: 1 });
  });

  test('removes a dead If, then what only its branches read; and dead nodes inside a live branch', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const cond = b.input('cond', 'bool', []);
    const x = b.input('x', 'float32', [3]);
    const onlyForDeadIf = b.node('Sin', [x]);
    addIf(b, cond, 1, (t, e) => {
      const tv = t.node('Neg', [onlyForDeadIf]);
      const ev = e.node('Abs', [x]);
      return [[tv], [ev]];
    });
    const { outs } = addIf(b, cond, 1, (t, e) => {
      t.node('Cos', [x]); // dead inside the branch
      const tv = t.node('Neg', [x]);
      tv.type = f32([3]);
      const ev = e.node('Abs', [x]);
      ev.type = f32([3]);
      return [[tv], [ev]];
    });
    b.output(outs[0]!, 'y');
    const { after, changes } = await checkPass(b.build(), eliminateDeadNodes);
    expect(changes).toBe(3); // the dead If, Sin, and Cos (the If's own branch nodes go with it)
    expect(ops(after)).toEqual({ If: 1, Neg: 1, Abs: 1 });
  });

  test('respects the rewrite budget', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2]);
    b.node('Relu', [b.node('Relu', [x])]);
    b.output(b.node('Exp', [x]), 'y');
    const model = b.build();
    const report = await new PassManager([eliminateDeadNodes], { stopAfterRewrites: 1 }).run(model);
    expect(report.rewrites).toBe(1);
    expect(ops(model)).toEqual({ Relu: 1, Exp: 1 });
  });

  test('gpt2-tiny: nodes hanging off real values are removed, outputs unchanged', async () => {
    const model = fixture('gpt2-tiny-op14');
    const n0 = model.graph.nodeCount;
    const { changes: none } = await checkPass(model, eliminateDeadNodes, { inputDims: { batch: 2, sequence: 5 } });
    expect(none).toBe(0);
    // dead branches off a Softmax and a MatMul, and a dead Shape chain
    const g = model.graph;
    const sm = firstOutputOf(model, 'Softmax');
    const mm = firstOutputOf(model, 'MatMul');
    g.addNode({ opType: 'ReduceMean', inputs: [g.addNode({ opType: 'Mul', inputs: [sm, sm], outputs: 1 }).outputs[0]!], outputs: 1 });
    g.addNode({ opType: 'Relu', inputs: [mm], outputs: 1 });
    g.addNode({ opType: 'Cast', inputs: [g.addNode({ opType: 'Shape', inputs: [mm], outputs: 1 }).outputs[0]!], outputs: 1, attributes: [{ name: 'to', type: 'int', value: 1 }] });
    expect(g.nodeCount).toBe(n0 + 5);
    const { after, changes } = await checkPass(model, eliminateDeadNodes, { inputDims: { batch: 2, sequence: 5 } });
    expect(changes).toBe(5);
    expect(after.graph.nodeCount).toBe(n0);
  });

  test('control-flow fixture: a dead node inside the Loop body reading an outer value goes', async () => {
    const model = fixture('control-flow-op13');
    const loop = model.graph.nodes.find((n) => n.opType === 'Loop')!;
    const body = loop.subgraphs()[0]!;
    const outer = model.graph.inputs[0]!;
    const before = ops(model);
    body.addNode({ opType: 'Relu', inputs: [outer], outputs: 1 });
    const { after, changes } = await checkPass(model, eliminateDeadNodes, { inputDims: { batch: 2 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual(before);
  });
});
