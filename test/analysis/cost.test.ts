/** The cost model: exact hand-computed counts on built graphs, symbolic counts, and the fixtures against analytic counts. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { inferShapes, modelCost, nodeCost, RULES, Sym, SOFTMAX_FLOPS, LAYER_NORM_FLOPS } from '../../src/analysis/index.js';
import { evaluateNode } from '../../src/analysis/evaluator.js';
import { attr } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph, type Node, type Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType, type Dim } from '../../src/ir/types.js';
import { readModel } from '../../src/node/files.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');

const zeros = (dims: number[]): Tensor => Tensor.float32(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
const sym = (s: string): Sym => Sym.from(s);
const f32 = (shape: Dim[]) => tensorType(DataType.FLOAT, shape);

/** The node that produced `v`. */
function producer(v: Value): Node {
  return v.producer!;
}

/** Infer and cost a built model. */
function cost(model: Model, dims?: Record<string, number>) {
  const r = inferShapes(model, RULES, { apply: false, ...(dims ? { dims } : {}) });
  return modelCost(model, r, dims ? { dims } : {});
}

describe('contractions', () => {
  test('Conv: MACs = output elements x C_in x kernel; bytes and params', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [1, 3, 8, 8]);
    const w = b.constant(zeros([4, 3, 3, 3]), 'w');
    const bias = b.constant(zeros([4]), 'b');
    const y = b.node('Conv', [x, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    y.type = f32([1, 4, 8, 8]);
    b.output(y, 'y');
    const c = nodeCost(producer(y));
    expect(c.macs.value).toBe(4 * 8 * 8 * 3 * 3 * 3); // 6912
    expect(c.flops.value).toBe(2 * 6912);
    expect(c.bytesRead.value).toBe(4 * (3 * 8 * 8 + 4 * 3 * 3 * 3 + 4));
    expect(c.bytesWritten.value).toBe(4 * 4 * 8 * 8);
    expect(c.params).toBe(112);
    expect(c.paramBytes).toBe(448);
    expect(c.complete).toBe(true);
  });

  test('grouped and strided Conv, ConvTranspose', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 8, 16, 16]);
    const w = b.constant(zeros([8, 2, 3, 3]), 'w'); // group 4: 2 input channels per group
    const y = b.node('Conv', [x, w], { group: 4, kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    y.type = f32([2, 8, 8, 8]);
    const wt = b.constant(zeros([8, 3, 2, 2]), 'wt'); // ConvTranspose W: [C_in, C_out/group, k, k]
    const z = b.node('ConvTranspose', [y, wt], { kernel_shape: [2, 2], strides: [2, 2] });
    z.type = f32([2, 3, 16, 16]);
    b.output(z, 'z');
    expect(nodeCost(producer(y)).macs.value).toBe(2 * 8 * 8 * 8 * 2 * 9);
    // each input element meets C_out/group x k x k weights
    expect(nodeCost(producer(z)).macs.value).toBe(2 * 8 * 8 * 8 * 3 * 2 * 2);
  });

  test('MatMul with symbolic dims gives a symbolic count that pins to a number', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 'seq', 768]);
    const w = b.constant(zeros([768, 3072]), 'w');
    const y = b.node('MatMul', [x, w]);
    y.type = f32(['batch', 'seq', 3072]);
    b.output(y, 'y');
    const c = nodeCost(producer(y));
    expect(c.macs.equals(sym('batch*seq').mul(768 * 3072))).toBe(true);
    expect(c.flops.toString()).toBe(`${2 * 768 * 3072}*batch*seq`);
    expect(c.bytesRead.equals(sym('batch*seq').mul(768 * 4).add(768 * 3072 * 4))).toBe(true);
    expect(c.params).toBe(768 * 3072);
    const m = modelCost(b.build(), undefined, { dims: { batch: 1, seq: 64 } });
    expect(m.numbers?.flops).toBe(2 * 64 * 768 * 3072);
    expect(m.numbers?.macs).toBe(64 * 768 * 3072);
    expect(m.total.flops.value).toBe(2 * 64 * 768 * 3072);
  });

  test('batched MatMul broadcasts; a 1-D operand contracts its only dim', () => {
    const b = new ModelBuilder();
    const q = b.input('q', 'float32', ['b', 12, 'n', 64]);
    const k = b.input('k', 'float32', ['b', 12, 64, 'n']);
    const s = b.node('MatMul', [q, k]);
    s.type = f32(['b', 12, 'n', 'n']);
    const v = b.input('v', 'float32', [5]);
    const mtx = b.input('m', 'float32', [5, 7]);
    const u = b.node('MatMul', [v, mtx]);
    u.type = f32([7]);
    b.output(s, 's');
    b.output(u, 'u');
    expect(nodeCost(producer(s)).macs.equals(sym('b*n*n').mul(12 * 64))).toBe(true);
    expect(nodeCost(producer(u)).macs.value).toBe(35);
  });

  test('Gemm with transA and transB: MACs = M x N x K; bias not counted', () => {
    const b = new ModelBuilder();
    const a = b.input('a', 'float32', [5, 3]); // transA: A is [K, M]
    const w = b.constant(zeros([4, 5]), 'w'); // transB: B is [N, K]
    const c = b.constant(zeros([4]), 'c');
    const y = b.node('Gemm', [a, w, c], { transA: 1, transB: 1 });
    y.type = f32([3, 4]);
    b.output(y, 'y');
    const n = nodeCost(producer(y));
    expect(n.macs.value).toBe(3 * 4 * 5);
    expect(n.flops.value).toBe(120);
    expect(n.params).toBe(24);
  });

  test('with shape inference: Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['N', 3, 32, 32]);
    const w = b.constant(zeros([8, 3, 3, 3]), 'w');
    const y = b.node('Conv', [x, w], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }); // 16x16
    const r = b.node('Relu', [y]);
    const p = b.node('GlobalAveragePool', [r]);
    const f = b.node('Flatten', [p]);
    const fc = b.node('Gemm', [f, b.constant(zeros([10, 8]), 'fc'), b.constant(zeros([10]), 'fcb')], { transB: 1 });
    b.output(fc, 'out');
    const m = cost(b.build());
    const N = sym('N');
    const conv = N.mul(8 * 16 * 16 * 27);
    expect(m.total.macs.equals(conv.add(N.mul(80)))).toBe(true);
    // flops: 2 x MACs + Relu (1 per output) + GlobalAveragePool (1 per input); Flatten moves data
    const relu = N.mul(8 * 16 * 16);
    expect(m.total.flops.equals(conv.mul(2).add(N.mul(160)).add(relu).add(relu))).toBe(true);
    expect(m.byOp['ai.onnx::Conv']!.count).toBe(1);
    expect(m.byOp['ai.onnx::Flatten']!.flops.value).toBe(0);
    expect(m.params).toBe(8 * 27 + 80 + 10);
    expect(m.incomplete).toEqual([]);
    expect(m.numbers).toBeUndefined(); // N is still a symbol
    const pinned = cost(b.build(), { N: 2 });
    expect(pinned.numbers?.macs).toBe(2 * (8 * 16 * 16 * 27 + 80));
  });

  test('Einsum: product of all index sizes', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    const y = b.input('y', 'float32', [2, 4, 5]);
    const z = b.node('Einsum', [x, y], { equation: 'bij,bjk->bik' });
    z.type = f32([2, 3, 5]);
    const t = b.node('Einsum', [x], { equation: 'bij->bji' });
    t.type = f32([2, 4, 3]);
    const s = b.node('Einsum', [x], { equation: 'bij->b' });
    s.type = f32([2]);
    b.output(z, 'z'); b.output(t, 't'); b.output(s, 's');
    expect(nodeCost(producer(z)).macs.value).toBe(2 * 3 * 4 * 5);
    expect(nodeCost(producer(t)).flops.value).toBe(0);
    expect(nodeCost(producer(s)).flops.value).toBe(24);
  });

  test('LSTM: steps x batch x (|W| + |R|) MACs', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['T', 2, 10]);
    const W = b.constant(zeros([1, 4 * 8, 10]), 'W');
    const R = b.constant(zeros([1, 4 * 8, 8]), 'R');
    const [y] = b.nodeN('LSTM', [x, W, R], { hidden_size: 8 }, { outputs: 1 });
    y!.type = f32(['T', 1, 2, 8]);
    b.output(y!, 'y');
    const c = nodeCost(producer(y!));
    expect(c.macs.equals(sym('T').mul(2 * (32 * 10 + 32 * 8)))).toBe(true);
  });

  test('MatMulNBits and QLinearMatMul count like MatMul', () => {
    const b = new ModelBuilder({ opsets: { 'com.microsoft': 1 } });
    const a = b.input('a', 'float32', ['M', 64]);
    const w = b.constant(Tensor.fromRaw(DataType.UINT8, [32, 2, 16], new Uint8Array(32 * 2 * 16)), 'w');
    const s = b.constant(zeros([32, 2]), 's');
    const y = b.node('MatMulNBits', [a, w, s], { K: 64, N: 32, bits: 4, block_size: 32 }, { domain: 'com.microsoft' });
    y.type = f32(['M', 32]);
    b.output(y, 'y');
    const c = nodeCost(producer(y));
    expect(c.macs.equals(sym('M').mul(64 * 32))).toBe(true);
    expect(c.params).toBe(32 * 2 * 16 + 64);
  });
});

