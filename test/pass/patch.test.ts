/** Patch: abort leaves the graph as it was; an op the target cannot run aborts; typesConflict's rules. */
import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { verifyModel } from '../../src/ir/verify.js';
import { Patch, typesConflict, UnsupportedOpError } from '../../src/pass/patch.js';

function model() {
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float32', [2, 3]);
  b.output(b.node('Relu', [b.node('Add', [x, b.constant(Tensor.float32([1, 2, 3], [3]), 'c')])]), 'y');
  return b.build();
}

const shape = (m: ReturnType<typeof model>) => ({
  nodes: m.graph.nodes.map((n) => `${n.opType}(${n.inputs.map((v) => v?.name).join(',')})`),
  inits: m.graph.initializers.map((v) => v.name),
});

describe('Patch', () => {
  test('abort: the nodes and initializers it added are gone, the graph verifies and is as before', () => {
    const m = model();
    const before = shape(m);
    const p = new Patch(m.graph);
    const relu = m.graph.nodes.find((n) => n.opType === 'Relu')!;
    const k = p.constant(Tensor.float32([2], []), 'two');
    p.add('Mul', [relu.outputs[0]!, k]);
    expect(m.graph.initializers.map((v) => v.name)).toContain('two');
    p.abort();
    expect(shape(m)).toEqual(before);
    expect(verifyModel(m)).toEqual([]);
  });

  test('an op the target cannot run: UnsupportedOpError, and the patch aborted (nothing it added stays)', () => {
    const m = model();
    const before = shape(m);
    const p = new Patch(m.graph, { supports: (_d, op) => op !== 'Gelu', target: 'tiny' });
    const x = m.graph.inputs[0]!;
    p.add('Neg', [x]);
    expect(() => p.add('Gelu', [x], {}, { domain: 'com.microsoft' })).toThrow(UnsupportedOpError);
    expect(() => p.add('Gelu', [x], {}, { domain: 'com.microsoft' })).toThrow(/target 'tiny' cannot run com.microsoft::Gelu/);
    expect(shape(m)).toEqual(before);
  });

  test('a node with more inputs than the target\'s kernel reads (maxInputs): UnsupportedOpError, the patch aborted', () => {
    const m = model();
    const before = shape(m);
    const p = new Patch(m.graph, { maxInputs: (d, op) => (d === 'com.microsoft' && op === 'FusedConv' ? 3 : undefined), target: 'gpu' });
    const x = m.graph.inputs[0]!;
    p.add('Neg', [x]);
    expect(() => p.add('FusedConv', [x, x, x, x], {}, { domain: 'com.microsoft' })).toThrow(/target 'gpu' runs com.microsoft::FusedConv with 3 input\(s\), not 4/);
    expect(shape(m)).toEqual(before);
  });

  test('commit: the replacement takes the old value\'s uses; the graph output keeps its name', () => {
    const m = model();
    const p = new Patch(m.graph);
    const add = m.graph.nodes.find((n) => n.opType === 'Add')!;
    const y = p.add('Sub', [add.inputs[0]!, add.inputs[1]!]);
    p.replace(add.outputs[0]!, y);
    expect(p.commit()).toBeGreaterThan(0);
    expect(m.graph.topoOrder().map((n) => n.opType)).toEqual(['Sub', 'Relu']);
    expect(m.graph.outputs[0]!.name).toBe('y');
    // a patch appends its nodes; the pass manager restores topological order after each pass
    m.graph.toposort();
    expect(verifyModel(m)).toEqual([]);
  });
});

describe('typesConflict', () => {
  const t = (e: number | undefined, s?: (number | string)[]) => tensorType(e as number, s);
  test.each([
    ['unknown on either side', undefined, t(DataType.FLOAT, [2]), false],
    ['element types differ', t(DataType.FLOAT, [2]), t(DataType.FLOAT16, [2]), true],
    ['ranks differ', t(DataType.FLOAT, [2, 3]), t(DataType.FLOAT, [6]), true],
    ['a fixed dim differs', t(DataType.FLOAT, [2, 3]), t(DataType.FLOAT, [2, 4]), true],
    ['a symbol against a number', t(DataType.FLOAT, ['batch', 3]), t(DataType.FLOAT, [2, 3]), false],
    ['two symbols', t(DataType.FLOAT, ['a', 3]), t(DataType.FLOAT, ['b', 3]), false],
    ['no shape on one side', t(DataType.FLOAT), t(DataType.FLOAT, [2, 3]), false],
    ['the same', t(DataType.FLOAT, [2, 3]), t(DataType.FLOAT, [2, 3]), false],
  ] as const)('%s', (_what, a, b, conflict) => {
    expect(typesConflict(a as never, b as never)).toBe(conflict);
    expect(typesConflict(b as never, a as never)).toBe(conflict);
  });
});
