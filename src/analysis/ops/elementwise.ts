/**
 * Rules for elementwise ops (unary, binary/variadic with numpy broadcasting, comparisons, Where,
 * Clip), normalizations that keep the shape (Softmax, CumSum, Trilu, ...), reductions (Reduce*,
 * ArgMax/ArgMin, TopK) and contractions (MatMul, Gemm, Einsum, Det).
 *
 * Integer arithmetic on small int tensors (Add/Sub/Mul/Div/Mod/Max/Min/Neg/Abs/Equal/Where, and
 * ReduceSum/ReduceProd of a vector) also propagates symbolic contents, so that
 * `Shape -> Gather -> Div -> Concat -> Reshape` keeps `batch` and `seq` symbolic.
 */
import { DataType } from '../../ir/dtype.js';
import type { InferContext, Rule, RuleTable } from '../infer.js';
import { Sym } from '../symbolic.js';
import { tensorInfo, type OutputInfo, type SymType, type SymValue } from '../types.js';
import { BOOL, INT64, firstElemType, normAxis } from './common.js';
import { divide } from './shape-ops.js';

// ---------------------------------------------------------------- symbolic contents

/**
 * A symbolic value known to be >= 0: constants >= 0, and expressions with no negative coefficient
 * anywhere (symbols are dims, so they are non-negative).
 */
function nonNegative(s: Sym): boolean {
  const v = s.value;
  if (v !== undefined) return v >= 0;
  return !s.toString().includes('-');
}

/**
 * Elementwise over the symbolic contents of inputs `idx` (each rank <= 1, broadcasting a length-1
 * operand against a vector); undefined unless every input has contents and `f` decides every entry.
 */
function symElementwise(ctx: InferContext, idx: number[], f: (vals: Sym[]) => Sym | undefined): SymValue | undefined {
  const syms: SymValue[] = [];
  for (const i of idx) {
    const s = ctx.sym(i);
    if (!s || s.dims.length > 1) return undefined;
    syms.push(s);
  }
  if (syms.length === 0) return undefined;
  const lengths = new Set(syms.map((s) => s.values.length).filter((n) => n !== 1));
  if (lengths.size > 1) return undefined;
  const n = lengths.size === 1 ? [...lengths][0]! : 1;
  const values: Sym[] = [];
  for (let j = 0; j < n; j++) {
    const v = f(syms.map((s) => (s.values.length === 1 ? s.values[0]! : s.values[j]!)));
    if (v === undefined) return undefined;
    values.push(v);
  }
  const vector = syms.some((s) => s.dims.length === 1);
  return { dims: vector ? [n] : [], values };
}

/** Integer division as ONNX does it (truncation toward zero), when decidable. */
function symDiv(a: Sym, b: Sym): Sym | undefined {
  const av = a.value, bv = b.value;
  if (bv === 0) return undefined;
  if (av !== undefined && bv !== undefined) return Sym.const(Math.trunc(av / bv));
  const exact = divide(a, b);
  if (exact) return exact;
  if (bv !== undefined && nonNegative(a)) return bv > 0 ? a.floorDiv(bv) : a.floorDiv(-bv).neg();
  return undefined;
}

function symMod(a: Sym, b: Sym, fmod: boolean): Sym | undefined {
  const av = a.value, bv = b.value;
  if (bv === 0) return undefined;
  if (av !== undefined && bv !== undefined) {
    const r = av % bv;
    return Sym.const(fmod || r === 0 || Math.sign(r) === Math.sign(bv) ? r : r + bv);
  }
  return divide(a, b) ? Sym.ZERO : undefined;
}

function symMax(a: Sym, b: Sym): Sym | undefined {
  const av = a.value, bv = b.value;
  if (av !== undefined && bv !== undefined) return Sym.const(Math.max(av, bv));
  if (a.equals(b)) return a;
  // a dim against a constant <= 0
  if (bv !== undefined && bv <= 0 && nonNegative(a)) return a;
  if (av !== undefined && av <= 0 && nonNegative(b)) return b;
  return undefined;
}

