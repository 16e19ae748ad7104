/** Constant evaluator (placeholder until the evaluator lands): evaluates nothing. */
import type { Node } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';

export function evaluateNode(_node: Node, _inputs: (Tensor | undefined)[], _opset: number): Tensor[] | undefined {
  return undefined;
}
