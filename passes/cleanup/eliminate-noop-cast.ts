/**
 * eliminate-noop-cast
 *
 * Before:  y = Cast(x, to=T)   where x is already of element type T   (or y = CastLike(x, t), t of x's type)
 * After:   users of y use x
 * Conditions: the element type of x is known (inferred by ctx.shapes(), else declared) and equals
 *   the target type. Cast(Cast(x)) chains are another pass's business.
 */
import { noopEliminationPass } from '../lib/noop-pass.js';
import { elemTypeOf } from '../lib/query.js';
import { attrInt } from '../../src/ir/attribute.js';
import type { Pass } from '../../src/pass/pass.js';

export const eliminateNoopCast: Pass = noopEliminationPass({
  name: 'eliminate-noop-cast',
  description: 'remove Cast/CastLike to the element type the input already has',
  ops: ['Cast', 'CastLike'],
  isNoop: (node, ctx) => {
    const from = elemTypeOf(ctx.shapesOrExplain(), node.inputs[0]);
    const to = node.opType === 'Cast' ? attrInt(node.attr('to')) : elemTypeOf(ctx.shapesOrExplain(), node.inputs[1]);
    return from !== undefined && to !== undefined && from === to;
  },
});
