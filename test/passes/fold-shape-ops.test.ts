import { describe, expect, test } from 'vitest';
import { attr } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Graph } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { compareTensors } from '../../src/compare.js';
import { readModel } from '../../src/node/files.js';
import { seededRandom } from '../../src/inputs.js';
import { fixDims } from '../../passes/cleanup/fix-dims.js';
import { foldConstants } from '../../passes/fold/fold-constants.js';
import { foldShapeOps } from '../../passes/fold/fold-shape-ops.js';
import { checkPass, ops, runModel } from './harness.js';

/** x: float[batch, 3, 4] reshaped to [batch, 3*4] through Shape arithmetic. */
function flattenByShape() {
  const b = new ModelBuilder();
  const x = b.input('x', 'float32', ['batch', 3, 4]);
  const s = b.node('Shape', [x]);
  const idx = (i: number) => b.constant(Tensor.int64([i], []), `i${i}`);
  const zero = b.constant(Tensor.int64([0]), 'axes0');
  const d0 = b.node('Unsqueeze', [b.node('Gather', [s, idx(0)], { axis: 0 }), zero]);
  const inner = b.node('Mul', [b.node('Gather', [s, idx(1)], { axis: 0 }), b.node('Gather', [s, idx(2)], { axis: 0 })]);
  const d1 = b.node('Unsqueeze', [inner, zero]);
  b.output(b.node('Reshape', [x, b.node('Concat', [d0, d1], { axis: 0 })]), 'y');
  b.output(b.node('Size', [b.node('Relu', [x])]), 'n'); // a graph output: stays
  b.output(b.node('Cast', [b.node('Size', [b.node('Transpose', [b.node('Relu', [x])], { perm: [1, 2, 0] })])], { to: 1 }), 'm');
  return b.build();
}

describe('fold-shape-ops', () => {
  test('with a symbolic batch only the static parts fold', async () => {
    const { after, changes } = await checkPass(flattenByShape(), foldShapeOps, { inputDims: { batch: 3 } });
    // Unsqueeze(Gather(s,1) * Gather(s,2)) = [12] folds in one rewrite; the batch part stays
    expect(changes).toBe(1);
    expect(ops(after)).toMatchObject({ Shape: 1, Gather: 1, Unsqueeze: 1, Concat: 1, Size: 2 });
    expect(ops(after).Mul).toBeUndefined();
  });

  test('pinned dims make the whole shape computation constant', async () => {
    const { after } = await checkPass(flattenByShape(), [fixDims, { fixedPoint: [foldShapeOps, foldConstants] }], { dims: { batch: 2 }, inputDims: { batch: 2 } });
    // Size(Transpose(...)) folds; the Cast of it is a graph output and stays
    expect(ops(after)).toEqual({ Reshape: 1, Size: 1, Relu: 1, Cast: 1 });
    const reshape = after.graph.nodes.find((n) => n.opType === 'Reshape')!;
    expect(Array.from(reshape.inputs[1]!.initializer!.toTypedArray() as BigInt64Array)).toEqual([2n, 12n]);
    // a Size that is a graph output keeps its node (and name)
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y', 'n', 'm']);
    expect(after.graph.outputs[1]!.producer!.opType).toBe('Size');
  });

  test('Shape with start/end (opset 15) of partly symbolic dims', async () => {
    const b = new ModelBuilder({ opset: 15 });
    const x = b.input('x', 'float32', ['n', 3, 4]);
    const s = b.node('Shape', [x], { start: 1 });
    b.output(b.node('Reshape', [b.node('Relu', [x]), b.node('Concat', [b.constant(Tensor.int64([-1]), 'm1'), s], { axis: 0 })]), 'y');
    const { after, changes } = await checkPass(b.build(), foldShapeOps, { inputDims: { n: 2 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Relu: 1, Reshape: 1 });
  });

  test('nothing to fold when every dim is symbolic', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['a', 'b']);
    b.output(b.node('Reshape', [x, b.node('Shape', [b.node('Relu', [x])])]), 'y');
    const { changes } = await checkPass(b.build(), foldShapeOps, { inputDims: { a: 2, b: 3 } });
    expect(changes).toBe(0);
  });
});

