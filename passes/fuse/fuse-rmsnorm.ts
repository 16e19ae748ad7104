/**
 * fuse-rmsnorm
 *
 * Before:  [xf = Cast(x, to=float)]                        (optional: a float16/bfloat16 x normalized in float,
 *                                                           as Llama's hidden.to(float32) exports)
 *          q = Pow(xf, 2) | Mul(xf, xf)
 *          m = ReduceMean(q, axes=[-1], keepdims=1)        (axes attribute before opset 18, input from 18)
 *          s = Add(m, eps) | Add(eps, m)
 *          n = Div(xf, Sqrt(s)) | Div(xf, Pow(s, 0.5))
 *            | Mul(xf, r) | Mul(r, xf)  with  r = Reciprocal(Sqrt(s)) | Div(1, Sqrt(s)) | Pow(s, -0.5)
 *          [n = Cast(n, to=x's type)]                      (only with the first Cast: back to x's type)
 *          y = Mul(n, w) | Mul(w, n)                       (optional weight, either side)
 * After:   y = SimplifiedLayerNormalization(x, w, axis=-1, epsilon=eps, stash_type=1)
 *          In the DEFAULT ONNX domain: ONNX Runtime registers its SimplifiedLayerNormalization kernels
 *          (CPU, CUDA, WebGPU) in the ONNX domain from opset 1; com.microsoft has no such op (ORT 1.30:
 *          "com.microsoft:SimplifiedLayerNormalization(-1) is not a registered function/op"). Hence level 2:
 *          only ONNX Runtime runs it.
 * Conditions:
 *   - ReduceMean over the last axis only (-1, or rank-1 with the rank known), keepdims=1, constant axes;
 *   - the exponent of the square is 2 (and of a Pow root 0.5 / -0.5), a Div(1, .) numerator is 1;
 *   - eps is a constant scalar >= 0;
 *   - the normalized value is not centered (x - mean(x) is a LayerNorm: fuse-layernorm's);
 *   - the input has a float type (float32, float16, bfloat16, float64);
 *   - the intermediates (q, m, s, sqrt, r, and xf when the Cast is absorbed) feed only the pattern;
 *   - the Casts are absorbed only as a pair: Cast(x: float16|float32 -> float) in and Cast back to x's
 *     type out, the weight (if any) after the Cast back; otherwise the float core is fused and the
 *     Casts stay (the weight then is the float Mul after n, if there is one). Not for bfloat16: ORT's
 *     CPU table has no bfloat16 SimplifiedLayerNormalization, and the float core runs everywhere;
 *   - the weight is a constant of the normalized value's element type that broadcasts along the last
 *     axis only ([H], [1, 1, H] or one element, made 1-D [H]) with rank at most the input's and H equal
 *     to the input's last dim when that is known; a weight that is not such a constant stays a Mul
 *     (explained) and the fused op gets a weight of ones, which needs a static last dim.
 * Formula: SimplifiedLayerNormalization computes y = x / sqrt(mean(x^2, last axis) + eps) * w, with
 *   the statistics in float (stash_type=1) and Y of x's type: for a float16 x that is the Cast pair's
 *   float computation, with one rounding to float16 after the weight instead of one before and one after.
 *
 * fuse-layernorm-contrib also fuses the float form without Casts (its shared matcher sees RMSNorm as
 * a LayerNorm without centering); run this pass first so that the Cast forms are fused as a whole.
 */
import { attrInt } from '../../src/ir/attribute.js';
import { DataType, dataTypeName } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { toBfloat16Bits, toFloat16Bits } from '../../src/ir/half.js';
import { Tensor } from '../../src/ir/tensor.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';
import { alt, constantValue, op, opt, v, type OpPattern } from '../../src/pass/pattern.js';
import { lastDim, NORM_FLOAT_TYPES, reduceAxes, shapesOf } from '../lib/layernorm-pattern.js';
import { elemTypeOf, rankOf, scalarOf } from '../lib/query.js';

