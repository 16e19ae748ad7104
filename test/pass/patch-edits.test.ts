/**
 * Patch's edits: insertAfter, setInput, replaceOutput, replaceReturns, replaceInPlace, copy,
 * setInitializer, remove, removeInitializer; graph output names stable through each
 * (keepOutputName); edits applied only by commit, and forgotten by abort.
 */
import { describe, expect, test } from 'vitest';
import { attr } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { Patch, PatchError, UnsupportedOpError } from '../../src/pass/patch.js';

/** x -> Add(x, c) = a -> Relu(a) = y (output), and Neg(a) = z (output) */
function model() {
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float32', [2, 3]);
  const a = b.node('Add', [x, b.constant(Tensor.float32([1, 2, 3], [3]), 'c')], {}, { name: 'add' });
  b.output(b.node('Relu', [a], {}, { name: 'relu' }), 'y');
  b.output(b.node('Neg', [a], {}, { name: 'neg' }), 'z');
  return b.build();
}

const nodeOf = (m: ReturnType<typeof model>, op: string) => m.graph.nodes.find((n) => n.opType === op)!;
const text = (m: ReturnType<typeof model>) => m.graph.topoOrder().map((n) => `${n.outputs.map((v) => v?.name).join(',')} = ${n.opType}(${n.inputs.map((v) => v?.name ?? '').join(',')})`);
const outputs = (m: ReturnType<typeof model>) => m.graph.outputs.map((v) => v.name);
const ok = (m: ReturnType<typeof model>) => { m.graph.toposort(); expect(verifyModel(m)).toEqual([]); };

describe('Patch edits wait for commit; abort forgets them', () => {
  test('setInput, replace, insertAfter, replaceOutput, setInitializer, removeInitializer: nothing changes before commit', () => {
    const m = model();
    const before = text(m);
    const p = new Patch(m.graph);
    const add = nodeOf(m, 'Add'), relu = nodeOf(m, 'Relu');
    const c = add.inputs[1]!;
    p.setInput(relu, 0, m.graph.inputs[0]!);
    p.insertAfter(add.outputs[0]!, 'Sigmoid');
    p.replaceOutput(relu.outputs[0]!, add.outputs[0]!);
    p.setInitializer(c, Tensor.float32([7, 7, 7], [3]));
    p.removeInitializer(c);
    // only the added node is there, reading its input
    expect(text(m).length).toBe(before.length + 1);
    expect(text(m)).toEqual(expect.arrayContaining(before));
    expect(relu.inputs[0]!.name).toBe('add_out');
    expect(c.initializer!.toTypedArray()).toEqual(new Float32Array([1, 2, 3]));
    p.abort();
    expect(text(m)).toEqual(before);
    expect(() => p.commit()).toThrow(/committed twice/);
    ok(m);
  });

  test('an op the target cannot run after some edits: the edits are forgotten with the nodes', () => {
    const m = model();
    const before = text(m);
    const p = new Patch(m.graph, { supports: (_d, op) => op !== 'Gelu' });
    const a = nodeOf(m, 'Add').outputs[0]!;
    p.insertAfter(a, 'Sigmoid');
    p.replaceOutput(nodeOf(m, 'Neg').outputs[0]!, a);
    expect(() => p.add('Gelu', [a])).toThrow(UnsupportedOpError);
    expect(text(m)).toEqual(before);
    expect(outputs(m)).toEqual(['y', 'z']);
    ok(m);
  });
});

