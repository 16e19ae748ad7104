/** The text form of the IR. */
import { describe, expect, test } from 'vitest';
import { attr } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph } from '../../src/ir/graph.js';
import { printGraph, printModel, printNode } from '../../src/ir/printer.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';

function small() {
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float32', ['batch', 3]);
  const w = b.constant(Tensor.float32([1, 2, 3, 4, 5, 6], [3, 2]), 'w');
  const bias = b.constant(Tensor.float32([0.5, -1], [2]), 'b');
  const big = b.constant(Tensor.float32(new Array(9).fill(0), [9]), 'big');
  const mm = b.node('MatMul', [x, w], {}, { name: 'mm' });
  const add = b.node('Add', [mm, bias]);
  b.output(b.node('Relu', [add]), 'y', tensorType(DataType.FLOAT, ['batch', 2]));
  b.output(big);
  return b.build();
}

describe('printer', () => {
  test('printModel of a small built model', () => {
    expect(printModel(small())).toBe([
      '# ir_version 8, opsets ai.onnx:17, producer retarget',
      'graph main(%x: float32[batch,3]) {',
      '  %w = const float32[3,2] [1, 2, 3, 4, 5, 6]',
      '  %b = const float32[2] [0.5, -1]',
      '  %big = const float32[9]',
      '  %mm_out = MatMul(%x, %w)  # mm',
      '  %Add_1_out = Add(%mm_out, %b)  # Add_1',
      '  %y: float32[batch,2] = Relu(%Add_1_out)  # Relu_2',
      '  return %y, %big',
      '}',
    ].join('\n'));
  });

  test('printModel header with producer version and several opsets', () => {
    const b = new ModelBuilder({ opset: 13, opsets: { 'com.microsoft': 1 }, irVersion: 7, name: '' });
    const m = b.build();
    m.producerName = 'pytorch';
    m.producerVersion = '1.13.0';
    expect(printModel(m)).toBe([
      '# ir_version 7, opsets ai.onnx:13, com.microsoft:1, producer pytorch 1.13.0',
      'graph _() {',
      '  return ',
      '}',
    ].join('\n'));
  });

  test('printGraph indents and skips initializers that are also inputs', () => {
    const g = new Graph('legacy');
    const x = g.addInput('x', tensorType(DataType.INT64, [2]));
    g.setInitializer(x, Tensor.int64([7, -8]));
    const n = g.addNode({ opType: 'Neg', name: 'n', inputs: [x], outputs: ['y'] });
    g.addOutput(n.outputs[0]!);
    expect(printGraph(g, '    ')).toBe([
      '    graph legacy(%x: int64[2]) {',
      '      %y = Neg(%x)  # n',
      '      return %y',
      '    }',
    ].join('\n'));
  });

  test('printNode shows attributes of every common kind, outputs with types, absent slots and domains', () => {
    const g = new Graph('g');
    const x = g.addInput('x', tensorType(DataType.FLOAT, [1, 2, 4, 4]));
    const w = g.addInitializer('w', Tensor.float32(new Array(36).fill(1), [2, 2, 3, 3]));
    const conv = g.addNode({
      opType: 'Conv',
      name: 'conv1',
      inputs: [x, w, undefined],
      outputs: ['y', ''],
      attributes: [
        attr.ints('kernel_shape', [3, 3]),
        attr.ints('pads', [1, 1, 1, 1]),
        attr.float('alpha', 0.5),
        attr.int('group', 1),
        attr.string('auto_pad', 'NOTSET'),
        attr.floats('scales', [1, 2.5]),
        attr.strings('names', ['a', 'b']),
        attr.tensor('value', Tensor.int64([3, 4], [2])),
        { name: 'ref', type: 'int', value: 0, refAttrName: 'outer' },
      ],
    });
    conv.outputs[0]!.type = tensorType(DataType.FLOAT, [1, 2, 'h', null]);
    expect(printNode(conv)).toBe(
      '%y: float32[1,2,h,?], _ = Conv(%x, %w, _) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], alpha=0.5, group=1, auto_pad="NOTSET", '
      + 'scales=[1, 2.5], names=["a", "b"], value=int64[2] [3, 4], ref=@outer}  # conv1',
    );
    const fused = g.addNode({ opType: 'FusedGemm', domain: 'com.microsoft', name: '', inputs: [x], outputs: ['f'] });
    expect(printNode(fused, '  ')).toBe('  %f = com.microsoft::FusedGemm(%x)');
    const strs = g.addNode({ opType: 'Constant', name: 'c', outputs: ['s'], attributes: [attr.tensor('value', Tensor.strings(['p']))] });
    strs.outputs[0]!.type = { kind: 'sequence', elem: tensorType(DataType.STRING, []) };
    expect(printNode(strs)).toBe('%s: seq(string[]) = Constant() {value=string[1]}  # c');
  });

  test('subgraph attributes print nested graphs', () => {
    const b = new ModelBuilder({ opset: 13 });
    const c = b.input('c', 'bool', []);
    const x = b.input('x', 'float32', [2]);
    const iff = b.graph.addNode({ opType: 'If', name: 'if', inputs: [c], outputs: ['r'] });
    const then = new Graph('then', iff);
    then.addOutput(then.addNode({ opType: 'Neg', name: 'neg', inputs: [x], outputs: ['t'] }).outputs[0]!);
    iff.attributes.set('then_branch', attr.graph('then_branch', then));
    expect(printNode(iff, '  ')).toBe([
      '  %r = If(%c) {then_branch=graph then() {',
      '      %t = Neg(%x)  # neg',
      '      return %t',
      '    }}  # if',
    ].join('\n'));
  });
});
