/**
 * merge-squeeze-unsqueeze
 *
 * Before:  y = Unsqueeze(x, a); z = Unsqueeze(y, b)      After:  z = Unsqueeze(x, c)
 * Before:  y = Squeeze(x, a);   z = Squeeze(y, b)        After:  z = Squeeze(x, c)
 * Before:  y = Unsqueeze(x, a); z = Squeeze(y, a)        After:  z = x
 * Before:  y = Squeeze(x, a);   z = Unsqueeze(y, a)      After:  z = x
 * Conditions: axes are constants (attribute before opset 13, input from 13); the ranks needed to
 *   normalize negative axes come from shape inference; a Squeeze without axes needs the static
 *   shape of its input (its axes are then the dims of size 1). Merges need y to have one use and
 *   not be a graph output; cancellations do not. New nodes take axes in the form of the model's
 *   opset (attribute < 13, int64 input >= 13).
 * Formula (rank r of x, axes normalized to [0, rank)):
 *   Unsqueeze: z has rank r+|a|+|b|; b are new positions of z; z's other positions, in order, are
 *     y's axes 0..r+|a|-1, of which a are new: c = b ∪ { others(z)[j] : j in a }.
 *   Squeeze: a are removed from x; y's axis j is others(x)[j]: c = a ∪ { others(x)[j] : j in b }.
 *   Unsqueeze then Squeeze of the same axes (normalized at rank r+|a|) is the identity; Squeeze
 *   then Unsqueeze of the same axes (normalized at rank r) too (the squeezed dims were all 1).
 */
import { attrInts } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Patch } from '../../src/pass/patch.js';
import { rulePass, type Pass, type PassContext, type Rule } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';
import { staticDims } from '../lib/query.js';

type Kind = 'Squeeze' | 'Unsqueeze';

type Caps =
  | { kind: 'cancel'; x: Value; outer: Node }
  | { kind: 'merge'; op: Kind; x: Value; outer: Node; axes: number[] };

/** Axes of a Squeeze/Unsqueeze: a list, null when absent (Squeeze: all 1-dims), undefined when unknown. */
function axesOf(node: Node): number[] | null | undefined {
  const a = attrInts(node.attr('axes'));
  if (a) return a;
  const v = node.inputs[1];
  if (!v) return null;
  const t = constantValue(v);
  if (!t || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32) || t.dims.length > 1) return undefined;
  return Array.from(t.toTypedArray() as ArrayLike<number | bigint>, (x) => Number(x));
}

/** Axes normalized to [0, rank), sorted; undefined when out of range or repeated. */
function normalize(axes: number[], rank: number): number[] | undefined {
  const out = axes.map((a) => (a < 0 ? a + rank : a));
  if (out.some((a) => !Number.isInteger(a) || a < 0 || a >= rank)) return undefined;
  if (new Set(out).size !== out.length) return undefined;
  return out.sort((p, q) => p - q);
}

/** Positions 0..rank-1 not in `axes`, in order. */
function others(axes: number[], rank: number): number[] {
  const s = new Set(axes);
  return Array.from({ length: rank }, (_, i) => i).filter((i) => !s.has(i));
}

/** Squeeze axes: given ones, or the static 1-dims of the input when absent. */
function squeezeAxes(node: Node, ctx: PassContext): { axes: number[]; rank: number } | undefined {
  const x = node.inputs[0]!;
  const shape = staticDims(ctx.shapesOrExplain(), x);
  if (!shape) return undefined;
  const axes = axesOf(node);
  if (axes === undefined) return undefined;
  if (axes === null) {
    if (shape.some((d) => d === undefined)) return undefined;
    return { axes: shape.flatMap((d, i) => (d === 1 ? [i] : [])), rank: shape.length };
  }
  const n = normalize(axes, shape.length);
  return n ? { axes: n, rank: shape.length } : undefined;
}

/** Unsqueeze axes normalized at its output rank (input rank + |axes|). */
function unsqueezeAxes(node: Node, ctx: PassContext): { axes: number[]; rank: number } | undefined {
  const shape = staticDims(ctx.shapesOrExplain(), node.inputs[0]!);
  const axes = axesOf(node);
  if (!shape || !axes) return undefined;
  const rank = shape.length + axes.length;
  const n = normalize(axes, rank);
  return n ? { axes: n, rank } : undefined;
}

/** In a function body an attribute may refer to the caller's: its value is not known here. */
const hasRefAttrs = (n: Node): boolean => [...n.attributes.values()].some((a) => a.refAttrName !== undefined || a.type === 'undefined');

const same = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

const rule: Rule<Caps> = {
  name: 'squeeze-unsqueeze',
  ops: ['Squeeze', 'Unsqueeze'],
  preservesTypes: true,
  match(outer, ctx) {
    const y = outer.inputs[0];
    const inner = y?.producer;
    if (!y || !inner || inner.removed || inner.domain !== '' || inner.graph !== outer.graph) return null;
    if (hasRefAttrs(inner) || hasRefAttrs(outer)) return null;
    if (inner.opType !== 'Squeeze' && inner.opType !== 'Unsqueeze') return null;
    const x = inner.inputs[0];
    if (!x) return null;
    const oneUse = y.uses.length === 1 && !y.isGraphOutput;
    const ia = inner.opType === 'Squeeze' ? squeezeAxes(inner, ctx) : unsqueezeAxes(inner, ctx);
    const oa = outer.opType === 'Squeeze' ? squeezeAxes(outer, ctx) : unsqueezeAxes(outer, ctx);
    if (!ia || !oa) {
      ctx.explain(`${outer}: axes or ranks of ${inner} and ${outer} are not known`);
      return null;
    }
    if (inner.opType !== outer.opType) {
      // Unsqueeze(a) then Squeeze(a): both normalized at the rank of y; Squeeze(a) then Unsqueeze(a): at the rank of x
      if (same(ia.axes, oa.axes)) return { kind: 'cancel', x, outer };
      return null;
    }
    if (!oneUse) return null;
    let axes: number[];
    if (outer.opType === 'Unsqueeze') {
      const rest = others(oa.axes, oa.rank);
      axes = [...oa.axes, ...ia.axes.map((j) => rest[j]!)];
    } else {
      const rest = others(ia.axes, ia.rank);
      axes = [...ia.axes, ...oa.axes.map((j) => rest[j]!)];
    }
    if (axes.length === 0) return { kind: 'cancel', x, outer }; // Squeezes that remove nothing
    return { kind: 'merge', op: outer.opType as Kind, x, outer, axes: axes.sort((p, q) => p - q) };
  },
  rewrite(caps, patch, ctx) {
    const z = caps.outer.outputs[0]!;
    if (caps.kind === 'cancel') {
      patch.replace(z, caps.x);
      return;
    }
    patch.replace(z, makeNode(patch, ctx, caps.op, caps.x, caps.axes, caps.outer.name || caps.op));
  },
};

function makeNode(patch: Patch, ctx: PassContext, op: Kind, x: Value, axes: number[], name: string): Value {
  if (ctx.opset() >= 13) return patch.add(op, [x, patch.constant(Tensor.int64(axes), `${name}_axes`)], {}, { name });
  return patch.add(op, [x], { axes }, { name });
}

export const mergeSqueezeUnsqueeze: Pass = rulePass({
  name: 'merge-squeeze-unsqueeze',
  description: 'merge consecutive Unsqueezes (or Squeezes) into one; remove an Unsqueeze/Squeeze pair on the same axes',
  level: 1,
  rules: [rule as Rule],
});
