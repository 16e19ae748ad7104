/** Shape rules for control flow (If, Loop, Scan) and for sequence and optional ops. */
import { describe, expect, test } from 'vitest';
import { formatSymType, inferShapes, RULES } from '../../src/analysis/index.js';
import { GraphBuilder, ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph, type Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { fixtureFile } from '../ir/util.js';

/** Attach a subgraph built by `build` to the node producing `out`, as attribute `name`. */
function subgraph(out: Value, name: string, build: (g: GraphBuilder) => Value[]): void {
  const node = out.producer!;
  const g = new Graph(name, node);
  build(new GraphBuilder(g)).forEach((v) => g.addOutput(v));
  node.attributes.set(name, { name, type: 'graph', value: g });
}

function run(b: ModelBuilder, outs: Value[], dims?: Record<string, number>): string[] {
  outs.forEach((v) => b.output(v));
  const r = inferShapes(b.build(), RULES, dims ? { dims } : {});
  expect(r.unknownOps.size).toBe(0);
  return outs.map((v) => formatSymType(r.types.get(v)));
}

const bool = (v: boolean): Tensor => Tensor.fromTypedArray(DataType.BOOL, [], Uint8Array.of(v ? 1 : 0));

describe('control-flow fixture (If + Loop)', () => {
  test('with batch pinned, the If and Loop outputs and the final output are exact', () => {
    const { model } = readModel(fixtureFile('control-flow-op13'));
    const g = model.graph;
    expect(g.inputs[0]!.type).toEqual({ kind: 'tensor', elemType: DataType.FLOAT, shape: ['batch', 8] });
    const r = inferShapes(model, RULES, { dims: { batch: 2 } });
    expect(r.unknownOps.size).toBe(0);
    const iff = g.nodes.find((n) => n.opType === 'If')!;
    const loop = g.nodes.find((n) => n.opType === 'Loop')!;
    expect(formatSymType(r.types.get(iff.outputs[0]!))).toBe('float32[2,16]');
    expect(formatSymType(r.types.get(loop.outputs[0]!))).toBe('float32[2,16]');
    expect(formatSymType(r.types.get(g.outputs[0]!))).toBe('float32[2,4]');
    // the loop body's carried value is exact too: its dims are invariant
    const body = loop.subgraphs()[0]!;
    expect(formatSymType(r.types.get(body.inputs[2]!))).toBe('float32[2,16]');
    expect(formatSymType(r.types.get(body.outputs[1]!))).toBe('float32[2,16]');
  });

  test('without pinning, the outputs keep one symbol for the batch', () => {
    const { model } = readModel(fixtureFile('control-flow-op13'));
    const r = inferShapes(model, RULES);
    const y = formatSymType(r.types.get(model.graph.outputs[0]!));
    const x = formatSymType(r.types.get(model.graph.inputs[0]!));
    expect(y).toMatch(/^float32\[[^,]+,4\]$/);
    expect(y.split(/[[,]/)[1]).toBe(x.split(/[[,]/)[1]);
  });
});

describe('If', () => {
  function ifModel(thenShape: (string | number)[], elseShape: (string | number)[], cond?: boolean): string[] {
    const b = new ModelBuilder({ opset: 13 });
    const c = cond === undefined ? b.input('c', 'bool', []) : b.constant(bool(cond), 'c');
    const t = b.input('t', 'float32', thenShape);
    const e = b.input('e', 'float32', elseShape);
    const out = b.node('If', [c]);
    subgraph(out, 'then_branch', (g) => [g.node('Relu', [t])]);
    subgraph(out, 'else_branch', (g) => [g.node('Neg', [e])]);
    return run(b, [out]);
  }

  test('equal dims are kept, different dims become fresh, different ranks make the rank unknown', () => {
    expect(ifModel(['batch', 16], ['batch', 16])).toEqual(['float32[batch,16]']);
    expect(ifModel(['batch', 16], ['batch', 8])).toEqual(['float32[batch,unk__0]']);
    expect(ifModel(['batch', 16], ['batch'])).toEqual(['float32[?rank]']);
  });

  test('a constant condition selects its branch', () => {
    expect(ifModel(['batch', 16], ['batch'], true)).toEqual(['float32[batch,16]']);
    expect(ifModel(['batch', 16], ['batch'], false)).toEqual(['float32[batch]']);
  });
});

describe('Loop', () => {
  test('invariant carried values keep their shape, growing ones get a fresh dim; scan outputs get the trip count', () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 16]);
    const acc = b.input('acc', 'float32', [0, 16]);
    const m = b.constant(Tensor.int64([5], []), 'm');
    const [h, grown, scanned] = b.nodeN('Loop', [m, undefined, x, acc], {}, { outputs: 3 });
    subgraph(h!, 'body', (g) => {
      g.input('i', 'int64', []);
      const cond = g.input('cond', 'bool', []);
      const hIn = g.input('h_in', 'float32', undefined);
      const accIn = g.input('acc_in', 'float32', undefined);
      const hOut = g.node('Tanh', [hIn]);
      return [g.node('Identity', [cond]), hOut, g.node('Concat', [accIn, hOut], { axis: 0 }), g.node('ReduceSum', [hOut], { axes: [1], keepdims: 0 })];
    });
    expect(run(b, [h!, grown!, scanned!])).toEqual(['float32[batch,16]', 'float32[unk__4,16]', 'float32[5,batch]']);
  });

  test('a symbolic trip count, and a fresh one when the body can stop early', () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['seq', 4]);
    const m = b.node('Gather', [b.node('Shape', [x]), b.constant(Tensor.int64([0], []), 'zero')], { axis: 0 });
    const [, s1] = b.nodeN('Loop', [m, b.constant(bool(true), 'yes'), x], {}, { outputs: 2 });
    subgraph(s1!, 'body', (g) => {
      g.input('i', 'int64', []);
      const cond = g.input('cond', 'bool', []);
      const xIn = g.input('x_in', 'float32', ['seq', 4]);
      return [cond, xIn, g.node('Shape', [xIn])];
    });
    const [, s2] = b.nodeN('Loop', [m, b.constant(bool(true), 'yes2'), x], {}, { outputs: 2 });
    subgraph(s2!, 'body', (g) => {
      g.input('i2', 'int64', []);
      g.input('cond2', 'bool', []);
      const xIn = g.input('x_in2', 'float32', undefined);
      const stop = g.node('Less', [g.node('ReduceSum', [xIn], { keepdims: 0 }), g.constant(Tensor.float32([1], []), 'one')]);
      return [stop, xIn, g.node('Shape', [xIn])];
    });
    expect(run(b, [s1!, s2!])).toEqual(['int64[seq,2]', 'int64[unk__4,2]']);
  });
});

