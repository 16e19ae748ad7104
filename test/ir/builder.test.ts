/** ModelBuilder: models built in code serialize to valid ONNX that onnxruntime runs correctly. */
import { describe, expect, test } from 'vitest';
import { attr, toAttribute } from '../../src/ir/attribute.js';
import { elemTypeOf, ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { verifyModel } from '../../src/ir/verify.js';
import { decode } from '../../src/onnx/codec.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { expectClose, floats, modelBytes, randomArray, runModel } from './util.js';

/** y = x @ w for row-major x [m,k], w [k,n]. */
function matmul(x: number[], w: number[], m: number, k: number, n: number): number[] {
  const y = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += x[i * k + p]! * w[p * n + j]!;
    y[i * n + j] = s;
  }
  return y;
}

describe('ModelBuilder', () => {
  test('MatMul + Add + Relu: structure and numbers from onnxruntime', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 3]);
    const wv = randomArray(12, 1);
    const bv = randomArray(4, 2);
    const w = b.constant(Tensor.float32(wv, [3, 4]), 'w');
    const bias = b.constant(Tensor.float32(bv, [4]), 'b');
    const mm = b.node('MatMul', [x, w]);
    const add = b.node('Add', [mm, bias]);
    const y = b.output(b.node('Relu', [add]), 'y');
    const model = b.build();

    // structure: three nodes in order, wired value to value
    const nodes = model.graph.nodes;
    expect(nodes.map((n) => n.opType)).toEqual(['MatMul', 'Add', 'Relu']);
    expect(nodes.map((n) => n.name)).toEqual(['MatMul_0', 'Add_1', 'Relu_2']);
    expect(mm.name).toBe('MatMul_0_out');
    expect(mm.producer).toBe(nodes[0]);
    expect(add.producer).toBe(nodes[1]);
    expect(nodes[1]!.inputs).toEqual([mm, bias]);
    expect(mm.users).toEqual([nodes[1]]);
    expect(x.users).toEqual([nodes[0]]);
    expect(y.name).toBe('y');
    expect(model.graph.outputs).toEqual([y]);
    expect(model.graph.initializers.map((v) => v.name)).toEqual(['w', 'b']);
    expect(w.isConstant).toBe(true);
    expect(w.type).toEqual({ kind: 'tensor', elemType: DataType.FLOAT, shape: [3, 4] });
    expect(verifyModel(model)).toEqual([]);

    // the proto names the same things
    const proto = decode<ModelProto>('ModelProto', modelBytes(model));
    expect(proto.irVersion).toBe(8);
    expect(proto.opsetImport).toEqual([{ domain: '', version: 17 }]);
    expect(proto.graph!.node!.map((n) => [n.opType, n.input, n.output])).toEqual([
      ['MatMul', ['x', 'w'], ['MatMul_0_out']],
      ['Add', ['MatMul_0_out', 'b'], ['Add_1_out']],
      ['Relu', ['Add_1_out'], ['y']],
    ]);
    expect(proto.graph!.input![0]!.type!.tensorType!.shape!.dim).toEqual([{ dimParam: 'batch' }, { dimValue: 3 }]);

    const xv = randomArray(6, 3);
    const out = await runModel(model, { x: Tensor.float32(xv, [2, 3]) });
    expect(Object.keys(out)).toEqual(['y']);
    expect(out.y!.dims).toEqual([2, 4]);
    const expected = matmul(xv, wv, 2, 3, 4).map((v, i) => Math.max(0, v + bv[i % 4]!));
    expect(expected.some((v) => v === 0) && expected.some((v) => v > 0)).toBe(true); // Relu does something
    expectClose(floats(out.y), expected);
  });

  test('Conv with pads, strides and bias matches a direct convolution', async () => {
    const [N, C, H, W, M, K] = [1, 2, 5, 5, 3, 3];
    const xv = randomArray(N * C * H * W, 11);
    const wv = randomArray(M * C * K * K, 12);
    const bv = randomArray(M, 13);
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float', [N, C, H, W]);
    const w = b.constant(Tensor.float32(wv, [M, C, K, K]), 'w');
    const bias = b.constant(Tensor.float32(bv, [M]), 'bias');
    b.output(b.node('Conv', [x, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }, { name: 'conv' }), 'y');
    const model = b.build();
    const conv = model.graph.nodes[0]!;
    expect(conv.name).toBe('conv');
    expect(conv.attr('pads')).toEqual({ name: 'pads', type: 'ints', value: [1, 1, 1, 1] });
    expect(conv.attr('strides')?.type).toBe('ints');

    const OH = 3, OW = 3; // floor((5 + 2 - 3) / 2) + 1
    const expected: number[] = [];
    for (let m = 0; m < M; m++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
      let s = bv[m]!;
      for (let c = 0; c < C; c++) for (let ky = 0; ky < K; ky++) for (let kx = 0; kx < K; kx++) {
        const iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
        s += xv[(c * H + iy) * W + ix]! * wv[((m * C + c) * K + ky) * K + kx]!;
      }
      expected.push(s);
    }
    const out = await runModel(model, { x: Tensor.float32(xv, [N, C, H, W]) });
    expect(out.y!.dims).toEqual([1, M, OH, OW]);
    expectClose(floats(out.y), expected);
  });

  test('Split: a node with two named outputs', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 6]);
    const split = b.constant(Tensor.int64([2, 4]), 'split');
    const [left, right] = b.nodeN('Split', [x, split], { axis: 1 }, { outputs: ['left', 'right'] });
    b.output(left!);
    b.output(right!);
    const model = b.build();
    const node = model.graph.nodes[0]!;
    expect(node.outputs.map((v) => v?.name)).toEqual(['left', 'right']);
    expect(node.outputs.map((v) => v?.producerSlot)).toEqual([0, 1]);
    expect(split.type).toEqual(tensorType(DataType.INT64, [2]));

    const xv = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15];
    const out = await runModel(model, { x: Tensor.float32(xv, [2, 6]) });
    expect(out.left!.dims).toEqual([2, 2]);
    expect(out.right!.dims).toEqual([2, 4]);
    expect(floats(out.left)).toEqual([0, 1, 10, 11]);
    expect(floats(out.right)).toEqual([2, 3, 4, 5, 12, 13, 14, 15]);
  });

  test('TopK: counted outputs are named <node>_out0, <node>_out1 and give values and int64 indices', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 5]);
    const k = b.constant(Tensor.int64([2]), 'k');
    const outs = b.nodeN('TopK', [x, k], { axis: -1, largest: 1, sorted: 1 }, { outputs: 2, name: 'topk' });
    expect(outs.map((v) => v.name)).toEqual(['topk_out0', 'topk_out1']);
    b.output(outs[0]!, 'values');
    b.output(outs[1]!, 'indices');
    const model = b.build();
    expect(model.graph.nodes[0]!.attr('axis')).toEqual({ name: 'axis', type: 'int', value: -1 });

    const xv = [0.5, -2, 3.25, 1, 3, 7, 6, -1, 0, 8];
    const out = await runModel(model, { x: Tensor.float32(xv, [2, 5]) });
    expect(floats(out.values)).toEqual([3.25, 3, 8, 7]);
    expect(out.indices!.dataType).toBe(DataType.INT64);
    expect(Array.from(out.indices!.toTypedArray() as BigInt64Array)).toEqual([2n, 4n, 4n, 0n]);
  });

  test('an absent optional input is written as an empty name and runs', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [4]);
    const hi = b.constant(Tensor.float32([0.5], []), 'hi');
    b.output(b.node('Clip', [x, undefined, hi]), 'y');
    const model = b.build();
    const node = model.graph.nodes[0]!;
    expect(node.inputs).toEqual([x, undefined, hi]);
    expect(verifyModel(model)).toEqual([]);
    const proto = decode<ModelProto>('ModelProto', modelBytes(model));
    expect(proto.graph!.node![0]!.input).toEqual(['x', '', 'hi']);
    const out = await runModel(model, { x: Tensor.float32([-3, 0.25, 0.75, 2]) });
    expect(floats(out.y)).toEqual([-3, 0.25, 0.5, 0.5]);
  });

  test('Gemm with float attributes that happen to be integral (attr.float) and transB', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const a = b.input('a', 'float32', [1, 2]);
    const bm = b.constant(Tensor.float32([1, 2, 3, 4, 5, 6], [3, 2]), 'B'); // transposed: B^T is [2,3]
    const c = b.constant(Tensor.float32([1, 1, 1], [3]), 'C');
    b.output(b.node('Gemm', [a, bm, c], { alpha: attr.float('alpha', 2), beta: 0.5, transB: 1 }), 'y');
    const model = b.build();
    const gemm = model.graph.nodes[0]!;
    expect(gemm.attr('alpha')).toEqual({ name: 'alpha', type: 'float', value: 2 });
    expect(gemm.attr('beta')).toEqual({ name: 'beta', type: 'float', value: 0.5 });
    expect(gemm.attr('transB')).toEqual({ name: 'transB', type: 'int', value: 1 });
    // y = 2 * a @ B^T + 0.5 * C, a = [1, -1]: a @ B^T = [1-2, 3-4, 5-6] = [-1, -1, -1]
    const out = await runModel(model, { a: Tensor.float32([1, -1], [1, 2]) });
    expect(floats(out.y)).toEqual([-1.5, -1.5, -1.5]);
  });

  test('options: opset, extra opsets, ir version, graph name', () => {
    const b = new ModelBuilder({ opset: 13, opsets: { 'com.microsoft': 1 }, irVersion: 7, name: 'g' });
    const x = b.input('x', 'int64');
    b.output(b.node('Identity', [x]), 'y');
    const m = b.build();
    expect(m.irVersion).toBe(7);
    expect(m.graph.name).toBe('g');
    expect(m.opsetVersion()).toBe(13);
    expect(m.opsetVersion('ai.onnx')).toBe(13);
    expect(m.opsetVersion('com.microsoft')).toBe(1);
    expect(m.opsetVersion('ai.onnx.ml')).toBeUndefined();
    expect(x.type).toEqual({ kind: 'tensor', elemType: DataType.INT64 }); // rank unknown: no shape
    const proto = decode<ModelProto>('ModelProto', modelBytes(m));
    expect(proto.opsetImport).toEqual([{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }]);
    expect(proto.graph!.input![0]!.type).toEqual({ tensorType: { elemType: DataType.INT64 } });
  });

  test('element type names and codes', () => {
    expect(elemTypeOf('float32')).toBe(1);
    expect(elemTypeOf('float')).toBe(1);
    expect(elemTypeOf('FLOAT16')).toBe(10);
    expect(elemTypeOf('half')).toBe(10);
    expect(elemTypeOf('double')).toBe(11);
    expect(elemTypeOf('int4')).toBe(22);
    expect(elemTypeOf(7)).toBe(7);
    expect(() => elemTypeOf('float33')).toThrow(/unknown element type 'float33'/);
  });

  test('output() renames the value, and refuses to rename a graph input', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2]);
    const r = b.node('Relu', [x]);
    expect(r.name).toBe('Relu_0_out');
    b.output(r, 'out', tensorType(DataType.FLOAT, [2]));
    expect(r.name).toBe('out');
    expect(r.type).toEqual(tensorType(DataType.FLOAT, [2]));
    expect(b.graph.local('Relu_0_out')).toBeUndefined();
    expect(b.graph.local('out')).toBe(r);
    expect(() => b.output(x, 'x2')).toThrow(/refusing to rename graph input\/output 'x'/);
    b.output(x); // as-is is fine: a graph input passed straight through
    expect(b.graph.outputs).toEqual([r, x]);
  });
});

