/**
 * Matchers for the pieces of an exported self-attention block (used by fuse-attention):
 * the Q/K/V projections (separate MatMul + bias, or one packed projection split in three), the
 * per-head reshape and transposes, and the masks (the BERT padding mask from a [batch, seq]
 * attention_mask, and causal masks: GPT-2's Where over a slice of a tril buffer, an additive
 * upper-triangular -inf matrix).
 *
 * Every matcher returns the match or a string saying what did not match (for --explain).
 */
import type { InferResult } from '../../../src/analysis/infer.js';
import type { Sym } from '../../../src/analysis/symbolic.js';
import { attrFloat, attrInt, attrInts } from '../../../src/ir/attribute.js';
import { DataType } from '../../../src/ir/dtype.js';
import type { Node, Value } from '../../../src/ir/graph.js';
import { Tensor } from '../../../src/ir/tensor.js';
import type { Patch } from '../../../src/pass/patch.js';
import { constantValue } from '../../../src/pass/pattern.js';
import { elemTypeOf, scalarOf, shapeOf } from '../query.js';

export type Fail = string;
export const isFail = (x: unknown): x is Fail => typeof x === 'string';

/** The producer of `v` if it has op type `op` (default domain). */
export function producedBy(v: Value | undefined, ...ops: string[]): Node | undefined {
  const n = v?.producer;
  return n && !n.removed && n.domain === '' && ops.includes(n.opType) ? n : undefined;
}

/** `v` has exactly one use and is not a graph output. */
export function oneUse(v: Value): boolean {
  return v.uses.length === 1 && !v.isReturned;
}

// the graph queries, importable from here as before (passes/lib/query.ts has the one implementation);
// scalarConst is scalarOf: a one-element constant of any numeric type, float16 decoded
export { elemTypeOf, scalarOf as scalarConst, shapeOf } from '../query.js';

export function symEq(a: Sym | undefined, b: Sym | undefined): boolean {
  return a !== undefined && b !== undefined && a.equals(b);
}

export function fmtShape(s: Sym[] | undefined): string {
  return s ? `[${s.map((d) => d.toString()).join(',')}]` : '[?]';
}

/** The numbers of a constant (any numeric type; bool as 0/1), or undefined. */
export function constNumbers(v: Value | undefined): number[] | undefined {
  const t = constantValue(v);
  if (!t) return undefined;
  return tensorNumbers(t);
}

export function tensorNumbers(t: Tensor): number[] | undefined {
  try {
    const a = t.toTypedArray();
    return Array.from(a as ArrayLike<number | bigint>, (x) => Number(x));
  } catch {
    return undefined;
  }
}

/** A scalar Mul/Div of `v` (one use) by a constant: [the other operand, factor], or undefined. */
export function scalarFactor(v: Value): [Value, number] | undefined {
  const n = producedBy(v, 'Mul', 'Div');
  if (!n || !oneUse(v)) return undefined;
  const [a, b] = n.inputs as [Value, Value];
  const cb = scalarOf(b);
  if (cb !== undefined && !constantValue(a)) return [a, n.opType === 'Div' ? 1 / cb : cb];
  const ca = scalarOf(a);
  if (n.opType === 'Mul' && ca !== undefined && !constantValue(b)) return [b, ca];
  return undefined;
}

/** `v` with every scalar Mul/Div by a constant peeled off: [what is scaled, the product of the factors]. */
export function peelScale(v: Value): [Value, number] {
  let scale = 1;
  for (let s = scalarFactor(v); s; s = scalarFactor(v)) { scale *= s[1]; v = s[0]; }
  return [v, scale];
}

/** Attention scores `[s *] (q [* s]) @ (k [* s])`: the MatMul, its operands with scalar factors peeled off, and the factors' product. */
export interface Scores { qk: Node; q: Value; k: Value; scale: number }

/**
 * Match the attention scores a softmax reads (`scores`: its input once the masks are peeled):
 * a MatMul of q and k^T, each side and the product possibly scaled by constants. Shared by the
 * attention fusions, with and without a cache.
 */
