/**
 * eliminate-noop-slice
 *
 * Before:  y = Slice(x, starts, ends, axes?, steps?)   taking every element of each sliced axis
 * After:   users of y use x
 * Conditions: starts/ends/axes/steps are known (constants, or symbolic contents through
 *   ctx.shapes(); attributes before opset 10) and, on every sliced axis: step 1; start 0 (or a
 *   negative start that clamps to 0: <= -dim for a static dim, <= -2^62 for a symbolic one); end
 *   >= dim for a static dim, >= 2^62 (INT64_MAX as exporters write it) or the very same symbolic
 *   expression as the dim (ends built from Shape(x)) for a symbolic one. x's rank must be known.
 */
import { noopEliminationPass } from '../lib/noop-pass.js';
import type { InferResult } from '../../src/analysis/infer.js';
import { Sym } from '../../src/analysis/symbolic.js';
import { attrInts } from '../../src/ir/attribute.js';
import type { Node, Value } from '../../src/ir/graph.js';
import type { Pass } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';

/** Beyond any real dim: INT64_MAX and its neighbours as exporters write them. */
const HUGE = 2 ** 62;

/** Entries of a 1-D operand: numbers when constant (int64 extremes become +-9.2e18), else symbolic. */
function entries(v: Value | undefined, shapes: InferResult): (number | Sym)[] | undefined {
  if (!v) return undefined;
  const c = constantValue(v);
  if (c) return Array.from(c.toTypedArray() as ArrayLike<number | bigint>, (x) => Number(x));
  const s = shapes.symValues.get(v);
  if (!s) return undefined;
  return s.values.map((d) => d.value ?? d);
}

function takesAll(dim: Sym, start: number | Sym, end: number | Sym, step: number | Sym): boolean {
  if (step !== 1) return false;
  const n = dim.value;
  if (typeof start !== 'number') return false;
  const startOk = start === 0 || (n !== undefined ? start <= -n : start <= -HUGE);
  if (!startOk) return false;
  if (typeof end !== 'number') return end.equals(dim);
  return n !== undefined ? end >= n : end >= HUGE;
}

function isNoop(node: Node, opset: number, shapes: InferResult): boolean {
  const x = node.inputs[0]!;
  const t = shapes.types.get(x);
  const shape = t?.kind === 'tensor' ? t.shape : undefined;
  if (!shape) return false;
  const rank = shape.length;
  let starts: (number | Sym)[] | undefined;
  let ends: (number | Sym)[] | undefined;
  let axes: (number | Sym)[] | undefined;
  let steps: (number | Sym)[] | undefined;
  if (opset < 10) {
    starts = attrInts(node.attr('starts'));
    ends = attrInts(node.attr('ends'));
    axes = attrInts(node.attr('axes'));
  } else {
    starts = entries(node.inputs[1], shapes);
    ends = entries(node.inputs[2], shapes);
    if (node.inputs[3]) {
      axes = entries(node.inputs[3], shapes);
      if (!axes) return false;
    }
    if (node.inputs[4]) {
      steps = entries(node.inputs[4], shapes);
      if (!steps) return false;
    }
  }
  if (!starts || !ends || starts.length !== ends.length) return false;
  axes ??= starts.map((_, i) => i);
  steps ??= starts.map(() => 1);
  if (axes.length !== starts.length || steps.length !== starts.length) return false;
  return axes.every((a, i) => {
    if (typeof a !== 'number' || a < -rank || a >= rank) return false;
    const dim = shape[a < 0 ? a + rank : a]!;
    return takesAll(dim, starts[i]!, ends[i]!, steps[i]!);
  });
}

export const eliminateNoopSlice: Pass = noopEliminationPass({
  name: 'eliminate-noop-slice',
  description: 'remove Slice that takes whole dims (start 0, end past the dim, step 1)',
  ops: ['Slice'],
  isNoop: (node, ctx) => {
    const shapes = ctx.shapesOrExplain();
    return shapes !== undefined && isNoop(node, ctx.opset(''), shapes);
  },
});