/**
 * x: float[n]. If(Shape(x) == [4]): the then-branch multiplies x by a [4, 3] matrix (so n = 4
 * there) and reshapes x by Concat(Shape(x), [1]); the else-branch gives a constant. Outside the If,
 * z = Reshape(x, Concat(Shape(x), [1])).
 */
function branchImpliesDim(): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['n']);
  const one = b.constant(Tensor.int64([1]), 'one');
  const cond = b.node('Equal', [b.node('Shape', [x]), b.constant(Tensor.int64([4]), 'four')]);
  const w = b.constant(Tensor.float32(Array.from({ length: 12 }, (_, i) => i / 10), [4, 3]), 'w');
  const iff = b.graph.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['y'] });
  const thenG = new Graph('then', iff);
  const mm = thenG.addNode({ opType: 'MatMul', name: 'mm', inputs: [x, w], outputs: ['mm'] }).outputs[0]!;
  const s = thenG.addNode({ opType: 'Shape', name: 'then_shape', inputs: [x], outputs: ['then_s'] }).outputs[0]!;
  const c = thenG.addNode({ opType: 'Concat', name: 'then_concat', inputs: [s, one], outputs: ['then_c'], attributes: [attr.int('axis', 0)] }).outputs[0]!;
  const r = thenG.addNode({ opType: 'Reshape', name: 'then_reshape', inputs: [x, c], outputs: ['then_r'] }).outputs[0]!;
  const sum = thenG.addNode({ opType: 'ReduceSum', name: 'then_sum', inputs: [r], outputs: ['then_sum'], attributes: [attr.int('keepdims', 0)] }).outputs[0]!;
  thenG.addOutput(thenG.addNode({ opType: 'Add', name: 'then_add', inputs: [mm, sum], outputs: ['t'] }).outputs[0]!);
  const elseG = new Graph('else', iff);
  elseG.addOutput(elseG.addNode({ opType: 'Identity', name: 'id', inputs: [b.constant(Tensor.float32([1, 2, 3]), 'c3')], outputs: ['e'] }).outputs[0]!);
  iff.attributes.set('then_branch', attr.graph('then_branch', thenG));
  iff.attributes.set('else_branch', attr.graph('else_branch', elseG));
  b.output(iff.outputs[0]!);
  b.output(b.node('Reshape', [x, b.node('Concat', [b.node('Shape', [x]), one], { axis: 0 })]), 'z');
  return b.build();
}

async function sameOutputs(before: Model, after: Model, feeds: Record<string, Tensor>): Promise<void> {
  const want = await runModel(before, feeds);
  const got = await runModel(after, feeds);
  for (const [name, t] of Object.entries(want)) {
    const c = compareTensors(got[name]!, t, { rtol: 1e-5, atol: 1e-6 });
    expect(c.ok, `output '${name}': ${c.problem}`).toBe(true);
  }
}

describe('fold-shape-ops in subgraphs', () => {
  test('what a branch implies about a dim folds inside it and nowhere else', async () => {
    const { before, after } = await checkPass(branchImpliesDim(), [{ fixedPoint: [foldConstants, foldShapeOps] }], { inputDims: { n: 4 } });
    // outside the If, n stays symbolic: the condition and z's shape are still computed
    const main = after.graph;
    expect(main.nodes.map((n) => n.opType).sort()).toEqual(['Concat', 'Equal', 'If', 'Reshape', 'Shape', 'Shape']);
    expect(main.outputs[1]!.type).toEqual({ kind: 'tensor', elemType: 1, shape: ['n', 1] });
    // inside the then-branch, which runs only when n = 4, Concat(Shape(x), [1]) is [4, 1]
    const thenG = main.nodes.find((n) => n.opType === 'If')!.subgraphs()[0]!;
    expect(thenG.nodes.map((n) => n.opType).sort()).toEqual(['Add', 'MatMul', 'ReduceSum', 'Reshape']);
    const reshape = thenG.nodes.find((n) => n.opType === 'Reshape')!;
    expect(Array.from(reshape.inputs[1]!.initializer!.toTypedArray() as BigInt64Array)).toEqual([4n, 1n]);
    // and the compiled model takes the other sizes (the else-branch) as the original does
    for (const n of [3, 5, 1]) await sameOutputs(before, after, { x: Tensor.float32(Array.from({ length: n }, (_, i) => i - 1)) });
  });

  test('unknown dims named in the model (unk__N from an earlier run or another tool) are not confused with new ones', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    const s = b.node('Shape', [x]);
    // a type written back by an earlier inference: its unk__0 is the length of this shape, 3
    s.type = { kind: 'tensor', elemType: 7, shape: ['unk__0'] };
    // NonZero's count is unknown: a fresh symbol, which must not be that unk__0
    const nz = b.node('NonZero', [x]);
    const count = b.node('Gather', [b.node('Shape', [nz]), b.constant(Tensor.int64([1]), 'one')], { axis: 0 });
    b.output(b.node('Concat', [s, count], { axis: 0 }), 'y');
    const { after } = await checkPass(b.build(), foldShapeOps, { seed: 3 });
    expect(ops(after)).toEqual({ NonZero: 1, Shape: 1, Gather: 1, Concat: 1 });
  });
});

