/** The constant evaluator's op table and its strict entry point (throws Refuse where it does not apply). */
import type { Node } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import { checkSize, refuse, type Evaluator } from './core.js';
import { ELEMENTWISE } from './elementwise.js';
import { REDUCE_OPS } from './reduce.js';
import { SHAPE_OPS } from './shape.js';

export { Refuse, MAX_ELEMENTS } from './core.js';

/** Evaluators of default-domain (ai.onnx) ops, by op type. */
export const EVALUATORS: Readonly<Record<string, Evaluator>> = { ...ELEMENTWISE, ...SHAPE_OPS, ...REDUCE_OPS };

/** The ops the TypeScript evaluator implements (for some dtypes and variants). */
export function evaluatorOps(): string[] {
  return Object.keys(EVALUATORS).sort();
}

/**
 * Evaluate `node` on constant inputs. Throws Refuse when the op, dtype, variant or size is not
 * handled; other errors are bugs or invalid nodes.
 */
export function evaluateNodeStrict(node: Node, inputs: (Tensor | undefined)[], opset: number): Tensor[] {
  if (node.domain !== '' && node.domain !== 'ai.onnx') refuse(`domain ${node.domain}`);
  const f = EVALUATORS[node.opType];
  if (!f || !Object.prototype.hasOwnProperty.call(EVALUATORS, node.opType)) refuse(`op ${node.opType}`);
  if (node.subgraphs().length) refuse('node with subgraphs');
  // optional inputs that are absent in the node stay undefined; an input the node has but whose value is unknown is a refusal
  node.inputs.forEach((v, i) => { if (v && !inputs[i]) refuse(`input ${i} is not constant`); });
  for (const t of inputs) if (t) checkSize(t.dims);
  const outs = f(node, inputs, opset);
  for (const t of outs) checkSize(t.dims);
  return outs;
}
