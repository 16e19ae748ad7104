/**
 * merge-transposes
 *
 * Before:  y = Transpose(x, perm=p1); z = Transpose(y, perm=p2)
 * After:   z = Transpose(x, perm=q)      or   z = x   when q is the identity
 * Conditions: y has one use and is not a graph output. A missing perm is the reversal of the axes
 *   (its rank comes from the other perm, or from shape inference; two missing perms cancel).
 * Formula: y[i] = x[p1[i]] (as axes), z[i] = y[p2[i]] = x[p1[p2[i]]], so q[i] = p1[p2[i]].
 */
import { attrInts } from '../../src/ir/attribute.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { rulePass, type Pass, type Rule } from '../../src/pass/pass.js';
import { matchNode, op, v } from '../../src/pass/pattern.js';
import { rankOf } from '../lib/query.js';

const pattern = op('Transpose', op('Transpose', v('x')).as('inner').oneUse()).as('outer');

type Caps = { x: Value; inner: Node; outer: Node; perm: number[] | null };

function validPerm(p: number[], rank: number): boolean {
  if (p.length !== rank) return false;
  const seen = new Set<number>();
  for (const a of p) {
    if (!Number.isInteger(a) || a < 0 || a >= rank || seen.has(a)) return false;
    seen.add(a);
  }
  return true;
}

/** In a function body an attribute may refer to the caller's: its value is not known here. */
const hasRefAttrs = (n: Node): boolean => [...n.attributes.values()].some((a) => a.refAttrName !== undefined || a.type === 'undefined');

const reversed = (rank: number): number[] => Array.from({ length: rank }, (_, i) => rank - 1 - i);

const rule: Rule<Caps> = {
  name: 'transpose-transpose',
  ops: ['Transpose'],
  match(node, ctx) {
    const caps = matchNode<Caps>(pattern, node);
    if (!caps) return null;
    if (hasRefAttrs(caps.inner) || hasRefAttrs(caps.outer)) return null;
    let p1 = attrInts(caps.inner.attr('perm'));
    let p2 = attrInts(caps.outer.attr('perm'));
    if (!p1 && !p2) return { ...caps, perm: null }; // reverse twice: identity at any rank
    // the declared rank (or a constant's) first: no shape inference when the model says
    const rank = p1?.length ?? p2?.length ?? rankOf(undefined, caps.x) ?? rankOf(ctx.shapesOrExplain(), caps.x);
    if (rank === undefined) return null;
    p1 ??= reversed(rank);
    p2 ??= reversed(rank);
    if (!validPerm(p1, rank) || !validPerm(p2, rank)) {
      ctx.explain(`${node}: perms [${p1}] and [${p2}] do not fit together`);
      return null;
    }
    return { ...caps, perm: p2.map((i) => p1![i]!) };
  },
  rewrite({ x, outer, perm }, patch) {
    const out = outer.outputs[0]!;
    if (perm === null || perm.every((a, i) => a === i)) {
      patch.replace(out, x);
      return;
    }
    patch.replace(out, patch.add('Transpose', [x], { perm }, { name: outer.name || 'Transpose' }));
  },
};

export const mergeTransposes: Pass = rulePass({
  name: 'merge-transposes',
  description: 'merge two consecutive Transposes into one (or none when they cancel)',
  level: 1,
  rules: [rule as Rule],
});