const SHAPE_OPS = ['Shape', 'Gather', 'Concat', 'Unsqueeze'];
const countOf = (h: Record<string, number>, names: string[]): number => names.reduce((n, k) => n + (h[k] ?? 0), 0);

function ints(n: number, high: number, rand: () => number): number[] {
  return Array.from({ length: n }, () => Math.floor(rand() * high));
}

describe('fix-dims + fold-constants + fold-shape-ops on real models', () => {
  const pipeline = [fixDims, { fixedPoint: [foldConstants, foldShapeOps] }];
  const dims = { batch: 2, sequence: 5 };

  test('gpt2-tiny-op14: the shape arithmetic folds away, outputs unchanged', async () => {
    const model = readModel('fixtures/models/gpt2-tiny-op14/model.onnx').model;
    const before = ops(model);
    const rand = seededRandom(7);
    const feeds = { input_ids: Tensor.int64(ints(10, 64, rand), [2, 5]) };
    const { after } = await checkPass(model, pipeline, { dims, inputDims: dims, feeds });
    const h = ops(after);
    expect(countOf(before, SHAPE_OPS)).toBe(164);
    expect(h.Constant).toBeUndefined();
    expect(h.Shape).toBeUndefined();
    expect(h.Concat).toBeUndefined();
    expect(h.Unsqueeze).toBeUndefined();
    expect(h.Gather ?? 0).toBeLessThanOrEqual(1); // the token embedding lookup
    expect(after.graph.inputs[0]!.type).toEqual({ kind: 'tensor', elemType: 7, shape: [2, 5] });
    expect(after.graph.nodeCount).toBeLessThan(model.graph.nodeCount / 2);
  });

  test('bert-tiny-op17: the shape arithmetic folds away, outputs unchanged', async () => {
    const model = readModel('fixtures/models/bert-tiny-op17/model.onnx').model;
    const before = ops(model);
    const rand = seededRandom(11);
    const feeds = {
      input_ids: Tensor.int64(ints(10, 64, rand), [2, 5]),
      attention_mask: Tensor.int64([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [2, 5]),
      token_type_ids: Tensor.int64(ints(10, 2, rand), [2, 5]),
    };
    const { after } = await checkPass(model, pipeline, { dims, inputDims: dims, feeds });
    const h = ops(after);
    expect(countOf(before, SHAPE_OPS)).toBe(65);
    expect(h.Constant).toBeUndefined();
    expect(h.Shape).toBeUndefined();
    expect(h.Concat).toBeUndefined();
    expect(countOf(h, SHAPE_OPS)).toBeLessThanOrEqual(5); // embedding Gathers and the mask's Unsqueezes
    for (const v of after.graph.inputs) expect(v.type).toEqual({ kind: 'tensor', elemType: 7, shape: [2, 5] });
  });

  test('without pinned dims the symbolic shape arithmetic stays', async () => {
    const model = readModel('fixtures/models/bert-tiny-op17/model.onnx').model;
    const rand = seededRandom(3);
    const feeds = {
      input_ids: Tensor.int64(ints(6, 64, rand), [2, 3]),
      attention_mask: Tensor.int64([1, 1, 1, 1, 1, 0], [2, 3]),
      token_type_ids: Tensor.int64(ints(6, 2, rand), [2, 3]),
    };
    const { after } = await checkPass(model, [{ fixedPoint: [foldConstants, foldShapeOps] }], { feeds });
    expect(ops(after).Shape).toBe(17);
    expect(ops(after).Constant).toBeUndefined();
  });
});
