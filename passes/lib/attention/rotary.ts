/**
 * Matchers for rotary position embedding as exporters write it (used by fuse-rotary and fuse-gqa):
 *
 *   y = x * cos + rotate_half(x) * sin,   rotate_half(x) = Concat(-x[..., h:], x[..., :h], axis=-1)
 *   cos = Unsqueeze(Gather(table_cos[:n], position_ids, axis=0), head axis)     (likewise sin)
 *   or cos = Unsqueeze(C, head axis), C [b or 1, s, R] computed in the graph (transformers >= 4.38:
 *   Cos(cat(freqs, freqs)) of position_ids x inv_freq), whose rows are proven to have equal halves
 *   from the ops that compute them (provesEqualHalves)
 *
 * or the interleaved form (GPT-J's rotate_every_two), for constant tables gathered by position ids:
 *
 *   y = x * cos + rotate_every_two(x) * sin,
 *   rotate_every_two(x) = Reshape(Concat(Unsqueeze(-x[..., 1::2], -1), Unsqueeze(x[..., ::2], -1), axis=-1), x's shape)
 *   (torch's stack((-x2, x1), dim=-1).flatten(-2)), the tables' rows repeat_interleave'd (c0 c0 c1 c1 ...)
 *
 * with optional partial rotary: the rotated part is x[..., :R] and the result is concatenated with
 * x[..., R:] again. Every matcher returns the match or a string saying what did not match.
 */
import type { InferResult } from '../../../src/analysis/infer.js';
import type { Sym } from '../../../src/analysis/symbolic.js';
import { attr, attrInt, attrInts, type Attribute } from '../../../src/ir/attribute.js';
import { DataType } from '../../../src/ir/dtype.js';
import type { Node, Value } from '../../../src/ir/graph.js';
import { Tensor } from '../../../src/ir/tensor.js';
import type { Patch } from '../../../src/pass/patch.js';
import { constantValue } from '../../../src/pass/pattern.js';
import { fmtShape, isFail, oneUse, producedBy, symEq, symInts, tensorNumbers, type Fail } from './match.js';
import { elemTypeOf, scalarOf, shapeOf } from '../query.js';

/** A rotary embedding y = x * cos + rotate_half(x) * sin over the last axis of a rank-4 x. */
export interface RotaryMatch {
  /** the Add that sums the two products */
  add: Node;
  /** the input the fused op rotates (for partial rotary: the whole x, of which the first R are rotated) */
  x: Value;
  /** the value the fused op replaces (the Add, or for partial rotary the Concat with the pass-through part) */
  out: Value;
  /** where cos and sin come from: constant tables gathered by position ids, or values computed in the graph */
  angles: RotaryAngles;
  /** R: how many leading elements of each head are rotated */
  rotaryDim: number;
  /** H: the head size (last dim of x) */
  headSize: number;
  /** heads (dim of x that the tables broadcast over), when static */
  heads: number | undefined;
  /** x is [batch, heads, seq, head] ('bnsh', rotary after the head transpose) or [batch, seq, heads, head] ('bsnh') */
  layout: 'bnsh' | 'bsnh';
  elemType: number;
  /** interleaved rotary (rotate_every_two: pairs (x[2i], x[2i+1]) rotated, cos/sin rows repeat_interleave'd) */
  interleaved: boolean;
}

/**
 * cos and sin of a rotary embedding:
 *   table:    constant tables [positions, R] (before halving) gathered by int64 [batch, seq] position ids;
 *   computed: values C [b or 1, s, R] computed in the graph, one row of angles per (batch row, position),
 *             with equal halves; the fused op reads them as a [rows, R/2] cache indexed by the row number.
 */
export type RotaryAngles =
  | { kind: 'table'; positionIds: Value; cosTable: Value; sinTable: Value; cos: Tensor; sin: Tensor }
  | { kind: 'computed'; cos: Value; sin: Value };

/** end: undefined when not known (a prefix to the key length, computed at run time) */
interface SliceSpec { start: number; end: number | undefined; axis: number; step: number; data: Value }