describe('Scan', () => {
  test('opset 9+: scan axes are removed for the body and inserted in the outputs', () => {
    const b = new ModelBuilder({ opset: 16 });
    const init = b.input('init', 'float32', ['b']);
    const xs = b.input('xs', 'float32', ['b', 'seq']);
    const [sum, ys, zs] = b.nodeN('Scan', [init, xs], { num_scan_inputs: 1, scan_input_axes: [1], scan_output_axes: [0, -1] }, { outputs: 3 });
    subgraph(sum!, 'body', (g) => {
      const s = g.input('s', 'float32', undefined);
      const xt = g.input('x_t', 'float32', undefined);
      const next = g.node('Add', [s, xt]);
      return [next, next, g.node('Unsqueeze', [next, g.constant(Tensor.int64([0]), 'ax')])];
    });
    expect(run(b, [sum!, ys!, zs!])).toEqual(['float32[b]', 'float32[seq,b]', 'float32[1,b,seq]']);
  });

  test('opset 8: a leading batch dim', () => {
    const b = new ModelBuilder({ opset: 8 });
    const init = b.input('init', 'float32', ['n', 2]);
    const xs = b.input('xs', 'float32', ['n', 'seq', 2]);
    const [sum, ys] = b.nodeN('Scan', [undefined, init, xs], { num_scan_inputs: 1 }, { outputs: 2 });
    subgraph(sum!, 'body', (g) => {
      const next = g.node('Add', [g.input('s', 'float32', [2]), g.input('x', 'float32', [2])]);
      return [next, g.node('Identity', [next])];
    });
    expect(run(b, [sum!, ys!])).toEqual(['float32[n,2]', 'float32[n,seq,2]']);
  });
});

