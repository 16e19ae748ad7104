/**
 * Rules for tensor-manipulation ops that move or select data (Transpose, Split, Tile, Flatten,
 * GatherElements/GatherND, Scatter*, OneHot, NonZero, Unique, Compress), generators (EyeLike,
 * Random*, Bernoulli, Multinomial), string/text ops (StringNormalizer, TfIdfVectorizer) and the
 * two losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss).
 */
import { DataType } from '../../ir/dtype.js';
import type { InferContext, Rule, RuleTable } from '../infer.js';
import { Sym } from '../symbolic.js';
import { tensorInfo, type OutputInfo } from '../types.js';
import { INT64, constShape, normAxis, product, sameAs, withSym } from './common.js';

const transpose: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  if (!t.shape) return [{ type: tensorInfo(t.elemType) }];
  const rank = t.shape.length;
  const perm = ctx.attrInts('perm') ?? t.shape.map((_, k) => rank - 1 - k);
  if (perm.length !== rank) ctx.error(`perm has ${perm.length} entries for rank ${rank}`);
  const out = perm.map((p) => t.shape![normAxis(ctx, p, rank)]!);
  const type = tensorInfo(t.elemType, out);
  // rank <= 1: the contents are unchanged
  const s = ctx.sym(0);
  return [s && rank <= 1 ? { type, sym: s } : { type }];
};

/** Sizes of the parts of a split of a dim `d` into `n` parts as equal as possible (opset 18 rounding). */
function equalParts(d: Sym, n: number, exactOnly: boolean): Sym[] {
  const v = d.value;
  if (v !== undefined) {
    const chunk = Math.ceil(v / n);
    return Array.from({ length: n }, (_, k) => Sym.const(Math.max(0, Math.min(chunk, v - chunk * k))));
  }
  const q = d.floorDiv(n);
  if (exactOnly || q.mul(n).equals(d)) return Array.from({ length: n }, () => q);
  const c = d.ceilDiv(n);
  return Array.from({ length: n }, (_, k) => (k < n - 1 ? c : d.sub(c.mul(n - 1))));
}

const split: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const n = ctx.outputCount;
  if (!t.shape) return Array.from({ length: n }, () => ({ type: tensorInfo(t.elemType) }));
  const rank = t.shape.length;
  const axis = normAxis(ctx, ctx.attrInt('axis', 0), rank);
  const d = t.shape[axis]!;
  let parts: (Sym | undefined)[];
  // split sizes: attribute before opset 13 (opset 1 also allowed an input), input from 13
  const splitAttr = ctx.opset < 13 ? ctx.attrInts('split') : undefined;
  if (splitAttr) parts = splitAttr.map((x) => Sym.const(x));
  else if (ctx.has(1)) {
    const s = ctx.sym(1);
    parts = s ? s.values : Array.from({ length: n }, () => undefined);
  } else {
    // equal parts; opset 18's num_outputs allows a smaller last part, earlier opsets need divisibility
    const numOutputs = ctx.opset >= 18 ? ctx.attrInt('num_outputs') : undefined;
    parts = equalParts(d, numOutputs ?? n, numOutputs === undefined);
  }
  const src = ctx.sym(0);
  let offset = 0;
  return Array.from({ length: n }, (_, k): OutputInfo => {
    const len = parts[k] ?? ctx.fresh();
    const shape = t.shape!.slice();
    shape[axis] = len;
    const type = tensorInfo(t.elemType, shape);
    // splitting a shape vector: each part's contents
    if (rank === 1 && src && offset >= 0 && len.value !== undefined) {
      const vals = src.values.slice(offset, offset + len.value);
      offset += len.value;
      if (vals.length === len.value) return withSym(type, vals);
    } else offset = -1;
    return { type };
  });
};

const tile: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  if (!t.shape) return [{ type: tensorInfo(t.elemType) }];
  const reps = ctx.sym(1);
  const out = t.shape.map((d, k) => {
    const r = reps?.values[k];
    return r ? d.mul(r) : ctx.fresh();
  });
  return [{ type: tensorInfo(t.elemType, out) }];
};

const flatten: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const axisAttr = ctx.attrInt('axis', 1);
  if (!t.shape) return [{ type: tensorInfo(t.elemType, axisAttr === 0 ? [Sym.ONE, ctx.fresh()] : [ctx.fresh(), ctx.fresh()]) }];
  const rank = t.shape.length;
  const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
  if (axis < 0 || axis > rank) ctx.error(`axis ${axisAttr} out of range for rank ${rank}`);
  return [{ type: tensorInfo(t.elemType, [product(t.shape.slice(0, axis)), product(t.shape.slice(axis))]) }];
};