/** A Slice of one axis with constant start/end/step (opset 10+ inputs or opset 1-9 attributes). */
function sliceSpec(info: InferResult, n: Node): SliceSpec | undefined {
  let starts: (number | undefined)[] | undefined, ends: (number | undefined)[] | undefined;
  let axes: (number | undefined)[] | undefined, steps: (number | undefined)[] | undefined;
  if (n.inputs.length >= 3) {
    starts = symInts(info, n.inputs[1]); ends = symInts(info, n.inputs[2]);
    axes = n.inputs[3] ? symInts(info, n.inputs[3]) : undefined;
    steps = n.inputs[4] ? symInts(info, n.inputs[4]) : undefined;
  } else {
    starts = attrInts(n.attr('starts')); ends = attrInts(n.attr('ends')); axes = attrInts(n.attr('axes'));
  }
  if (!starts || !ends || starts.length !== 1 || ends.length !== 1) return undefined;
  const rank = shapeOf(info, n.inputs[0])?.length;
  let axis = axes?.[0] ?? 0;
  if (axes && axes.length !== 1) return undefined;
  if (axis === undefined) return undefined;
  if (axis < 0 && rank !== undefined) axis += rank;
  const step = steps?.[0] ?? 1;
  const start = starts[0], end = ends[0];
  if (start === undefined || step === undefined) return undefined;
  return { start, end, axis, step, data: n.inputs[0]! };
}

/** Slice(v) along the last axis from `from` to `to` (to: the dim or beyond) with step 1: returns v, else undefined. */
function lastAxisSlice(info: InferResult, s: Value | undefined, from: number, to: number): Value | undefined {
  const n = producedBy(s, 'Slice');
  if (!n) return undefined;
  const spec = sliceSpec(info, n);
  const rank = shapeOf(info, n.inputs[0])?.length;
  if (!spec || rank === undefined || spec.axis !== rank - 1 || spec.step !== 1 || spec.start !== from) return undefined;
  const dim = shapeOf(info, n.inputs[0])![rank - 1]!.value;
  if (dim === undefined || spec.end === undefined) return undefined;
  const end = Math.min(spec.end, dim);
  return end === to ? spec.data : undefined;
}

/** -v as Neg(v) or Mul(v, -1) / Mul(-1, v): returns v. */
function negated(v: Value | undefined): Value | undefined {
  const neg = producedBy(v, 'Neg');
  if (neg) return neg.inputs[0];
  const mul = producedBy(v, 'Mul');
  if (!mul) return undefined;
  if (scalarOf(mul.inputs[1]) === -1) return mul.inputs[0];
  if (scalarOf(mul.inputs[0]) === -1) return mul.inputs[1];
  return undefined;
}

/** rotate_half(x) = Concat(-x[..., h:], x[..., :h], axis=-1): returns x and h, or why not. */
export function matchRotateHalf(info: InferResult, v: Value): { x: Value; half: number; concat: Node } | Fail {
  const concat = producedBy(v, 'Concat');
  if (!concat || concat.inputs.length !== 2) return `'${v.name}' is not a Concat of two halves`;
  const rank = shapeOf(info, v)?.length;
  const axis = attrInt(concat.attr('axis'), 0);
  if (rank === undefined || (axis !== -1 && axis !== rank - 1)) return `${concat}: does not concatenate the last axis`;
  const dim = shapeOf(info, v)![rank - 1]!.value;
  if (dim === undefined || dim % 2 !== 0) return `${concat}: last dim ${dim ?? '?'} is not a known even size`;
  const half = dim / 2;
  const hi = negated(concat.inputs[0]);
  if (!hi) {
    if (negated(concat.inputs[1])) return `${concat}: Concat(x1, -x2) is not rotate_half's Concat(-x2, x1) (a rotation the other way)`;
    return `${concat}: first operand is not negated`;
  }
  const x = lastAxisSlice(info, hi, half, dim);
  if (!x) return `${concat}: the negated operand is not x[..., ${half}:] (interleaved rotary, rotate_every_two, is not matched)`;
  const lo = lastAxisSlice(info, concat.inputs[1], 0, half);
  if (lo !== x) return `${concat}: the second operand is not x[..., :${half}] of the same x`;
  const xs = shapeOf(info, x);
  if (xs?.[xs.length - 1]?.value !== dim) return `${concat}: halves of '${x.name}' ${fmtShape(xs)}, whose last dim is not ${dim}`;
  return { x, half, concat };
}

/** Slice(v) of the last axis from `start` with step 2 to the end: returns v, else undefined. */
function lastAxisStep2(info: InferResult, s: Value | undefined, start: number): Value | undefined {
  const n = producedBy(s, 'Slice');
  const spec = n && sliceSpec(info, n);
  const rank = n ? shapeOf(info, n.inputs[0])?.length : undefined;
  if (!n || !spec || rank === undefined || spec.axis !== rank - 1 || spec.step !== 2 || spec.start !== start) return undefined;
  const dim = shapeOf(info, n.inputs[0])![rank - 1]!.value;
  if (dim === undefined || spec.end === undefined || spec.end < dim) return undefined;
  return spec.data;
}