export function matchScores(scores: Value, softmax: Node): Scores | Fail {
  const [cur, outer] = peelScale(scores);
  const qk = producedBy(cur, 'MatMul');
  const divMul = producedBy(cur, 'Div', 'Mul');
  if (!qk && divMul && producedBy(divMul.inputs[0], 'MatMul')) {
    return `${divMul}: scale '${divMul.inputs[1]!.name}' is not a scalar constant (computed from shapes? run the portable pipeline first)`;
  }
  if (!qk) return `${softmax}: scores '${cur.name}' are not q @ k^T (masks must be added after scaling)`;
  if (!oneUse(cur)) return `${qk}: output has other uses`;
  const [q, fq] = peelScale(qk.inputs[0]!);
  const [k, fk] = peelScale(qk.inputs[1]!);
  return { qk, q, k, scale: outer * fq * fk };
}

/** The float32 contents of a constant, or undefined. */
export function floatConst(v: Value | undefined): { data: Float32Array; dims: readonly number[] } | undefined {
  const t = constantValue(v);
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  return { data: t.toTypedArray() as Float32Array, dims: t.dims };
}

/** A value's contents as symbolic integers: constants, or what shape inference knows. */
export function symInts(info: InferResult, v: Value | undefined): (number | undefined)[] | undefined {
  if (!v) return undefined;
  const c = constNumbers(v);
  if (c) return c;
  const s = info.symValues.get(v);
  return s?.values.map((d) => d.value);
}

// ---------------------------------------------------------------------------------------------
// projections

/** y = x @ w + b, with w [inDim, n] row-major and b [n]. */
export interface Projection {
  x: Value;
  w: Float32Array;
  b: Float32Array;
  inDim: number;
  n: number;
  /** where it came from, for names */
  name: string;
}

/** A bias constant for a last dim of n: [n], or [1,..,1,n]. */
function biasOf(v: Value | undefined, n: number): Float32Array | undefined {
  const c = floatConst(v);
  if (!c || c.data.length !== n) return undefined;
  if (c.dims.length === 0 || c.dims[c.dims.length - 1] !== n) return undefined;
  return c.data;
}

/**
 * `v` = x @ W + b for a constant W (and b, zero when there is none), x of rank 3 [b, s, in]:
 *   Add(MatMul(x, W), b) (either operand order), MatMul(x, W), or the Conv1D/Linear form
 *   Reshape(Gemm(Reshape(x, [-1, in]), W, C), [b, s, n]).
 */
export function matchProjection(info: InferResult, v: Value): Projection | Fail {
  let add = producedBy(v, 'Add');
  let mm: Node | undefined;
  let b: Float32Array | undefined;
  if (add) {
    for (const [i, j] of [[0, 1], [1, 0]] as const) {
      const cand = producedBy(add.inputs[i], 'MatMul');
      if (cand && oneUse(add.inputs[i]!)) {
        const w = floatConst(cand.inputs[1]);
        if (!w || w.dims.length !== 2) continue;
        b = biasOf(add.inputs[j], w.dims[1]!);
        if (b) { mm = cand; break; }
      }
    }
    if (!mm) return `${add}: not MatMul(x, W) + bias with constant W [in, n] and bias [n]`;
  } else {
    mm = producedBy(v, 'MatMul');
  }
  if (mm) {
    const w = floatConst(mm.inputs[1]);
    if (!w || w.dims.length !== 2) return `${mm}: weight is not a float32 constant of rank 2`;
    const x = mm.inputs[0]!;
    const xs = shapeOf(info, x);
    if (!xs || xs.length !== 3 || xs[2]!.value !== w.dims[0]) return `${mm}: input '${x.name}' ${fmtShape(xs)} is not [batch, seq, ${w.dims[0]}]`;
    const n = w.dims[1]!;
    return { x, w: w.data, b: b ?? new Float32Array(n), inDim: w.dims[0]!, n, name: mm.inputs[1]!.name };
  }
  // Reshape(Gemm(Reshape(x, [-1, in]), W, C), [b, s, n])
  const outer = producedBy(v, 'Reshape');
  const gemm = outer && producedBy(outer.inputs[0], 'Gemm');
  const inner = gemm && producedBy(gemm.inputs[0], 'Reshape');
  if (!outer || !gemm || !inner) return `'${v.name}' is not computed by MatMul(+Add) or Reshape(Gemm(Reshape(x)))`;
  if (!oneUse(outer.inputs[0]!) || !oneUse(gemm.inputs[0]!)) return `${gemm}: its input or output has other uses`;
  if (attrInt(gemm.attr('transA'), 0) !== 0) return `${gemm}: transA=1`;
  const wc = floatConst(gemm.inputs[1]);
  if (!wc || wc.dims.length !== 2) return `${gemm}: B is not a float32 constant of rank 2`;
  const transB = attrInt(gemm.attr('transB'), 0) !== 0;
  const alpha = attrFloat(gemm.attr('alpha'), 1)!;
  const beta = attrFloat(gemm.attr('beta'), 1)!;
  const [r, c] = wc.dims as [number, number];
  const inDim = transB ? c : r, n = transB ? r : c;
  const w = new Float32Array(inDim * n);
  for (let i = 0; i < inDim; i++) for (let j = 0; j < n; j++) w[i * n + j] = alpha * (transB ? wc.data[j * c + i]! : wc.data[i * c + j]!);
  let bias = new Float32Array(n);
  if (gemm.inputs[2]) {
    const cb = floatConst(gemm.inputs[2]);
    if (!cb || cb.data.length !== n || (cb.dims.length === 2 && cb.dims[0] !== 1)) return `${gemm}: C is not a constant of shape [${n}] or [1, ${n}]`;
    bias = cb.data.map((x) => beta * x);
  }
  const x = inner.inputs[0]!;
  const xs = shapeOf(info, x), ys = shapeOf(info, v);
  if (!xs || xs.length !== 3 || xs[2]!.value !== inDim) return `${inner}: input '${x.name}' ${fmtShape(xs)} is not [batch, seq, ${inDim}]`;
  if (!ys || ys.length !== 3 || !symEq(ys[0], xs[0]) || !symEq(ys[1], xs[1]) || ys[2]!.value !== n) {
    return `${outer}: output ${fmtShape(ys)} is not [${xs[0]}, ${xs[1]}, ${n}]`;
  }
  return { x, w, b: bias, inDim, n, name: gemm.inputs[1]!.name };
}