// the core, matched backwards from the normalizing node n
const square = alt(op('Pow', v('xf'), v('exponent')).as('square'), op('Mul', v('xf'), v('xf')).as('square'));
const meanSquare = op('ReduceMean', square, opt(v('axes'))).as('mean');
const plusEps = alt(op('Add', meanSquare, v('eps')).as('addEps'), op('Add', v('eps'), meanSquare).as('addEps'));
const root = alt(op('Sqrt', plusEps).as('root'), op('Pow', plusEps, v('rootExponent')).as('root'));
const inverseRoot = alt(
  op('Reciprocal', root).as('inverse'),
  op('Div', v('numerator'), root).as('inverse'),
  op('Pow', plusEps, v('inverseExponent')).as('inverse'),
);
const normalize: OpPattern[] = [op('Div', v('xf'), root), op('Mul', v('xf'), inverseRoot), op('Mul', inverseRoot, v('xf'))];

interface Core {
  xf: Value; square: Node; exponent?: Value; mean: Node; eps: Value; addEps: Node;
  root?: Node; rootExponent?: Value; inverse?: Node; numerator?: Value; inverseExponent?: Value;
}

interface Match {
  /** the fused op's input: x (Casts absorbed) or xf */
  x: Value;
  epsilon: number;
  elemType: number;
  /** the weight as a 1-D [H] value, or a tensor to add as one (reshaped / expanded / ones) */
  weight: Value | Tensor;
  /** the value the fused op replaces */
  out: Value;
  name: string;
}

type Caps = { m: Match };

/** The element types an RMSNorm's scalar constants (exponents, eps) are read from: floats (half ones decoded) and integers. */
const SCALAR_TYPES: readonly number[] = [DataType.FLOAT, DataType.DOUBLE, DataType.INT32, DataType.INT64, DataType.FLOAT16, DataType.BFLOAT16];
const scalar = (val: Value | undefined): number | undefined => scalarOf(val, SCALAR_TYPES);

/** A tensor of `n` ones of a float element type. */
function ones(elemType: number, n: number): Tensor {
  switch (elemType) {
    case DataType.FLOAT16: return Tensor.fromTypedArray(elemType, [n], new Uint16Array(n).fill(toFloat16Bits(1)));
    case DataType.BFLOAT16: return Tensor.fromTypedArray(elemType, [n], new Uint16Array(n).fill(toBfloat16Bits(1)));
    case DataType.DOUBLE: return Tensor.fromTypedArray(elemType, [n], new Float64Array(n).fill(1));
    default: return Tensor.float32(new Float32Array(n).fill(1), [n]);
  }
}

/** The sole user of `val` of op `opType` (default domain), or undefined. */
function soleUser(val: Value, opType: string): Node | undefined {
  if (val.uses.length !== 1 || val.isReturned) return undefined;
  const u = val.uses[0]!.node;
  return u.domain === '' && u.opType === opType && !u.removed ? u : undefined;
}

/**
 * `w` as the weight of a norm over a last dim of `hidden` (undefined: not static): a 1-D [H] value,
 * a tensor to add as one, or why it is not a weight.
 */
function asWeight(w: Value, elemType: number, hidden: number | undefined, rank: number | undefined): { weight: Value | Tensor; hidden: number } | string {
  const t = constantValue(w);
  if (!t) return `weight '${w.name}' is not a constant`;
  if (t.dataType !== elemType) return `weight '${w.name}' has element type ${dataTypeName(t.dataType)}, the normalized value ${dataTypeName(elemType)}`;
  const dims = t.dims;
  if (rank !== undefined && dims.length > rank) return `weight '${w.name}' has rank ${dims.length}, more than the input's ${rank}`;
  if (dims.slice(0, -1).some((d) => d !== 1)) return `weight '${w.name}' has shape [${dims.join(',')}]: it does not broadcast along the last axis only`;
  const last = dims.length ? dims[dims.length - 1]! : 1;
  if (t.elementCount === 1) {
    if (hidden === undefined) return `weight '${w.name}' has one element and the last dim is not static: it cannot be made [H]`;
    const data = t.toTypedArray();
    const out = new (data.constructor as new (n: number) => typeof data)(hidden);
    for (let i = 0; i < hidden; i++) out[i] = data[0]!;
    return { weight: Tensor.fromTypedArray(t.dataType, [hidden], out), hidden };
  }
  if (hidden !== undefined && last !== hidden) return `weight '${w.name}' has ${last} elements along the last axis, the input ${hidden}`;
  return { weight: dims.length === 1 ? w : t.reshaped([last]), hidden: last };
}

function prefixOf(n: Node): string {
  const i = n.name.lastIndexOf('/');
  return i >= 0 ? n.name.slice(0, i + 1) : '';
}

