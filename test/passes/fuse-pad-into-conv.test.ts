import { describe, expect, test } from 'vitest';
import { fusePadIntoConv } from '../../passes/fuse/fuse-pad-into-conv.js';
import { attr, attrInts } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { seededRandom } from '../../src/inputs.js';
import { checkPass, ops } from './harness.js';

function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

function padsOf(m: Model, op: string): number[] | undefined {
  return attrInts(m.graph.nodes.find((n) => n.opType === op)!.attr('pads'));
}

describe('fuse-pad-into-conv', () => {
  test('opset 17: Pad (constant pads input) -> Conv with pads: the pads add up', async () => {
    const t = rand(1);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 3, 6, 7]);
    const p = b.node('Pad', [x, b.constant(Tensor.int64([0, 0, 1, 2, 0, 0, 2, 1]), 'pads')]);
    b.output(b.node('Relu', [b.node('Conv', [p, b.constant(t([4, 3, 3, 3]), 'w'), b.constant(t([4]), 'b')], { pads: [1, 0, 0, 1], strides: [2, 1] })]), 'y');
    const { after, changes } = await checkPass(b.build(), fusePadIntoConv, { inputDims: { batch: 2 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Conv: 1, Relu: 1 });
    expect(padsOf(after, 'Conv')).toEqual([2, 2, 2, 2]);
  });

  test('opset 10: pads and value attributes; Conv weight not constant', async () => {
    const b = new ModelBuilder({ opset: 10 });
    const x = b.input('x', 'float32', [1, 2, 5, 5]);
    const w = b.input('w', 'float32', [3, 2, 2, 2]);
    const p = b.node('Pad', [x], { pads: [0, 0, 1, 0, 0, 0, 0, 2], mode: 'constant', value: attr.float('value', 0) });
    b.output(b.node('Conv', [p, w]), 'y');
    const { after } = await checkPass(b.build(), fusePadIntoConv);
    expect(ops(after)).toEqual({ Conv: 1 });
    expect(padsOf(after, 'Conv')).toEqual([1, 0, 0, 2]);
  });

  test('opset 18: axes input (negative axes), explicit zero constant_value; 1-D Conv', async () => {
    const t = rand(3);
    const b = new ModelBuilder({ opset: 18 });
    const x = b.input('x', 'float32', [2, 3, 8]);
    const p = b.node('Pad', [x, b.constant(Tensor.int64([2, 3]), 'pads'), b.constant(Tensor.float32([0], []), 'zero'), b.constant(Tensor.int64([-1]), 'axes')]);
    b.output(b.node('Conv', [p, b.constant(t([2, 3, 3]), 'w')]), 'y');
    const { after } = await checkPass(b.build(), fusePadIntoConv);
    expect(ops(after)).toEqual({ Conv: 1 });
    expect(padsOf(after, 'Conv')).toEqual([2, 3]);
  });

  test('AveragePool with count_include_pad=1 folds; with count_include_pad=0 it does not', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [1, 2, 6, 6]);
    const pads = b.constant(Tensor.int64([0, 0, 1, 1, 0, 0, 1, 1]), 'pads');
    b.output(b.node('AveragePool', [b.node('Pad', [x, pads])], { kernel_shape: [3, 3], count_include_pad: 1, pads: [0, 1, 0, 1] }), 'y1');
    b.output(b.node('AveragePool', [b.node('Pad', [x, pads])], { kernel_shape: [3, 3] }), 'y2');
    const { after, changes } = await checkPass(b.build(), fusePadIntoConv);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ AveragePool: 2, Pad: 1 });
    expect(after.graph.outputs[0]!.producer!.inputs[0]!.name).toBe('x');
    expect(attrInts(after.graph.outputs[0]!.producer!.attr('pads'))).toEqual([1, 2, 1, 2]);
  });

  test('a Pad with two users: folded into the Conv, kept for the MaxPool', async () => {
    const t = rand(5);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 2, 5, 5]);
    const p = b.node('Pad', [x, b.constant(Tensor.int64([0, 0, 1, 1, 0, 0, 1, 1]), 'pads')]);
    b.output(b.node('Conv', [p, b.constant(t([2, 2, 3, 3]), 'w')]), 'y1');
    b.output(b.node('MaxPool', [p], { kernel_shape: [2, 2] }), 'y2');
    const { after, changes } = await checkPass(b.build(), fusePadIntoConv);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ Conv: 1, MaxPool: 1, Pad: 1 });
  });

  test('does not fire: channel/batch pads, non-zero value, reflect mode, negative pads, auto_pad, non-constant pads', async () => {
    const t = rand(7);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 2, 6, 6]);
    const w = b.constant(t([2, 2, 3, 3]), 'w');
    const w3 = b.constant(t([2, 3, 3, 3]), 'w3');
    const conv = (p: ReturnType<typeof b.node>, name: string, weight = w, attrs: Record<string, unknown> = {}) => b.output(b.node('Conv', [p, weight], attrs), name);
    const i64 = (v: number[]) => b.constant(Tensor.int64(v));
    conv(b.node('Pad', [x, i64([0, 1, 1, 1, 0, 0, 1, 1])]), 'channel', w3);
    conv(b.node('Pad', [x, i64([0, 0, 1, 1, 0, 0, 1, 1]), b.constant(Tensor.float32([0.5], []))]), 'value');
    conv(b.node('Pad', [x, i64([0, 0, 1, 1, 0, 0, 1, 1])], { mode: 'reflect' }), 'reflect');
    conv(b.node('Pad', [x, i64([0, 0, -1, 1, 0, 0, 1, 0])]), 'negative');
    conv(b.node('Pad', [x, i64([0, 0, 1, 1, 0, 0, 1, 1])]), 'same', w, { auto_pad: 'SAME_UPPER' });
    const padsIn = b.input('pads', 'int64', [8]);
    conv(b.node('Pad', [x, padsIn]), 'dynamic');
    const zeros = Tensor.int64([0, 0, 0, 0, 0, 0, 0, 0]);
    const feeds = { x: rand(9)([2, 2, 6, 6]), pads: zeros };
    const { after, changes } = await checkPass(b.build(), fusePadIntoConv, { feeds });
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Conv: 6, Pad: 6 });
  });
});