describe('insertAfter', () => {
  test('every use of the value reads the new node; the node itself reads the value', () => {
    const m = model();
    const a = nodeOf(m, 'Add').outputs[0]!;
    const p = new Patch(m.graph);
    const s = p.insertAfter(a, 'Sigmoid', {}, { name: 'sig', outputNames: ['a_sig'] });
    expect(s.name).toBe('a_sig');
    expect(p.commit()).toBe(1);
    expect(nodeOf(m, 'Relu').inputs[0]).toBe(s);
    expect(nodeOf(m, 'Neg').inputs[0]).toBe(s);
    expect(a.users.map((n) => n.name)).toEqual(['sig']);
    ok(m);
  });

  test('a graph output moves to the new value under its name; the old value is renamed (renameFrom); the type is the new one', () => {
    const m = model();
    const y = nodeOf(m, 'Relu').outputs[0]!;
    y.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: [2, 3] };
    y.info = { docString: 'kept' };
    const p = new Patch(m.graph);
    const c = p.insertAfter(y, 'Cast', [attr.int('to', DataType.FLOAT16)], { renameFrom: 'y_fp32' });
    c.type = { kind: 'tensor', elemType: DataType.FLOAT16, shape: [2, 3] };
    p.commit();
    expect(outputs(m)).toEqual(['y', 'z']);
    expect(m.graph.outputs[0]).toBe(c);
    expect(y.name).toBe('y_fp32');
    expect(c.type).toEqual({ kind: 'tensor', elemType: DataType.FLOAT16, shape: [2, 3] });
    expect(c.info).toEqual({ docString: 'kept' });
    ok(m);
  });

  test('a graph input that is also a graph output stays the output (its name cannot move); its node uses move', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2]);
    b.output(b.node('Relu', [x]), 'y');
    b.graph.addOutput(x);
    const m = b.build();
    const p = new Patch(m.graph);
    const c = p.insertAfter(x, 'Neg');
    p.commit();
    expect(m.graph.outputs.map((v) => v.name)).toEqual(['y', 'x']);
    expect(m.graph.outputs[1]).toBe(x);
    expect(m.graph.nodes.find((n) => n.opType === 'Relu')!.inputs[0]).toBe(c);
    m.graph.toposort();
    expect(verifyModel(m)).toEqual([]);
  });

  test('nodes this patch added before keep reading the value (QuantizeLinear then DequantizeLinear)', () => {
    const m = model();
    const a = nodeOf(m, 'Add').outputs[0]!;
    const p = new Patch(m.graph);
    const s = p.constant(Tensor.float32([0.1], []), 's');
    const q = p.add('QuantizeLinear', [a, s]);
    const dq = p.insertAfter(a, 'DequantizeLinear', {}, { inputs: [q, s] });
    p.commit();
    expect(q.producer!.inputs[0]).toBe(a);
    expect(nodeOf(m, 'Relu').inputs[0]).toBe(dq);
    expect(nodeOf(m, 'Neg').inputs[0]).toBe(dq);
  });

  test('subgraphs that return the value directly return the new one', () => {
    const { m, branch } = ifModel();
    const x = m.graph.inputs[1]!;
    const p = new Patch(m.graph);
    const n = p.insertAfter(x, 'Neg');
    p.commit();
    expect(branch.outputs[0]).toBe(n);
    expect(x.returnedBy.size).toBe(0);
    expect(n.returnedBy.has(branch)).toBe(true);
  });
});

/** If(cond) whose then-branch returns the outer input x directly (the else-branch: Relu(x)). */
function ifModel() {
  const b = new ModelBuilder();
  const cond = b.input('cond', 'bool', []);
  const x = b.input('x', 'float32', [2]);
  const iff = b.graph.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['y'] });
  const then = new Graph('then', iff);
  then.addOutput(x);
  const other = new Graph('else', iff);
  other.addOutput(other.addNode({ opType: 'Relu', inputs: [x], outputs: 1 }).outputs[0]!);
  iff.attributes.set('then_branch', attr.graph('then_branch', then));
  iff.attributes.set('else_branch', attr.graph('else_branch', other));
  b.graph.addOutput(iff.outputs[0]!);
  return { m: b.build(), branch: then };
}

describe('setInput, replaceOutput, replaceReturns', () => {
  test('setInput rewires one use only', () => {
    const m = model();
    const x = m.graph.inputs[0]!;
    const p = new Patch(m.graph);
    p.setInput(nodeOf(m, 'Neg'), 0, x);
    p.commit();
    expect(nodeOf(m, 'Neg').inputs[0]).toBe(x);
    expect(nodeOf(m, 'Relu').inputs[0]!.name).toBe('add_out');
    ok(m);
  });

  test('replaceOutput: the output keeps its name on the new value; uses of the old one stay', () => {
    const m = model();
    const y = nodeOf(m, 'Relu').outputs[0]!;
    const p = new Patch(m.graph);
    const s = p.add('Sigmoid', [y]);
    p.replaceOutput(y, s);
    p.commit();
    expect(outputs(m)).toEqual(['y', 'z']);
    expect(m.graph.outputs[0]).toBe(s);
    expect(y.name).toBe('y_replaced');
    expect(s.producer!.inputs[0]).toBe(y);
    ok(m);
  });

  test('replaceOutput to a value that cannot take the name (a graph input): an Identity carries it', () => {
    const m = model();
    const x = m.graph.inputs[0]!;
    const p = new Patch(m.graph);
    p.replaceOutput(nodeOf(m, 'Neg').outputs[0]!, x);
    p.commit();
    expect(outputs(m)).toEqual(['y', 'z']);
    const z = m.graph.outputs[1]!;
    expect(z.producer!.opType).toBe('Identity');
    expect(z.producer!.inputs[0]).toBe(x);
    expect(x.name).toBe('x');
    ok(m);
  });

  test('replaceReturns: a subgraph returning an outer value returns another', () => {
    const { m, branch } = ifModel();
    const x = m.graph.inputs[1]!;
    const p = new Patch(m.graph);
    const n = p.add('Neg', [x]);
    p.replaceReturns(x, n);
    p.commit();
    expect(branch.outputs[0]).toBe(n);
    expect(x.users.map((u) => u.opType).sort()).toEqual(['Neg', 'Relu']);
  });
});