describe('sequences', () => {
  test('elements of different shapes relax the differing dims; known positions stay exact', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 3]);
    const y = b.input('y', 'float32', ['batch', 5]);
    const seq = b.node('SequenceConstruct', [x, y]);
    const at1 = b.node('SequenceAt', [seq, b.constant(Tensor.int64([-1], []), 'last')]);
    const atAny = b.node('SequenceAt', [seq, b.input('p', 'int64', [])]);
    const len = b.node('SequenceLength', [seq]);
    const cat = b.node('ConcatFromSequence', [seq], { axis: 1 });
    const stacked = b.node('ConcatFromSequence', [b.node('SequenceConstruct', [x, x])], { axis: -1, new_axis: 1 });
    expect(run(b, [seq, at1, atAny, len, cat, stacked])).toEqual([
      'seq(float32[batch,unk__0])', 'float32[batch,5]', 'float32[batch,unk__1]', 'int64[]', 'float32[batch,8]', 'float32[batch,3,2]',
    ]);
  });

  test('SequenceEmpty, SequenceInsert and SequenceErase track the elements', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['n', 4]);
    const y = b.input('y', 'float32', [1, 4]);
    const e = b.node('SequenceEmpty', [], { dtype: DataType.FLOAT });
    const s1 = b.node('SequenceInsert', [e, x]);
    const s2 = b.node('SequenceInsert', [s1, y, b.constant(Tensor.int64([0], []), 'front')]);
    const first = b.node('SequenceAt', [s2, b.constant(Tensor.int64([0], []), 'zero')]);
    const s3 = b.node('SequenceErase', [s2]);
    const cat = b.node('ConcatFromSequence', [s2], { axis: 0 });
    expect(run(b, [e, s1, s2, first, s3, cat])).toEqual([
      'seq(float32[?rank])', 'seq(float32[n,4])', 'seq(float32[unk__0,4])', 'float32[1,4]', 'seq(float32[1,4])', 'float32[n+1,4]',
    ]);
  });

  test('SequenceLength gives symbolic contents; SplitToSequence with and without sizes', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['n', 6]);
    const parts = b.node('SplitToSequence', [x, b.constant(Tensor.int64([2, 4]), 'sizes')], { axis: 1 });
    const ones = b.node('SplitToSequence', [x], { axis: 1, keepdims: 0 });
    const chunks = b.node('SplitToSequence', [x, b.constant(Tensor.int64([4], []), 'four')], { axis: -1 });
    const len = b.node('SequenceLength', [ones]);
    const filled = b.node('ConstantOfShape', [b.node('Unsqueeze', [len, b.constant(Tensor.int64([0]), 'ax')])]);
    const last = b.node('SequenceAt', [chunks, b.constant(Tensor.int64([1], []), 'one')]);
    expect(run(b, [parts, ones, chunks, filled, last])).toEqual([
      'seq(float32[n,unk__0])', 'seq(float32[n])', 'seq(float32[n,unk__1])', 'float32[6]', 'float32[n,2]',
    ]);
  });

  test('SequenceMap applies its body to the elements', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['n', 3]);
    const seq = b.node('SequenceConstruct', [x, x]);
    const mapped = b.node('SequenceMap', [seq, b.input('z', 'float32', [3])]);
    subgraph(mapped, 'body', (g) => {
      const el = g.input('el', 'float32', undefined);
      const z = g.input('z_in', 'float32', undefined);
      return [g.node('Shape', [g.node('Add', [el, z])])];
    });
    expect(run(b, [mapped, b.node('SequenceLength', [mapped])])).toEqual(['seq(int64[2])', 'int64[]']);
  });

  test('Optional, OptionalGetElement, OptionalHasElement', () => {
    const b = new ModelBuilder({ opset: 18 });
    const x = b.input('x', 'float32', ['n', 3]);
    const opt = b.node('Optional', [x]);
    const none = b.node('Optional', [], { type: { name: 'type', type: 'type_proto', value: { kind: 'tensor', elemType: DataType.INT64, shape: ['k', null] } } });
    expect(run(b, [opt, b.node('OptionalGetElement', [opt]), b.node('OptionalHasElement', [none]), none, b.node('OptionalGetElement', [x])]))
      .toEqual(['optional(float32[n,3])', 'float32[n,3]', 'bool[]', 'optional(int64[k,unk__0])', 'float32[n,3]']);
  });
});