/** The float core ending at the normalizing node `node`, unless it is centered (a LayerNorm). */
function matchCore(node: Node): Core | undefined {
  let core: Core | undefined;
  for (const p of normalize) {
    const c: Record<string, unknown> = {};
    if (p.matchNode(node, c)) { core = c as unknown as Core; break; }
  }
  if (!core) return undefined;
  // centered: a LayerNorm (fuse-layernorm / fuse-layernorm-contrib take it), not an RMSNorm
  const sub = core.xf.producer;
  if (sub?.opType === 'Sub' && sub.domain === '' && sub.inputs[1]?.producer?.opType === 'ReduceMean' && sub.inputs[1].producer.inputs[0] === sub.inputs[0]) return undefined;
  return core;
}

/** The scalar constants: no rank above x's, exponents 2, 0.5, -0.5, numerator 1; returns epsilon, or why not. */
function checkScalars(core: Core, rank: number | undefined): number | string {
  // a scalar constant of higher rank than x would broadcast the result to a higher rank
  for (const c of [core.exponent, core.rootExponent, core.inverseExponent, core.numerator, core.eps]) {
    const dims = constantValue(c)?.dims;
    if (c && dims && rank !== undefined && dims.length > rank) return `constant '${c.name}' has rank ${dims.length}, more than the input's ${rank}`;
  }
  if (core.exponent !== undefined && scalar(core.exponent) !== 2) return `${core.square}: exponent is ${scalar(core.exponent) ?? `'${core.exponent.name}', not a constant scalar`}, not 2`;
  if (core.rootExponent !== undefined && scalar(core.rootExponent) !== 0.5) return `${core.root}: exponent is ${scalar(core.rootExponent) ?? 'not a constant scalar'}, not 0.5 (a square root)`;
  if (core.inverseExponent !== undefined && scalar(core.inverseExponent) !== -0.5) return `${core.inverse}: exponent is ${scalar(core.inverseExponent) ?? 'not a constant scalar'}, not -0.5 (an inverse square root)`;
  if (core.numerator !== undefined && scalar(core.numerator) !== 1) return `${core.inverse}: numerator '${core.numerator.name}' is not the constant 1`;
  const epsilon = scalar(core.eps);
  if (epsilon === undefined) return `${core.addEps}: epsilon '${core.eps.name}' is not a constant scalar`;
  if (!(epsilon >= 0)) return `${core.addEps}: epsilon is ${epsilon}, negative`;
  return epsilon;
}

/** Why the ReduceMean does not reduce over the last axis only, keeping it (undefined: it does). */
function checkMean(mean: Node, ctx: PassContext, rank: number | undefined): string | undefined {
  if (attrInt(mean.attr('keepdims'), 1) !== 1) return `${mean}: keepdims=0`;
  const axes = reduceAxes(mean, ctx);
  if (axes === undefined) return `${mean}: axes are not constant`;
  if (axes === 'all' || axes.length !== 1) return `${mean}: reduces over axes ${axes === 'all' ? '(all)' : `[${axes.join(',')}]`}, not the last axis only`;
  if (axes[0] !== -1 && (rank === undefined || axes[0] !== rank - 1)) return `${mean}: reduces over axis ${axes[0]} of a rank-${rank ?? '?'} input, not the last axis`;
  return undefined;
}

/** The pattern's nodes (the normalizing `node` last), or why an intermediate is also used outside them. */
function innerNodes(core: Core, node: Node): Set<Node> | string {
  const inner = new Set<Node>([core.square, core.mean, core.addEps, node]);
  if (core.root) inner.add(core.root);
  if (core.inverse) inner.add(core.inverse);
  const internal = [...inner].filter((n) => n !== node).map((n) => n.outputs[0]!);
  for (const val of internal) {
    if (val.isReturned || val.uses.some((u) => !inner.has(u.node))) return `intermediate '${val.name}' (${val.producer}) is also used outside the pattern`;
  }
  return inner;
}

/**
 * The fused op's input, output and type: with the Cast pair Cast(x -> float) in, Cast(-> x's type)
 * out absorbed when both are there (x float16 or float32), else the float core's.
 */