describe('toAttribute', () => {
  test('infers kinds like onnx.helper.make_attribute', () => {
    expect(toAttribute('a', 3)).toEqual({ name: 'a', type: 'int', value: 3 });
    expect(toAttribute('a', 2.5)).toEqual({ name: 'a', type: 'float', value: 2.5 });
    expect(toAttribute('a', 5n)).toEqual({ name: 'a', type: 'int', value: 5n });
    const s = toAttribute('mode', 'constant');
    expect(s.type).toBe('string');
    expect(new TextDecoder().decode(s.value as Uint8Array)).toBe('constant');
    expect(toAttribute('a', [1, 2, 3])).toEqual({ name: 'a', type: 'ints', value: [1, 2, 3] });
    const fl = toAttribute('a', [1, 2.5]);
    expect(fl.type).toBe('floats');
    expect(Array.from(fl.value as Float32Array)).toEqual([1, 2.5]);
    expect(toAttribute('a', ['p', 'q']).type).toBe('strings');
    const t = Tensor.float32([1]);
    expect(toAttribute('value', t)).toEqual({ name: 'value', type: 'tensor', value: t });
    const given = attr.float('alpha', 1);
    expect(toAttribute('ignored', given)).toBe(given);
    expect(() => toAttribute('a', { foo: 1 })).toThrow(/attribute 'a': cannot infer/);
  });

  test('names that are FLOAT in ONNX stay FLOAT for integral numbers (Gemm alpha 1, Clip-6 max 6, Upsample scales)', async () => {
    expect(toAttribute('alpha', 1)).toEqual({ name: 'alpha', type: 'float', value: 1 });
    expect(toAttribute('max', 6).type).toBe('float');
    expect(toAttribute('scales', [1, 1, 2, 2]).type).toBe('floats');
    expect(toAttribute('axis', 1).type).toBe('int');
    // and ONNX Runtime takes the result: Gemm with alpha 2 and beta 1 given as plain numbers
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 2]);
    b.output(b.node('Gemm', [x, b.constant(Tensor.float32([1, 0, 0, 1], [2, 2]), 'w'), b.constant(Tensor.float32([1, 1], [2]), 'c')], { alpha: 2, beta: 1 }), 'y');
    const { onnxruntimeNode } = await import('../../src/node/ort.js');
    const { serializeModel } = await import('../../src/io.js');
    const { concatChunks } = await import('../../src/onnx/codec.js');
    const s = await onnxruntimeNode.createSession(concatChunks(serializeModel(b.build()).chunks));
    const y = (await s.run({ x: Tensor.float32([3, 4], [1, 2]) })).y!;
    expect(Array.from(y.toTypedArray())).toEqual([7, 9]);
    await s.release();
  });
});