/** Unsqueeze(v) at the new last axis: returns v. */
function unsqueezedLast(info: InferResult, u: Value | undefined): Value | undefined {
  const n = producedBy(u, 'Unsqueeze');
  const rank = shapeOf(info, u)?.length;
  if (!n || rank === undefined) return undefined;
  const axes = n.inputs[1] ? symInts(info, n.inputs[1]) : attrInts(n.attr('axes'));
  if (!axes || axes.length !== 1 || (axes[0] !== -1 && axes[0] !== rank - 1)) return undefined;
  return n.inputs[0];
}

/**
 * rotate_every_two(x) = Reshape(Concat(Unsqueeze(-x[..., 1::2], -1), Unsqueeze(x[..., ::2], -1), axis=-1), x's shape):
 * returns x and h (half the last dim), or why not. `concat` is the Reshape that makes the rotated value.
 */
export function matchRotateEveryTwo(info: InferResult, v: Value): { x: Value; half: number; concat: Node } | Fail {
  const reshape = producedBy(v, 'Reshape');
  if (!reshape) return `'${v.name}' is neither rotate_half's Concat nor rotate_every_two's Reshape`;
  const cat = producedBy(reshape.inputs[0], 'Concat');
  const cs = shapeOf(info, reshape.inputs[0]);
  if (!cat || cat.inputs.length !== 2 || !cs || cs.length < 2 || cs[cs.length - 1]!.value !== 2) return `${reshape}: does not flatten a stack of two on the last axis`;
  const axis = attrInt(cat.attr('axis'), 0);
  if (axis !== -1 && axis !== cs.length - 1) return `${cat}: does not stack on a new last axis`;
  if (!oneUse(cat.outputs[0]!)) return `'${cat.outputs[0]!.name}' (${cat}) has other uses: the fusion would not remove it`;
  const odd = negated(unsqueezedLast(info, cat.inputs[0]));
  if (!odd) return `${cat}: first operand is not Unsqueeze(-x[..., 1::2], -1)`;
  const x = lastAxisStep2(info, odd, 1);
  if (!x) return `${cat}: the negated operand is not x[..., 1::2]`;
  if (lastAxisStep2(info, unsqueezedLast(info, cat.inputs[1]), 0) !== x) return `${cat}: the second operand is not Unsqueeze(x[..., ::2], -1) of the same x`;
  const xs = shapeOf(info, x), ys = shapeOf(info, v);
  if (!same(xs, ys)) return `${reshape}: output ${fmtShape(ys)} is not x's shape ${fmtShape(xs)}`;
  const dim = xs![xs!.length - 1]!.value;
  if (dim === undefined || dim % 2 !== 0) return `${reshape}: last dim ${dim ?? '?'} is not a known even size`;
  return { x, half: dim / 2, concat: reshape };
}

interface Embedding { kind: 'table'; table: Value; tensor: Tensor; positionIds: Value; nodes: Node[] }
/** C: the value that one Unsqueeze at the head axis (and no-op Casts) make the 4-D operand of */
interface Computed { kind: 'computed'; value: Value; unsqueezeAxis: number }

const UNARY_ELEMENTWISE = new Set(['Cos', 'Sin', 'Neg', 'Identity', 'Cast', 'Abs', 'Exp', 'Sqrt', 'Reciprocal', 'Tanh', 'Erf', 'Floor', 'Ceil']);
const BINARY_ELEMENTWISE = new Set(['Mul', 'Add', 'Sub', 'Div', 'Pow']);

/**
 * Does `v`, along axis `axis`, have equal halves (v[..., i, ...] = v[..., i + n/2, ...]) for every
 * input? Proven from the ops, not evaluated: Concat(f, f) of one value on that axis; a constant whose
 * halves are equal (or of size 1 there); size 1 on that axis (broadcast); elementwise ops of operands
 * that have it (right-aligned broadcasting: an operand without the axis is constant along it);
 * Transpose, Unsqueeze and Expand, following the axis. Anything else: not proven.
 */