describe('elementwise, reductions, data movement', () => {
  test('per-element constants and broadcasting', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['B', 16]);
    const one = b.constant(zeros([16]), 'one');
    const add = b.node('Add', [x, one]);
    const sm = b.node('Softmax', [add], { axis: -1 });
    const red = b.node('ReduceMean', [sm], { axes: [-1] });
    const resh = b.node('Reshape', [sm, b.constant(Tensor.int64([-1]), 'shape')]);
    const g = b.constant(zeros([16]), 'g');
    const ln = b.node('LayerNormalization', [x, g, g], { axis: -1 });
    const sq = b.node('Pow', [x, b.constant(Tensor.float32([2], []), 'two')]);
    b.output(red, 'r'); b.output(resh, 'flat'); b.output(ln, 'ln'); b.output(sq, 'sq');
    const m = cost(b.build());
    const B16 = sym('B').mul(16);
    const by = (op: string) => m.byOp[`ai.onnx::${op}`]!.flops;
    expect(by('Add').equals(B16)).toBe(true);
    expect(by('Softmax').equals(B16.mul(SOFTMAX_FLOPS))).toBe(true);
    expect(by('ReduceMean').equals(B16)).toBe(true); // input elements
    expect(by('Reshape').value).toBe(0);
    expect(by('LayerNormalization').equals(B16.mul(LAYER_NORM_FLOPS))).toBe(true);
    expect(by('Pow').equals(B16)).toBe(true); // x^2 is one multiply
    expect(m.byOp['ai.onnx::Reshape']!.count).toBe(1);
    expect(m.total.macs.value).toBe(0);
  });

  test('unknown shapes make a count incomplete; custom ops are listed as uncounted', () => {
    const b = new ModelBuilder({ opsets: { 'my.domain': 1 } });
    const x = b.input('x', 'float32'); // rank unknown
    const y = b.node('Relu', [x]);
    const z = b.node('Frobnicate', [y], {}, { domain: 'my.domain' });
    b.output(z, 'z');
    const m = cost(b.build());
    expect(m.incomplete.map((n) => n.opType)).toContain('Relu');
    expect(m.uncounted).toEqual({ 'my.domain::Frobnicate': 1 });
    expect(nodeCost(producer(z)).counted).toBe(false);
  });

  test('Constant nodes move no bytes; 4-bit tensors are packed', () => {
    const b = new ModelBuilder();
    const c = b.node('Constant', [], { value: zeros([100]) });
    const x = b.input('x', 'int4', [7]);
    const y = b.node('Identity', [x]);
    y.type = tensorType(DataType.INT4, [7]);
    b.output(c, 'c'); b.output(y, 'y');
    expect(nodeCost(producer(c)).bytesWritten.value).toBe(0);
    expect(nodeCost(producer(y)).bytesRead.value).toBe(4);
  });
});

