/** verify(): valid models pass, and each kind of structural damage is reported by name. */
import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Graph, IrError, type Node, type Use, type Value } from '../../src/ir/graph.js';
import { Func } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { verify, verifyGraph, verifyModel, VerifyError } from '../../src/ir/verify.js';
import { readModel } from '../../src/node/files.js';
import { fixtureFile, fixtureNames } from './util.js';

/** x -> a = Relu(x) -> b = Neg(a) -> c = Add(a, b); outputs c. */
function chain() {
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float32', [3]);
  const a = b.node('Relu', [x], {}, { name: 'relu', outputs: ['a'] });
  const nb = b.node('Neg', [a], {}, { name: 'neg', outputs: ['b'] });
  const c = b.node('Add', [a, nb], {}, { name: 'add', outputs: ['c'] });
  b.output(c);
  const [relu, neg, add] = b.graph.nodes as [Node, Node, Node];
  return { model: b.build(), g: b.graph, x, a, b: nb, c, relu, neg, add };
}

function mutableUses(v: Value): Use[] {
  return v.uses as Use[];
}

describe('valid models', () => {
  test.each(fixtureNames())('fixture %s verifies clean', (name) => {
    const { model } = readModel(fixtureFile(name));
    expect(model.graph.nodeCount).toBeGreaterThan(0);
    expect(verifyModel(model)).toEqual([]);
    expect(() => verify(model)).not.toThrow();
    expect(() => verify(model.graph)).not.toThrow();
  });

  test('a built model verifies clean', () => {
    const { model } = chain();
    expect(verifyModel(model)).toEqual([]);
  });
});

