/**
 * simplify-reshape-shape
 *
 * Before:  s = Concat(Unsqueeze(Gather(Shape(x), 0)), Unsqueeze(Gather(Shape(x), 1)), [12], [64])
 *          y = Reshape(x, s)                                  (x: [batch, seq, 768])
 * After:   y = Reshape(x, [0, 0, 12, 64])
 * Conditions: the shape input's contents are known symbolically (shape inference); allowzero is 0;
 *   every entry is a number, or the same dim as the input's at that position (-> 0, "copy"), or
 *   at most one entry is something else (-> -1, "the rest"). The shape arithmetic that computed s
 *   becomes dead and goes. Exporters write Reshape shapes this way for dynamic axes; with the
 *   shape a constant the model has far fewer nodes and runtimes see a static reshape pattern.
 */
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';

export const simplifyReshapeShape: Pass = {
  name: 'simplify-reshape-shape',
  description: "replace a Reshape's computed shape by a constant with 0 (copy a dim) and -1 (the rest)",
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    let changes = 0;
    // One inference serves the whole pass: a rewrite only swaps a Reshape's shape input for an
    // equivalent constant, so no other value's type or contents change.
    const info = ctx.shapesOrExplain();
    if (!info) return 0;
    for (const node of graph.nodes) {
      if (node.removed || node.opType !== 'Reshape' || node.domain !== '') continue;
      const [x, shapeInput] = node.inputs;
      if (!x || !shapeInput || constantValue(shapeInput)) continue;
      if ((node.attr('allowzero')?.value ?? 0) !== 0) continue;
      const sym = info.symValues.get(shapeInput);
      const xt = info.types.get(x);
      if (!sym || sym.dims.length !== 1 || xt?.kind !== 'tensor' || !xt.shape) {
        ctx.explain(`${node}: the shape input's contents are not known`);
        continue;
      }
      const out: number[] = [];
      let rest = 0;
      sym.values.forEach((d, i) => {
        if (d.value !== undefined) out.push(d.value);
        else if (i < xt.shape!.length && xt.shape![i]!.equals(d)) out.push(0);
        else { out.push(-1); rest++; }
      });
      if (rest > 1 || (rest === 1 && sym.values.some((d) => d.value === -1))) {
        ctx.explain(`${node}: shape [${sym.values.join(',')}] has more than one dim that is not the input's`);
        continue;
      }
      if (!ctx.allowRewrite(`simplify-reshape-shape at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      const shape = patch.constant(Tensor.int64(out), `${node.name || 'reshape'}_shape`);
      patch.replace(node.outputs[0]!, patch.copy(node, [x, shape], [])[0]!);
      changes += patch.commit();
    }
    return changes;
  },
};
