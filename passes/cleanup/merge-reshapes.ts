/**
 * merge-reshapes
 *
 * Before:  y = Reshape(x, s1) | Flatten(x) | Squeeze(x, a) | Unsqueeze(x, a);  z = Reshape(y, s2)
 * After:   z = Reshape(x, s2')
 * Conditions: s2 is a constant; every inner op only reinterprets the shape (row-major order is
 *   kept), so only the outer shape matters. A 0 in s2 (allowzero=0) copies dim i of the Reshape's
 *   *input*, which changes from y to x: allowed when shape inference shows y[i] == x[i], or y[i]
 *   is static (then s2' has that number in place of the 0); otherwise no rewrite. With
 *   allowzero=1 a 0 is a literal 0 and s2 is used as it is. -1 is kept (element count unchanged).
 *   The inner op may have other uses (it then stays for them).
 * Formula: reshape(reshape(x, s1), s2) = reshape(x, s2) (both keep row-major element order).
 */
import { attrInt } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { rulePass, type Pass, type Rule } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';
import { shapeOf } from '../lib/query.js';

const INNER = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

type Caps = { x: Value; inner: Node; outer: Node; shape: Value | Tensor };

function ints(t: Tensor): number[] | undefined {
  if (t.dataType !== DataType.INT64 || t.dims.length !== 1) return undefined;
  return Array.from(t.toTypedArray() as BigInt64Array, (x) => Number(x));
}

/** In a function body an attribute may refer to the caller's: its value is not known here. */
const hasRefAttrs = (n: Node): boolean => [...n.attributes.values()].some((a) => a.refAttrName !== undefined || a.type === 'undefined');

const rule: Rule<Caps> = {
  name: 'reshape-of-reshape',
  ops: ['Reshape'],
  match(outer, ctx) {
    const y = outer.inputs[0];
    const s2v = outer.inputs[1];
    const inner = y?.producer;
    if (!y || !s2v || !inner || inner.removed || inner.domain !== '' || !INNER.has(inner.opType)) return null;
    if (inner.graph !== outer.graph || hasRefAttrs(inner) || hasRefAttrs(outer)) return null;
    const x = inner.inputs[0];
    if (!x) return null;
    const t2 = constantValue(s2v);
    if (!t2) return null;
    const s2 = ints(t2);
    if (!s2) return null;
    const allowZero = ctx.opset() >= 14 && attrInt(outer.attr('allowzero'), 0) !== 0;
    if (allowZero || !s2.includes(0)) return { x, inner, outer, shape: s2v };
    // 0 copies the input's dim: the same in x and y, or known statically
    const xs = shapeOf(ctx.shapesOrExplain(), x);
    const ys = shapeOf(ctx.shapesOrExplain(), y);
    const fixed = s2.slice();
    for (let i = 0; i < s2.length; i++) {
      if (s2[i] !== 0) continue;
      const yd = ys?.[i];
      const xd = xs?.[i];
      if (yd && xd && yd.equals(xd)) continue;
      if (yd?.value !== undefined) {
        fixed[i] = yd.value;
        continue;
      }
      ctx.explain(`${outer}: shape entry ${i} is 0 (copy the input's dim), and dim ${i} of '${y.name}' is not known to equal that of '${x.name}'`);
      return null;
    }
    return { x, inner, outer, shape: fixed.some((d, i) => d !== s2[i]) ? Tensor.int64(fixed) : s2v };
  },
  rewrite({ x, outer, shape }, patch) {
    const s = shape instanceof Tensor ? patch.constant(shape, `${outer.name || 'reshape'}_shape`) : shape;
    const attrs = [...outer.attributes.values()];
    patch.replace(outer.outputs[0]!, patch.add('Reshape', [x, s], attrs, { name: outer.name || 'Reshape' }));
  },
};

export const mergeReshapes: Pass = rulePass({
  name: 'merge-reshapes',
  description: 'Reshape of a Reshape/Flatten/Squeeze/Unsqueeze with a constant shape becomes one Reshape of the original input',
  level: 1,
  rules: [rule as Rule],
});
