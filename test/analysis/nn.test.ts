/** Shape rules of the NN ops (ops/nn.ts) and the ORT contrib ops (ops/contrib.ts), with symbolic dims. */
import { describe, expect, test } from 'vitest';
import { formatSymType, inferShapes, RULES } from '../../src/analysis/index.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { serializeModel } from '../../src/io.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { concatChunks } from '../../src/onnx/codec.js';

function zeros(dims: number[]): Tensor {
  return Tensor.float32(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
}

/** Infer and return each value's type as text. */
function infer(b: ModelBuilder, values: Value[]): string[] {
  const result = inferShapes(b.build(), RULES);
  expect([...result.unknownOps.keys()]).toEqual([]);
  return values.map((v) => formatSymType(result.types.get(v)));
}

describe('convolution and pooling', () => {
  test('Conv k3 s2 p1 on symbolic h, w', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 3, 'h', 'w']);
    const w = b.constant(zeros([8, 3, 3, 3]), 'w');
    const y = b.node('Conv', [x, w], { strides: [2, 2], pads: [1, 1, 1, 1] });
    expect(infer(b, [y])).toEqual(['float32[batch,8,floor((h+1)/2),floor((w+1)/2)]']);
  });

  test('Conv with auto_pad SAME_UPPER, dilations, kernel from the weight', () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', ['n', 4, 'h', 'w']);
    const w = b.input('w', 'float32', [6, 2, 3, 5]);
    const same = b.node('Conv', [x, w], { auto_pad: 'SAME_UPPER', strides: [2, 3], group: 2 });
    const dil = b.node('Conv', [x, w], { dilations: [2, 2] });
    expect(infer(b, [same, dil])).toEqual(['float32[n,6,floor((h+1)/2),floor((w+2)/3)]', 'float32[n,6,h-4,w-8]']);
  });

  test('MaxPool ceil_mode and Indices; AveragePool VALID; GlobalAveragePool', () => {
    const b = new ModelBuilder({ opset: 12 });
    const x = b.input('x', 'float32', ['n', 'c', 'h', 32]);
    const [y, idx] = b.nodeN('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, { outputs: 2 });
    const avg = b.node('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'VALID' });
    const g = b.node('GlobalAveragePool', [x]);
    expect(infer(b, [y!, idx!, avg, g])).toEqual([
      'float32[n,c,floor(h/2),16]',
      'int64[n,c,floor(h/2),16]',
      'float32[n,c,floor(h/2),16]',
      'float32[n,c,1,1]',
    ]);
  });

  test('ConvTranspose: strides, output_padding, group; output_shape', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['n', 4, 'h', 'w']);
    const w = b.constant(zeros([4, 3, 4, 4]), 'w');
    const y = b.node('ConvTranspose', [x, w], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0], group: 2 });
    const z = b.node('ConvTranspose', [x, w], { strides: [2, 2], output_shape: [20, 30] });
    expect(infer(b, [y, z])).toEqual(['float32[n,6,2*h+1,2*w]', 'float32[n,3,20,30]']);
  });

  test('QLinearConv takes y_zero_point\'s type; ConvInteger gives int32', () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'uint8', ['n', 1, 'h', 'w']);
    const w = b.input('w', 'uint8', [2, 1, 3, 3]);
    const s = b.input('s', 'float32', []);
    const zp = b.input('zp', 'uint8', []);
    const yzp = b.input('yzp', 'int8', []);
    const q = b.node('QLinearConv', [x, s, zp, w, s, zp, s, yzp]);
    const ci = b.node('ConvInteger', [x, w]);
    expect(infer(b, [q, ci])).toEqual(['int8[n,2,h-2,w-2]', 'int32[n,2,h-2,w-2]']);
  });
});