/** Columns [from, from + count) of a projection. */
export function sliceProjection(p: Projection, from: number, count: number): Projection {
  const w = new Float32Array(p.inDim * count);
  for (let i = 0; i < p.inDim; i++) w.set(p.w.subarray(i * p.n + from, i * p.n + from + count), i * count);
  return { x: p.x, w, b: p.b.slice(from, from + count), inDim: p.inDim, n: count, name: p.name };
}

/** The sizes of a Split's outputs along `axis` (dim: that axis's size), or undefined. */
export function splitSizes(node: Node, dim: number | undefined, opset: number): number[] | undefined {
  const outs = node.outputs.length;
  let sizes: number[] | undefined;
  if (opset >= 13) sizes = node.inputs[1] ? constNumbers(node.inputs[1]) : undefined;
  else sizes = attrInts(node.attr('split'));
  if (sizes) return sizes.length === outs ? sizes : undefined;
  if (opset >= 13 && node.inputs[1]) return undefined;
  if (dim === undefined || dim % outs !== 0) return undefined;
  return new Array<number>(outs).fill(dim / outs);
}

// ---------------------------------------------------------------------------------------------
// heads

export interface Heads {
  /** the projection output [b, s, H*D] */
  proj: Value;
  heads: number;
  headSize: number;
}

/**
 * `v` = Transpose(Reshape(proj, [b, s, H, D]), perm) with perm [0,2,1,3] (Q, V) or [0,2,3,1] (K);
 * for K also Transpose([0,1,3,2]) of the [0,2,1,3] form (as exported, before merge-transposes).
 */