describe('attention (com.microsoft)', () => {
  test('Attention: QKV projection + Q.K^T + P.V, softmax per score', () => {
    const b = new ModelBuilder({ opsets: { 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', ['B', 'S', 64]);
    const w = b.constant(zeros([64, 192]), 'w');
    const bias = b.constant(zeros([192]), 'bias');
    const y = b.node('Attention', [x, w, bias], { num_heads: 4 }, { domain: 'com.microsoft' });
    y.type = f32(['B', 'S', 64]);
    b.output(y, 'y');
    const c = nodeCost(producer(y));
    const BS = sym('B*S'), BSS = sym('B*S*S');
    expect(c.macs.equals(BS.mul(64 * 192).add(BSS.mul(64)).add(BSS.mul(64)))).toBe(true);
    expect(c.flops.equals(c.macs.mul(2).add(BSS.mul(4 * (SOFTMAX_FLOPS + 1))))).toBe(true);
  });

  test('Attention with past: total length = past + current', () => {
    const b = new ModelBuilder({ opsets: { 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', [1, 1, 32]);
    const w = b.constant(zeros([32, 96]), 'w');
    const past = b.input('past', 'float32', [2, 1, 2, 'P', 16]);
    const [y, present] = b.nodeN('Attention', [x, w, undefined, undefined, past], { num_heads: 2, unidirectional: 1 }, { domain: 'com.microsoft', outputs: 2 });
    y!.type = f32([1, 1, 32]);
    present!.type = f32([2, 1, 2, 'P+1', 16]);
    b.output(y!, 'y'); b.output(present!, 'present');
    const c = nodeCost(producer(y!));
    expect(c.macs.equals(Sym.const(32 * 96).add(sym('P+1').mul(64)))).toBe(true);
  });

  test('MultiHeadAttention and GroupQueryAttention: Q.K^T + P.V only', () => {
    const b = new ModelBuilder({ opsets: { 'com.microsoft': 1 } });
    const q = b.input('q', 'float32', [1, 'S', 64]);
    const k = b.input('k', 'float32', [1, 'L', 64]);
    const v = b.input('v', 'float32', [1, 'L', 64]);
    const y = b.node('MultiHeadAttention', [q, k, v], { num_heads: 4 }, { domain: 'com.microsoft' });
    y.type = f32([1, 'S', 64]);
    const gk = b.input('gk', 'float32', [1, 'S', 16]);
    const [g, pk] = b.nodeN('GroupQueryAttention', [q, gk, gk], { num_heads: 4, kv_num_heads: 1 }, { domain: 'com.microsoft', outputs: 3 });
    g!.type = f32([1, 'S', 64]);
    pk!.type = f32([1, 1, 'S', 16]);
    b.output(y, 'y'); b.output(g!, 'g');
    expect(nodeCost(producer(y)).macs.equals(sym('L*S').mul(128))).toBe(true);
    expect(nodeCost(producer(g!)).macs.equals(sym('S*S').mul(128))).toBe(true);
  });
});

describe('subgraphs', () => {
  function ifModel(): Model {
    const b = new ModelBuilder({ opset: 13 });
    const g = b.graph;
    const cond = b.input('cond', 'bool', []);
    const x = b.input('x', 'float32', [4, 8]);
    const w = b.constant(zeros([8, 8]), 'w');
    const iff = g.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['y'] });
    const thenG = new Graph('then', iff);
    const t = thenG.addNode({ opType: 'Relu', inputs: [x], outputs: ['t'] }).outputs[0]!;
    t.type = f32([4, 8]);
    thenG.addOutput(t);
    const elseG = new Graph('else', iff);
    const e = elseG.addNode({ opType: 'MatMul', inputs: [x, w], outputs: ['e'] }).outputs[0]!;
    e.type = f32([4, 8]);
    elseG.addOutput(e);
    iff.attributes.set('then_branch', attr.graph('then_branch', thenG));
    iff.attributes.set('else_branch', attr.graph('else_branch', elseG));
    b.output(iff.outputs[0]!);
    return b.build();
  }

  test('If counts the costlier branch', () => {
    const m = modelCost(ifModel());
    expect(m.total.macs.value).toBe(4 * 8 * 8);
    expect(m.total.flops.value).toBe(2 * 4 * 8 * 8);
    expect(m.nodes.map((e) => e.node.opType)).toEqual(['If', 'MatMul']);
    expect(m.params).toBe(64);
  });

  function loopModel(trip: Value | undefined, b: ModelBuilder): Model {
    const g = b.graph;
    const x = b.input('x', 'float32', [4, 8]);
    const w = b.constant(zeros([8, 8]), 'w');
    const loop = g.addNode({ opType: 'Loop', name: 'loop', inputs: [trip, undefined, x], outputs: ['y'] });
    const body = new Graph('body', loop);
    body.addInput('i', tensorType(DataType.INT64, []));
    const condIn = body.addInput('cond_in', tensorType(DataType.BOOL, []));
    const h = body.addInput('h', f32([4, 8]));
    const condOut = body.addNode({ opType: 'Identity', inputs: [condIn], outputs: ['cond_out'] }).outputs[0]!;
    condOut.type = tensorType(DataType.BOOL, []);
    const mm = body.addNode({ opType: 'MatMul', inputs: [h, w], outputs: ['h_next'] }).outputs[0]!;
    mm.type = f32([4, 8]);
    body.addOutput(condOut);
    body.addOutput(mm);
    loop.attributes.set('body', attr.graph('body', body));
    loop.outputs[0]!.type = f32([4, 8]);
    b.output(loop.outputs[0]!);
    return b.build();
  }

  test('Loop with a known trip count counts its body per iteration', () => {
    const b = new ModelBuilder({ opset: 13 });
    const m = modelCost(loopModel(b.constant(Tensor.int64([5], []), 'M'), b));
    expect(m.total.macs.value).toBe(5 * 4 * 8 * 8);
    expect(m.nodes.find((e) => e.node.opType === 'MatMul')!.multiplier.value).toBe(5);
    expect(m.notes).toEqual([]);
  });

  test('Loop with a symbolic trip count stays symbolic; an unknown one counts once, with a note', () => {
    const b = new ModelBuilder({ opset: 13 });
    const n = b.input('n', 'int64', []);
    const model = loopModel(n, b);
    const m1 = modelCost(model, { types: new Map(), symValues: new Map([[n, { dims: [], values: [sym('steps')] }]]) });
    expect(m1.total.macs.equals(sym('steps').mul(256))).toBe(true);
    const m2 = modelCost(model);
    expect(m2.total.macs.value).toBe(256);
    expect(m2.notes.length).toBe(1);
    expect(m2.notes[0]).toMatch(/trip count unknown/);
  });
});

describe('fixtures against analytic counts', () => {
  test('cnn-tiny-op13: conv and Gemm MACs from the weights', () => {
    const { model } = readModel(path.join(FIXTURES, 'cnn-tiny-op13', 'model.onnx'));
    const m = cost(model);
    // conv output sizes: three 3x3/1x1 convs at 32x32 (pad keeps size), then MaxPool /2 and a stride-2 conv: 8x8
    const spatial = [32 * 32, 32 * 32, 32 * 32, 8 * 8];
    const convs = model.graph.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.length).toBe(spatial.length);
    let perImage = 0;
    convs.forEach((n, i) => {
      const w = n.inputs[1]!.initializer!.dims; // [C_out, C_in/group, kh, kw]
      perImage += spatial[i]! * w[0]! * w[1]! * w[2]! * w[3]!;
    });
    const fc = model.graph.nodes.find((n) => n.opType === 'Gemm')!.inputs[1]!.initializer!;
    perImage += fc.elementCount;
    expect(perImage).toBe(442368 + 147456 + 262144 + 221184 + 240);
    expect(m.total.macs.toString()).toBe(`${perImage}*batch`);
    const pinned = cost(model, { batch: 1 });
    expect(pinned.numbers!.macs).toBe(perImage);
    expect(pinned.numbers!.flops).toBeGreaterThan(2 * perImage);
    expect(pinned.numbers!.flops).toBeLessThan(2.1 * perImage);
    // parameters: the initializers' elements (torch's param_count differs: BatchNorms folded into convs, running stats added)
    expect(pinned.params).toBe(model.graph.initializers.reduce((a, v) => a + v.initializer!.elementCount, 0));
    expect(pinned.incomplete).toEqual([]);
    expect(pinned.uncounted).toEqual({});
  });

  test('gpt2-tiny-op14: 2 x weights x tokens + attention terms, symbolic in batch and sequence', () => {
    const dir = path.join(FIXTURES, 'gpt2-tiny-op14');
    const { model } = readModel(path.join(dir, 'model.onnx'));
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as { notes: { config: { n_layer: number; n_embd: number } } };
    const { n_layer: L, n_embd: d } = meta.notes.config;
    // every weight matrix of a Gemm/MatMul is applied once per token
    let weights = 0;
    for (const n of model.graph.nodes) {
      if (n.opType !== 'Gemm' && n.opType !== 'MatMul') continue;
      const w = n.inputs[1]!.initializer;
      if (w) weights += w.elementCount;
    }
    expect(weights).toBe(L * 12 * d * d + d * 64);
    const tokens = sym('batch*sequence');
    const attention = sym('batch*sequence*sequence').mul(L * 2 * d); // Q.K^T and P.V per layer
    const r = inferShapes(model, RULES, { apply: false, evaluate: evaluateNode });
    const m = modelCost(model, r);
    const expected = tokens.mul(weights).add(attention);
    expect(m.total.macs.toString()).toBe(expected.toString());
    const pinned = modelCost(model, inferShapes(model, RULES, { apply: false, evaluate: evaluateNode, dims: { batch: 2, sequence: 16 } }));
    expect(pinned.numbers!.macs).toBe(2 * 16 * weights + L * 2 * 2 * 16 * 16 * d);
    expect(pinned.incomplete).toEqual([]);
    expect(pinned.uncounted).toEqual({});
    // elementwise work is small next to the matmuls, but counted
    expect(pinned.numbers!.flops).toBeGreaterThan(2 * pinned.numbers!.macs);
  });

  test('control-flow-op13: a data-dependent Loop is counted once, with a note', () => {
    const { model } = readModel(path.join(FIXTURES, 'control-flow-op13', 'model.onnx'));
    const m = cost(model, { batch: 1 });
    expect(m.notes.some((n) => /trip count unknown/.test(n))).toBe(true);
    // two Gemms in the main graph (8->16, 16->4), one 16x16 in the If's branch, one in the Loop body (counted once)
    expect(m.byOp['ai.onnx::Gemm']!.count).toBe(4);
    expect(m.numbers!.macs).toBe(8 * 16 + 16 * 16 + 16 * 16 + 16 * 4);
    expect(m.incomplete).toEqual([]);
  });
});
