/**
 * The TypeScript constant evaluator: computes a node's outputs from constant inputs, exactly as
 * ONNX specifies (int64 kept exact with BigInt), for the shape-arithmetic ops and common math ops
 * (src/analysis/eval/). Shape inference calls it to fold constants; ops it does not implement fall
 * back to a runtime (runtime-eval.ts).
 *
 * Returns undefined when the op, dtype or variant is not implemented, an input is missing, or an
 * input or output would exceed MAX_ELEMENTS (1,000,000) elements.
 */
import type { Node } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { evaluateNodeStrict, Refuse } from './eval/index.js';

export { evaluateNodeStrict, evaluatorOps, EVALUATORS, MAX_ELEMENTS, Refuse } from './eval/index.js';

export function evaluateNode(node: Node, inputs: (Tensor | undefined)[], opset: number): Tensor[] | undefined {
  try {
    return evaluateNodeStrict(node, inputs, opset);
  } catch (e) {
    if (e instanceof Refuse) return undefined;
    // an invalid node (shapes that do not fit, bad attributes): not ours to report; inference does
    return undefined;
  }
}