export function matchHeads(info: InferResult, v: Value | undefined, key: boolean): Heads | Fail {
  let t = producedBy(v, 'Transpose');
  if (!t) return `'${v?.name}' is not a Transpose`;
  let perm = attrInts(t.attr('perm'))?.join(',');
  if (key && perm === '0,1,3,2') {
    const t2 = producedBy(t.inputs[0], 'Transpose');
    if (!t2 || attrInts(t2.attr('perm'))?.join(',') !== '0,2,1,3') return `${t}: K^T is not a transpose of [b, h, s, d]`;
    t = t2;
    perm = '0,2,3,1';
  }
  const want = key ? '0,2,3,1' : '0,2,1,3';
  if (perm !== want) return `${t}: perm [${perm}] is not [${want}]`;
  const r = producedBy(t.inputs[0], 'Reshape');
  if (!r) return `${t}: input is not a Reshape to [batch, seq, heads, head_size]`;
  if (attrInt(r.attr('allowzero'), 0) !== 0) return `${r}: allowzero=1`;
  const proj = r.inputs[0]!;
  const ps = shapeOf(info, proj), rs = shapeOf(info, r.outputs[0]);
  if (!ps || !rs || ps.length !== 3 || rs.length !== 4) return `${r}: not [b, s, hidden] -> [b, s, heads, head_size] (${fmtShape(ps)} -> ${fmtShape(rs)})`;
  const h = rs[2]!.value, d = rs[3]!.value;
  if (!symEq(ps[0], rs[0]) || !symEq(ps[1], rs[1]) || h === undefined || d === undefined || ps[2]!.value !== h * d) {
    return `${r}: ${fmtShape(ps)} -> ${fmtShape(rs)} does not split the hidden dim into heads`;
  }
  return { proj, heads: h, headSize: d };
}

// ---------------------------------------------------------------------------------------------
// masks

export interface PaddingMask {
  /** the [batch, total_seq] mask (graph input, usually int64) */
  raw: Value;
  /** what a 0 in the mask adds to the scores */
  filter: number;
}

/**
 * m = (1 - float(mask)) * f, with Unsqueeze/Cast anywhere between the [b, s] mask and the Sub:
 * BERT's extended attention mask, [b, 1, 1, s].
 */
export function matchPaddingMask(info: InferResult, m: Value): PaddingMask | Fail {
  const mul = producedBy(m, 'Mul');
  if (!mul) return `'${m.name}' is not (1 - mask) * c`;
  let f: number | undefined, rest: Value | undefined;
  for (const [i, j] of [[0, 1], [1, 0]] as const) {
    const c = scalarOf(mul.inputs[j]);
    if (c !== undefined && !constantValue(mul.inputs[i])) { f = c; rest = mul.inputs[i]; break; }
  }
  if (f === undefined || !rest) return `${mul}: no scalar constant factor`;
  let sawSub = false;
  let cur: Value = rest;
  for (let guard = 0; guard < 8; guard++) {
    const n = cur.producer;
    if (!n || n.domain !== '') break;
    if (n.opType === 'Cast' || (n.opType === 'Unsqueeze')) { cur = n.inputs[0]!; continue; }
    if (n.opType === 'Sub' && !sawSub && scalarOf(n.inputs[0]) === 1) { sawSub = true; cur = n.inputs[1]!; continue; }
    break;
  }
  if (!sawSub) return `${mul}: not (1 - mask) * ${f}`;
  const rawShape = shapeOf(info, cur), ms = shapeOf(info, m);
  if (!rawShape || rawShape.length !== 2) return `mask '${cur.name}' ${fmtShape(rawShape)} is not [batch, seq]`;
  if (!ms || ms.length !== 4 || ms[1]!.value !== 1 || ms[2]!.value !== 1 || !symEq(ms[0], rawShape[0]) || !symEq(ms[3], rawShape[1])) {
    return `additive mask '${m.name}' ${fmtShape(ms)} is not [batch, 1, 1, seq] of the mask '${cur.name}' ${fmtShape(rawShape)}`;
  }
  return { raw: cur, filter: f };
}

/** Walk back through Slices that start at 0 with step 1 (prefixes), Casts and Unsqueezes, to a constant. */
function prefixOfConstant(info: InferResult, v: Value): { t: Tensor; boolCast: boolean } | Fail {
  let cur = v;
  let boolCast = false;
  for (let guard = 0; guard < 8; guard++) {
    const c = constantValue(cur);
    if (c) return { t: c, boolCast };
    const n = cur.producer;
    if (!n || n.domain !== '') break;
    if (n.opType === 'Cast') {
      if (attrInt(n.attr('to')) === DataType.BOOL) boolCast = true;
      cur = n.inputs[0]!;
      continue;
    }
    if (n.opType === 'Unsqueeze') { cur = n.inputs[0]!; continue; }
    if (n.opType === 'Slice') {
      const starts = symInts(info, n.inputs[1]);
      const steps = n.inputs[4] ? symInts(info, n.inputs[4]) : [];
      if (!starts || starts.some((s) => s !== 0)) return `${n}: does not start at 0`;
      if (!steps || steps.some((s) => s !== 1)) return `${n}: step is not 1`;
      cur = n.inputs[0]!;
      continue;
    }
    break;
  }
  return `'${v.name}' is not a prefix slice of a constant`;
}