describe('normalization and recurrent layers', () => {
  test('LayerNormalization: Mean and InvStdDev keep the dims before axis', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float16', ['batch', 'seq', 768]);
    const g = b.input('g', 'float16', [768]);
    const [y, mean, inv] = b.nodeN('LayerNormalization', [x, g], { axis: -1 }, { outputs: 3 });
    expect(infer(b, [y!, mean!, inv!])).toEqual(['float16[batch,seq,768]', 'float32[batch,seq,1]', 'float32[batch,seq,1]']);
  });

  test('BatchNormalization training outputs (opset 15)', () => {
    const b = new ModelBuilder({ opset: 15 });
    const x = b.input('x', 'float32', ['n', 16, 'h', 'w']);
    const p = b.input('p', 'float32', [16]);
    const [y, rm, rv] = b.nodeN('BatchNormalization', [x, p, p, p, p], { training_mode: 1 }, { outputs: 3 });
    expect(infer(b, [y!, rm!, rv!])).toEqual(['float32[n,16,h,w]', 'float32[16]', 'float32[16]']);
  });

  test('LSTM: all outputs, bidirectional, both layouts', () => {
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', ['seq', 'batch', 10]);
    const w = b.input('w', 'float32', [2, 80, 10]);
    const r = b.input('r', 'float32', [2, 80, 20]);
    const [y, yh, yc] = b.nodeN('LSTM', [x, w, r], { hidden_size: 20, direction: 'bidirectional' }, { outputs: 3 });
    const xb = b.input('xb', 'float32', ['batch', 'seq', 10]);
    const w1 = b.input('w1', 'float32', [1, 60, 10]);
    const r1 = b.input('r1', 'float32', [1, 60, 20]);
    const [gy, gyh] = b.nodeN('GRU', [xb, w1, r1], { layout: 1 }, { outputs: 2 });
    expect(infer(b, [y!, yh!, yc!, gy!, gyh!])).toEqual([
      'float32[seq,2,batch,20]', 'float32[2,batch,20]', 'float32[2,batch,20]',
      'float32[batch,seq,1,20]', 'float32[batch,1,20]',
    ]);
  });
});

describe('resize, pad and layout', () => {
  test('Resize with constant scales; with sizes from Shape arithmetic; Upsample-7', () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['n', 3, 'h', 'w']);
    const scales = b.constant(Tensor.float32([1, 1, 2, 0.5]), 'scales');
    const y = b.node('Resize', [x, undefined, scales], { mode: 'nearest' });
    const shape = b.node('Shape', [x]);
    const sizes = b.node('Concat', [b.node('Slice', [shape, b.constant(Tensor.int64([0]), 's0'), b.constant(Tensor.int64([2]), 's1')]), b.constant(Tensor.int64([64, 64]), 'hw')], { axis: 0 });
    const z = b.node('Resize', [x, undefined, undefined, sizes]);
    expect(infer(b, [y, z])).toEqual(['float32[n,3,2*h,floor(w/2)]', 'float32[n,3,64,64]']);

    const b7 = new ModelBuilder({ opset: 7 });
    const x7 = b7.input('x', 'float32', ['n', 3, 'h', 'w']);
    const u = b7.node('Upsample', [x7], { scales: [1, 1, 2, 3] });
    expect(infer(b7, [u])).toEqual(['float32[n,3,2*h,3*w]']);
  });

  test('Pad: attribute (opset 2) and input with axes (opset 18)', () => {
    const b2 = new ModelBuilder({ opset: 2 });
    const x2 = b2.input('x', 'float32', ['n', 'c']);
    expect(infer(b2, [b2.node('Pad', [x2], { pads: [0, 1, 0, 2] })])).toEqual(['float32[n,c+3]']);
    const b = new ModelBuilder({ opset: 18 });
    const x = b.input('x', 'float32', ['n', 'c', 'h', 'w']);
    const y = b.node('Pad', [x, b.constant(Tensor.int64([1, 2, 3, 4]), 'pads'), undefined, b.constant(Tensor.int64([-2, -1]), 'axes')], { mode: 'reflect' });
    expect(infer(b, [y])).toEqual(['float32[n,c,h+4,w+6]']);
  });

  test('DepthToSpace, SpaceToDepth, GridSample', () => {
    const b = new ModelBuilder({ opset: 16 });
    const x = b.input('x', 'float32', ['n', 16, 'h', 'w']);
    const grid = b.input('grid', 'float32', ['n', 7, 9, 2]);
    expect(infer(b, [b.node('DepthToSpace', [x], { blocksize: 2 }), b.node('SpaceToDepth', [x], { blocksize: 2 }), b.node('GridSample', [x, grid])]))
      .toEqual(['float32[n,4,2*h,2*w]', 'float32[n,64,floor(h/2),floor(w/2)]', 'float32[n,16,7,9]']);
  });
});