const gatherElements: Rule = (ctx) => {
  const elemType = ctx.elemType(0);
  if (elemType === undefined) return [];
  return [{ type: tensorInfo(elemType, ctx.shape(1)) }];
};

const gatherND: Rule = (ctx) => {
  const elemType = ctx.elemType(0);
  if (elemType === undefined) return [];
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  const b = ctx.attrInt('batch_dims', 0);
  const last = idx?.[idx.length - 1]?.value;
  if (!data || !idx || last === undefined) return [{ type: tensorInfo(elemType) }];
  if (b + last > data.length) ctx.error(`indices address ${b + last} dims of a rank-${data.length} tensor`);
  const batch = data.slice(0, b).map((d, k) => ctx.unify(d, idx[k]!));
  return [{ type: tensorInfo(elemType, [...batch, ...idx.slice(b, -1), ...data.slice(b + last)]) }];
};

/** A scalar or one-element input as a number: integer or float constants, or a constant symbolic value. */
function scalarOf(ctx: InferContext, i: number): Sym | undefined {
  const s = ctx.sym(i);
  if (s && s.values.length === 1) return s.values[0];
  const c = ctx.constant(i);
  if (c && c.elementCount === 1) {
    const v = Number((c.toTypedArray() as ArrayLike<number | bigint>)[0]);
    if (Number.isFinite(v)) return Sym.const(Math.trunc(v));
  }
  return undefined;
}

const oneHot: Rule = (ctx) => {
  const elemType = ctx.elemType(2);
  if (elemType === undefined) return [];
  const idx = ctx.shape(0);
  if (!idx) return [{ type: tensorInfo(elemType) }];
  const rank = idx.length + 1;
  const axis = normAxis(ctx, ctx.attrInt('axis', -1), rank);
  const depth = scalarOf(ctx, 1) ?? ctx.fresh();
  return [{ type: tensorInfo(elemType, [...idx.slice(0, axis), depth, ...idx.slice(axis)]) }];
};

const nonZero: Rule = (ctx) => {
  const rank = ctx.rank(0);
  return [{ type: tensorInfo(INT64, [rank === undefined ? ctx.fresh() : Sym.const(rank), ctx.fresh()]) }];
};

const unique: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const u = ctx.fresh();
  const axisAttr = ctx.attrInt('axis');
  let y: Sym[] | undefined;
  let inverse: Sym[] | undefined;
  if (axisAttr === undefined) {
    y = [u];
    inverse = t.shape ? [product(t.shape)] : [ctx.fresh()];
  } else if (t.shape) {
    const axis = normAxis(ctx, axisAttr, t.shape.length);
    y = t.shape.slice();
    y[axis] = u;
    inverse = [t.shape[axis]!];
  } else {
    inverse = [ctx.fresh()];
  }
  return [
    { type: tensorInfo(t.elemType, y) },
    { type: tensorInfo(INT64, [u]) },
    { type: tensorInfo(INT64, inverse) },
    { type: tensorInfo(INT64, [u]) },
  ];
};

/** Number of true entries of a constant condition. */
function countTrue(ctx: InferContext, i: number): Sym | undefined {
  const c = ctx.constant(i);
  if (!c) return undefined;
  const a = c.toTypedArray() as ArrayLike<number | bigint | boolean>;
  let n = 0;
  for (let k = 0; k < a.length; k++) if (Number(a[k]) !== 0) n++;
  return Sym.const(n);
}

const compress: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const n = countTrue(ctx, 1) ?? ctx.fresh();
  const axisAttr = ctx.attrInt('axis');
  if (axisAttr === undefined) return [{ type: tensorInfo(t.elemType, [n]) }];
  if (!t.shape) return [{ type: tensorInfo(t.elemType) }];
  const axis = normAxis(ctx, axisAttr, t.shape.length);
  const out = t.shape.slice();
  out[axis] = n;
  return [{ type: tensorInfo(t.elemType, out) }];
};

/** dtype attribute, else the element type of input 0. */
const dtypeOrInput = (ctx: InferContext): number | undefined => ctx.attrInt('dtype') ?? ctx.elemType(0);

const eyeLike: Rule = (ctx) => {
  const elemType = dtypeOrInput(ctx);
  if (elemType === undefined) return [];
  const s = ctx.shape(0);
  if (s && s.length !== 2) ctx.error(`input must be 2-D, got rank ${s.length}`);
  return [{ type: tensorInfo(elemType, s) }];
};

/** RandomUniformLike, RandomNormalLike, Bernoulli: the input's shape, dtype attr or the input's type. */
const randomLike: Rule = (ctx) => {
  const elemType = dtypeOrInput(ctx);
  if (elemType === undefined) return [];
  return [{ type: tensorInfo(elemType, ctx.shape(0)) }];
};