function symMin(a: Sym, b: Sym): Sym | undefined {
  const av = a.value, bv = b.value;
  if (av !== undefined && bv !== undefined) return Sym.const(Math.min(av, bv));
  if (a.equals(b)) return a;
  if (bv !== undefined && bv <= 0 && nonNegative(a)) return b;
  if (av !== undefined && av <= 0 && nonNegative(b)) return a;
  return undefined;
}

/** a == b as 0/1 when decidable: constants, identical expressions, a dim against a negative constant. */
function symEqual(a: Sym, b: Sym): Sym | undefined {
  if (a.equals(b)) return Sym.ONE;
  const av = a.value, bv = b.value;
  if (av !== undefined && bv !== undefined) return Sym.ZERO;
  if (bv !== undefined && bv < 0 && nonNegative(a)) return Sym.ZERO;
  if (av !== undefined && av < 0 && nonNegative(b)) return Sym.ZERO;
  // constant difference: a - b = c != 0
  const d = a.sub(b).value;
  if (d !== undefined && d !== 0) return Sym.ZERO;
  return undefined;
}

/** a > b as 0/1 when decidable (dims are non-negative: `seq > -1` holds, `0 > seq` does not). */
function symGreater(a: Sym, b: Sym): Sym | undefined {
  if (nonNegative(b.sub(a))) return Sym.ZERO;
  if (nonNegative(a.sub(b).sub(1))) return Sym.ONE;
  return undefined;
}

function symAbs(a: Sym): Sym | undefined {
  const v = a.value;
  if (v !== undefined) return Sym.const(Math.abs(v));
  if (nonNegative(a)) return a;
  const n = a.neg();
  return nonNegative(n) ? n : undefined;
}

/** Fold a binary symbolic function over all inputs (variadic Max/Min/Sum). */
function fold(f: (a: Sym, b: Sym) => Sym | undefined): (vals: Sym[]) => Sym | undefined {
  return (vals) => {
    let acc: Sym | undefined = vals[0];
    for (let i = 1; i < vals.length && acc; i++) acc = f(acc, vals[i]!);
    return acc;
  };
}

function withSymValue(type: SymType | undefined, sym: SymValue | undefined): OutputInfo {
  return sym ? { type, sym } : { type };
}

// ---------------------------------------------------------------- unary

const same: Rule = (ctx) => [{ type: ctx.type(0) }];

const unaryBool: Rule = (ctx) => [{ type: tensorInfo(BOOL, ctx.shape(0)) }];

/** Not on decided booleans (Not(Equal(shape, -1)) in exported shape chains). */
const not: Rule = (ctx) => {
  const sym = symElementwise(ctx, [0], ([a]) => (a!.value === undefined ? undefined : Sym.const(a!.value === 0 ? 1 : 0)));
  return [withSymValue(tensorInfo(BOOL, ctx.shape(0)), sym)];
};

/** Boolean And/Or on 0/1 contents, when decided. */
const logic = (f: (a: boolean, b: boolean) => boolean) => (a: Sym, b: Sym): Sym | undefined => {
  const av = a.value, bv = b.value;
  if (av === undefined || bv === undefined) return undefined;
  return Sym.const(f(av !== 0, bv !== 0) ? 1 : 0);
};

const unarySym = (f: (a: Sym) => Sym | undefined): Rule => (ctx) =>
  [withSymValue(ctx.type(0), symElementwise(ctx, [0], (v) => f(v[0]!)))];

const identity: Rule = (ctx) => {
  const value = ctx.constant(0);
  const sym = ctx.sym(0);
  const out: OutputInfo = { type: ctx.type(0) };
  if (value) out.value = value;
  else if (sym) out.sym = sym;
  return [out];
};

