/** pattern.ts: constantValue, the value patterns (v, constant, opt, alt), op patterns, matchNode, usedOutside. */
import { describe, expect, test } from 'vitest';
import { attr } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Graph, type Node, type Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { alt, constant, constantValue, matchNode, op, opt, usedOutside, v } from '../../src/pass/pattern.js';

function builder() {
  const b = new ModelBuilder({ opset: 17 });
  return { b, x: b.input('x', 'float32', [2, 3]) };
}
const node = (val: Value): Node => val.producer!;

describe('constantValue', () => {
  test('an initializer; not a graph input that has a default (IR < 4), not a computed value, not undefined', () => {
    const { b, x } = builder();
    const w = b.constant(Tensor.float32([1, 2], [2]), 'w');
    expect(constantValue(w)?.toTypedArray()).toEqual(new Float32Array([1, 2]));
    const d = b.graph.addInput('d', { kind: 'tensor', elemType: 1, shape: [1] });
    b.graph.setInitializer(d, Tensor.float32([0], [1]));
    expect(constantValue(d)).toBeUndefined();
    expect(constantValue(b.node('Relu', [x]))).toBeUndefined();
    expect(constantValue(undefined)).toBeUndefined();
  });

  test.each([
    ['value', attr.tensor('value', Tensor.int64([4, 5], [2])), [4n, 5n], [2]],
    ['value_float', attr.float('value_float', 1.5), [1.5], []],
    ['value_floats', attr.floats('value_floats', [1, 2]), [1, 2], [2]],
    ['value_int', attr.int('value_int', 7), [7n], []],
    ['value_ints', attr.ints('value_ints', [1, 2, 3]), [1n, 2n, 3n], [3]],
  ] as const)('a Constant node with %s', (_name, a, values, dims) => {
    const { b } = builder();
    const c = b.graph.addNode({ opType: 'Constant', inputs: [], outputs: 1, attributes: [a] }).outputs[0]!;
    const t = constantValue(c)!;
    expect(Array.from(t.toTypedArray() as ArrayLike<number | bigint>)).toEqual(values);
    expect(t.dims).toEqual(dims);
  });

  test('a Constant whose attribute refers to a caller\'s (function body), or of another domain: unknown', () => {
    const { b } = builder();
    const ref = { ...attr.float('value_float', 0), refAttrName: 'alpha' };
    expect(constantValue(b.graph.addNode({ opType: 'Constant', outputs: 1, attributes: [ref] }).outputs[0])).toBeUndefined();
    const other = b.graph.addNode({ opType: 'Constant', domain: 'custom', outputs: 1, attributes: [attr.float('value_float', 1)] });
    expect(constantValue(other.outputs[0])).toBeUndefined();
  });
});

describe('value patterns', () => {
  test('v: any present value; a name captured twice must be the same value (a square)', () => {
    const { b, x } = builder();
    const y = b.input('y', 'float32', [2, 3]);
    const square = op('Mul', v('a'), v('a'));
    expect(matchNode(square, node(b.node('Mul', [x, x])))).toEqual({ a: x });
    expect(matchNode(square, node(b.node('Mul', [x, y])))).toBeNull();
    expect(matchNode(op('Mul', v(), v()), node(b.node('Mul', [x, y])))).toEqual({});
  });

  test('constant: initializers and Constant outputs, with a predicate on the tensor', () => {
    const { b, x } = builder();
    const one = b.constant(Tensor.float32([1], []), 'one');
    const two = b.constant(Tensor.float32([2], []), 'two');
    const isOne = constant('k', (t) => t.toTypedArray()[0] === 1);
    expect(matchNode(op('Add', v('x'), isOne), node(b.node('Add', [x, one])))).toEqual({ x, k: one });
    expect(matchNode(op('Add', v('x'), isOne), node(b.node('Add', [x, two])))).toBeNull();
    expect(matchNode(op('Add', v('x'), constant()), node(b.node('Add', [x, x])))).toBeNull();
  });

  test('opt: a missing input, or one matching', () => {
    const { b, x } = builder();
    const clip = op('Clip', v('x'), opt(constant('lo')), opt(constant('hi')));
    const lo = b.constant(Tensor.float32([0], []), 'lo');
    expect(matchNode(clip, node(b.node('Clip', [x])))).toEqual({ x });
    expect(matchNode(clip, node(b.node('Clip', [x, lo])))).toEqual({ x, lo });
    expect(matchNode(clip, node(b.node('Clip', [x, undefined, lo])))).toEqual({ x, hi: lo });
    expect(matchNode(clip, node(b.node('Clip', [x, x])))).toBeNull();
  });

  test('alt: the first alternative that matches; a failed try leaves no captures', () => {
    const { b, x } = builder();
    const relu = b.node('Relu', [x]);
    const p = op('Neg', alt(op('Sigmoid', v('s')).as('first'), op('Relu', v('r')).as('second')));
    const caps = matchNode<Record<string, unknown>>(p, node(b.node('Neg', [relu])))!;
    expect(caps).toEqual({ r: x, second: node(relu) });
    // a capture made inside a failed alternative does not leak: 'a' binds to the second try's value
    const y = b.input('y', 'float32', [2, 3]);
    const q = op('Add', alt(op('Relu', v('a')).where(() => false), v('a')), v('a'));
    expect(matchNode(q, node(b.node('Add', [relu, relu])))).toEqual({ a: relu });
    expect(matchNode(q, node(b.node('Add', [relu, y])))).toBeNull();
  });
});