export function provesEqualHalves(info: InferResult, v: Value, axis: number, depth = 0): boolean {
  const vs = shapeOf(info, v);
  if (!vs || axis < 0 || axis >= vs.length) return false;
  if (vs[axis]!.value === 1) return true;
  const t = constantValue(v);
  if (t) return constantHalvesEqual(t, axis);
  const n = v.producer;
  if (!n || n.removed || n.domain !== '' || depth > 24) return false;
  if (UNARY_ELEMENTWISE.has(n.opType) && n.inputs.length === 1) return provesEqualHalves(info, n.inputs[0]!, axis, depth + 1);
  if (BINARY_ELEMENTWISE.has(n.opType) || n.opType === 'Expand') {
    const operands = n.opType === 'Expand' ? [n.inputs[0]!] : n.inputs;
    return operands.every((w) => {
      const r = shapeOf(info, w)?.length;
      if (r === undefined) return false;
      const a = axis - (vs.length - r);
      return a < 0 || provesEqualHalves(info, w!, a, depth + 1);
    });
  }
  if (n.opType === 'Transpose') {
    const perm = attrInts(n.attr('perm')) ?? vs.map((_, i) => vs.length - 1 - i);
    return provesEqualHalves(info, n.inputs[0]!, perm[axis]!, depth + 1);
  }
  if (n.opType === 'Unsqueeze') {
    const axes = (n.inputs[1] ? symInts(info, n.inputs[1]) : attrInts(n.attr('axes')))?.map((a) => (a !== undefined && a < 0 ? a + vs.length : a));
    if (!axes || axes.some((a) => a === undefined)) return false;
    if (axes.includes(axis)) return true;
    return provesEqualHalves(info, n.inputs[0]!, axis - axes.filter((a) => a! < axis).length, depth + 1);
  }
  if (n.opType === 'Concat') {
    const a = attrInt(n.attr('axis'), 0);
    const ca = a < 0 ? a + vs.length : a;
    if (ca === axis) return n.inputs.length === 2 && n.inputs[0] === n.inputs[1];
    return n.inputs.every((w) => provesEqualHalves(info, w!, axis, depth + 1));
  }
  return false;
}

/** A constant's halves along `axis` are equal (size 1 there: trivially). */
function constantHalvesEqual(t: Tensor, axis: number): boolean {
  const dims = t.dims;
  const n = dims[axis]!;
  if (n === 1) return true;
  if (n % 2 !== 0) return false;
  const a = tensorNumbers(t);
  if (!a) return false;
  const inner = dims.slice(axis + 1).reduce((x, y) => x * y, 1);
  const outer = dims.slice(0, axis).reduce((x, y) => x * y, 1);
  const h = n / 2;
  for (let o = 0; o < outer; o++) for (let i = 0; i < h; i++) for (let k = 0; k < inner; k++) {
    if (!Object.is(a[(o * n + i) * inner + k], a[(o * n + i + h) * inner + k])) return false;
  }
  return true;
}

/**
 * The cos/sin operand: [Unsqueeze | no-op Cast]* Gather(table', position_ids, axis=0) with table' a
 * prefix Slice (axis 0, from 0, step 1) of a constant table, or the table itself.
 */
function matchEmbedding(info: InferResult, v: Value, elemType: number): Embedding | Computed | Fail {
  let cur = v;
  const nodes: Node[] = [];
  let gather: Node | undefined;
  for (let guard = 0; guard < 8 && !gather; guard++) {
    const n = cur.producer;
    if (!n || n.removed || n.domain !== '') break;
    if (n.opType === 'Unsqueeze' || (n.opType === 'Cast' && attrInt(n.attr('to')) === elemTypeOf(info, n.inputs[0]))) { nodes.push(n); cur = n.inputs[0]!; continue; }
    if (n.opType === 'Gather') { gather = n; break; }
    break;
  }
  if (!gather) return matchComputed(info, v, nodes, elemType);
  if (attrInt(gather.attr('axis'), 0) !== 0) return `${gather}: gathers axis ${attrInt(gather.attr('axis'), 0)}, not the positions axis 0`;
  const positionIds = gather.inputs[1]!;
  if (elemTypeOf(info, positionIds) !== DataType.INT64) return `${gather}: position ids '${positionIds.name}' are not int64`;
  nodes.push(gather);
  let table = gather.inputs[0]!;
  for (let guard = 0; guard < 4 && !constantValue(table); guard++) {
    const s = producedBy(table, 'Slice');
    const spec = s && sliceSpec(info, s);
    if (!s || !spec || spec.axis !== 0 || spec.start !== 0 || spec.step !== 1) return `${gather}: table '${table.name}' is not a constant or a prefix of one`;
    nodes.push(s);
    table = spec.data;
  }
  const t = constantValue(table);
  if (!t) return `${gather}: table '${table.name}' is not a constant`;
  if (t.dims.length !== 2) return `${gather}: table '${table.name}' [${t.dims.join(',')}] is not [positions, dim]`;
  if (t.dataType !== elemType) return `${gather}: table '${table.name}' is not of x's element type`;
  return { kind: 'table', table, tensor: t, positionIds, nodes };
}