/** The last two dims of a constant as a matrix reader, when the leading dims are all 1. */
function matrix(t: Tensor): { rows: number; cols: number; at: (i: number, j: number) => number } | undefined {
  if (t.dims.length < 2 || t.dims.slice(0, -2).some((d) => d !== 1)) return undefined;
  const vals = tensorNumbers(t);
  if (!vals) return undefined;
  const rows = t.dims[t.dims.length - 2]!, cols = t.dims[t.dims.length - 1]!;
  return { rows, cols, at: (i, j) => vals[i * cols + j]! };
}

/** The mask's last two dims are [seq, seq] (the attention's). */
function squareOfSeq(info: InferResult, m: Value, seq: Sym): boolean {
  const s = shapeOf(info, m);
  return !!s && s.length >= 2 && symEq(s[s.length - 1], seq) && symEq(s[s.length - 2], seq) && s.slice(0, -2).every((d) => d.value === 1);
}

/** Large enough negative that softmax gives exactly 0, as ORT's causal mask (lowest float) does. */
export const NEG_LIMIT = -1e4;

/**
 * Where(cond, scores, neg) or Where(cond, neg, scores) with cond a prefix slice of a constant
 * lower-triangular (resp. strictly upper) buffer, sliced to [seq, seq]: GPT-2's causal mask.
 * Returns the scores operand.
 */
export function matchCausalWhere(info: InferResult, where: Node, seq: Sym): Value | Fail {
  const [cond, a, b] = where.inputs as [Value, Value, Value];
  const na = scalarOf(a), nb = scalarOf(b);
  const scoresFirst = nb !== undefined && na === undefined;
  const neg = scoresFirst ? nb : na;
  const scores = scoresFirst ? a : b;
  if (neg === undefined || (!scoresFirst && nb !== undefined)) return `${where}: no scalar fill value`;
  if (!(neg <= NEG_LIMIT)) return `${where}: fill value ${neg} is not <= ${NEG_LIMIT}`;
  const p = prefixOfConstant(info, cond);
  if (isFail(p)) return `${where}: condition ${p}`;
  const m = matrix(p.t);
  if (!m) return `${where}: condition buffer [${p.t.dims.join(',')}] is not a matrix`;
  for (let i = 0; i < m.rows; i++) {
    for (let j = 0; j < m.cols; j++) {
      const keep = (m.at(i, j) !== 0) === scoresFirst;
      if (keep !== (j <= i)) return `${where}: condition buffer is not causal (lower-triangular) at [${i},${j}]`;
    }
  }
  if (!squareOfSeq(info, cond, seq)) return `${where}: condition ${fmtShape(shapeOf(info, cond))} is not [.., ${seq}, ${seq}]`;
  return scores;
}

/**
 * An additive causal mask: Trilu(ConstantOfShape([s, s], neg), k=1, upper=1), or a prefix slice of a
 * constant with 0 on and below the diagonal and <= NEG_LIMIT above it.
 */
export function matchCausalAdditive(info: InferResult, m: Value, seq: Sym): true | Fail {
  let cur = m;
  while (producedBy(cur, 'Unsqueeze')) cur = cur.producer!.inputs[0]!;
  const tri = producedBy(cur, 'Trilu');
  if (tri) {
    if (attrInt(tri.attr('upper'), 1) !== 1) return `${tri}: not upper`;
    const k = tri.inputs[1] ? scalarOf(tri.inputs[1]) ?? symInts(info, tri.inputs[1])?.[0] : 0;
    if (k !== 1) return `${tri}: k is ${k ?? '?'}, not 1`;
    const cos = producedBy(tri.inputs[0], 'ConstantOfShape');
    const val = cos?.attr('value');
    const fill = val?.type === 'tensor' ? tensorNumbers(val.value)?.[0] : undefined;
    if (!cos || fill === undefined || !(fill <= NEG_LIMIT)) return `${tri}: input is not ConstantOfShape filled with a value <= ${NEG_LIMIT}`;
  } else {
    const p = prefixOfConstant(info, cur);
    if (isFail(p)) return p;
    const mm = matrix(p.t);
    if (!mm) return `'${m.name}': buffer is not a matrix`;
    for (let i = 0; i < mm.rows; i++) {
      for (let j = 0; j < mm.cols; j++) {
        const x = mm.at(i, j);
        if (j <= i ? x !== 0 : !(x <= NEG_LIMIT)) return `'${m.name}': buffer is not a causal additive mask at [${i},${j}]`;
      }
    }
  }
  if (!squareOfSeq(info, m, seq)) return `'${m.name}' ${fmtShape(shapeOf(info, m))} is not [.., ${seq}, ${seq}]`;
  return true;
}