const dropout: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  // mask: same type as the data before opset 10, bool after
  const maskType = ctx.opset >= 10 ? BOOL : t.elemType;
  return [{ type: t }, { type: tensorInfo(maskType, t.shape) }];
};

// ---------------------------------------------------------------- broadcasting

function inputShapes(ctx: InferContext): (Sym[] | undefined)[] {
  return Array.from({ length: ctx.inputCount }, (_, i) => (ctx.has(i) ? ctx.shape(i) : []));
}

/** Opset < 7 binary ops: B broadcasts to A (`broadcast=1, axis`) or has A's shape; the result has A's. */
function legacyShape(ctx: InferContext): Sym[] | undefined {
  return ctx.shape(0);
}

/**
 * Elementwise with multidirectional broadcasting. The output element type is `elemType`, or
 * input `typeFrom`'s (first known otherwise); `f` computes symbolic contents when given.
 */
const broadcasting = (opts: { elemType?: number; typeFrom?: number; legacy?: boolean; sym?: (vals: Sym[], ctx: InferContext) => Sym | undefined } = {}): Rule => (ctx) => {
  const t = opts.elemType ?? (opts.typeFrom !== undefined ? ctx.elemType(opts.typeFrom) : undefined) ?? firstElemType(ctx);
  if (t === undefined) return [];
  const shape = opts.legacy && ctx.opset < 7 ? legacyShape(ctx) : ctx.broadcast(...inputShapes(ctx));
  const type = tensorInfo(t, shape);
  const f = opts.sym;
  if (!f) return [{ type }];
  const idx = Array.from({ length: ctx.inputCount }, (_, i) => i).filter((i) => ctx.has(i));
  return [withSymValue(type, symElementwise(ctx, idx, (v) => f(v, ctx)))];
};

const bin = (f: (a: Sym, b: Sym) => Sym | undefined) => (vals: Sym[]): Sym | undefined => (vals.length === 2 ? f(vals[0]!, vals[1]!) : undefined);

const prelu: Rule = (ctx) => {
  // the slope broadcasts to X (unidirectionally; per channel in old opsets): the result is X's
  const t = ctx.tensor(0);
  if (!t) return [];
  return [{ type: t }];
};

const where: Rule = (ctx) => {
  const t = ctx.elemType(1) ?? ctx.elemType(2);
  if (t === undefined) return [];
  const type = tensorInfo(t, ctx.broadcast(ctx.shape(0), ctx.shape(1), ctx.shape(2)));
  const sym = symElementwise(ctx, [0, 1, 2], ([c, x, y]) => {
    const cv = c!.value;
    if (cv === undefined) return x!.equals(y!) ? x : undefined;
    return cv !== 0 ? x : y;
  });
  return [withSymValue(type, sym)];
};

// ---------------------------------------------------------------- reductions

/** The rank-`n` shape with `axes` reduced (kept as 1 or dropped). */
function reduceShape(ctx: InferContext, shape: Sym[], axes: number[], keepdims: boolean): Sym[] {
  const set = new Set(axes.map((a) => normAxis(ctx, a, shape.length)));
  const out: Sym[] = [];
  shape.forEach((d, k) => {
    if (!set.has(k)) out.push(d);
    else if (keepdims) out.push(Sym.ONE);
  });
  return out;
}