describe('quantization and signal ops', () => {
  test('QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear / QLinearMatMul', () => {
    const b = new ModelBuilder({ opset: 21 });
    const x = b.input('x', 'float16', ['m', 'k']);
    const s = b.input('s', 'float16', []);
    const zp = b.input('zp', 'int8', []);
    const q = b.node('QuantizeLinear', [x, s, zp]);
    const q2 = b.node('QuantizeLinear', [x, s], { output_dtype: 4 });
    const d = b.node('DequantizeLinear', [q, s, zp]);
    const [dy, ds, dz] = b.nodeN('DynamicQuantizeLinear', [b.input('f', 'float32', ['m'])], {}, { outputs: 3 });
    const a8 = b.input('a8', 'uint8', ['b', 'm', 'k']);
    const b8 = b.input('b8', 'uint8', ['k', 'n']);
    const fs = b.input('fs', 'float32', []);
    const u = b.input('u', 'uint8', []);
    const mm = b.node('QLinearMatMul', [a8, fs, u, b8, fs, u, fs, zp]);
    expect(infer(b, [q, q2, d, dy!, ds!, dz!, mm])).toEqual([
      'int8[m,k]', 'uint16[m,k]', 'float16[m,k]', 'uint8[m]', 'float32[]', 'uint8[]', 'int8[b,m,n]',
    ]);
  });

  test('DFT (opset 17 onesided, opset 20 axis input) and STFT', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 'len', 1]);
    expect(infer(b, [b.node('DFT', [x], { onesided: 1 })])).toEqual(['float32[batch,floor(len/2)+1,2]']);
    const b20 = new ModelBuilder({ opset: 20 });
    const x20 = b20.input('x', 'float32', ['batch', 'len', 2]);
    const y20 = b20.node('DFT', [x20, b20.constant(Tensor.int64([64], []), 'n')]);
    const st = b20.node('STFT', [b20.input('sig', 'float32', [1, 'len', 1]), b20.constant(Tensor.int64([8], []), 'step'), undefined, b20.constant(Tensor.int64([16], []), 'fl')]);
    const win = b20.node('HannWindow', [b20.constant(Tensor.int32([10], []), 'size')]);
    expect(infer(b20, [y20, st, win])).toEqual(['float32[batch,64,2]', 'float32[1,floor(len/8)-1,9,2]', 'float32[10]']);
  });
});

describe('com.microsoft contrib ops', () => {
  const opsets = { 'com.microsoft': 1 };
  const ms = { domain: 'com.microsoft' };

  test('Attention: output and present', () => {
    const b = new ModelBuilder({ opset: 17, opsets });
    const x = b.input('x', 'float32', ['batch', 'seq', 768]);
    const w = b.input('w', 'float32', [768, 2304]);
    const bias = b.input('bias', 'float32', [2304]);
    const past = b.input('past', 'float32', [2, 'batch', 12, 'past_seq', 64]);
    const [y, present] = b.nodeN('Attention', [x, w, bias, undefined, past], { num_heads: 12 }, { ...ms, outputs: 2 });
    expect(infer(b, [y!, present!])).toEqual(['float32[batch,seq,768]', 'float32[2,batch,12,past_seq+seq,64]']);
  });

  test('SkipLayerNormalization outputs; EmbedLayerNormalization mask_index', () => {
    const b = new ModelBuilder({ opset: 17, opsets });
    const x = b.input('x', 'float16', ['batch', 'seq', 768]);
    const g = b.input('g', 'float16', [768]);
    const [y, mean, inv, sum] = b.nodeN('SkipLayerNormalization', [x, x, g, g], {}, { ...ms, outputs: 4 });
    const ids = b.input('ids', 'int32', ['batch', 'seq']);
    const emb = b.input('emb', 'float32', [30522, 128]);
    const pos = b.input('pos', 'float32', [512, 128]);
    const g2 = b.input('g2', 'float32', [128]);
    const [e, mask] = b.nodeN('EmbedLayerNormalization', [ids, undefined, emb, pos, undefined, g2, g2], {}, { ...ms, outputs: 2 });
    expect(infer(b, [y!, mean!, inv!, sum!, e!, mask!])).toEqual([
      'float16[batch,seq,768]', 'float32[batch,seq,1]', 'float32[batch,seq,1]', 'float16[batch,seq,768]',
      'float32[batch,seq,128]', 'int32[batch]',
    ]);
  });

  test('MultiHeadAttention with past; FusedMatMul transB; MatMulNBits; FusedConv', () => {
    const b = new ModelBuilder({ opset: 17, opsets });
    const q = b.input('q', 'float32', ['batch', 'seq', 512]);
    const pk = b.input('pk', 'float32', ['batch', 8, 'past', 64]);
    const [o, k, v] = b.nodeN('MultiHeadAttention', [q, q, q, undefined, undefined, undefined, pk, pk], { num_heads: 8 }, { ...ms, outputs: 3 });
    const a = b.input('a', 'float32', ['batch', 'm', 'k']);
    const bt = b.input('bt', 'float32', ['n', 'k']);
    const fm = b.node('FusedMatMul', [a, bt], { transB: 1 }, ms);
    const nb = b.node('MatMulNBits', [q, b.input('packed', 'uint8', [1024, 16, 16])], { K: 512, N: 1024, bits: 4, block_size: 32 }, ms);
    const img = b.input('img', 'float32', ['n', 3, 'h', 'w']);
    const fc = b.node('FusedConv', [img, b.constant(zeros([8, 3, 3, 3]), 'cw')], { pads: [1, 1, 1, 1], activation: 'Relu' }, ms);
    expect(infer(b, [o!, k!, v!, fm, nb, fc])).toEqual([
      'float32[batch,seq,512]', 'float32[batch,8,past+seq,64]', 'float32[batch,8,past+seq,64]',
      'float32[batch,m,n]', 'float32[batch,seq,1024]', 'float32[n,8,h,w]',
    ]);
  });
});

