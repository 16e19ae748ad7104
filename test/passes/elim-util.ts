/** Helpers for the eliminate-* / dedupe-* pass tests: If nodes built in code, fixtures, inserting nodes. */
import { attr } from '../../src/ir/attribute.js';
import { GraphBuilder, type ModelBuilder } from '../../src/ir/builder.js';
import { Graph, type Node, type Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { readModel } from '../../src/node/files.js';

/** `If(cond)` with `outputs` outputs; `branches` builds the then/else graphs and returns their outputs. */
export function addIf(
  b: GraphBuilder,
  cond: Value,
  outputs: number,
  branches: (then: GraphBuilder, els: GraphBuilder) => [Value[], Value[]],
): { node: Node; outs: Value[]; then: Graph; els: Graph } {
  const node = b.graph.addNode({ opType: 'If', inputs: [cond], outputs });
  const then = new Graph('then', node);
  const els = new Graph('else', node);
  const [t, e] = branches(new GraphBuilder(then), new GraphBuilder(els));
  t.forEach((v) => then.addOutput(v));
  e.forEach((v) => els.addOutput(v));
  node.attributes.set('then_branch', attr.graph('then_branch', then));
  node.attributes.set('else_branch', attr.graph('else_branch', els));
  return { node, outs: node.outputs as Value[], then, els };
}

export function fixture(name: string): Model {
  return readModel(`fixtures/models/${name}/model.onnx`).model;
}

/** Insert `y = op(v, ...extra)` after value `v` of the main graph: every user of v now uses y. */
export function insertAfter(model: Model, v: Value, op: string, extra: (Value | undefined)[] = [], attrs: Record<string, unknown> = {}, outputs = 1): Node {
  const g = v.graph;
  const users = v.uses.slice();
  const b = new GraphBuilder(g);
  const outs = b.nodeN(op, [v, ...extra], attrs, { outputs });
  for (const u of users) u.node.graph.setInput(u.node, u.slot, outs[0]!);
  g.toposort();
  return outs[0]!.producer!;
}

/** The first value computed by an `op` node of the main graph. */
export function firstOutputOf(model: Model, op: string, nth = 0): Value {
  const n = model.graph.nodes.filter((x) => x.opType === op)[nth];
  if (!n) throw new Error(`no ${op} #${nth}`);
  return n.outputs[0]!;
}

export type { ModelBuilder };