/**
 * cos/sin computed in the graph: the 4-D operand is one Unsqueeze (no-op Casts around it allowed)
 * of a rank-3 value C of x's element type. Which axis, and whether C's halves are equal, finish() checks.
 */
function matchComputed(info: InferResult, v: Value, peeled: Node[], elemType: number): Computed | Fail {
  const unsq = peeled.filter((n) => n.opType === 'Unsqueeze');
  if (unsq.length !== 1) return `'${v.name}' is neither a table gathered by position ids nor one Unsqueeze of computed [batch, seq, R] angles`;
  const u = unsq[0]!;
  const rank = shapeOf(info, u.outputs[0])?.length;
  const axes = u.inputs[1] ? symInts(info, u.inputs[1]) : attrInts(u.attr('axes'));
  if (!axes || axes.length !== 1 || axes[0] === undefined || rank === undefined) return `${u}: axes are not one constant axis`;
  const c = u.inputs[0]!;
  const cs = shapeOf(info, c);
  if (!cs || cs.length !== 3) return `'${c.name}' ${fmtShape(cs)} (unsqueezed to the cos/sin operand) is not [batch, seq, R]`;
  if (elemTypeOf(info, c) !== elemType) return `'${c.name}' is not of x's element type`;
  return { kind: 'computed', value: c, unsqueezeAxis: axes[0] < 0 ? axes[0] + rank : axes[0] };
}

/** The rows of a [P, 2h] table have equal halves (what rotate_half's cos/sin tables are: cat(f, f)). */
function halvesEqual(t: Tensor): boolean {
  const [p, d] = t.dims as [number, number];
  const h = d / 2;
  const a = t.toTypedArray() as ArrayLike<number>;
  for (let i = 0; i < p; i++) for (let j = 0; j < h; j++) if (!Object.is(a[i * d + j], a[i * d + h + j])) return false;
  return true;
}

/** The rows of a [P, 2h] table are repeat_interleave'd by 2 (c0 c0 c1 c1 ...: interleaved rotary's tables). */
function pairsEqual(t: Tensor): boolean {
  const [p, d] = t.dims as [number, number];
  const a = t.toTypedArray() as ArrayLike<number>;
  for (let i = 0; i < p; i++) for (let j = 0; j < d; j += 2) if (!Object.is(a[i * d + j], a[i * d + j + 1])) return false;
  return true;
}

/** The even columns of a [P, 2h] table: [P, h] (the cache of an interleaved RotaryEmbedding). */
export function evenTable(t: Tensor): Tensor {
  const [p, d] = t.dims as [number, number];
  const h = d / 2;
  const a = t.toTypedArray() as Float32Array | Uint16Array | Float64Array;
  const out = new (a.constructor as new (n: number) => typeof a)(p * h);
  for (let i = 0; i < p; i++) for (let j = 0; j < h; j++) out[i * h + j] = a[i * d + 2 * j]!;
  return Tensor.fromTypedArray(t.dataType, [p, h], out);
}

/** The first half of each row of a [P, 2h] table: [P, h]. */
export function halfTable(t: Tensor): Tensor {
  const [p, d] = t.dims as [number, number];
  const h = d / 2;
  const a = t.toTypedArray() as Float32Array | Uint16Array | Float64Array;
  const out = new (a.constructor as new (n: number) => typeof a)(p * h);
  for (let i = 0; i < p; i++) out.set(a.subarray(i * d, i * d + h), i * h);
  return Tensor.fromTypedArray(t.dataType, [p, h], out);
}

const ROTARY_TYPES: readonly number[] = [DataType.FLOAT, DataType.FLOAT16];

/** Does `v` look like rotary (an Add of two Muls, one of them by a Concat with a negated operand)? For --explain only. */
export function looksRotary(add: Node): boolean {
  return add.inputs.some((v) => {
    const m = producedBy(v, 'Mul');
    return !!m && m.inputs.some((w) => {
      const r = producedBy(w, 'Reshape');
      const c = producedBy(r ? r.inputs[0] : w, 'Concat');
      return !!c && c.inputs.some((u) => !!negated(u) || !!negated(producedBy(u, 'Unsqueeze')?.inputs[0]));
    });
  });
}

