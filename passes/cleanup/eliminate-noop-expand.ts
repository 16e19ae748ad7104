/**
 * eliminate-noop-expand
 *
 * Before:  y = Expand(x, shape)   with shape(y) == shape(x), e.g. x: [batch, 4], shape = [1, 4] or Shape(x)
 * After:   users of y use x
 * Conditions: the shape operand's contents are known (constant, or symbolically through ctx.shapes()),
 *   it has no more entries than x has dims, and each entry is 1 or equal to x's aligned dim (same
 *   size, or the same symbolic expression); the inferred output shape equals x's shape as well.
 *   Guard: inference unifies a symbolic dim with a constant it is broadcast against (x: [n, 3]
 *   expanded to [4, 3] makes n = 4, though n = 1 is legal and then the Expand is no no-op), so a
 *   constant entry > 1 is trusted only when no symbol of the model was unified to that constant.
 */
import { noopEliminationPass } from '../lib/noop-pass.js';
import { shapeOf } from '../lib/query.js';
import { Sym } from '../../src/analysis/symbolic.js';
import type { InferResult } from '../../src/analysis/infer.js';
import type { Value } from '../../src/ir/graph.js';
import type { Pass } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';


/** Contents of a 1-D int64 shape operand: constant, or symbolic. */
function shapeOperand(v: Value, shapes: InferResult): Sym[] | undefined {
  const c = constantValue(v);
  if (c) {
    if (c.dims.length !== 1) return undefined;
    const out: Sym[] = [];
    for (const x of Array.from(c.toTypedArray() as ArrayLike<number | bigint>)) {
      const n = Number(x);
      if (!Number.isSafeInteger(n)) return undefined;
      out.push(Sym.const(n));
    }
    return out;
  }
  const s = shapes.symValues.get(v);
  return s && s.dims.length === 1 ? s.values : undefined;
}

export const eliminateNoopExpand: Pass = noopEliminationPass({
  name: 'eliminate-noop-expand',
  description: 'remove Expand whose output shape equals its input shape',
  ops: ['Expand'],
  isNoop: (node, ctx) => {
    const [x, s] = node.inputs;
    const y = node.outputs[0];
    if (!x || !s || !y) return false;
    const shapes = ctx.shapesOrExplain();
    if (!shapes) return false;
    const xs = shapeOf(shapes, x);
    const ys = shapeOf(shapes, y);
    const target = shapeOperand(s, shapes);
    if (!xs || !ys || !target || target.length > xs.length || ys.length !== xs.length) return false;
    const off = xs.length - target.length;
    if (!target.every((d, i) => d.value === 1 || d.equals(xs[off + i]!))) return false;
    const fromUnification = new Set([...shapes.unified.values()].map((d) => d.value).filter((n) => n !== undefined));
    if (target.some((d) => d.value !== undefined && d.value !== 1 && fromUnification.has(d.value))) {
      ctx.explain(`${node}: a dim of the input may be a symbol unified with ${target.map(String).join(',')}`);
      return false;
    }
    return ys.every((d, i) => d.equals(xs[i]!));
  },
});
