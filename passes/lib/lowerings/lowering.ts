/**
 * A Lowering writes one contrib op (an op only some runtimes have, such as com.microsoft's fusions)
 * in standard ONNX ops, for targets that cannot run it (passes/lower/lower-contrib-ops.ts).
 *
 * A lowering is the op's definition, not an approximation: each is checked numerically against
 * onnxruntime's own kernel on one-node models (test/passes/lower-contrib-ops*.test.ts).
 */
import type { Node, Value } from '../../../src/ir/graph.js';
import type { PassContext } from '../../../src/pass/pass.js';
import type { Emitter } from '../emit.js';

export interface Lowering {
  readonly domain: string;
  readonly op: string;
  /**
   * Write `node` through `e` (nothing is committed here); return the value that replaces each of the
   * node's outputs (undefined where the output is unused), or why it cannot be lowered (shown with
   * --explain; the node then stays and the target's check reports it).
   */
  lower(node: Node, e: Emitter, ctx: PassContext): (Value | undefined)[] | string;
}

/** An output that is used (by a node or as a graph or subgraph output). */
export function used(v: Value | undefined): v is Value {
  return v !== undefined && (v.uses.length > 0 || v.isReturned);
}