/** y = x * cos + rotate_half(x) * sin at `add` (any operand order), x of rank 4. */
export function matchRotary(info: InferResult, add: Node): RotaryMatch | Fail {
  const why: string[] = [];
  for (const [i, j] of [[0, 1], [1, 0]] as const) {
    const mCos = producedBy(add.inputs[i], 'Mul');
    const mSin = producedBy(add.inputs[j], 'Mul');
    if (!mCos || !mSin) continue;
    for (const [a, b] of [[0, 1], [1, 0]] as const) {
      const interleaved = !!producedBy(mSin.inputs[a], 'Reshape');
      const rh = interleaved ? matchRotateEveryTwo(info, mSin.inputs[a]!) : matchRotateHalf(info, mSin.inputs[a]!);
      if (isFail(rh)) { if (producedBy(mSin.inputs[a], 'Concat') || interleaved) why.push(rh); continue; }
      const sinV = mSin.inputs[b]!;
      const xi = mCos.inputs[0] === rh.x ? 0 : mCos.inputs[1] === rh.x ? 1 : -1;
      if (xi < 0) { why.push(`${mCos}: does not multiply the rotated x '${rh.x.name}'`); continue; }
      const r = finish(info, add, mCos, rh, mCos.inputs[1 - xi]!, sinV, interleaved);
      if (isFail(r)) why.push(r);
      else return r;
    }
  }
  return why.length ? why[0]! : `${add}: not x * cos + rotate_half(x) * sin (or rotate_every_two(x) * sin)`;
}

