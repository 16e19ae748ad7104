/**
 * eliminate-noop-cast
 *
 * Before:  y = Cast(x, to=T)   where x is already of element type T   (or y = CastLike(x, t), t of x's type)
 * After:   users of y use x
 * Conditions: the element type of x is known (inferred by ctx.shapes(), else declared) and equals
 *   the target type. Cast(Cast(x)) chains are another pass's business.
 */
import { attrInt } from '../src/ir/attribute.js';
import type { Value } from '../src/ir/graph.js';
import type { Pass, PassContext } from '../src/pass/pass.js';
import { Patch } from '../src/pass/patch.js';

function elemType(v: Value | undefined, ctx: PassContext): number | undefined {
  if (!v) return undefined;
  let t: number | undefined;
  try {
    const s = ctx.shapes().types.get(v);
    if (s?.kind === 'tensor' && s.elemType) t = s.elemType;
  } catch (e) {
    ctx.explain(`shape inference failed: ${(e as Error).message}`);
  }
  if (t === undefined && v.type?.kind === 'tensor' && v.type.elemType) t = v.type.elemType;
  return t;
}

export const eliminateNoopCast: Pass = {
  name: 'eliminate-noop-cast',
  description: 'remove Cast/CastLike to the element type the input already has',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    let changes = 0;
    for (const node of graph.nodes) {
      if (node.removed || node.domain !== '' || (node.opType !== 'Cast' && node.opType !== 'CastLike')) continue;
      const x = node.inputs[0];
      const y = node.outputs[0];
      if (!x || !y) continue;
      const from = elemType(x, ctx);
      const to = node.opType === 'Cast' ? attrInt(node.attr('to')) : elemType(node.inputs[1], ctx);
      if (from === undefined || to === undefined || from !== to) continue;
      if (!ctx.allowRewrite(`eliminate-noop-cast: ${node}`)) return changes;
      const patch = new Patch(graph);
      patch.replace(y, x);
      changes += patch.commit();
    }
    return changes;
  },
};
