/**
 * fuse-pad-into-conv
 *
 * Before:  p = Pad(x, pads, 0);  y = Conv(p, W, b, pads=q)        (or AveragePool(p, pads=q, count_include_pad=1))
 * After:   y = Conv(x, W, b, pads=q + spatial part of pads)       (or AveragePool(x, pads=q + ..., count_include_pad=1))
 * Conditions:
 *   - Pad: mode 'constant', padding value 0 (attribute `value` before opset 11, constant input
 *     `constant_value` from opset 11, absent = 0); pads known (attribute `paddings` (opset 1) /
 *     `pads` (opset 2-10), constant input from opset 11, with an optional constant `axes` input
 *     from opset 18); every pad >= 0, and those on N (axis 0) and C (axis 1) are 0;
 *   - the consumer's auto_pad is NOTSET (or absent);
 *   - AveragePool: count_include_pad=1 (the padded zeros are counted, as when Pad made them) and
 *     ceil_mode=0. MaxPool is not handled (zero padding is not -inf padding).
 *   - the Pad may have other users: it is folded into each consumer that qualifies, and goes away
 *     with its last use.
 * Formula:  pads'[i] = pads[i] + padBegin[2 + i];  pads'[S + i] = pads[S + i] + padEnd[2 + i]   (S spatial dims)
 */
import { attr, attrInt, attrInts, attrString, type Attribute } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';
import { rankOf, scalarOf } from '../lib/query.js';

type Caps = { node: Node; pad: Node; x: Value; pads: number[] };

/** Integer contents of a constant int64/int32 tensor. */
function ints(val: Value | undefined): number[] | undefined {
  const t = constantValue(val);
  if (!t || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32) || t.dims.length !== 1) return undefined;
  return Array.from(t.toTypedArray() as ArrayLike<number | bigint>, (x) => Number(x));
}

/** The pad values read: float constants (half ones decoded, so -0 is zero too). */
const FLOAT_TYPES: readonly number[] = [DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16];

/** Is the constant scalar (or one-element) `val` zero? Absent counts as zero. */
function isZero(val: Value | undefined): boolean {
  return !val || scalarOf(val, FLOAT_TYPES) === 0;
}

/** The Pad's padding per axis as [begins..., ends...] over all axes of its input, or undefined when it cannot be folded. */
function padAmounts(pad: Node, ctx: PassContext): number[] | undefined {
  const opset = ctx.opset();
  if ((attrString(pad.attr('mode'), 'constant') ?? 'constant') !== 'constant') return undefined;
  if (opset < 11) {
    const value = pad.attr('value');
    if (value && (value.type !== 'float' || value.value !== 0)) return undefined;
    return attrInts(pad.attr(opset < 2 ? 'paddings' : 'pads'));
  }
  const pads = ints(pad.inputs[1]);
  if (!pads || !isZero(pad.inputs[2])) return undefined;
  const axesVal = opset >= 18 ? pad.inputs[3] : undefined;
  if (!axesVal) return pads;
  const axes = ints(axesVal);
  const rank = rankOf(ctx.shapesOrExplain(), pad.inputs[0]);
  if (!axes || rank === undefined || pads.length !== 2 * axes.length) return undefined;
  const full = new Array<number>(2 * rank).fill(0);
  for (let i = 0; i < axes.length; i++) {
    const a = axes[i]! < 0 ? axes[i]! + rank : axes[i]!;
    if (a < 0 || a >= rank) return undefined;
    full[a] = full[a]! + pads[i]!;
    full[rank + a] = full[rank + a]! + pads[axes.length + i]!;
  }
  return full;
}

const rule: Rule<Caps> = {
  name: 'pad-into-consumer',
  ops: ['Conv', 'AveragePool'],
  match: (node, ctx) => {
    const p = node.inputs[0];
    const pad = p?.producer;
    if (!p || !pad || pad.opType !== 'Pad' || pad.domain !== '' || p.producerSlot !== 0 || !pad.inputs[0]) return null;
    if ((attrString(node.attr('auto_pad'), 'NOTSET') ?? 'NOTSET') !== 'NOTSET') return null;
    if (node.opType === 'AveragePool') {
      if (attrInt(node.attr('count_include_pad'), 0) !== 1 || attrInt(node.attr('ceil_mode'), 0) !== 0) {
        ctx.explain(`${node}: AveragePool without count_include_pad=1 (or with ceil_mode=1): Pad not folded`);
        return null;
      }
    }
    const amounts = padAmounts(pad, ctx);
    if (!amounts || amounts.length % 2 !== 0 || amounts.some((a) => a < 0)) return null;
    const rank = amounts.length / 2;
    const spatial = rank - 2;
    if (spatial < 1) return null;
    if (amounts[0] !== 0 || amounts[1] !== 0 || amounts[rank] !== 0 || amounts[rank + 1] !== 0) return null;
    const old = attrInts(node.attr('pads')) ?? new Array<number>(2 * spatial).fill(0);
    if (old.length !== 2 * spatial) return null;
    const pads = old.map((q, i) => q + (i < spatial ? amounts[2 + i]! : amounts[rank + 2 + (i - spatial)]!));
    return { node, pad, x: pad.inputs[0], pads };
  },
  rewrite: ({ node, x, pads }, patch) => {
    const attrs = new Map<string, Attribute>(node.attributes);
    attrs.set('pads', attr.ints('pads', pads));
    const y = patch.add(node.opType, [x, ...node.inputs.slice(1)], [...attrs.values()], { name: node.name || node.opType });
    patch.replace(node.outputs[0]!, y);
  },
};

export const fusePadIntoConv = rulePass({
  name: 'fuse-pad-into-conv',
  description: 'fold a zero constant Pad of the spatial dims into the pads of the Conv or AveragePool (count_include_pad=1) that follows',
  level: 1,
  rules: [rule as Rule],
});
