/**
 * eliminate-noop-reshape
 *
 * Before:  y = Reshape(x, shape)   with shape(y) == shape(x)
 * After:   users of y use x
 * Conditions: both shapes are known dim by dim from ctx.shapes(): equal sizes, or the same symbolic
 *   expression (e.g. [batch, seq, 32] -> [batch, seq, 32], the target built from Shape(x)).
 */
import { noopEliminationPass } from '../lib/noop-pass.js';
import { shapeOf } from '../lib/query.js';
import type { Sym } from '../../src/analysis/symbolic.js';
import type { Pass } from '../../src/pass/pass.js';

function sameShape(a: Sym[] | undefined, b: Sym[] | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((d, i) => d.equals(b[i]!));
}

export const eliminateNoopReshape: Pass = noopEliminationPass({
  name: 'eliminate-noop-reshape',
  description: 'remove Reshape whose output shape equals its input shape',
  ops: ['Reshape'],
  isNoop: (node, ctx) => sameShape(shapeOf(ctx.shapesOrExplain(), node.inputs[0]!), shapeOf(ctx.shapesOrExplain(), node.outputs[0]!)),
});
