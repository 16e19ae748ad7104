/**
 * Rules for the ops that carry shape arithmetic: Shape, Size, Constant, ConstantOfShape, Gather,
 * Concat, Unsqueeze, Squeeze, Reshape, Slice, Cast, Range, Expand. Besides types they propagate
 * the symbolic contents of small integer tensors, so `Reshape(x, Concat(Gather(Shape(x), 0), [-1]))`
 * gets the shape [batch, ...] with `batch` kept symbolic.
 */
import { DataType } from '../../ir/dtype.js';
import type { InferContext, Rule, RuleTable } from '../infer.js';
import { Sym } from '../symbolic.js';
import { tensorInfo, type OutputInfo } from '../types.js';
import { INT64, constShape, normAxis, product, withSym } from './common.js';

/** Axes from the attribute (older opsets) or from input `inputIndex` (newer). */
function axesOf(ctx: InferContext, inputIndex: number): number[] | undefined | null {
  const a = ctx.attrInts('axes');
  if (a) return a;
  if (ctx.has(inputIndex)) return ctx.ints(inputIndex) ?? null; // null: given but unknown
  return undefined;
}

const shape: Rule = (ctx) => {
  const s = ctx.shape(0);
  const rank = s?.length;
  if (s === undefined || rank === undefined) return [{ type: tensorInfo(INT64, [ctx.fresh()]) }];
  // opset 15: start/end attributes select a range of dims
  let start = ctx.attrInt('start', 0);
  let end = ctx.attrInt('end', rank);
  const clamp = (x: number): number => Math.min(Math.max(x < 0 ? x + rank : x, 0), rank);
  start = clamp(start);
  end = clamp(end);
  const dims = s.slice(start, Math.max(start, end));
  return [withSym(tensorInfo(INT64, [Sym.const(dims.length)]), dims)];
};

const size: Rule = (ctx) => {
  const s = ctx.shape(0);
  return [withSym(tensorInfo(INT64, []), s ? [product(s)] : undefined, [])];
};

const constant: Rule = (ctx) => {
  const n = ctx.node;
  for (const a of n.attributes.values()) {
    switch (a.name) {
      case 'value': if (a.type === 'tensor') return [{ value: a.value, type: tensorInfo(a.value.dataType, constShape(a.value.dims)) }]; break;
      case 'value_float': return [{ type: tensorInfo(DataType.FLOAT, []) }];
      case 'value_floats': return [{ type: tensorInfo(DataType.FLOAT, [Sym.const(a.type === 'floats' ? a.value.length : 0)]) }];
      case 'value_int': return [withSym(tensorInfo(INT64, []), a.type === 'int' ? [Sym.const(Number(a.value))] : undefined, [])];
      case 'value_ints': return [withSym(tensorInfo(INT64, [Sym.const(a.type === 'ints' ? a.value.length : 0)]), a.type === 'ints' ? a.value.map((x) => Sym.const(Number(x))) : undefined)];
      case 'value_string': return [{ type: tensorInfo(DataType.STRING, []) }];
      case 'value_strings': return [{ type: tensorInfo(DataType.STRING, [Sym.const(a.type === 'strings' ? a.value.length : 0)]) }];
      case 'sparse_value': return [{ type: tensorInfo(a.type === 'sparse_tensor' ? a.value.values?.dataType ?? 0 : 0) }];
    }
  }
  return [];
};

/** A shape given as the contents of input i: symbolic dims, or a fresh dim per entry when only the length is known. */
function shapeFromInput(ctx: InferContext, i: number): Sym[] | undefined {
  const s = ctx.sym(i);
  if (s && s.dims.length === 1) return s.values;
  const len = ctx.shape(i)?.[0]?.value;
  if (len !== undefined) return Array.from({ length: len }, () => ctx.fresh());
  return undefined;
}

const constantOfShape: Rule = (ctx) => {
  const value = ctx.attr('value');
  const elemType = value?.type === 'tensor' ? value.value.dataType : DataType.FLOAT;
  const dims = shapeFromInput(ctx, 0);
  const out: OutputInfo = { type: tensorInfo(elemType, dims) };
  // a small int vector of one repeated value: its contents are known when its length is
  if (dims && dims.length === 1 && dims[0]!.value !== undefined && dims[0]!.value <= 64 && (elemType === INT64 || elemType === DataType.INT32) && value?.type === 'tensor') {
    const v = Number((value.value.toTypedArray() as ArrayLike<number | bigint>)[0] ?? 0);
    out.sym = { dims: [dims[0]!.value], values: Array.from({ length: dims[0]!.value }, () => Sym.const(v)) };
  }
  return [out];
};

