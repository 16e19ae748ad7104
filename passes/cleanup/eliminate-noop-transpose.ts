/**
 * eliminate-noop-transpose
 *
 * Before:  y = Transpose(x, perm=[0, 1, ..., n-1])
 * After:   users of y use x
 * Conditions: perm is the identity. Without perm (reverse the dims) only when x has rank <= 1.
 *   Also a perm that moves only dims of size 1, keeping the other dims in order: the data order is
 *   unchanged, and the output shape equals the input shape (e.g. [1, 1, 5] with perm [1, 0, 2]).
 */
import { noopEliminationPass } from '../lib/noop-pass.js';
import { shapeOf } from '../lib/query.js';
import { attrInts } from '../../src/ir/attribute.js';
import type { Value } from '../../src/ir/graph.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';

function isNoop(perm: number[] | undefined, x: Value, ctx: PassContext): boolean {
  if (perm && perm.every((p, i) => p === i)) return true;
  const shape = shapeOf(ctx.shapesOrExplain(), x);
  if (!shape) return false;
  if (!perm) return shape.length <= 1;
  if (perm.length !== shape.length) return false;
  // the dims not known to be 1 must stay in order; the size-1 dims may move among themselves
  let last = -1;
  for (const p of perm) {
    if (shape[p]?.value === 1) continue;
    if (p < last) return false;
    last = p;
  }
  // every output dim equals the input dim at its position
  return perm.every((p, i) => shape[p]!.equals(shape[i]!));
}

export const eliminateNoopTranspose: Pass = noopEliminationPass({
  name: 'eliminate-noop-transpose',
  description: 'remove Transpose with an identity permutation (or one that moves only size-1 dims)',
  ops: ['Transpose'],
  isNoop: (node, ctx) => isNoop(attrInts(node.attr('perm')), node.inputs[0]!, ctx),
});
