/**
 * eliminate-noop-cast
 *
 * Before:  y = Cast(x, to=T)   where x is already of element type T   (or y = CastLike(x, t), t of x's type)
 * After:   users of y use x
 * Conditions: the element type of x is known (inferred by ctx.shapes(), else declared) and equals
 *   the target type. Cast(Cast(x)) chains are another pass's business.
 */
import { noopEliminationPass } from '../lib/noop-pass.js';
import { attrInt } from '../../src/ir/attribute.js';
import type { Value } from '../../src/ir/graph.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';

function elemType(v: Value | undefined, ctx: PassContext): number | undefined {
  if (!v) return undefined;
  let t: number | undefined;
  const s = ctx.shapesOrExplain()?.types.get(v);
  if (s?.kind === 'tensor' && s.elemType) t = s.elemType;
  if (t === undefined && v.type?.kind === 'tensor' && v.type.elemType) t = v.type.elemType;
  return t;
}

export const eliminateNoopCast: Pass = noopEliminationPass({
  name: 'eliminate-noop-cast',
  description: 'remove Cast/CastLike to the element type the input already has',
  ops: ['Cast', 'CastLike'],
  isNoop: (node, ctx) => {
    const from = elemType(node.inputs[0], ctx);
    const to = node.opType === 'Cast' ? attrInt(node.attr('to')) : elemType(node.inputs[1], ctx);
    return from !== undefined && to !== undefined && from === to;
  },
});
