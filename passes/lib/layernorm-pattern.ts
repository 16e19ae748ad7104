/**
 * The decomposed layer norms that exporters write, shared by fuse-layernorm (level 1) and
 * fuse-layernorm-contrib (level 2).
 *
 * LayerNorm:  m = ReduceMean(x, [-1]);  d = Sub(x, m);  q = Pow(d, 2) | Mul(d, d)
 *             v = ReduceMean(q, [-1]);  s = Sqrt(Add(v, eps))
 *             n = Div(d, s) | Mul(d, Reciprocal(s)) | Mul(d, Div(1, s))      (Mul either way round)
 *             y = Add(Mul(n, gamma), beta)       (gamma and beta optional, either operand order)
 * RMSNorm:    the same without the centering: q = Pow(x, 2), n = x / sqrt(mean(q) + eps), y = n * gamma
 *
 * matchNorm() is tried at the normalizing node n (Div or Mul) and walks back for the statistics and
 * forward for gamma and beta. Every structural candidate whose conditions fail is explained.
 */
import { attrInt, attrInts } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { PassContext } from '../../src/pass/pass.js';
import type { Patch } from '../../src/pass/patch.js';
import { alt, constant, constantValue, op, opt, v, type OpPattern } from '../../src/pass/pattern.js';
import { elemTypeOf, rankOf, scalarOf, staticDims, tensorScalar } from './query.js';

export const NORM_FLOAT_TYPES: readonly number[] = [DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16];

const isOne = (t: Tensor): boolean => tensorScalar(t, NORM_FLOAT_TYPES) === 1;

const square = alt(op('Pow', v('d'), constant('exponent')).as('pow'), op('Mul', v('d'), v('d')).as('pow'));
const meanSquare = op('ReduceMean', square, opt(v('axes2'))).as('rm2').out('variance');
const plusEps = alt(op('Add', meanSquare, constant('eps')).as('addEps'), op('Add', constant('eps'), meanSquare).as('addEps'));
const std = op('Sqrt', plusEps).as('sqrt');
const recip = alt(op('Reciprocal', std).as('recip'), op('Div', constant('one', isOne), std).as('recip'));
const normalize: OpPattern[] = [op('Div', v('d'), std), op('Mul', v('d'), recip), op('Mul', recip, v('d'))];
const centered = op('Sub', v('x'), op('ReduceMean', v('x'), opt(v('axes1'))).as('rm1')).as('sub');

interface CoreCaps {
  d: Value; pow: Node; exponent?: Value; rm2: Node; variance: Value; eps: Value; addEps: Node; sqrt: Node; recip?: Node;
  x?: Value; rm1?: Node; sub?: Node;
}

export interface NormMatch {
  kind: 'layernorm' | 'rmsnorm';
  /** the normalized input */
  x: Value;
  epsilon: number;
  /** 1-D [hidden] gamma (made in emit when it has to be reshaped or is absent) */
  gamma?: { value: Value; tensor: Tensor };
  beta?: { value: Value; tensor: Tensor };
  hidden: number | undefined;
  elemType: number;
  /** the value the fused op replaces (the last node of the match) */
  out: Value;
  /** the normalizing node (Div or Mul) the match was found at */
  norm: Node;
  /** name prefix for the fused node ('/h.0/ln_1/') */
  prefix: string;
}

/** The axes a ReduceMean reduces (attribute before opset 18, input from 18), 'all' for none given, undefined when not constant. */
export function reduceAxes(rm: Node, ctx: PassContext): number[] | 'all' | undefined {
  let axes: number[] | undefined;
  if (rm.inputs[1]) {
    const t = constantValue(rm.inputs[1]);
    if (!t) return undefined;
    axes = Array.from(t.toTypedArray() as BigInt64Array, (b) => Number(b));
  } else {
    axes = attrInts(rm.attr('axes'));
  }
  if (!axes || axes.length === 0) return ctx.opset() >= 18 && attrInt(rm.attr('noop_with_empty_axes'), 0) === 1 ? [] : 'all';
  return axes;
}

/** Shape analysis, or undefined when it fails on this model. */
export function shapesOf(ctx: PassContext): ReturnType<PassContext['shapes']> | undefined {
  return ctx.shapesOrExplain();
}

/** The static size of the last dim of `val` (inferred, else declared), if known. */
export function lastDim(val: Value, ctx: PassContext): number | undefined {
  return staticDims(shapesOf(ctx), val)?.at(-1);
}

/** "a ReduceMean over the last axis only, keeping dims": the reason it is not, or undefined. */
function lastAxisProblem(rm: Node, input: Value, ctx: PassContext): string | undefined {
  if (attrInt(rm.attr('keepdims'), 1) !== 1) return `${rm}: keepdims=0`;
  const axes = reduceAxes(rm, ctx);
  if (axes === undefined) return `${rm}: axes are not constant`;
  if (axes === 'all' || axes.length !== 1) return `${rm}: reduces over axes ${axes === 'all' ? '(all)' : `[${axes.join(',')}]`}, not the last axis only`;
  const rank = rankOf(shapesOf(ctx), input);
  if (axes[0] === -1 || (rank !== undefined && axes[0] === rank - 1)) return undefined;
  return `${rm}: reduces over axis ${axes[0]} of a rank-${rank ?? '?'} input, not the last axis`;
}