const random: Rule = (ctx) => {
  const shape = ctx.attrInts('shape') ?? ctx.error('missing shape attribute');
  return [{ type: tensorInfo(ctx.attrInt('dtype', DataType.FLOAT), constShape(shape)) }];
};

const multinomial: Rule = (ctx) => {
  const s = ctx.shape(0);
  const batch = s ? s[0] ?? ctx.fresh() : ctx.fresh();
  return [{ type: tensorInfo(ctx.attrInt('dtype', DataType.INT32), [batch, Sym.const(ctx.attrInt('sample_size', 1))]) }];
};

const stringNormalizer: Rule = (ctx) => {
  const s = ctx.shape(0);
  if (!s) return [{ type: tensorInfo(DataType.STRING) }];
  if (s.length !== 1 && s.length !== 2) ctx.error(`input must be [C] or [1,C], got rank ${s.length}`);
  const stop = ctx.attr('stopwords');
  const keeps = !stop || (stop.type === 'strings' && stop.value.length === 0);
  // stop words can remove entries (all removed: one empty string), so the count is unknown
  const c = keeps ? s[s.length - 1]! : ctx.fresh();
  return [{ type: tensorInfo(DataType.STRING, s.length === 1 ? [c] : [s[0]!, c]) }];
};

const tfIdfVectorizer: Rule = (ctx) => {
  const s = ctx.shape(0);
  const idx = ctx.attrInts('ngram_indexes');
  const width = idx && idx.length ? Sym.const(Math.max(...idx) + 1) : ctx.fresh();
  if (!s) return [{ type: tensorInfo(DataType.FLOAT) }];
  if (s.length === 1) return [{ type: tensorInfo(DataType.FLOAT, [width]) }];
  if (s.length === 2) return [{ type: tensorInfo(DataType.FLOAT, [s[0]!, width]) }];
  return ctx.error(`input must be [C] or [N,C], got rank ${s.length}`);
};

/** Loss output: [N, d1, ...] (the target's shape) with reduction 'none', else a scalar. */
function lossShape(ctx: InferContext): Sym[] | undefined {
  const reduction = ctx.attrString('reduction', 'mean');
  if (reduction !== 'none') return [];
  const scores = ctx.shape(0);
  const target = ctx.shape(1);
  if (scores && target) {
    if (scores.length !== target.length + 1) ctx.error(`target rank ${target.length} does not match input rank ${scores.length}`);
    return target.map((d, k) => ctx.unify(scores[k === 0 ? 0 : k + 1]!, d));
  }
  if (target) return target;
  if (scores) return [scores[0]!, ...scores.slice(2)];
  return undefined;
}

const nllLoss: Rule = (ctx) => {
  const elemType = ctx.elemType(0);
  if (elemType === undefined) return [];
  return [{ type: tensorInfo(elemType, lossShape(ctx)) }];
};

const softmaxCrossEntropyLoss: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  return [{ type: tensorInfo(t.elemType, lossShape(ctx)) }, { type: tensorInfo(t.elemType, t.shape) }];
};

const centerCropPad: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  if (!t.shape) return [{ type: tensorInfo(t.elemType) }];
  const rank = t.shape.length;
  const axes = (ctx.attrInts('axes') ?? t.shape.map((_, k) => k)).map((a) => normAxis(ctx, a, rank));
  const target = ctx.sym(1)?.values;
  if (target && target.length !== axes.length) ctx.error(`shape has ${target.length} entries for ${axes.length} axes`);
  const out = t.shape.slice();
  axes.forEach((a, k) => { out[a] = target?.[k] ?? ctx.fresh(); });
  return [{ type: tensorInfo(t.elemType, out) }];
};

export const tensorOps: RuleTable = {
  ':Transpose': transpose,
  ':Split': split,
  ':Tile': tile,
  ':Flatten': flatten,
  ':GatherElements': gatherElements,
  ':GatherND': gatherND,
  ':Scatter': sameAs(0),
  ':ScatterElements': sameAs(0),
  ':ScatterND': sameAs(0),
  ':OneHot': oneHot,
  ':NonZero': nonZero,
  ':Unique': unique,
  ':Compress': compress,
  ':EyeLike': eyeLike,
  ':ReverseSequence': sameAs(0),
  ':RandomUniform': random,
  ':RandomNormal': random,
  ':RandomUniformLike': randomLike,
  ':RandomNormalLike': randomLike,
  ':Bernoulli': randomLike,
  ':Multinomial': multinomial,
  ':StringNormalizer': stringNormalizer,
  ':TfIdfVectorizer': tfIdfVectorizer,
  ':NegativeLogLikelihoodLoss': nllLoss,
  ':SoftmaxCrossEntropyLoss': softmaxCrossEntropyLoss,
  ':CenterCropPad': centerCropPad,
};