describe('problems', () => {
  test('use before definition', () => {
    const g = new Graph('main');
    const x = g.addInput('x', tensorType(DataType.FLOAT, [1]));
    const neg = g.addNode({ opType: 'Neg', name: 'neg', outputs: ['b'] });
    const relu = g.addNode({ opType: 'Relu', name: 'relu', inputs: [x], outputs: ['a'] });
    g.setInputs(neg, [relu.outputs[0]]);
    g.addOutput(neg.outputs[0]!);
    expect(verifyGraph(g)).toEqual(["graph 'main': node 'neg' (Neg) uses 'a' before node 'relu' (Relu) computes it"]);
  });

  test('a node that uses its own output is reported', () => {
    const g = new Graph('main');
    const n = g.addNode({ opType: 'Relu', name: 'loop', outputs: ['v'] });
    g.setInputs(n, [n.outputs[0]]);
    expect(verifyGraph(g)).toEqual(["graph 'main': node 'loop' (Relu) uses 'v' before node 'loop' (Relu) computes it"]);
  });

  test('dangling uses after removeNode({ force: true })', () => {
    const { g, relu } = chain();
    g.removeNode(relu, { force: true });
    expect(verifyGraph(g)).toEqual([
      "graph 'main': node 'neg' (Neg) uses 'a', which nothing defines (dangling use)",
      "graph 'main': node 'add' (Add) uses 'a', which nothing defines (dangling use)",
    ]);
  });

  test('graph output not defined after its producer is force-removed', () => {
    const { g, add } = chain();
    g.removeNode(add, { force: true });
    expect(verifyGraph(g)).toEqual(["graph 'main': graph output 'c' is not defined"]);
  });

  test('a use missing from the use list', () => {
    const { g, b } = chain();
    expect(mutableUses(b).pop()).toBeDefined();
    expect(verifyGraph(g)).toEqual(["graph 'main': use list of 'b' has 0 entries for input 1 of node 'add' (Add)"]);
  });

  test('a use listed twice', () => {
    const { g, b } = chain();
    mutableUses(b).push({ ...b.uses[0]! });
    expect(verifyGraph(g)).toEqual(["graph 'main': use list of 'b' has 2 entries for input 1 of node 'add' (Add)"]);
  });

  test('a use entry that the node does not have', () => {
    const { g, x, neg } = chain();
    mutableUses(x).push({ node: neg, slot: 0 });
    expect(verifyGraph(g)).toEqual(["graph 'main': 'x' lists a use by node 'neg' (Neg) input 0, which is not it"]);
  });

  test('a use by a removed node', () => {
    const { g, x, a, b, neg, add } = chain();
    g.setInput(add, 1, a);
    g.removeNode(neg);
    expect(verifyGraph(g)).toEqual([]);
    mutableUses(x).push({ node: neg, slot: 0 });
    expect(b.uses.length).toBe(0);
    expect(verifyGraph(g)).toEqual(["graph 'main': 'x' lists a use by removed node 'neg' (Neg)"]);
  });

  test('an output that does not point back to its node', () => {
    const { g, b } = chain();
    b.producerSlot = 3;
    expect(verifyGraph(g)).toEqual(["graph 'main': output 0 of node 'neg' (Neg) ('b') does not point back to it"]);
  });

  test('initializer type mismatch: element type and shape', () => {
    const b = new ModelBuilder();
    const w = b.constant(Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]), 'w');
    const u = b.constant(Tensor.int64([1, 2]), 'u');
    b.output(b.node('Identity', [w]), 'y');
    b.output(b.node('Identity', [u]), 'z');
    expect(verifyModel(b.model)).toEqual([]);

    w.type = tensorType(DataType.INT64, [2, 3]);
    u.type = tensorType(DataType.INT64, [3]);
    expect(verifyModel(b.model)).toEqual([
      "graph 'main': initializer 'w' has type int64[2,3] but its data is float32[2,3]",
      "graph 'main': initializer 'u' has type int64[3] but its data is int64[2]",
    ]);

    // symbolic or unknown dims, and unknown rank, are compatible with the data
    w.type = tensorType(DataType.FLOAT, ['rows', null]);
    u.type = { kind: 'tensor', elemType: DataType.INT64 };
    expect(verifyModel(b.model)).toEqual([]);
    // a rank mismatch is not
    w.type = tensorType(DataType.FLOAT, [6]);
    expect(verifyModel(b.model)).toEqual(["graph 'main': initializer 'w' has type float32[6] but its data is float32[2,3]"]);
  });

  test('a name defined twice', () => {
    const { g, b } = chain();
    b._rename('a'); // bypass Graph.rename, which would refuse
    expect(verifyGraph(g)).toContain("graph 'main': name 'a' is defined twice");
  });

  test('a use of a value from a graph that does not enclose the user', () => {
    const g = new Graph('main');
    const cond = g.addInput('c', tensorType(DataType.BOOL, []));
    const iff = g.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['r'] });
    const body = new Graph('then', iff);
    const k = body.addNode({ opType: 'Constant', name: 'k', outputs: ['kv'] }).outputs[0]!;
    body.addOutput(k);
    iff.attributes.set('then_branch', { name: 'then_branch', type: 'graph', value: body });
    g.addNode({ opType: 'Neg', name: 'outside', inputs: [k], outputs: ['n'] });
    expect(verifyGraph(g)).toEqual(["graph 'main': node 'outside' (Neg) uses 'kv' from a graph that does not enclose it"]);
  });

  test('a subgraph held by a node that is not its owner', () => {
    const g = new Graph('main');
    const cond = g.addInput('c', tensorType(DataType.BOOL, []));
    const a = g.addNode({ opType: 'If', name: 'a', inputs: [cond], outputs: ['ra'] });
    const stray = g.addNode({ opType: 'If', name: 'b', inputs: [cond], outputs: ['rb'] });
    const body = new Graph('body', a);
    body.addOutput(body.addNode({ opType: 'Constant', name: 'k', outputs: ['kv'] }).outputs[0]!);
    stray.attributes.set('then_branch', { name: 'then_branch', type: 'graph', value: body });
    expect(verifyGraph(g)).toEqual(["graph 'main': subgraph 'body' of node 'b' (If) has another owner"]);
  });

  test('a subgraph that reads an outer value computed after its owner', () => {
    const g = new Graph('main');
    const x = g.addInput('x', tensorType(DataType.FLOAT, [1]));
    const cond = g.addInput('c', tensorType(DataType.BOOL, []));
    const iff = g.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['r'] });
    const late = g.addNode({ opType: 'Relu', name: 'late', inputs: [x], outputs: ['l'] });
    const body = new Graph('then', iff);
    body.addOutput(body.addNode({ opType: 'Neg', name: 'inner', inputs: [late.outputs[0]], outputs: ['n'] }).outputs[0]!);
    iff.attributes.set('then_branch', { name: 'then_branch', type: 'graph', value: body });
    g.addOutput(iff.outputs[0]!);
    expect(verifyGraph(g)).toEqual(["graph 'main': node 'if' (If) reads 'l' in a subgraph before node 'late' (Relu) computes it"]);
    g.toposort();
    expect(g.nodes.map((n) => n.name)).toEqual(['late', 'if']);
    expect(verifyGraph(g)).toEqual([]);
  });

  test('problems inside a subgraph name the subgraph and its owner', () => {
    const g = new Graph('main');
    const cond = g.addInput('c', tensorType(DataType.BOOL, []));
    const iff = g.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['r'] });
    const body = new Graph('then', iff);
    const k = body.addNode({ opType: 'Constant', name: 'k', outputs: ['kv'] });
    body.addOutput(k.outputs[0]!);
    iff.attributes.set('then_branch', { name: 'then_branch', type: 'graph', value: body });
    body.removeNode(k, { force: true });
    expect(verifyGraph(g)).toEqual(["subgraph 'then' of node 'if' (If): graph output 'kv' is not defined"]);
  });

  test('function bodies are checked and named', () => {
    const { model } = chain();
    const f = new Func('f', 'custom');
    const a = f.body.addInput('fa');
    const n = f.body.addNode({ opType: 'Relu', name: 'fr', inputs: [a], outputs: ['fo'] });
    f.body.addOutput(n.outputs[0]!);
    model.functions.push(f);
    expect(verifyModel(model)).toEqual([]);
    f.body.removeNode(n, { force: true });
    expect(verifyModel(model)).toEqual(["function 'custom::f': graph 'f': graph output 'fo' is not defined"]);
  });
});

describe('verify() throws', () => {
  test('VerifyError lists every problem, its message names the first', () => {
    const { model, g, relu } = chain();
    g.removeNode(relu, { force: true });
    let err: unknown;
    try {
      verify(model);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifyError);
    expect(err).toBeInstanceOf(IrError);
    const ve = err as VerifyError;
    expect(ve.problems.length).toBe(2);
    expect(ve.message).toBe("IR verification failed: graph 'main': node 'neg' (Neg) uses 'a', which nothing defines (dangling use) (and 1 more)");
    expect(() => verify(g)).toThrow(VerifyError);
  });

  test('one problem: no "and more"', () => {
    const { g, add } = chain();
    g.removeNode(add, { force: true });
    expect(() => verify(g)).toThrow(/^IR verification failed: graph 'main': graph output 'c' is not defined$/);
  });
});