/** Reduce*: axes from the attribute (older opsets) or input 1 (ReduceSum 13+, the others 18+). */
const reduce = (symFold?: (vals: Sym[]) => Sym | undefined): Rule => (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  const keepdims = ctx.attrInt('keepdims', 1) !== 0;
  const noop = ctx.attrInt('noop_with_empty_axes', 0) !== 0;
  const shape = t.shape;
  let axes: number[] | undefined = ctx.attrInts('axes');
  if (!axes && ctx.has(1)) {
    // an empty axes input (shape [0]) is known to be empty even when its contents are not
    axes = ctx.shape(1)?.[0]?.value === 0 ? [] : ctx.ints(1);
    if (!axes) {
      // axes given at run time: the rank is known when the dims are kept, or when the count of axes is
      if (!shape) return [{ type: tensorInfo(t.elemType) }];
      if (keepdims) return [{ type: tensorInfo(t.elemType, shape.map((d) => (d.value === 1 ? d : ctx.fresh()))) }];
      const n = ctx.shape(1)?.[0]?.value;
      if (n !== undefined && n > 0 && n <= shape.length) return [{ type: tensorInfo(t.elemType, Array.from({ length: shape.length - n }, () => ctx.fresh())) }];
      return [{ type: tensorInfo(t.elemType) }];
    }
  }
  if (!shape) return [{ type: tensorInfo(t.elemType) }];
  if (!axes || axes.length === 0) {
    if (noop) return [withSymValue(t, ctx.sym(0))];
    axes = shape.map((_, k) => k);
  }
  const out = reduceShape(ctx, shape, axes, keepdims);
  const type = tensorInfo(t.elemType, out);
  // a whole small int vector: its sum / product
  const s = ctx.sym(0);
  if (symFold && s && s.dims.length === 1 && shape.length === 1 && out.length <= 1) {
    const v = s.values.length === 0 ? undefined : symFold(s.values);
    if (v) return [{ type, sym: { dims: out.length === 1 ? [1] : [], values: [v] } }];
  }
  return [{ type }];
};

const argReduce: Rule = (ctx) => {
  const shape = ctx.shape(0);
  if (!ctx.tensor(0)) return [];
  if (!shape) return [{ type: tensorInfo(INT64) }];
  const keepdims = ctx.attrInt('keepdims', 1) !== 0;
  const axis = ctx.attrInt('axis', 0);
  return [{ type: tensorInfo(INT64, reduceShape(ctx, shape, [axis], keepdims)) }];
};

const topk: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  if (!t.shape) return [{ type: tensorInfo(t.elemType) }, { type: tensorInfo(INT64) }];
  const axis = normAxis(ctx, ctx.attrInt('axis', -1), t.shape.length);
  let k: Sym | undefined;
  if (ctx.opset < 10) {
    const a = ctx.attrInt('k');
    if (a !== undefined) k = Sym.const(a);
  } else {
    const s = ctx.sym(1);
    if (s && s.values.length === 1) k = s.values[0];
  }
  const shape = [...t.shape];
  shape[axis] = k ?? ctx.fresh();
  return [{ type: tensorInfo(t.elemType, shape) }, { type: tensorInfo(INT64, shape) }];
};

// ---------------------------------------------------------------- contractions

function matmulShape(ctx: InferContext, a: Sym[], b: Sym[]): Sym[] {
  if (a.length === 0 || b.length === 0) ctx.error('MatMul of a scalar');
  const a2 = a.length === 1 ? [Sym.ONE, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, Sym.ONE] : b;
  ctx.unify(a2[a2.length - 1]!, b2[b2.length - 2]!);
  const out = ctx.broadcast(a2.slice(0, -2), b2.slice(0, -2))!;
  if (a.length !== 1) out.push(a2[a2.length - 2]!);
  if (b.length !== 1) out.push(b2[b2.length - 1]!);
  return out;
}

const matmul = (elemType?: number): Rule => (ctx) => {
  const t = elemType ?? ctx.elemType(0) ?? ctx.elemType(1);
  if (t === undefined) return [];
  const a = ctx.shape(0), b = ctx.shape(1);
  return [{ type: tensorInfo(t, a && b ? matmulShape(ctx, a, b) : undefined) }];
};