describe('replace keeps graph output names (keepOutputName)', () => {
  test('a graph output replaced by a computed value: the value takes the name and the old one\'s type', () => {
    const m = model();
    const y = nodeOf(m, 'Relu').outputs[0]!;
    y.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: [2, 3] };
    const p = new Patch(m.graph);
    const s = p.add('Sigmoid', [nodeOf(m, 'Add').outputs[0]!]);
    p.replace(y, s);
    p.commit();
    expect(outputs(m)).toEqual(['y', 'z']);
    expect(m.graph.outputs[0]).toBe(s);
    expect(s.type).toEqual(y.type);
    expect(nodeOf(m, 'Relu')).toBeUndefined(); // dead with its output gone
    ok(m);
  });

  test('a graph output replaced by another graph output: an Identity keeps both names', () => {
    const m = model();
    const p = new Patch(m.graph);
    p.replace(nodeOf(m, 'Neg').outputs[0]!, nodeOf(m, 'Relu').outputs[0]!);
    p.commit();
    expect(outputs(m)).toEqual(['y', 'z']);
    expect(m.graph.outputs[1]!.producer!.opType).toBe('Identity');
    ok(m);
  });

  test('a type conflict is refused at commit', () => {
    const m = model();
    const y = nodeOf(m, 'Relu').outputs[0]!;
    y.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: [2, 3] };
    const p = new Patch(m.graph);
    const k = p.constant(Tensor.int64([1], [1]), 'k');
    p.replace(y, k);
    expect(() => p.commit()).toThrow(PatchError);
  });

  test('replaceInPlace: the replacement takes the old value\'s name once it is gone', () => {
    const m = model();
    const add = nodeOf(m, 'Add');
    const p = new Patch(m.graph);
    const t = p.constant(Tensor.float32([0, 0, 0, 0, 0, 0], [2, 3]), 'folded');
    p.replaceInPlace(add.outputs[0]!, t);
    expect(p.commit()).toBe(1);
    expect(t.name).toBe('add_out');
    expect(add.removed).toBe(true);
    expect(m.graph.initializers.map((v) => v.name)).toEqual(['add_out']); // 'c' died with Add
    ok(m);
  });
});

describe('copy, setInitializer, remove, removeInitializer', () => {
  test('copy: same op and attributes, new inputs; not refused by the target (the op is there already)', () => {
    const m = model();
    const relu = nodeOf(m, 'Relu');
    relu.attributes.set('note', attr.int('note', 3));
    const p = new Patch(m.graph, { supports: () => false });
    const [o] = p.copy(relu, [m.graph.inputs[0]!]);
    expect(o!.producer!.opType).toBe('Relu');
    expect(o!.producer!.attr('note')).toEqual(attr.int('note', 3));
    expect(o!.producer!.name).not.toBe('relu');
    expect(() => p.add('Relu', [o!])).toThrow(UnsupportedOpError);
  });

  test('setInitializer replaces the data at commit', () => {
    const m = model();
    const c = nodeOf(m, 'Add').inputs[1]!;
    const p = new Patch(m.graph);
    p.setInitializer(c, Tensor.float32([4, 5, 6], [3]));
    p.commit();
    expect(Array.from(c.initializer!.toTypedArray() as Float32Array)).toEqual([4, 5, 6]);
  });

  test('remove cascades to what the node alone kept alive; with cascade: false only the node goes', () => {
    for (const cascade of [true, false]) {
      const b = new ModelBuilder();
      const x = b.input('x', 'float32', [3]);
      const dead = b.node('Neg', [b.node('Add', [x, b.constant(Tensor.float32([1, 2, 3], [3]), 'c')])]);
      b.output(b.node('Relu', [x]), 'y');
      const m = b.build();
      const p = new Patch(m.graph);
      p.remove(dead.producer!, { cascade });
      p.commit();
      expect(m.graph.nodes.map((n) => n.opType).sort()).toEqual(cascade ? ['Relu'] : ['Add', 'Relu']);
      expect(m.graph.initializers.length).toBe(cascade ? 0 : 1);
    }
  });

  test('remove refuses a node whose output is still used', () => {
    const m = model();
    const p = new Patch(m.graph);
    p.remove(nodeOf(m, 'Add'));
    expect(() => p.commit()).toThrow(/still used/);
  });

  test('removeInitializer: an unused one goes (also after edits freed it); a used one is refused', () => {
    const m = model();
    const c = nodeOf(m, 'Add').inputs[1]!;
    const p = new Patch(m.graph);
    p.removeInitializer(c);
    expect(() => p.commit()).toThrow(/still used/);

    const m2 = model();
    const add = nodeOf(m2, 'Add');
    const c2 = add.inputs[1]!;
    const q = new Patch(m2.graph);
    q.setInput(add, 1, q.constant(Tensor.float32([0, 0, 0], [3]), 'zero'));
    q.removeInitializer(c2);
    q.commit();
    expect(m2.graph.initializers.map((v) => v.name)).toEqual(['zero']);
    ok(m2);
  });
});