function absorbCasts(ctx: PassContext, xf: Value, node: Node, floatType: number, inner: Set<Node>): { x: Value; out: Value; elemType: number } {
  const out = node.outputs[0]!;
  const castIn = xf.producer;
  if (castIn?.opType === 'Cast' && castIn.domain === '' && floatType === DataType.FLOAT && !xf.isReturned && xf.uses.every((u) => inner.has(u.node))) {
    const x0 = castIn.inputs[0]!;
    const t0 = elemTypeOf(shapesOf(ctx), x0);
    const castOut = soleUser(out, 'Cast');
    if ((t0 === DataType.FLOAT16 || t0 === DataType.FLOAT) && castOut && attrInt(castOut.attr('to')) === t0) {
      return { x: x0, out: castOut.outputs[0]!, elemType: t0 };
    }
  }
  return { x: xf, out, elemType: floatType };
}

/**
 * The weight: the constant of the Mul after `out` (explained and left when it is not one), or ones
 * over a static last dim; with the value the fused op replaces. A string: why there is none.
 */
function foldWeight(ctx: PassContext, what: string, x: Value, out: Value, elemType: number, rank: number | undefined): { weight: Value | Tensor; out: Value } | string {
  const hidden = lastDim(x, ctx);
  const mul = soleUser(out, 'Mul');
  if (mul) {
    const w = mul.inputs[0] === out ? mul.inputs[1]! : mul.inputs[0]!;
    const r = asWeight(w, elemType, hidden, rank);
    if (typeof r !== 'string') return { weight: r.weight, out: mul.outputs[0]! };
    ctx.explain(`${what}: ${mul} not folded in: ${r}`);
  }
  if (hidden === undefined) return `no weight and the last dim of '${x.name}' is not static: cannot make a weight of ones`;
  return { weight: ones(elemType, hidden), out };
}

function matchRmsNorm(node: Node, ctx: PassContext): Match | null {
  const core = matchCore(node);
  if (!core) return null;
  const { xf } = core;
  const what = `RMSNorm of '${xf.name}' at ${node}`;
  const fail = (why: string): null => { ctx.explain(`${what}: ${why}`); return null; };
  const rank = rankOf(shapesOf(ctx), xf);
  const epsilon = checkScalars(core, rank);
  if (typeof epsilon === 'string') return fail(epsilon);
  const badMean = checkMean(core.mean, ctx, rank);
  if (badMean) return fail(badMean);
  const floatType = elemTypeOf(shapesOf(ctx), xf);
  if (floatType === undefined || !NORM_FLOAT_TYPES.includes(floatType)) return fail(`input '${xf.name}' has element type ${floatType === undefined ? 'unknown' : dataTypeName(floatType)}, not a float type`);
  const inner = innerNodes(core, node);
  if (typeof inner === 'string') return fail(inner);
  const { x, out, elemType } = absorbCasts(ctx, xf, node, floatType, inner);
  const w = foldWeight(ctx, what, x, out, elemType, rank);
  if (typeof w === 'string') return fail(w);
  return { x, epsilon, elemType, weight: w.weight, out: w.out, name: `${prefixOf(core.square)}SimplifiedLayerNormalization` };
}

const rule: Rule<Caps> = {
  name: 'rmsnorm',
  ops: ['Div', 'Mul'],
  match: (node, ctx) => {
    const m = matchRmsNorm(node, ctx);
    return m ? { m } : null;
  },
  rewrite: ({ m }, patch) => {
    const w = m.weight instanceof Tensor ? patch.constant(m.weight, m.name.replace(/SimplifiedLayerNormalization$/, 'weight')) : m.weight;
    const y = patch.add('SimplifiedLayerNormalization', [m.x, w], { axis: -1, epsilon: m.epsilon, stash_type: 1 }, { name: m.name });
    patch.replace(m.out, y);
  },
  // y replaces the value it is equal to: the other values' types stand (the matcher asks for x's
  // type and last dim, which a rewrite never changes)
  preservesTypes: true,
};

export const fuseRmsnorm = rulePass({
  name: 'fuse-rmsnorm',
  description: "RMSNorm (Pow/ReduceMean/Add eps/Sqrt/Div or rsqrt/Mul, weight, optional Cast to float and back) -> ONNX Runtime's SimplifiedLayerNormalization",
  level: 2,
  rules: [rule as unknown as Rule],
  emits: ['ai.onnx::SimplifiedLayerNormalization'],
});