const gather: Rule = (ctx) => {
  const data = ctx.tensor(0);
  if (!data) return [];
  const dataShape = data.shape;
  const idxShape = ctx.shape(1);
  if (!dataShape || !idxShape) return [{ type: tensorInfo(data.elemType) }];
  const axis = normAxis(ctx, ctx.attrInt('axis', 0), dataShape.length);
  const outShape = [...dataShape.slice(0, axis), ...idxShape, ...dataShape.slice(axis + 1)];
  const type = tensorInfo(data.elemType, outShape);
  // Gather on a symbolic vector (a shape): pick its entries
  const src = ctx.sym(0);
  const idx = ctx.ints(1);
  if (src && src.dims.length === 1 && idx && idxShape.length <= 1) {
    const n = src.values.length;
    const picked = idx.map((k) => src.values[k < 0 ? k + n : k]);
    if (picked.every((x) => x !== undefined)) return [withSym(type, picked as Sym[], idxShape.length === 0 ? [] : [picked.length])];
  }
  return [{ type }];
};

const concat: Rule = (ctx) => {
  const ts = Array.from({ length: ctx.inputCount }, (_, i) => ctx.tensor(i));
  const elemType = ts.find((t) => t)?.elemType;
  if (elemType === undefined) return [];
  const shapes = ts.map((t) => t?.shape);
  const known = shapes.find((s) => s);
  if (!known) return [{ type: tensorInfo(elemType) }];
  const rank = known.length;
  const axis = normAxis(ctx, ctx.attrInt('axis', 0), rank);
  const out: Sym[] = [];
  for (let k = 0; k < rank; k++) {
    if (k === axis) {
      out.push(shapes.every((s) => s) ? shapes.reduce((a, s) => a.add(s![k]!), Sym.ZERO) : ctx.fresh());
    } else {
      let d: Sym | undefined;
      for (const s of shapes) if (s) d = d ? ctx.unify(d, s[k]!) : s[k]!;
      out.push(d!);
    }
  }
  const type = tensorInfo(elemType, out);
  if (rank === 1) {
    const parts = Array.from({ length: ctx.inputCount }, (_, i) => ctx.sym(i));
    if (parts.every((p) => p)) return [withSym(type, parts.flatMap((p) => p!.values))];
  }
  return [{ type }];
};

const unsqueeze: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const axes = axesOf(ctx, 1);
  if (!t.shape || !axes) return [{ type: tensorInfo(t.elemType) }];
  const rank = t.shape.length + axes.length;
  const norm = new Set(axes.map((a) => normAxis(ctx, a, rank)));
  const out: Sym[] = [];
  let j = 0;
  for (let k = 0; k < rank; k++) out.push(norm.has(k) ? Sym.ONE : t.shape[j++]!);
  const type = tensorInfo(t.elemType, out);
  const s = ctx.sym(0);
  if (s && s.dims.length === 0 && rank === 1) return [withSym(type, s.values)];
  return [s && rank <= 1 ? withSym(type, s.values) : { type }];
};

const squeeze: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const axes = axesOf(ctx, 1);
  if (!t.shape || axes === null) return [{ type: tensorInfo(t.elemType) }];
  const rank = t.shape.length;
  let out: Sym[];
  if (axes === undefined) {
    // no axes: drop every dim of size 1; an unknown dim makes the rank unknown
    if (t.shape.some((d) => d.value === undefined)) return [{ type: tensorInfo(t.elemType) }];
    out = t.shape.filter((d) => d.value !== 1);
  } else {
    const norm = new Set(axes.map((a) => normAxis(ctx, a, rank)));
    out = t.shape.filter((_, k) => !norm.has(k));
  }
  const type = tensorInfo(t.elemType, out);
  const s = ctx.sym(0);
  return [s && out.length <= 1 ? withSym(type, s.values, out.length === 0 ? [] : [s.values.length]) : { type }];
};

