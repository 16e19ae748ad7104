import { describe, expect, test } from 'vitest';
import { attr } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { PassManager } from '../../src/pass/manager.js';
import { FOLD_SIZE_LIMIT, foldConstants, foldTooLarge } from '../../passes/fold/fold-constants.js';
import { checkPass, ops } from './harness.js';

const initNames = (m: { graph: Graph }): string[] => m.graph.initializers.map((v) => v.name).sort();

describe('fold-constants', () => {
  test('Constant nodes become initializers named like their outputs; constant chains fold', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['n', 3]);
    const c1 = b.node('Constant', [], { value: Tensor.float32([1, 2, 3]) }, { outputs: ['c1'] });
    const c2 = b.node('Constant', [], { value_floats: attr.floats('value_floats', [0.5, 0.25, 2]) }, { outputs: ['c2'] });
    const w = b.constant(Tensor.float32([3, 3, 3]), 'w');
    const s = b.node('Add', [c1, c2], {}, { outputs: ['s'] });
    const p = b.node('Mul', [s, w], {}, { outputs: ['p'] });
    b.output(b.node('Add', [x, b.node('Sqrt', [p], {}, { outputs: ['r'] })]), 'y');
    const { after, changes } = await checkPass(b.build(), foldConstants, { inputDims: { n: 2 } });
    expect(ops(after)).toEqual({ Add: 1 });
    expect(changes).toBe(5); // two Constants, Add, Mul, Sqrt
    expect(initNames(after)).toEqual(['r']);
    const r = after.graph.local('r')!;
    expect(Array.from(r.initializer!.toTypedArray() as Float32Array)).toEqual([Math.sqrt(4.5), Math.sqrt(6.75), Math.sqrt(15)].map(Math.fround));
  });

  test('a constant whose value is a graph output stays (keeps the output name without an Identity)', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [3]);
    const c = b.node('Constant', [], { value: Tensor.float32([1, 2, 3]) });
    b.output(b.node('Add', [c, c]), 'k');
    b.output(b.node('Relu', [x]), 'y');
    const { after, changes } = await checkPass(b.build(), foldConstants);
    expect(changes).toBe(1); // the Constant became an initializer; the Add stays
    expect(ops(after)).toEqual({ Add: 1, Relu: 1 });
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['k', 'y']);
  });

  test('size cap: ConstantOfShape / Tile that blow up a small constant are not folded', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [512, 1024]);
    // 512*1024 floats = 2 MiB, from a 16-byte shape
    const big = b.node('ConstantOfShape', [b.constant(Tensor.int64([512, 1024]), 'shape')], { value: Tensor.float32([1], [1]) });
    const tiled = b.node('Tile', [b.constant(Tensor.float32([1, 2, 3, 4]), 'small'), b.constant(Tensor.int64([16]), 'reps')]);
    b.output(b.node('Add', [x, big]), 'y');
    b.output(b.node('Neg', [tiled]), 'z');
    // Tile makes 256 bytes from 16 + 8: over a 64-byte limit
    const { after, changes } = await checkPass(b.build(), foldConstants, { foldSizeLimit: 64 });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ ConstantOfShape: 1, Tile: 1, Add: 1, Neg: 1 });
  });

  test('size cap: a result over the limit folds when it is not larger than its inputs', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [64]);
    const a = b.constant(Tensor.float32(Array.from({ length: 64 }, (_, i) => i)), 'a');
    const c = b.constant(Tensor.float32(Array.from({ length: 64 }, (_, i) => 2 * i)), 'c');
    b.output(b.node('Add', [x, b.node('Mul', [a, c])]), 'y');
    const { after, changes } = await checkPass(b.build(), foldConstants, { foldSizeLimit: 16 });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Add: 1 });
  });

  test('the default size rule: what makes a tensor over 4 KiB larger than its inputs stays an op', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [32, 64]);
    const shape = (dims: number[], name: string) => b.constant(Tensor.int64(dims), name);
    // 32x64 floats = 8 KiB, each from a few bytes: stay
    const zeros = b.node('ConstantOfShape', [shape([32, 64], 'big_shape')], { value: Tensor.float32([0], [1]) });
    const expanded = b.node('Expand', [b.constant(Tensor.float32([0.5], []), 'half'), shape([32, 64], 'expand_shape')]);
    const tiled = b.node('Tile', [b.constant(Tensor.float32([1, 2, 3, 4], [1, 4]), 'row'), shape([32, 16], 'reps')]);
    const range = b.node('Reshape', [b.node('Range', [b.constant(Tensor.float32([0], []), 'start'), b.constant(Tensor.float32([2048], []), 'limit'), b.constant(Tensor.float32([1], []), 'delta')]), shape([32, 64], 'range_shape')]);
    // an int8 weight widened to float: 8 KiB from 2 KiB
    const widened = b.node('Cast', [b.constant(Tensor.fromTypedArray(DataType.INT8, [32, 64], Int8Array.from({ length: 2048 }, (_, i) => (i % 7) - 3)), 'w_int8')], { to: DataType.FLOAT });
    // a transposed 8 KiB weight is no larger than the weight: folds
    const wt = b.node('Transpose', [b.constant(Tensor.float32(Array.from({ length: 2048 }, (_, i) => i / 2048), [64, 32]), 'w')]);
    // 16x16 floats = 1 KiB from a 16-byte shape: under 4 KiB, folds
    const small = b.node('ConstantOfShape', [shape([16, 16], 'small_shape')], { value: Tensor.float32([1], [1]) });
    const smallRange = b.node('Range', [b.constant(Tensor.float32([0], []), 'start16'), b.constant(Tensor.float32([16], []), 'limit16'), b.constant(Tensor.float32([1], []), 'delta16')]);
    let acc = x;
    for (const v of [zeros, expanded, tiled, range, widened, wt]) acc = b.node('Add', [acc, v]);
    b.output(acc, 'y');
    b.output(b.node('Neg', [small]), 'z');
    b.output(b.node('Neg', [smallRange]), 'r');
    const { after } = await checkPass(b.build(), foldConstants);
    expect(ops(after)).toEqual({ ConstantOfShape: 1, Expand: 1, Tile: 1, Range: 1, Reshape: 1, Cast: 1, Add: 6, Neg: 2 });
    expect(FOLD_SIZE_LIMIT).toBe(4096);
    expect(foldTooLarge(8192, 16)).toBe(true);
    expect(foldTooLarge(8192, 8192)).toBe(false);
    expect(foldTooLarge(4096, 8)).toBe(false);
  });

  test('random ops and Dropout in training mode are never folded', async () => {
    const b = new ModelBuilder({ opset: 15 });
    const x = b.input('x', 'float32', [4]);
    const c = b.constant(Tensor.float32([1, 2, 3, 4]), 'c');
    const zero = b.constant(Tensor.float32([0]), 'zero');
    const r1 = b.node('RandomUniform', [], { shape: [4], dtype: DataType.FLOAT });
    const r2 = b.node('RandomNormalLike', [c]);
    const r3 = b.node('Bernoulli', [b.constant(Tensor.float32([0.5, 0.5, 0.5, 0.5]), 'probs')]);
    const ratio = b.constant(Tensor.float32([0.5], []), 'ratio');
    const training = b.constant(Tensor.fromTypedArray(DataType.BOOL, [], Uint8Array.from([1])), 'training');
    const d = b.node('Dropout', [c, ratio, training]);
    // multiplied by 0, so that the outputs compare equal whatever was drawn
    let acc = x;
    for (const r of [r1, r2, r3, d]) acc = b.node('Add', [acc, b.node('Mul', [r, zero])]);
    b.output(acc, 'y');
    const { after, changes } = await checkPass(b.build(), foldConstants);
    expect(changes).toBe(0);
    expect(ops(after)).toMatchObject({ RandomUniform: 1, RandomNormalLike: 1, Bernoulli: 1, Dropout: 1 });
  });

  test('ops the TypeScript evaluator lacks (Erf, Softmax) fold only with a runtime', async () => {
    const build = () => {
      const b = new ModelBuilder();
      const x = b.input('x', 'float32', [2, 3]);
      const c = b.constant(Tensor.float32([0.1, -0.5, 1, 2, 0, -1], [2, 3]), 'c');
      const e = b.node('Erf', [c]);
      const s = b.node('Softmax', [c], { axis: -1 });
      b.output(b.node('Add', [x, b.node('Mul', [e, s])]), 'y');
      return b.build();
    };
    const without = await checkPass(build(), foldConstants);
    expect(without.changes).toBe(0);
    expect(ops(without.after)).toEqual({ Erf: 1, Softmax: 1, Mul: 1, Add: 1 });
    const withRt = await checkPass(build(), foldConstants, { runtime: onnxruntimeNode });
    expect(withRt.changes).toBe(3);
    expect(ops(withRt.after)).toEqual({ Add: 1 });
  });

  test('nodes with subgraphs are not folded; constants inside subgraphs are', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const g = b.graph;
    const x = b.input('x', 'float32', [3]);
    const cond = b.constant(Tensor.fromTypedArray(DataType.BOOL, [], Uint8Array.from([1])), 'cond');
    const iff = g.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['branch'] });
    const thenG = new Graph('then', iff);
    const k = thenG.addNode({ opType: 'Constant', name: 'k', outputs: ['k'], attributes: [attr.tensor('value', Tensor.float32([1, 2, 3]))] }).outputs[0]!;
    const t = thenG.addNode({ opType: 'Add', name: 'then_add', inputs: [k, k], outputs: ['t'] }).outputs[0]!;
    const t2 = thenG.addNode({ opType: 'Mul', name: 'then_mul', inputs: [t, x], outputs: ['t2'] }).outputs[0]!;
    t2.type = tensorType(DataType.FLOAT, [3]);
    thenG.addOutput(t2);
    const elseG = new Graph('else', iff);
    const e = elseG.addNode({ opType: 'Neg', name: 'else_neg', inputs: [x], outputs: ['e'] }).outputs[0]!;
    e.type = tensorType(DataType.FLOAT, [3]);
    elseG.addOutput(e);
    iff.attributes.set('then_branch', attr.graph('then_branch', thenG));
    iff.attributes.set('else_branch', attr.graph('else_branch', elseG));
    b.output(b.node('Relu', [iff.outputs[0]!]), 'y');
    const { after, changes } = await checkPass(b.build(), foldConstants);
    expect(changes).toBe(2); // the Constant and the Add inside the then branch
    expect(ops(after)).toEqual({ If: 1, Mul: 1, Neg: 1, Relu: 1 });
    const then = after.graph.nodes.find((n) => n.opType === 'If')!.subgraphs()[0]!;
    expect(then.initializers.map((v) => v.name)).toEqual(['t']);
  });

  test('ops of other domains are left alone', async () => {
    const b = new ModelBuilder({ opsets: { 'com.example': 1 } });
    const x = b.input('x', 'float32', [2]);
    const c = b.constant(Tensor.float32([1, 2]), 'c');
    b.output(b.node('Add', [x, b.node('Relu', [c], {}, { domain: 'com.example' })]), 'y');
    const model = b.build();
    const report = await new PassManager([foldConstants], { verifyEach: true, runtime: onnxruntimeNode }).run(model);
    expect(report.passes[0]!.changes).toBe(0);
    expect(ops(model)).toEqual({ Relu: 1, Add: 1 });
  });

  test('every fold asks for permission (stop after N rewrites)', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2]);
    let c = b.constant(Tensor.float32([1, 2]), 'c');
    for (let i = 0; i < 4; i++) c = b.node('Neg', [c]);
    b.output(b.node('Add', [x, c]), 'y');
    const model = b.build();
    const report = await new PassManager([foldConstants], { verifyEach: true, stopAfterRewrites: 2 }).run(model);
    expect(report.rewrites).toBe(2);
    expect(ops(model)).toEqual({ Neg: 2, Add: 1 });
  });
  test('DequantizeLinear of constant integer weights is not folded: a quantized model stays quantized (QDQ)', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 4]);
    const wq = b.constant(Tensor.fromTypedArray(DataType.INT8, [4, 3], Int8Array.from([1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12])), 'wq');
    const w = b.node('DequantizeLinear', [wq, b.constant(Tensor.float32([0.5], []), 's'), b.constant(Tensor.fromTypedArray(DataType.INT8, [], new Int8Array(1)), 'z')]);
    b.output(b.node('MatMul', [x, w]), 'y');
    const model = b.build();
    const explained: string[] = [];
    const report = await new PassManager([foldConstants], { verifyEach: true, onExplain: (_p, m) => explained.push(m) }).run(model);
    expect(report.passes[0]!.changes).toBe(0);
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['DequantizeLinear', 'MatMul']);
    expect(explained.join('\n')).toMatch(/DequantizeLinear keeps a quantized weight integer/);
  });
});