/** The element types a norm's scalar constants (eps, exponent) are read from. */
// a float16 model's epsilon and exponent are float16 constants (decoded exactly)
const SCALAR_TYPES: readonly number[] = [DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16, DataType.INT32, DataType.INT64];
const scalar = (val: Value | undefined): number | undefined => scalarOf(val, SCALAR_TYPES);

/**
 * A constant that broadcasts along the last axis only: dims [..1, H] (rank at most the input's) or
 * a single element. The tensor as 1-D [hidden], or the reason it is not one.
 */
function asVector(val: Value, role: string, hidden: number | undefined, rank: number | undefined, elemType: number): { tensor: Tensor; hidden: number } | string {
  const t = constantValue(val)!;
  if (t.dataType !== elemType) return `${role} '${val.name}' has element type ${t.dataType}, the input ${elemType}`;
  const dims = t.dims;
  if (rank !== undefined && dims.length > rank) return `${role} '${val.name}' has rank ${dims.length}, more than the input's ${rank}`;
  if (dims.slice(0, -1).some((d) => d !== 1)) return `${role} '${val.name}' has shape [${dims.join(',')}]: it does not broadcast along the last axis only`;
  const last = dims.length ? dims[dims.length - 1]! : 1;
  if (last === 1 && t.elementCount === 1 && hidden !== undefined && hidden !== 1) {
    const data = t.toTypedArray();
    const out = new (data.constructor as new (n: number) => typeof data)(hidden);
    for (let i = 0; i < hidden; i++) out[i] = data[0]!;
    return { tensor: Tensor.fromTypedArray(t.dataType, [hidden], out), hidden };
  }
  if (hidden !== undefined && last !== hidden) return `${role} '${val.name}' has ${last} elements along the last axis, the input ${hidden}`;
  return { tensor: dims.length === 1 ? t : t.reshaped([last]), hidden: last };
}

function prefixOf(n: Node): string {
  const i = n.name.lastIndexOf('/');
  return i >= 0 ? n.name.slice(0, i + 1) : '';
}

/** The single user of `val` of one of `ops` (default domain), or undefined. */
function soleUser(val: Value, ops: string[]): Node | undefined {
  if (val.uses.length !== 1 || val.isGraphOutput || val.isReturned) return undefined;
  const u = val.uses[0]!.node;
  return u.domain === '' && ops.includes(u.opType) && !u.removed ? u : undefined;
}

/**
 * The nodes of the other norm cores that center the same way: normalizing nodes (other than `node`)
 * that match the core pattern on the same centered value d, with their statistics nodes (square,
 * mean, eps, sqrt, reciprocal). Uses of d and of its mean by these are not "outside" a match.
 */
function siblingNodes(caps: CoreCaps, node: Node): Set<Node> {
  const out = new Set<Node>();
  for (const u of caps.d.uses) {
    const n = u.node;
    if (n === node || n.removed || n.domain !== '' || (n.opType !== 'Div' && n.opType !== 'Mul')) continue;
    for (const p of normalize) {
      const c: Record<string, unknown> = {};
      if (!p.matchNode(n, c)) continue;
      const sib = c as unknown as CoreCaps;
      if (sib.d !== caps.d) continue;
      for (const m of [n, sib.pow, sib.rm2, sib.addEps, sib.sqrt, sib.recip]) if (m) out.add(m);
      break;
    }
  }
  return out;
}

/**
 * Match a decomposed LayerNorm or RMSNorm whose normalizing Div/Mul is `node`. Returns null when it
 * is not one; when it is a candidate but a condition fails, ctx.explain says which and returns null.
 */