const reshape: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const target = shapeFromInput(ctx, 1);
  if (!target) return [{ type: tensorInfo(t.elemType) }];
  const allowZero = ctx.attrInt('allowzero', 0) === 1;
  const inShape = t.shape;
  const out: (Sym | undefined)[] = target.map((d, k) => {
    const v = d.value;
    if (v === 0 && !allowZero) return inShape?.[k] ?? ctx.fresh();
    if (v === -1) return undefined;
    return d;
  });
  const inferred = out.indexOf(undefined);
  if (inferred >= 0) {
    // -1: total size divided by the product of the other dims, when that divides exactly
    const known = product(out.filter((d): d is Sym => d !== undefined));
    const total = inShape ? product(inShape) : undefined;
    out[inferred] = total ? divide(total, known) ?? ctx.fresh() : ctx.fresh();
  }
  const shape = out as Sym[];
  const s = ctx.sym(0);
  return [s && shape.length <= 1 ? withSym(tensorInfo(t.elemType, shape), s.values, shape.length === 0 ? [] : [s.values.length]) : { type: tensorInfo(t.elemType, shape) }];
};

/** a / b when it is exact: constants, or b's monomial divides a's (e.g. batch*seq*768 / (batch*12*64) = seq). */
export function divide(a: Sym, b: Sym): Sym | undefined {
  const bv = b.value;
  if (bv !== undefined) {
    if (bv === 0) return undefined;
    const q = a.floorDiv(bv);
    return q.mul(bv).equals(a) ? q : undefined;
  }
  // cancel b's symbols one at a time
  for (const s of b.symbols()) {
    const sym = Sym.symbol(s);
    const candidate = divideBySymbol(a, sym);
    const rest = divideBySymbol(b, sym);
    if (candidate && rest) return divide(candidate, rest);
  }
  return undefined;
}

/** a / s for a symbol s, when every term of a has s as a factor once: q = a with s := 1, checked by q*s == a. */
function divideBySymbol(a: Sym, s: Sym): Sym | undefined {
  const name = [...s.symbols()][0]!;
  const q = a.subst(new Map([[name, Sym.ONE]]));
  return q.mul(s).equals(a) ? q : undefined;
}

const slice: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  if (!t.shape) return [{ type: tensorInfo(t.elemType) }];
  const rank = t.shape.length;
  const opsetAttrs = ctx.opset < 10;
  const starts = opsetAttrs ? ctx.attrInts('starts') : ctx.ints(1);
  const ends = opsetAttrs ? ctx.attrInts('ends') : ctx.ints(2);
  const axesIn = opsetAttrs ? ctx.attrInts('axes') : ctx.has(3) ? ctx.ints(3) : undefined;
  const steps = opsetAttrs ? undefined : ctx.has(4) ? ctx.ints(4) : undefined;
  const axesKnown = opsetAttrs || !ctx.has(3) || axesIn !== undefined;
  if (!starts || !ends || !axesKnown || (!opsetAttrs && ctx.has(4) && !steps)) {
    // unknown bounds: the rank is kept, sliced dims are unknown (which ones? all, unless axes are known)
    const sliced = axesIn ? new Set(axesIn.map((a) => normAxis(ctx, a, rank))) : undefined;
    return [{ type: tensorInfo(t.elemType, t.shape.map((d, k) => (sliced && !sliced.has(k) ? d : ctx.fresh()))) }];
  }
  const axes = axesIn ?? starts.map((_, i) => i);
  const out = [...t.shape];
  const src = ctx.sym(0);
  let symOut: Sym[] | undefined;
  axes.forEach((a, i) => {
    const k = normAxis(ctx, a, rank);
    const step = steps?.[i] ?? 1;
    const d = t.shape![k]!;
    const len = sliceLength(d, starts[i]!, ends[i]!, step);
    out[k] = len ?? ctx.fresh();
    if (rank === 1 && src && d.value !== undefined) {
      const n = d.value;
      const idx = sliceIndices(n, starts[i]!, ends[i]!, step);
      symOut = idx.map((j) => src.values[j]!);
    }
  });
  const type = tensorInfo(t.elemType, out);
  return [symOut ? withSym(type, symOut) : { type }];
};