const gemm: Rule = (ctx) => {
  const t = ctx.elemType(0) ?? ctx.elemType(1);
  if (t === undefined) return [];
  const a = ctx.shape(0), b = ctx.shape(1);
  if (!a || !b || a.length !== 2 || b.length !== 2) {
    if (a && a.length !== 2) ctx.error(`Gemm input A has rank ${a.length}, expected 2`);
    if (b && b.length !== 2) ctx.error(`Gemm input B has rank ${b.length}, expected 2`);
    return [{ type: tensorInfo(t) }];
  }
  const transA = ctx.attrInt('transA', 0) !== 0, transB = ctx.attrInt('transB', 0) !== 0;
  const [m, ka] = transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [kb, n] = transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  ctx.unify(ka, kb);
  return [{ type: tensorInfo(t, [m, n]) }];
};

/** One Einsum operand: its labels, with '.' standing for the ellipsis. */
function einsumTerm(ctx: InferContext, term: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < term.length; i++) {
    if (term.startsWith('...', i)) { out.push('.'); i += 2; continue; }
    const c = term[i]!;
    if (!/[A-Za-z]/.test(c)) ctx.error(`bad Einsum equation term '${term}'`);
    out.push(c);
  }
  if (out.filter((c) => c === '.').length > 1) ctx.error(`more than one ellipsis in '${term}'`);
  return out;
}

const einsum: Rule = (ctx) => {
  const t = firstElemType(ctx);
  if (t === undefined) return [];
  const eq = ctx.attrString('equation')?.replace(/\s+/g, '') ?? ctx.error('Einsum without an equation');
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',').map((s) => einsumTerm(ctx, s));
  if (terms.length !== ctx.inputCount) ctx.error(`Einsum equation has ${terms.length} operands, node has ${ctx.inputCount} inputs`);
  const shapes = terms.map((_, i) => ctx.shape(i));
  if (shapes.some((s) => !s)) return [{ type: tensorInfo(t) }];
  const dims = new Map<string, Sym>();
  const counts = new Map<string, number>();
  const ellipses: Sym[][] = [];
  terms.forEach((labels, i) => {
    const shape = shapes[i]!;
    const named = labels.filter((c) => c !== '.').length;
    const hasEll = labels.includes('.');
    if (hasEll ? shape.length < named : shape.length !== named) ctx.error(`Einsum operand ${i} has rank ${shape.length}, the equation term '${labels.join('')}' needs ${named}`);
    const ellRank = shape.length - named;
    let k = 0;
    for (const c of labels) {
      if (c === '.') { ellipses.push(shape.slice(k, k + ellRank)); k += ellRank; continue; }
      const d = shape[k++]!;
      counts.set(c, (counts.get(c) ?? 0) + 1);
      const prev = dims.get(c);
      if (!prev || prev.value === 1) dims.set(c, d);
      else if (d.value !== 1) dims.set(c, ctx.unify(prev, d));
    }
  });
  const ell = ellipses.length ? ctx.broadcast(...ellipses)! : [];
  let outLabels: string[];
  if (rhs !== undefined) outLabels = einsumTerm(ctx, rhs);
  else outLabels = [...(ellipses.length ? ['.'] : []), ...[...counts].filter(([, n]) => n === 1).map(([c]) => c).sort()];
  const out: Sym[] = [];
  for (const c of outLabels) {
    if (c === '.') out.push(...ell);
    else {
      out.push(dims.get(c) ?? ctx.error(`Einsum output label '${c}' is not in any input`));
    }
  }
  return [{ type: tensorInfo(t, out) }];
};

const det: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [];
  if (!t.shape) return [{ type: t }];
  if (t.shape.length < 2) ctx.error(`Det of rank ${t.shape.length}`);
  ctx.unify(t.shape[t.shape.length - 1]!, t.shape[t.shape.length - 2]!);
  return [{ type: tensorInfo(t.elemType, t.shape.slice(0, -2)) }];
};

// ---------------------------------------------------------------- the table