/** A Cast to its input's own element type (softmax in float, then .to(q.dtype) on a float32 model). */
export function isNoopCast(info: InferResult, n: Node | undefined): n is Node {
  return !!n && !n.removed && n.opType === 'Cast' && n.domain === '' && attrInt(n.attr('to')) === elemTypeOf(info, n.inputs[0]);
}

/** A Transpose's perm as 'a,b,c,d' (undefined without one). */
export function permOf(n: Node): string | undefined {
  return attrInts(n.attr('perm'))?.join(',');
}

/** The attention Softmax's scores: rank 4 (`expect` names the dims, for the message), softmax over the last axis. */
export function softmaxScores(info: InferResult, softmax: Node, opset: number, expect: string): Sym[] | Fail {
  const ss = shapeOf(info, softmax.inputs[0]);
  if (!ss || ss.length !== 4) return `${softmax}: input ${fmtShape(ss)} is not [${expect}]`;
  const axis = attrInt(softmax.attr('axis'), opset < 13 ? 1 : -1);
  if (axis !== -1 && axis !== 3) return `${softmax}: axis ${axis} is not the last`;
  return ss;
}

/**
 * The probabilities times the values, then the heads merged back: Softmax (maybe through a no-op
 * Cast) -> MatMul(P, values) -> Transpose([0,2,1,3]), each read alone. `values` names the MatMul's
 * other operand in the messages.
 */
export function probsTimesValues(info: InferResult, softmax: Node, values: string): { values: Value | undefined; merged: Value } | Fail {
  const probs = softmax.outputs[0]!;
  if (!oneUse(probs)) return `${softmax}: output has ${probs.uses.length} uses${probs.isReturned ? ' and is a graph output' : ''}, not one MatMul with ${values}`;
  let p = probs;
  let pv = probs.uses[0]!.node;
  if (isNoopCast(info, pv) && oneUse(pv.outputs[0]!)) { p = pv.outputs[0]!; pv = p.uses[0]!.node; }
  if (pv.opType !== 'MatMul' || pv.domain !== '' || pv.inputs[0] !== p || pv.inputs[1] === p) return `${softmax}: output feeds ${pv}, not the MatMul with ${values}`;
  const pvOut = pv.outputs[0]!;
  const back = oneUse(pvOut) ? pvOut.uses[0]!.node : undefined;
  if (!back || back.opType !== 'Transpose' || back.domain !== '' || permOf(back) !== '0,2,1,3') return `${pv}: output is not transposed back with perm [0,2,1,3] (alone)`;
  return { values: pv.inputs[1], merged: back.outputs[0]! };
}

/**
 * The fused op's output `out` [batch, seq, heads * headSize] takes the place of the merged heads:
 * each Reshape that flattened them reads `out`; any other reader of the merged [b, s, heads, size]
 * reads `out` split back into heads.
 */
export function replaceMergedHeads(patch: Patch, m: { merged: Value; reshapes: Node[] }, out: Value, heads: number, headSize: number, base: string): void {
  for (const r of m.reshapes) patch.replace(r.outputs[0]!, out);
  const others = m.merged.uses.filter((u) => !m.reshapes.includes(u.node));
  if (others.length || m.merged.isReturned) {
    const shape = patch.constant(Tensor.int64([0, 0, heads, headSize]), `${base}/heads_shape`);
    patch.replace(m.merged, patch.add('Reshape', [out, shape], {}, { name: `${base}/split_heads` }));
  }
}