describe('against onnxruntime', () => {
  test('inferred dims equal the dims ORT produces (Conv, MaxPool ceil_mode, ConvTranspose, Resize, LSTM)', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 3, 17, 23]);
    const conv = b.node('Conv', [x, b.constant(zeros([4, 3, 3, 3]), 'w')], { strides: [2, 3], pads: [1, 0, 2, 1], dilations: [1, 2] });
    const pool = b.node('MaxPool', [conv], { kernel_shape: [3, 2], strides: [2, 2], ceil_mode: 1, pads: [1, 1, 1, 1] });
    const ct = b.node('ConvTranspose', [pool, b.constant(zeros([4, 2, 3, 3]), 'wt')], { strides: [3, 2], output_padding: [1, 1], pads: [0, 1, 1, 0] });
    const rs = b.node('Resize', [ct, undefined, b.constant(Tensor.float32([1, 1, 0.6, 1.7]), 'sc')], { mode: 'linear' });
    const seq = b.input('seq', 'float32', [5, 2, 6]);
    const [ly, lh] = b.nodeN('LSTM', [seq, b.constant(zeros([2, 28, 6]), 'lw'), b.constant(zeros([2, 28, 7]), 'lr')], { hidden_size: 7, direction: 'bidirectional' }, { outputs: 2 });
    const outs = { conv, pool, ct, rs, ly: ly!, lh: lh! };
    for (const [name, v] of Object.entries(outs)) b.output(v, name);
    const model = b.build();
    const result = inferShapes(model, RULES, { apply: false });
    const inferred = Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, formatSymType(result.types.get(v))]));
    const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(model).chunks));
    const got = await session.run({ x: zeros([2, 3, 17, 23]), seq: zeros([5, 2, 6]) });
    await session.release();
    const actual = Object.fromEntries(Object.keys(outs).map((k) => [k, `float32[${got[k]!.dims.join(',')}]`]));
    expect(inferred).toEqual(actual);
  });

  test('contrib ops: inferred dims equal ORT\'s (Attention with past, SkipLayerNormalization, MaxPool SAME_LOWER)', async () => {
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', [2, 5, 16]);
    const past = b.input('past', 'float32', [2, 2, 4, 3, 4]);
    const [att, present] = b.nodeN('Attention', [x, b.constant(zeros([16, 48]), 'aw'), b.constant(zeros([48]), 'ab'), undefined, past], { num_heads: 4 }, { domain: 'com.microsoft', outputs: 2 });
    const g = b.constant(zeros([16]), 'g');
    const [sln, , , sum] = b.nodeN('SkipLayerNormalization', [att!, x, g, g], {}, { domain: 'com.microsoft', outputs: 4 });
    const img = b.input('img', 'float32', [1, 2, 9, 10]);
    const mp = b.node('MaxPool', [img], { kernel_shape: [3, 3], strides: [2, 3], auto_pad: 'SAME_LOWER' });
    const outs = { att: att!, present: present!, sln: sln!, sum: sum!, mp };
    for (const [name, v] of Object.entries(outs)) b.output(v, name);
    const model = b.build();
    const result = inferShapes(model, RULES, { apply: false });
    const inferred = Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, formatSymType(result.types.get(v))]));
    const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(model).chunks));
    const got = await session.run({ x: zeros([2, 5, 16]), past: zeros([2, 2, 4, 3, 4]), img: zeros([1, 2, 9, 10]) });
    await session.release();
    const actual = Object.fromEntries(Object.keys(outs).map((k) => [k, `float32[${got[k]!.dims.join(',')}]`]));
    expect(inferred).toEqual(actual);
  });
});