function finish(info: InferResult, add: Node, mCos: Node, rh: { x: Value; half: number; concat: Node }, cosV: Value, sinV: Value, interleaved: boolean): RotaryMatch | Fail {
  const xr = rh.x;
  const xs = shapeOf(info, xr);
  const elemType = elemTypeOf(info, xr);
  if (!xs || xs.length !== 4) return `rotated x '${xr.name}' ${fmtShape(xs)} is not of rank 4 ([batch, heads, seq, head] or [batch, seq, heads, head])`;
  if (elemType === undefined || !ROTARY_TYPES.includes(elemType)) return `rotated x '${xr.name}' is not float32 or float16`;
  for (const v of [add.inputs[0]!, add.inputs[1]!, rh.concat.outputs[0]!]) {
    if (!oneUse(v)) return `'${v.name}' (${v.producer}) has other uses: the fusion would not remove it`;
  }
  const c = matchEmbedding(info, cosV, elemType);
  if (isFail(c)) return `cos: ${c}`;
  const s = matchEmbedding(info, sinV, elemType);
  if (isFail(s)) return `sin: ${s}`;
  const R = rh.half * 2;
  let angles: RotaryAngles;
  if (c.kind === 'table' && s.kind === 'table') {
    if (c.positionIds !== s.positionIds) return `cos and sin are gathered by different position ids ('${c.positionIds.name}', '${s.positionIds.name}')`;
    for (const e of [c, s]) {
      if (e.tensor.dims[1] !== R) return `table '${e.table.name}' [${e.tensor.dims.join(',')}] is not [positions, ${R}]`;
      if (interleaved && !pairsEqual(e.tensor)) return `table '${e.table.name}': rows are not repeat_interleave'd by 2 (c0 c0 c1 c1 ...), so rotate_every_two's rotation is not the one RotaryEmbedding (interleaved) computes`;
      if (!interleaved && !halvesEqual(e.tensor)) return `table '${e.table.name}': the two halves of a row differ, so rotate_half's rotation is not the one RotaryEmbedding computes`;
    }
    angles = { kind: 'table', positionIds: c.positionIds, cosTable: c.table, sinTable: s.table, cos: c.tensor, sin: s.tensor };
  } else if (interleaved) {
    return 'interleaved rotary (rotate_every_two) with cos/sin computed in the graph is not matched (only constant tables gathered by position ids)';
  } else if (c.kind === 'computed' && s.kind === 'computed') {
    for (const [what, e] of [['cos', c], ['sin', s]] as const) {
      if (shapeOf(info, e.value)![2]!.value !== R) return `${what} '${e.value.name}' ${fmtShape(shapeOf(info, e.value))} has not ${R} angles per row`;
      if (!provesEqualHalves(info, e.value, 2)) return `${what} '${e.value.name}': computed in the graph, but its rows are not provably cat(f, f) (equal halves), which rotate_half's rotation as RotaryEmbedding computes it needs`;
    }
    if (c.unsqueezeAxis !== s.unsqueezeAxis) return 'cos and sin broadcast over different axes';
    if (!same(shapeOf(info, c.value), shapeOf(info, s.value))) return `cos '${c.value.name}' and sin '${s.value.name}' differ in shape`;
    angles = { kind: 'computed', cos: c.value, sin: s.value };
  } else {
    return 'one of cos and sin is a gathered table, the other computed';
  }
  // the embedding broadcasts over the heads axis: [B, 1, S, R] (bnsh) or [B, S, 1, R] (bsnh)
  const cs = shapeOf(info, cosV), ss = shapeOf(info, sinV);
  const ps = angles.kind === 'table' ? shapeOf(info, angles.positionIds) : undefined;
  if (!same(cs, ss)) return `cos ${fmtShape(cs)} and sin ${fmtShape(ss)} differ in shape`;
  if (!cs || cs.length !== 4 || cs[3]!.value !== R) return `cos ${fmtShape(cs)} is not [batch, 1, seq, ${R}] or [batch, seq, 1, ${R}]`;
  let layout: 'bnsh' | 'bsnh';
  if (cs[1]!.value === 1 && symEq(cs[2], xs[2]) && cs[2]!.value !== 1) layout = 'bnsh';
  else if (cs[2]!.value === 1 && symEq(cs[1], xs[1])) layout = 'bsnh';
  else if (cs[1]!.value === 1 && symEq(cs[2], xs[2])) layout = 'bnsh';
  else return `cos ${fmtShape(cs)} does not broadcast over the heads of x ${fmtShape(xs)}`;
  const [bAxis, sAxis, hAxis] = layout === 'bnsh' ? [0, 2, 1] : [0, 1, 2];
  if (angles.kind === 'table') {
    if (!symEq(cs[bAxis], xs[bAxis])) return `cos ${fmtShape(cs)} and x ${fmtShape(xs)} differ in batch (a position table shared by the batch is not matched)`;
    if (!ps || ps.length !== 2 || !symEq(ps[0], xs[bAxis]) || !symEq(ps[1], xs[sAxis])) return `position ids ${fmtShape(ps)} are not [batch, seq] of x ${fmtShape(xs)}`;
  } else {
    // computed angles C [b or 1, s, R], unsqueezed at the heads axis: row (b, s) of C is position s of batch row b
    if (c.kind !== 'computed' || c.unsqueezeAxis !== hAxis) return `computed cos is unsqueezed at axis ${c.kind === 'computed' ? c.unsqueezeAxis : '?'}, not the heads axis ${hAxis}`;
    if (!symEq(cs[bAxis], xs[bAxis]) && cs[bAxis]!.value !== 1) return `computed cos ${fmtShape(cs)}: batch is neither x's ${xs[bAxis]} nor 1`;
  }
  const heads = xs[hAxis]!.value;

  // partial rotary: xr = x[..., :R], the result concatenated with x[..., R:]
  let x = xr, out = add.outputs[0]!, headSize = R;
  const sl = producedBy(xr, 'Slice');
  const spec = sl && sliceSpec(info, sl);
  const full = spec ? shapeOf(info, spec.data) : undefined;
  const outUse = oneUse(out) ? out.uses[0]!.node : undefined;
  if (sl && spec && full && full.length === 4 && spec.axis === 3 && spec.start === 0 && spec.step === 1 && outUse && producedBy(outUse.outputs[0], 'Concat') === outUse && outUse.inputs.length === 2 && outUse.inputs[0] === out) {
    const H = full[3]!.value;
    const axis = attrInt(outUse.attr('axis'), 0);
    if (H !== undefined && H > R && (axis === -1 || axis === 3) && lastAxisSlice(info, outUse.inputs[1], R, H) === spec.data && (xr.uses.every((u) => u.node === mCos || u.node.opType === 'Slice' || u.node.opType === 'Shape'))) {
      x = spec.data; out = outUse.outputs[0]!; headSize = H;
    }
  }
  return { add, x, out, angles, rotaryDim: R, headSize, heads, layout, elemType, interleaved };
}

const same = (a: Sym[] | undefined, b: Sym[] | undefined): boolean => !!a && !!b && a.length === b.length && a.every((d, k) => symEq(d, b[k]));

// ---------------------------------------------------------------------------------------------
// emitting RotaryEmbedding (fuse-rotary, and fuse-attention-past for the rotary it takes in)

/**
 * What the RotaryEmbedding nodes of one pass run share: half tables, caches of computed angles and
 * their row ids, by what they were made from. What a patch makes is pending until that patch commits
 * (commit()), and dropped when it is abandoned (rollback()).
 */
export class RotaryShared {
  private readonly committed = new Map<unknown, Value>();
  private readonly pending = new Map<unknown, Value>();

  get(key: unknown, make: () => Value): Value {
    let v = this.committed.get(key) ?? this.pending.get(key);
    if (!v) { v = make(); this.pending.set(key, v); }
    return v;
  }

  commit(): void {
    for (const [k, v] of this.pending) this.committed.set(k, v);
    this.pending.clear();
  }

  rollback(): void {
    this.pending.clear();
  }
}