const UNARY_SAME = [
  'Abs', 'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'Ceil', 'Cos', 'Cosh', 'Erf', 'Exp', 'Floor', 'Log',
  'Neg', 'Reciprocal', 'Round', 'Sigmoid', 'Sign', 'Sin', 'Sinh', 'Softplus', 'Softsign', 'Sqrt', 'Tan', 'Tanh',
  'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'HardSigmoid', 'HardSwish', 'ThresholdedRelu', 'Shrink', 'Mish', 'Gelu',
  'BitwiseNot', 'Clip', 'Softmax', 'LogSoftmax', 'Hardmax', 'CumSum', 'Trilu', 'LpNormalization',
];

const table: RuleTable = {};
for (const op of UNARY_SAME) table[`:${op}`] = same;

const add = (a: Sym, b: Sym): Sym => a.add(b);

Object.assign(table, {
  ':Neg': unarySym((a) => a.neg()),
  ':Abs': unarySym(symAbs),
  ':Identity': identity,
  ':Dropout': dropout,
  ':IsInf': unaryBool,
  ':IsNaN': unaryBool,
  ':Not': not,

  ':Add': broadcasting({ legacy: true, sym: bin(add) }),
  ':Sub': broadcasting({ legacy: true, sym: bin((a, b) => a.sub(b)) }),
  ':Mul': broadcasting({ legacy: true, sym: bin((a, b) => a.mul(b)) }),
  ':Div': broadcasting({ legacy: true, sym: bin(symDiv) }),
  ':Mod': broadcasting({ sym: (v, ctx) => (v.length === 2 ? symMod(v[0]!, v[1]!, ctx.attrInt('fmod', 0) !== 0) : undefined) }),
  ':Pow': broadcasting({ legacy: true, typeFrom: 0 }),
  ':BitShift': broadcasting(),
  ':BitwiseAnd': broadcasting(),
  ':BitwiseOr': broadcasting(),
  ':BitwiseXor': broadcasting(),
  ':And': broadcasting({ elemType: BOOL, legacy: true, sym: bin(logic((a, b) => a && b)) }),
  ':Or': broadcasting({ elemType: BOOL, legacy: true, sym: bin(logic((a, b) => a || b)) }),
  ':Xor': broadcasting({ elemType: BOOL, legacy: true }),
  ':PRelu': prelu,
  ':Max': broadcasting({ sym: fold(symMax) }),
  ':Min': broadcasting({ sym: fold(symMin) }),
  ':Mean': broadcasting(),
  ':Sum': broadcasting({ sym: fold(add) }),
  ':Equal': broadcasting({ elemType: BOOL, legacy: true, sym: bin(symEqual) }),
  ':Greater': broadcasting({ elemType: BOOL, legacy: true, sym: bin(symGreater) }),
  ':Less': broadcasting({ elemType: BOOL, legacy: true, sym: bin((a, b) => symGreater(b, a)) }),
  ':GreaterOrEqual': broadcasting({ elemType: BOOL, sym: bin((a, b) => { const g = symGreater(b, a); return g && Sym.const(1 - g.value!); }) }),
  ':LessOrEqual': broadcasting({ elemType: BOOL, sym: bin((a, b) => { const g = symGreater(a, b); return g && Sym.const(1 - g.value!); }) }),
  ':Where': where,

  ':ReduceSum': reduce(fold(add)),
  ':ReduceProd': reduce(fold((a, b) => a.mul(b))),
  ':ReduceMean': reduce(),
  ':ReduceMax': reduce(fold(symMax)),
  ':ReduceMin': reduce(fold(symMin)),
  ':ReduceL1': reduce(),
  ':ReduceL2': reduce(),
  ':ReduceLogSum': reduce(),
  ':ReduceLogSumExp': reduce(),
  ':ReduceSumSquare': reduce(),
  ':ArgMax': argReduce,
  ':ArgMin': argReduce,
  ':TopK': topk,

  ':MatMul': matmul(),
  ':MatMulInteger': matmul(DataType.INT32),
  ':Gemm': gemm,
  ':Einsum': einsum,
  ':Det': det,
} satisfies RuleTable);

export const elementwiseOps: RuleTable = table;
