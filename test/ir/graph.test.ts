/** The Graph mutation API: use lists kept both ways, tombstones, names, toposort. */
import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph, IrError, NameScope, type Node, type Value } from '../../src/ir/graph.js';
import { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { verifyGraph } from '../../src/ir/verify.js';
import { decode } from '../../src/onnx/codec.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { floats, modelBytes, runModel } from './util.js';

const F = (shape: number[]) => tensorType(DataType.FLOAT, shape);

/** Uses of `v` as sorted `nodeName:slot` strings. */
function usesOf(v: Value): string[] {
  return v.uses.map((u) => `${u.node.name}:${u.slot}`).sort();
}

/** The node list including tombstones (white box: compact() is only observable there). */
function rawNodes(g: Graph): Node[] {
  return (g as unknown as { _nodes: Node[] })._nodes;
}

/** x -> a = Relu(x) -> b = Neg(a) -> c = Add(a, b); outputs c. */
function chain() {
  const b = new ModelBuilder({ opset: 17 });
  const g = b.graph;
  const x = b.input('x', 'float32', [3]);
  const a = b.node('Relu', [x], {}, { name: 'relu', outputs: ['a'] });
  const nb = b.node('Neg', [a], {}, { name: 'neg', outputs: ['b'] });
  const c = b.node('Add', [a, nb], {}, { name: 'add', outputs: ['c'] });
  b.output(c);
  const [relu, neg, add] = g.nodes as [Node, Node, Node];
  return { model: b.build(), g, x, a, b: nb, c, relu, neg, add };
}

describe('addNode', () => {
  test('ids, default names, output naming, producers and uses', () => {
    const g = new Graph('g');
    const x = g.addInput('x', F([2]));
    const n0 = g.addNode({ opType: 'Relu', inputs: [x] });
    const n1 = g.addNode({ opType: 'Add', inputs: [x, x] });
    const n2 = g.addNode({ opType: 'Split', inputs: [n1.outputs[0]], outputs: 3 });
    const n3 = g.addNode({ opType: 'TopK', name: 'tk', inputs: [x], outputs: ['v', ''] });
    expect([n0.id, n1.id, n2.id, n3.id]).toEqual([0, 1, 2, 3]);
    expect([n0.name, n1.name, n2.name, n3.name]).toEqual(['Relu_0', 'Add_1', 'Split_2', 'tk']);
    expect(n0.outputs.map((v) => v?.name)).toEqual(['Relu_0_out']);
    expect(n2.outputs.map((v) => v?.name)).toEqual(['Split_2_out0', 'Split_2_out1', 'Split_2_out2']);
    expect(n2.outputs.map((v) => v?.producerSlot)).toEqual([0, 1, 2]);
    expect(n2.outputs.every((v) => v?.producer === n2)).toBe(true);
    expect(n3.outputs.length).toBe(2);
    expect(n3.outputs[1]).toBeUndefined();
    // a node using x twice appears twice, with both slots
    expect(usesOf(x)).toEqual(['Add_1:0', 'Add_1:1', 'Relu_0:0', 'tk:0']);
    expect(x.users.filter((n) => n === n1).length).toBe(2);
    expect(g.nodeCount).toBe(4);
    expect(g.nodes).toEqual([n0, n1, n2, n3]);
    expect(n1.qualifiedOp).toBe('ai.onnx::Add');
    expect(g.addNode({ opType: 'FusedGemm', domain: 'com.microsoft' }).qualifiedOp).toBe('com.microsoft::FusedGemm');
    expect(n3.toString()).toBe("node 'tk' (TopK)");
    expect(g.addNode({ opType: 'Relu', name: '' }).toString()).toBe("node '#5' (Relu)");
  });

  test('output names are made unique across the whole scope, subgraphs included', () => {
    const g = new Graph('g');
    const x = g.addInput('y', F([1]));
    const n1 = g.addNode({ opType: 'Relu', inputs: [x], outputs: ['y'] });
    const n2 = g.addNode({ opType: 'Relu', inputs: [x], outputs: ['y'] });
    expect(n1.outputs[0]!.name).toBe('y_1');
    expect(n2.outputs[0]!.name).toBe('y_2');
    const sub = new Graph('body', n2);
    expect(sub.scope).toBe(g.scope);
    expect(sub.parent).toBe(g);
    const inner = sub.addNode({ opType: 'Identity', inputs: [x], outputs: ['y'] });
    expect(inner.outputs[0]!.name).toBe('y_3');
    expect(sub.local('y_3')).toBe(inner.outputs[0]);
    expect(g.local('y_3')).toBeUndefined();
    expect(sub.lookup('y_1')).toBe(n1.outputs[0]); // outer values are visible from inside
    expect(g.lookup('y_3')).toBeUndefined(); // inner ones are not visible from outside
  });

  test('graph inputs and exact initializer names must be unique; initializers are renamed otherwise', () => {
    const g = new Graph();
    g.addInput('x', F([1]));
    expect(() => g.addInput('x', F([1]))).toThrow(IrError);
    expect(() => g.addInput('x')).toThrow(/value 'x' is defined twice/);
    const w0 = g.addInitializer('w', Tensor.float32([1]));
    const w1 = g.addInitializer('w', Tensor.float32([2]));
    const w2 = g.addInitializer('x', Tensor.float32([3]));
    expect([w0.name, w1.name, w2.name]).toEqual(['w', 'w_1', 'x_1']);
    expect(() => g.addInitializer('w', Tensor.float32([1]), { exactName: true })).toThrow(/'w' is defined twice/);
    expect(g.addInitializer('fresh', Tensor.int64([1, 2], [1, 2]), { exactName: true }).type).toEqual(tensorType(DataType.INT64, [1, 2]));
    expect(g.initializers.map((v) => v.name)).toEqual(['w', 'w_1', 'x_1', 'fresh']);
  });
});

describe('NameScope.unique', () => {
  test('base, then base_1, base_2, skipping names taken', () => {
    const s = new NameScope();
    expect(s.unique('x')).toBe('x');
    s.claim('x');
    expect(s.unique('x')).toBe('x_1');
    s.claim('x_1');
    expect(s.unique('x')).toBe('x_2');
    s.claim('y');
    s.claim('y_1');
    s.claim('y_2');
    expect(s.unique('y')).toBe('y_3');
    expect(s.has('y_3')).toBe(false); // unique() does not claim
    s.release('x');
    expect(s.unique('x')).toBe('x');
  });
});

describe('setInput / setInputs', () => {
  test('setInput moves the use from the old value to the new one', () => {
    const { g, x, a, b, add } = chain();
    expect(usesOf(a)).toEqual(['add:0', 'neg:0']);
    g.setInput(add, 1, x);
    expect(add.inputs).toEqual([a, x]);
    expect(usesOf(b)).toEqual([]);
    expect(usesOf(x)).toEqual(['add:1', 'relu:0']);
    expect(verifyGraph(g)).toEqual([]);
    // clear a slot
    g.setInput(add, 1, undefined);
    expect(add.inputs).toEqual([a, undefined]);
    expect(usesOf(x)).toEqual(['relu:0']);
    // append at slot == inputs.length
    g.setInput(add, 2, b);
    expect(add.inputs).toEqual([a, undefined, b]);
    expect(usesOf(b)).toEqual(['add:2']);
    expect(() => g.setInput(add, 4, x)).toThrow(/node 'add' \(Add\) has no input slot 4/);
    expect(() => g.setInput(add, -1, x)).toThrow(IrError);
    expect(verifyGraph(g)).toEqual([]);
  });

  test('setInput on a slot that holds the same value twice only moves that slot', () => {
    const { g, x, a, add } = chain();
    g.setInputs(add, [a, a]);
    expect(usesOf(a)).toEqual(['add:0', 'add:1', 'neg:0']);
    g.setInput(add, 0, x);
    expect(usesOf(a)).toEqual(['add:1', 'neg:0']);
    expect(verifyGraph(g)).toEqual([]);
  });

  test('setInputs replaces all inputs, including a shorter list', () => {
    const { g, x, a, b, add } = chain();
    g.setInputs(add, [x]);
    expect(add.inputs).toEqual([x]);
    expect(usesOf(a)).toEqual(['neg:0']);
    expect(usesOf(b)).toEqual([]);
    expect(usesOf(x)).toEqual(['add:0', 'relu:0']);
    expect(verifyGraph(g)).toEqual([]);
  });
});

describe('replaceAllUsesWith', () => {
  test('moves every use, returns the count, leaves graph outputs alone', () => {
    const b = new ModelBuilder();
    const g = b.graph;
    const x = b.input('x', 'float32', [2]);
    const r = b.node('Relu', [x], {}, { name: 'r', outputs: ['r'] });
    b.node('Add', [r, r], {}, { name: 'twice', outputs: ['s'] });
    b.node('Neg', [r], {}, { name: 'neg', outputs: ['n'] });
    b.output(r);
    const other = b.node('Abs', [x], {}, { name: 'abs', outputs: ['o'] });
    expect(g.replaceAllUsesWith(r, other)).toBe(3);
    expect(r.uses).toEqual([]);
    expect(usesOf(other)).toEqual(['neg:0', 'twice:0', 'twice:1']);
    expect(g.outputs).toEqual([r]); // the model's interface is not changed
    expect(r.isGraphOutput).toBe(true);
    expect(g.replaceAllUsesWith(other, other)).toBe(0);
    expect(usesOf(other)).toEqual(['neg:0', 'twice:0', 'twice:1']);
    expect(g.replaceAllUsesWith(r, x)).toBe(0); // nothing left to move
    // the graph is out of order now (Abs was added last but is used earlier), which verify reports
    expect(verifyGraph(g).join('\n')).toMatch(/uses 'o' before node 'abs' \(Abs\) computes it/);
  });

  test('also moves uses inside subgraphs', () => {
    const g = new Graph('main');
    const x = g.addInput('x', F([2]));
    const y = g.addInput('y', F([2]));
    const cond = g.addInput('c', tensorType(DataType.BOOL, []));
    const iff = g.addNode({ opType: 'If', inputs: [cond], outputs: ['out'] });
    const then = new Graph('then', iff);
    const inner = then.addNode({ opType: 'Neg', inputs: [x], outputs: ['nx'] });
    then.addOutput(inner.outputs[0]!);
    iff.attributes.set('then_branch', { name: 'then_branch', type: 'graph', value: then });
    expect(iff.capturedValues()).toEqual([x]);
    expect(g.replaceAllUsesWith(x, y)).toBe(1);
    expect(inner.inputs).toEqual([y]);
    expect(x.uses).toEqual([]);
    expect(y.uses).toEqual([{ node: inner, slot: 0 }]);
    expect(iff.capturedValues()).toEqual([y]);
  });
});

describe('removeNode and compact', () => {
  test('refuses while an output is used or is a graph output', () => {
    const { g, relu, add } = chain();
    expect(() => g.removeNode(relu)).toThrow(/cannot remove node 'relu' \(Relu\): its output 'a' is used by node '(neg|add)'/);
    expect(() => g.removeNode(add)).toThrow(/cannot remove node 'add' \(Add\): its output 'c' is a graph output/);
    expect(g.nodeCount).toBe(3);
    expect(relu.removed || add.removed).toBe(false);
    expect(verifyGraph(g)).toEqual([]);
  });

  test('tombstones: nodeCount drops, nodes excludes it, uses are detached, names are freed', () => {
    const { model, g, x, a, b, neg, add } = chain();
    g.setInput(add, 1, a); // b is now unused
    expect(b.uses).toEqual([]);
    g.removeNode(neg);
    expect(neg.removed).toBe(true);
    expect(g.nodeCount).toBe(2);
    expect(g.nodes.map((n) => n.name)).toEqual(['relu', 'add']);
    expect(rawNodes(g).length).toBe(3); // tombstone still there
    expect(usesOf(a)).toEqual(['add:0', 'add:1']);
    expect(b.producer).toBeUndefined();
    expect(g.local('b')).toBeUndefined();
    expect(g.scope.has('b')).toBe(false);
    expect(verifyGraph(g)).toEqual([]);
    // removing again is a no-op
    g.removeNode(neg);
    expect(g.nodeCount).toBe(2);
    // the freed name can be used again
    const again = g.addNode({ opType: 'Neg', inputs: [x], outputs: ['b'] });
    expect(again.outputs[0]!.name).toBe('b');
    g.removeNode(again);
    expect(g.nodeCount).toBe(2);
    expect(rawNodes(g).length).toBe(4);
    g.compact();
    expect(rawNodes(g)).toEqual(g.nodes);
    expect(rawNodes(g).length).toBe(2);
    expect(g.nodeCount).toBe(2);
    // and it serializes without the removed node
    const proto = decode<ModelProto>('ModelProto', modelBytes(model));
    expect(proto.graph!.node!.map((n) => n.name)).toEqual(['relu', 'add']);
  });

  test('a removed node still computes nothing in onnxruntime: the model runs', async () => {
    const { model, g, a, neg, add } = chain();
    g.setInput(add, 1, a);
    g.removeNode(neg);
    const out = await runModel(model, { x: Tensor.float32([-1, 2, 3]) });
    expect(floats(out.c)).toEqual([0, 4, 6]);
  });

  test('force leaves uses dangling and keeps the used value', () => {
    const { g, a, relu, neg } = chain();
    g.removeNode(relu, { force: true });
    expect(relu.removed).toBe(true);
    expect(a.producer).toBeUndefined();
    expect(g.local('a')).toBe(a); // still used: not forgotten
    expect(neg.inputs[0]).toBe(a);
    expect(usesOf(a)).toEqual(['add:0', 'neg:0']);
    expect(g.nodeCount).toBe(2);
    expect(verifyGraph(g).length).toBe(2); // one dangling use each for neg and add
  });

  test('refuses a node of another graph', () => {
    const { g } = chain();
    const other = new Graph('other');
    const n = other.addNode({ opType: 'Constant' });
    expect(() => g.removeNode(n)).toThrow(/belongs to another graph/);
    expect(n.removed).toBe(false);
  });

  test('compact recurses into subgraphs', () => {
    const g = new Graph('main');
    const cond = g.addInput('c', tensorType(DataType.BOOL, []));
    const iff = g.addNode({ opType: 'If', inputs: [cond] });
    const body = new Graph('then', iff);
    iff.attributes.set('then_branch', { name: 'then_branch', type: 'graph', value: body });
    const keep = body.addNode({ opType: 'Constant', outputs: ['k'] });
    const drop = body.addNode({ opType: 'Constant', outputs: ['d'] });
    body.addOutput(keep.outputs[0]!);
    body.removeNode(drop);
    expect(rawNodes(body).length).toBe(2);
    g.compact();
    expect(rawNodes(body)).toEqual([keep]);
  });
});

describe('rename', () => {
  test('renames an inner value and updates lookups and the scope', () => {
    const { g, a, neg } = chain();
    g.rename(a, 'relu_out');
    expect(a.name).toBe('relu_out');
    expect(g.local('a')).toBeUndefined();
    expect(g.local('relu_out')).toBe(a);
    expect(g.scope.has('a')).toBe(false);
    expect(g.scope.has('relu_out')).toBe(true);
    expect(neg.inputs[0]).toBe(a);
    g.rename(a, 'relu_out'); // same name: no-op
    expect(g.local('relu_out')).toBe(a);
    expect(verifyGraph(g)).toEqual([]);
  });

  test('refuses graph inputs, graph outputs and names in use', () => {
    const { g, x, a, b, c } = chain();
    expect(() => g.rename(x, 'input')).toThrow(/refusing to rename graph input\/output 'x'/);
    expect(() => g.rename(c, 'output')).toThrow(/refusing to rename graph input\/output 'c'/);
    expect(() => g.rename(a, 'b')).toThrow(/cannot rename 'a' to 'b': name in use/);
    expect(() => g.rename(a, 'x')).toThrow(IrError);
    expect([x.name, a.name, b.name, c.name]).toEqual(['x', 'a', 'b', 'c']);
    expect(g.local('a')).toBe(a);
  });

  test('renames a value of a subgraph in the shared scope', () => {
    const g = new Graph('main');
    const cond = g.addInput('c', tensorType(DataType.BOOL, []));
    const iff = g.addNode({ opType: 'If', inputs: [cond] });
    const body = new Graph('then', iff);
    const v = body.addNode({ opType: 'Constant', outputs: ['k'] }).outputs[0]!;
    g.rename(v, 'k2');
    expect(body.local('k2')).toBe(v);
    expect(body.local('k')).toBeUndefined();
    expect(() => body.rename(v, 'c')).toThrow(/name in use/); // the outer input's name
  });
});

describe('initializers', () => {
  test('removeInitializer refuses used, output and foreign values; removes unused ones', () => {
    const b = new ModelBuilder();
    const g = b.graph;
    const x = b.input('x', 'float32', [2]);
    const w = b.constant(Tensor.float32([1, 2]), 'w');
    const unused = b.constant(Tensor.float32([3, 4]), 'unused');
    const passthrough = b.constant(Tensor.float32([5, 6]), 'p');
    const sum = b.node('Add', [x, w], {}, { name: 'add', outputs: ['y'] });
    b.output(sum);
    b.output(passthrough);
    expect(() => g.removeInitializer(w)).toThrow(/initializer 'w' still has 1 use\(s\)/);
    expect(() => g.removeInitializer(passthrough)).toThrow(/initializer 'p' is a graph output/);
    const dead = b.node('Neg', [x], {}, { name: 'dead', outputs: ['d'] });
    expect(() => g.removeInitializer(dead)).toThrow(/'d' is not an initializer of this graph/);
    expect(g.local('d')).toBe(dead);
    g.removeInitializer(unused);
    expect(g.initializers.map((v) => v.name)).toEqual(['w', 'p']);
    expect(unused.initializer).toBeUndefined();
    expect(unused.isConstant).toBe(false);
    expect(g.local('unused')).toBeUndefined();
    expect(g.scope.has('unused')).toBe(false);
    const proto = decode<ModelProto>('ModelProto', modelBytes(b.build()));
    expect(proto.graph!.initializer!.map((t) => t.name)).toEqual(['w', 'p']);
    // after its last use goes, w can be removed too
    g.setInput(sum.producer!, 1, x);
    g.removeInitializer(w);
    expect(g.initializers.map((v) => v.name)).toEqual(['p']);
  });

  test('setInitializer makes a graph input constant (IR < 4) and refuses computed values', () => {
    const g = new Graph();
    const x = g.addInput('x');
    g.setInitializer(x, Tensor.float32([1, 2, 3]));
    expect(x.isConstant).toBe(true);
    expect(x.isGraphInput).toBe(true);
    expect(x.type).toEqual(tensorType(DataType.FLOAT, [3]));
    expect(g.initializers).toEqual([x]);
    g.setInitializer(x, Tensor.float32([4, 5, 6]));
    expect(g.initializers).toEqual([x]); // not listed twice
    const n = g.addNode({ opType: 'Relu', inputs: [x] });
    expect(() => g.setInitializer(n.outputs[0]!, Tensor.float32([1]))).toThrow(/is computed by node 'Relu_0' \(Relu\)/);
    const other = new Graph();
    expect(() => other.setInitializer(x, Tensor.float32([1]))).toThrow(/belongs to another graph/);
    // removing the initializer keeps the graph input
    g.setInput(n, 0, undefined);
    g.removeInitializer(x);
    expect(g.local('x')).toBe(x);
    expect(g.inputs).toEqual([x]);
    expect(x.isConstant).toBe(false);
  });
});

describe('toposort', () => {
  test('keeps an already sorted graph in the same order', () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2]);
    const p = b.node('Relu', [x]);
    const q = b.node('Neg', [x]);
    const r = b.node('Add', [p, q]);
    const s = b.node('Abs', [x]);
    b.output(b.node('Mul', [r, s]), 'y');
    const before = b.graph.nodes;
    b.graph.toposort();
    expect(b.graph.nodes).toEqual(before);
    expect(b.graph.nodes.map((n) => n.opType)).toEqual(['Relu', 'Neg', 'Add', 'Abs', 'Mul']);
  });

  test('fixes a graph whose consumers were added before their producers', async () => {
    const g = new Graph('main');
    const x = g.addInput('x', F([3]));
    // consumers first, inputs wired later
    const add = g.addNode({ opType: 'Add', name: 'add', outputs: ['y'] });
    const neg = g.addNode({ opType: 'Neg', name: 'neg', outputs: ['b'] });
    const unrelated = g.addNode({ opType: 'Abs', name: 'abs', inputs: [x], outputs: ['z'] });
    const relu = g.addNode({ opType: 'Relu', name: 'relu', inputs: [x], outputs: ['a'] });
    g.setInputs(neg, [relu.outputs[0]]);
    g.setInputs(add, [relu.outputs[0], neg.outputs[0]]);
    g.addOutput(add.outputs[0]!);
    g.addOutput(unrelated.outputs[0]!);
    const problems = verifyGraph(g);
    expect(problems).toContain("graph 'main': node 'add' (Add) uses 'a' before node 'relu' (Relu) computes it");
    expect(problems).toContain("graph 'main': node 'neg' (Neg) uses 'a' before node 'relu' (Relu) computes it");
    expect(problems).toContain("graph 'main': node 'add' (Add) uses 'b' before node 'neg' (Neg) computes it");
    g.toposort();
    // depth first from each node in the old order: add needs relu then neg; abs keeps its place after them
    expect(g.nodes.map((n) => n.name)).toEqual(['relu', 'neg', 'add', 'abs']);
    expect(verifyGraph(g)).toEqual([]);
    const m = new Model(g);
    m.irVersion = 8;
    m.opsetImports = [{ domain: '', version: 17 }];
    const out = await runModel(m, { x: Tensor.float32([-1, 2, -3]) });
    expect(floats(out.y)).toEqual([0, 0, 0]);
    expect(floats(out.z)).toEqual([1, 2, 3]);
  });

  test('drops tombstones and keeps the live count', () => {
    const { g, a, neg, add } = chain();
    g.setInput(add, 1, a);
    g.removeNode(neg);
    g.toposort();
    expect(rawNodes(g).map((n) => n.name)).toEqual(['relu', 'add']);
    expect(g.nodeCount).toBe(2);
  });

  test('throws IrError on a cycle', () => {
    const g = new Graph('cyc');
    const x = g.addInput('x', F([1]));
    const n1 = g.addNode({ opType: 'Add', name: 'n1', outputs: ['p'] });
    const n2 = g.addNode({ opType: 'Relu', name: 'n2', inputs: [n1.outputs[0]], outputs: ['q'] });
    g.setInputs(n1, [x, n2.outputs[0]]);
    g.addOutput(n2.outputs[0]!);
    expect(() => g.toposort()).toThrow(IrError);
    expect(() => g.toposort()).toThrow(/graph 'cyc' has a cycle through node 'n[12]'/);
    expect(g.nodes).toEqual([n1, n2]); // unchanged
    expect(verifyGraph(g).length).toBeGreaterThan(0);
  });

  test('a self loop is a cycle', () => {
    const g = new Graph('self');
    const n = g.addNode({ opType: 'Relu', name: 'n' });
    g.setInputs(n, [n.outputs[0]]);
    expect(() => g.toposort()).toThrow(/cycle through node 'n' \(Relu\)/);
  });
});
