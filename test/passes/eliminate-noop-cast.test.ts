import { describe, expect, test } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { eliminateNoopCast } from '../../passes/cleanup/eliminate-noop-cast.js';
import { checkPass, ops } from './harness.js';
import { PassManager } from '../../src/pass/manager.js';
import { tensorType } from '../../src/ir/types.js';
import { addIf, fixture } from './elim-util.js';

describe('eliminate-noop-cast', () => {
  test('Cast to the type the input has goes (input type inferred through other nodes)', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 4]);
    const i = b.input('i', 'int64', [2]);
    const r = b.node('Relu', [x]);
    const c = b.node('Cast', [r], { to: DataType.FLOAT });
    const s = b.node('Cast', [b.node('Shape', [x])], { to: DataType.INT64 });
    const cl = b.node('CastLike', [c, r]);
    b.output(b.node('Sigmoid', [cl]), 'y');
    b.output(b.node('Add', [s, b.node('Cast', [i], { to: DataType.INT64 })]), 'z');
    const { after, changes } = await checkPass(b.build(), eliminateNoopCast, { inputDims: { batch: 3 } });
    expect(changes).toBe(4);
    expect(ops(after)).toEqual({ Relu: 1, Shape: 1, Sigmoid: 1, Add: 1 });
  });

  test('a Cast to another type stays (also CastLike to another type)', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [4]);
    const h = b.input('h', 'int32', [4]);
    const c = b.node('Cast', [x], { to: DataType.INT32 });
    b.output(b.node('Cast', [c], { to: DataType.FLOAT }), 'y');
    b.output(b.node('CastLike', [x, h]), 'z');
    const { after, changes } = await checkPass(b.build(), eliminateNoopCast);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Cast: 2, CastLike: 1 });
  });

  test('a noop Cast that is a graph output of a graph input stays named', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2]);
    b.output(b.node('Cast', [x], { to: DataType.FLOAT }), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateNoopCast);
    expect(changes).toBe(1);
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y']);
    expect(ops(after)).toEqual({ Identity: 1 });
  });

  test('a noop Cast whose output a subgraph returns directly goes; the subgraph returns its input', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [3]);
    const cond = b.input('cond', 'bool', []);
    const c = b.node('Cast', [b.node('Relu', [x])], { to: DataType.FLOAT });
    const { outs } = addIf(b, cond, 1, (_t, e) => {
      const ev = e.node('Abs', [x]);
      ev.type = tensorType(DataType.FLOAT, [3]);
      return [[c], [ev]];
    });
    b.output(outs[0]!, 'y');
    const model = b.build();
    // onnxruntime refuses outer values returned directly: structural check only
    const relu = c.producer!.inputs[0]!;
    const report = await new PassManager([eliminateNoopCast], { verifyEach: true }).run(model);
    expect(report.passes[0]!.changes).toBe(1);
    expect(ops(model).Cast).toBeUndefined();
    const thenBranch = model.graph.nodes.find((n) => n.opType === 'If')!.subgraphs()[0]!;
    expect(thenBranch.outputs[0]).toBe(relu);
    expect(relu.returnedBy.has(thenBranch)).toBe(true);
  });

  test('gpt2-tiny: the exporter\'s int64 -> int64 Casts go', async () => {
    const model = fixture('gpt2-tiny-op14');
    const before = ops(model).Cast!;
    const { after, changes } = await checkPass(model, eliminateNoopCast, { inputDims: { batch: 2, sequence: 5 } });
    expect(changes).toBeGreaterThan(0);
    expect(ops(after).Cast ?? 0).toBe(before - changes);
    expect(after.graph.nodeCount).toBe(model.graph.nodeCount - changes);
  });
});
