/**
 * eliminate-noop-pad
 *
 * Before:  y = Pad(x, pads=[0, ..., 0], ...)
 * After:   users of y use x
 * Conditions: every pad is 0 (whatever the mode, constant value or axes). The pads are the
 *   `pads` input from opset 11 (a constant, or known through ctx.shapes()), the `pads` attribute
 *   in opsets 2-10 and `paddings` in opset 1.
 */
import { noopEliminationPass } from '../lib/noop-pass.js';
import { attrInts } from '../../src/ir/attribute.js';
import type { Value } from '../../src/ir/graph.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';

/** Integer contents of `v`: constant, or symbolic values that are all known. */
function intsOf(v: Value | undefined, ctx: PassContext): number[] | undefined {
  if (!v) return undefined;
  const c = constantValue(v);
  if (c) return Array.from(c.toTypedArray() as ArrayLike<number | bigint>, (x) => Number(x));
  const s = ctx.shapesOrExplain()?.symValues.get(v);
  if (s && s.values.every((d) => d.value !== undefined)) return s.values.map((d) => d.value!);
  return undefined;
}

export const eliminateNoopPad: Pass = noopEliminationPass({
  name: 'eliminate-noop-pad',
  description: 'remove Pad whose pads are all zero',
  ops: ['Pad'],
  isNoop: (node, ctx) => {
    const opset = ctx.opset('');
    const pads = opset >= 11 ? intsOf(node.inputs[1], ctx) : attrInts(node.attr(opset < 2 ? 'paddings' : 'pads')) ?? attrInts(node.attr('pads'));
    return pads !== undefined && pads.every((p) => p === 0);
  },
});