/**
 * RotaryEmbedding's position_ids, cos_cache and sin_cache for a match, fed `input` ([b, N, s, H] for
 * 'bnsh', or [b, s, N*H] for '3d'):
 *   table:    the position ids and the tables' first halves [positions, R/2], made once per table;
 *   computed: the angles' first halves C[..., :R/2] as a cache [rows, R/2] (rows = b*s, or s for a C
 *             shared by the batch), and ids[b, s] = the row of C that holds (b, s): b*s + s, or s.
 *             The fused op reads exactly the values the graph computed, for every input: no table
 *             size is assumed.
 */
export function rotaryInputs(patch: Patch, m: RotaryMatch, shared: RotaryShared, input: Value, inputKind: 'bnsh' | '3d', info: InferResult): [Value, Value, Value] {
  const a = m.angles;
  if (a.kind === 'table') {
    const cut = m.interleaved ? evenTable : halfTable;
    const key = (t: Value): unknown => (m.interleaved ? `interleaved|${t.name}` : t);
    const cos = shared.get(key(a.cosTable), () => patch.constant(cut(a.cos), `${a.cosTable.name}_cos_cache`));
    const sin = shared.get(key(a.sinTable), () => patch.constant(cut(a.sin), `${a.sinTable.name}_sin_cache`));
    return [a.positionIds, cos, sin];
  }
  const h = m.rotaryDim / 2;
  const i64 = (v: number[], name: string, dims?: number[]): Value => patch.constant(Tensor.int64(v, dims ?? [v.length]), name);
  const cache = (c: Value): Value => shared.get(c, () => {
    const base = `${c.name}_rotary`;
    const half = patch.add('Slice', [c, i64([0], `${base}/start`), i64([h], `${base}/end`), i64([-1], `${base}/axis`)], {}, { name: `${base}/first_half` });
    return patch.add('Reshape', [half, i64([-1, h], `${base}/cache_shape`)], {}, { name: `${base}/cache` });
  });
  const cos = cache(a.cos), sin = cache(a.sin);
  const cs = shapeOf(info, a.cos)!;
  const xs = shapeOf(info, m.x)!;
  const expand = !symEq(cs[0], xs[0]);
  const ids = shared.get(expand ? input : `${a.cos.name}|ids`, () => {
    const base = `${a.cos.name}_rotary`;
    const shape = patch.add('Shape', [a.cos], {}, { name: `${base}/shape` });
    const bs = patch.add('Slice', [shape, i64([0], `${base}/zero`), i64([2], `${base}/two`)], {}, { name: `${base}/rows_shape` });
    const dim = (k: number): Value => patch.add('Gather', [shape, i64([k], `${base}/axis${k}`, [])], { axis: 0 }, { name: `${base}/dim${k}` });
    const rows = patch.add('Mul', [dim(0), dim(1)], {}, { name: `${base}/rows` });
    const range = patch.add('Range', [i64([0], `${base}/first`, []), rows, i64([1], `${base}/step`, [])], {}, { name: `${base}/row_numbers` });
    let r = patch.add('Reshape', [range, bs], {}, { name: `${base}/ids` });
    if (expand) {
      const axes = inputKind === 'bnsh' ? [0, 2] : [0, 1];
      const want = patch.add('Gather', [patch.add('Shape', [input], {}, { name: `${base}/x_shape` }), i64(axes, `${base}/x_axes`)], { axis: 0 }, { name: `${base}/batch_seq` });
      r = patch.add('Expand', [r, want], {}, { name: `${base}/ids_per_batch` });
    }
    return r;
  });
  return [ids, cos, sin];
}

/**
 * RotaryEmbedding of `input` for match m: 'bnsh' a [b, N, s, H] input as is (the rank-4 form), '3d' a
 * [b, s, N*H] input with num_heads (the form attention ops take). Partial rotary sets rotary_embedding_dim.
 */
export function emitRotary(patch: Patch, m: RotaryMatch, shared: RotaryShared, input: Value, inputKind: 'bnsh' | '3d', info: InferResult, name: string): Value {
  const attrs: Attribute[] = [attr.int('interleaved', m.interleaved ? 1 : 0)];
  if (m.rotaryDim !== m.headSize) attrs.push(attr.int('rotary_embedding_dim', m.rotaryDim));
  if (m.heads !== undefined) attrs.push(attr.int('num_heads', m.heads));
  const [ids, cos, sin] = rotaryInputs(patch, m, shared, input, inputKind, info);
  return patch.add('RotaryEmbedding', [input, ids, cos, sin], attrs, { domain: 'com.microsoft', name });
}