describe('op patterns', () => {
  test('op types: one or several (Relu|Clip); the domain must match', () => {
    const { b, x } = builder();
    const act = op('Relu|Clip', v('x'));
    expect(matchNode(act, node(b.node('Clip', [x])))).toEqual({ x });
    expect(matchNode(act, node(b.node('Sigmoid', [x])))).toBeNull();
    const gelu = b.node('Gelu', [x], {}, { domain: 'com.microsoft' });
    expect(matchNode(op('Gelu', v()), node(gelu))).toBeNull();
    expect(matchNode(op('Gelu', v()).domain('com.microsoft'), node(gelu))).toEqual({});
  });

  test('as, out and output(slot): the node, the value and which output it must be', () => {
    const { b, x } = builder();
    const [first, second] = b.nodeN('Split', [x], { axis: 0 }, { outputs: 2 });
    const inner = op('Split', v('x')).as('split').out('part');
    expect(matchNode(op('Relu', inner), node(b.node('Relu', [first!])))).toEqual({ x, split: node(first!), part: first });
    expect(matchNode(op('Relu', inner), node(b.node('Relu', [second!])))).toBeNull();
    expect(matchNode(op('Relu', op('Split', v()).output(1).out('part')), node(b.node('Relu', [second!])))).toEqual({ part: second });
  });

  test('oneUse: exactly one use and not a graph output', () => {
    const { b, x } = builder();
    const a = b.node('Abs', [x]);
    const p = op('Relu', op('Abs', v()).oneUse());
    const r = b.node('Relu', [a]);
    expect(matchNode(p, node(r))).toEqual({});
    b.node('Neg', [a]);
    expect(matchNode(p, node(r))).toBeNull();
    const c = b.node('Abs', [x]);
    const r2 = b.node('Relu', [c]);
    b.output(c, 'c');
    expect(matchNode(p, node(r2))).toBeNull();
  });

  test('where: predicates see the node and the captures so far', () => {
    const { b, x } = builder();
    const t = b.node('Transpose', [x], { perm: [1, 0] });
    const seen: string[] = [];
    const p = op('Transpose', v('x')).where((n, caps) => { seen.push(`${n.opType}:${(caps.x as Value).name}`); return n.attr('perm') !== undefined; });
    expect(matchNode(p, node(t))).toEqual({ x });
    expect(seen).toEqual(['Transpose:x']);
    expect(matchNode(op('Transpose', v()).where(() => false), node(t))).toBeNull();
  });

  test('inputs: trailing missing ones are absent; more than the pattern describes do not match', () => {
    const { b, x } = builder();
    expect(matchNode(op('Clip', v()), node(b.node('Clip', [x, undefined, undefined])))).toEqual({});
    expect(matchNode(op('Clip', v()), node(b.node('Clip', [x, x])))).toBeNull();
    // fewer inputs than the pattern: the rest match as missing
    expect(matchNode(op('Clip', v(), opt(v('lo'))), node(b.node('Clip', [x])))).toEqual({});
    expect(matchNode(op('Clip', v(), v('lo')), node(b.node('Clip', [x])))).toBeNull();
  });

  test('a removed node does not match; a value must be computed by a node to match an op', () => {
    const { b, x } = builder();
    const r = b.node('Relu', [x]);
    const n = node(r);
    b.graph.removeNode(n);
    expect(matchNode(op('Relu', v()), n)).toBeNull();
    expect(matchNode(op('Neg', op('Relu', v())), node(b.node('Neg', [x])))).toBeNull();
  });
});

describe('usedOutside', () => {
  test('a use by a node of a subgraph counts; uses in the graph itself do not', () => {
    const { b, x } = builder();
    const y = b.node('Relu', [x]);
    b.node('Neg', [y]);
    expect(usedOutside(y, b.graph)).toBe(false);
    const cond = b.input('cond', 'bool', []);
    const iff = b.graph.addNode({ opType: 'If', inputs: [cond], outputs: 1 });
    const then = new Graph('then', iff);
    then.addOutput(then.addNode({ opType: 'Abs', inputs: [y], outputs: 1 }).outputs[0]!);
    iff.attributes.set('then_branch', attr.graph('then_branch', then));
    expect(usedOutside(y, b.graph)).toBe(true);
  });
});