function clampIndex(v: number, n: number, step: number, isEnd: boolean): number {
  if (v < 0) v += n;
  if (step > 0) return Math.min(Math.max(v, 0), n);
  return Math.min(Math.max(v, -1), n - 1) + (isEnd ? 0 : 0);
}

function sliceIndices(n: number, start: number, end: number, step: number): number[] {
  const s = clampIndex(start, n, step, false);
  const e = clampIndex(end, n, step, true);
  const out: number[] = [];
  if (step > 0) for (let i = s; i < e; i += step) out.push(i);
  else for (let i = s; i > e; i += step) out.push(i);
  return out;
}

/** Length of a slice of a dim of (maybe symbolic) size d. */
function sliceLength(d: Sym, start: number, end: number, step: number): Sym | undefined {
  const n = d.value;
  if (n !== undefined) return Sym.const(sliceIndices(n, start, end, step).length);
  if (step !== 1) return undefined;
  const BIG = 2 ** 31;
  // common symbolic cases with step 1: [0:INT_MAX] = d, [k:INT_MAX] = d-k, [0:-k] = d-k, [-k:INT_MAX] = k (if d >= k)
  const toEnd = end >= BIG;
  if (start >= 0 && toEnd) return d.sub(start);
  if (start >= 0 && end < 0) return d.add(end).sub(start);
  if (start <= -BIG && toEnd) return d; // INT64_MIN / INT32_MIN: from the start
  if (start < 0 && toEnd) return Sym.const(-start);
  if (start >= 0 && end >= 0 && end < BIG) return undefined; // min(d, end) - start: not polynomial
  return undefined;
}

const cast: Rule = (ctx) => {
  const t = ctx.tensor(0);
  const to = ctx.attrInt('to');
  if (to === undefined) return [];
  const type = tensorInfo(to, t?.shape);
  const s = ctx.sym(0);
  return [s && (to === INT64 || to === DataType.INT32) ? { type, sym: s } : { type }];
};

const castLike: Rule = (ctx) => {
  const t = ctx.tensor(0);
  const to = ctx.elemType(1);
  if (to === undefined) return [];
  return [{ type: tensorInfo(to, t?.shape) }];
};

const range: Rule = (ctx) => {
  const elemType = ctx.elemType(0) ?? ctx.elemType(1) ?? ctx.elemType(2);
  if (elemType === undefined) return [];
  const s = ctx.sym(0)?.values[0], l = ctx.sym(1)?.values[0], d = ctx.sym(2)?.values[0];
  let n: Sym | undefined;
  if (s && l && d && d.value !== undefined && d.value !== 0) {
    // ceil((limit - start) / delta), clamped at 0 when both are constants
    const span = l.sub(s);
    n = d.value > 0 ? span.ceilDiv(d.value) : span.neg().ceilDiv(-d.value);
    if (n.value !== undefined && n.value < 0) n = Sym.ZERO;
  }
  return [{ type: tensorInfo(elemType, [n ?? ctx.fresh()]) }];
};

const expand: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const target = shapeFromInput(ctx, 1);
  if (!target || !t.shape) return [{ type: tensorInfo(t.elemType) }];
  // Expand broadcasts both ways, but a 1 in the target keeps the input's dim
  const rank = Math.max(target.length, t.shape.length);
  const out: Sym[] = [];
  for (let k = 0; k < rank; k++) {
    const a = t.shape[t.shape.length - rank + k];
    const b = target[target.length - rank + k];
    if (a === undefined) out.push(b!);
    else if (b === undefined || b.value === 1) out.push(a);
    else if (a.value === 1) out.push(b);
    // a symbol against a constant > 1: the result is the constant, and the symbol may be 1 or equal to it
    else if (b.value !== undefined) out.push(b);
    else if (a.value !== undefined) out.push(a);
    else out.push(ctx.unify(a, b));
  }
  return [{ type: tensorInfo(t.elemType, out) }];
};

export const shapeOps: RuleTable = {
  ':Shape': shape,
  ':Size': size,
  ':Constant': constant,
  ':ConstantOfShape': constantOfShape,
  ':Gather': gather,
  ':Concat': concat,
  ':Unsqueeze': unsqueeze,
  ':Squeeze': squeeze,
  ':Reshape': reshape,
  ':Slice': slice,
  ':Cast': cast,
  ':CastLike': castLike,
  ':Range': range,
  ':Expand': expand,
};
