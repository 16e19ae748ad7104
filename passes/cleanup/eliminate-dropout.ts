/**
 * eliminate-dropout
 *
 * Before:  y, mask = Dropout(x, ratio?, training_mode?)
 * After:   users of y use x; users of mask use a constant all-true bool tensor
 * Conditions: inference mode: opset >= 12, training_mode absent or a constant false; opset 7-11,
 *   always; opset < 7, the is_test attribute is nonzero (its default 0 means training). A used
 *   mask needs a static input shape (it becomes a constant of that shape) and opset >= 10 (before
 *   that the mask has the input's type and no defined inference value): otherwise no rewrite.
 */
import { attrInt } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';

/** Is this Dropout known to run in inference mode (output = input)? */
export function dropoutIsInference(node: Node, opset: number): boolean {
  if (opset < 7) return attrInt(node.attr('is_test'), 0) !== 0;
  if (opset < 12) return true;
  const mode = node.inputs[2];
  if (!mode) return true;
  const t = constantValue(mode);
  if (!t || t.elementCount !== 1) return false;
  return Number(t.toTypedArray()[0]) === 0;
}

function staticShape(node: Node, ctx: PassContext): number[] | undefined {
  const x = node.inputs[0]!;
  let dims: (number | undefined)[] | undefined;
  const t = ctx.shapesOrExplain()?.types.get(x);
  if (t?.kind === 'tensor' && t.shape) dims = t.shape.map((d) => d.value);
  if (!dims && x.type?.kind === 'tensor' && x.type.shape) dims = x.type.shape.map((d) => (typeof d === 'number' ? d : undefined));
  if (!dims || dims.some((d) => d === undefined)) return undefined;
  return dims as number[];
}

export const eliminateDropout: Pass = {
  name: 'eliminate-dropout',
  description: 'remove Dropout in inference mode (output = input, mask = all true)',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    const opset = ctx.opset('');
    let changes = 0;
    for (const node of graph.nodes) {
      if (node.removed || node.opType !== 'Dropout' || node.domain !== '' || !node.inputs[0]) continue;
      if (!dropoutIsInference(node, opset)) {
        ctx.explain(`${node}: not known to be in inference mode`);
        continue;
      }
      const [y, mask] = node.outputs;
      const maskUsed = mask !== undefined && (mask.uses.length > 0 || mask.isGraphOutput);
      let maskTensor: Tensor | undefined;
      if (maskUsed) {
        const dims = opset >= 10 ? staticShape(node, ctx) : undefined;
        if (!dims) {
          ctx.explain(`${node}: its mask is used and ${opset >= 10 ? 'the input shape is not static' : 'the opset is < 10'}`);
          continue;
        }
        const n = dims.reduce((a, b) => a * b, 1);
        maskTensor = Tensor.fromTypedArray(DataType.BOOL, dims, new Uint8Array(n).fill(1));
      }
      if (!ctx.allowRewrite(`eliminate-dropout: ${node}`)) return changes;
      const patch = ctx.patch(graph);
      if (y) patch.replace(y, node.inputs[0]);
      if (mask && maskTensor) patch.replace(mask, patch.constant(maskTensor, `${mask.name}_true`));
      patch.remove(node);
      changes += patch.commit();
    }
    return changes;
  },
};