export function matchNorm(node: Node, ctx: PassContext): NormMatch | null {
  if (node.domain !== '' || (node.opType !== 'Div' && node.opType !== 'Mul')) return null;
  let caps: CoreCaps | undefined;
  for (const p of normalize) {
    const c: Record<string, unknown> = {};
    if (p.matchNode(node, c)) { caps = c as unknown as CoreCaps; break; }
  }
  if (!caps) return null;
  const cc: Record<string, unknown> = {};
  const isLn = centered.matchValue(caps.d, cc);
  if (isLn) Object.assign(caps, cc);
  const kind = isLn ? 'layernorm' : 'rmsnorm';
  const x = isLn ? caps.x! : caps.d;
  const what = `${kind === 'layernorm' ? 'LayerNorm' : 'RMSNorm'} of '${x.name}' at ${node}`;
  const fail = (why: string): null => { ctx.explain(`${what}: ${why}`); return null; };

  if (caps.exponent !== undefined && scalar(caps.exponent) !== 2) return fail(`${caps.pow}: exponent is ${scalar(caps.exponent) ?? 'not a scalar'}, not 2`);
  const eps = scalar(caps.eps);
  if (eps === undefined || !(eps >= 0)) return fail(`${caps.addEps}: epsilon '${caps.eps.name}' is not a non-negative float scalar`);
  for (const [rm, input] of [[caps.rm1, x], [caps.rm2, caps.pow.outputs[0]!]] as [Node | undefined, Value][]) {
    if (!rm) continue;
    const problem = lastAxisProblem(rm, input, ctx);
    if (problem) return fail(problem);
  }
  const elemType = elemTypeOf(shapesOf(ctx), x);
  if (elemType === undefined || !NORM_FLOAT_TYPES.includes(elemType)) return fail(`input '${x.name}' has element type ${elemType ?? 'unknown'}, not a float type`);

  // intermediate values must feed only the pattern (else the fused op saves nothing)
  const inner = new Set<Node>([caps.pow, caps.rm2, caps.addEps, caps.sqrt, node]);
  if (caps.recip) inner.add(caps.recip);
  if (caps.rm1) inner.add(caps.rm1);
  if (caps.sub) inner.add(caps.sub);
  const internal: Value[] = [caps.pow.outputs[0]!, caps.variance, caps.addEps.outputs[0]!, caps.sqrt.outputs[0]!];
  if (caps.recip) internal.push(caps.recip.outputs[0]!);
  if (isLn) internal.push(caps.rm1!.outputs[0]!, caps.d);
  // The centering (ReduceMean, Sub) may be shared with sibling norms of the same x: two LayerNorms
  // of one input (GPT-NeoX's parallel residual: ln1(h) and ln2(h)), merged by CSE. Each fusion then
  // replaces its own tail, and the shared nodes die with the last one.
  const siblings = isLn ? siblingNodes(caps, node) : new Set<Node>();
  for (const val of internal) {
    const shared = val === caps.d || val === caps.rm1?.outputs[0];
    if (val.isGraphOutput || val.isReturned || val.uses.some((u) => !inner.has(u.node) && !(shared && siblings.has(u.node)))) {
      return fail(`intermediate '${val.name}' (${val.producer}) is also used outside the pattern`);
    }
  }

  // forward: gamma, then beta
  let hidden = lastDim(x, ctx);
  const rank = rankOf(shapesOf(ctx), x);
  let out = node.outputs[0]!;
  let gamma: NormMatch['gamma'];
  let beta: NormMatch['beta'];
  const mul = soleUser(out, ['Mul']);
  const gv = mul && (mul.inputs[0] === out ? mul.inputs[1] : mul.inputs[0]);
  if (mul && gv && constantValue(gv)) {
    const r = asVector(gv, 'gamma', hidden, rank, elemType);
    if (typeof r === 'string') ctx.explain(`${what}: ${mul} not folded in: ${r}`);
    else {
      gamma = { value: gv, tensor: r.tensor };
      hidden = r.hidden;
      out = mul.outputs[0]!;
      const add = kind === 'layernorm' ? soleUser(out, ['Add']) : undefined;
      const bv = add && (add.inputs[0] === out ? add.inputs[1] : add.inputs[0]);
      if (add && bv && constantValue(bv)) {
        const rb = asVector(bv, 'beta', hidden, rank, elemType);
        if (typeof rb === 'string') ctx.explain(`${what}: ${add} not folded in: ${rb}`);
        else { beta = { value: bv, tensor: rb.tensor }; out = add.outputs[0]!; }
      }
    }
  }
  if (!gamma && hidden === undefined) return fail(`no gamma and the hidden size (last dim of '${x.name}') is not static: cannot make a gamma of ones`);
  return {
    kind, x, epsilon: eps, hidden, elemType, out, norm: node,
    prefix: prefixOf(caps.rm1 ?? caps.pow),
    ...(gamma ? { gamma } : {}),
    ...(beta ? { beta } : {}),
  };
}

/** gamma (and beta when `withBeta` or present) as 1-D [hidden] values, made when needed. */
export function affineInputs(m: NormMatch, patch: Patch, withBeta: boolean): [Value, Value | undefined] {
  const vec = (p: { value: Value; tensor: Tensor } | undefined, fill: number, name: string): Value => {
    if (p && p.tensor.dims.length === 1 && constantValue(p.value)?.dims.length === 1) return p.value;
    if (p) return patch.constant(p.tensor, `${p.value.name}_1d`);
    const n = m.hidden!;
    const c = patch.constant(Tensor.float32(new Float32Array(n).fill(fill), [n]), `${m.prefix}${name}`);
    return m.elemType === DataType.FLOAT ? c : patch.add('Cast', [c], { to: m.elemType });
  };
  const g = vec(m.gamma, 1, 'gamma');
  const b = m.beta ? vec(m.beta, 0, 'beta') : withBeta ? vec(undefined, 0, 'beta') : undefined;
  return [g, b];
}
