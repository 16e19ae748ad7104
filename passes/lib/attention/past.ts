/**
 * Matchers for decoder self-attention with a KV cache (used by fuse-attention-past): the cache
 * concatenation `Concat(past, heads(new), axis=2)` whose result is the `present` output, the scalar
 * factors of the scores, and the causal mask with past, `Where(buffer[.., k_len-q_len:k_len, :k_len],
 * scores, fill)` over a lower-triangular constant buffer (GPT-2's `bias`).
 *
 * Every matcher returns the match or a string saying what did not match (for --explain).
 */
import type { InferResult } from '../../../src/analysis/infer.js';
import { Sym } from '../../../src/analysis/symbolic.js';
import { attrInt, attrInts } from '../../../src/ir/attribute.js';
import { DataType } from '../../../src/ir/dtype.js';
import type { Node, Value } from '../../../src/ir/graph.js';
import type { Tensor } from '../../../src/ir/tensor.js';
import { constantValue } from '../../../src/pass/pattern.js';
import {
  constNumbers, fmtShape, isFail, matchHeads, NEG_LIMIT, producedBy, oneUse, symEq, tensorNumbers, type Fail, type Heads,
} from './match.js';
import { elemTypeOf, scalarOf, shapeOf } from '../query.js';
import { looksRotary, matchRotary, type RotaryMatch } from './rotary.js';

/** A value's contents as symbolic integers: constants, or what shape inference knows. */
export function symContents(info: InferResult, v: Value | undefined): Sym[] | undefined {
  if (!v) return undefined;
  const c = constNumbers(v);
  if (c) return c.every((x) => Number.isSafeInteger(x)) ? c.map((x) => Sym.const(x)) : undefined;
  return info.symValues.get(v)?.values;
}


// ---------------------------------------------------------------------------------------------
// the cache

export interface CacheConcat {
  concat: Node;
  /** Concat's output: [batch, heads, past + seq, head_size], the `present` tensor */
  all: Value;
  /** the cache read: [batch, heads, past, head_size] */
  past: Value;
  /** the new keys or values: heads of a projection, maybe rotated */
  heads: HeadsInput;
}

/**
 * q, or this step's k or v, of decoder self-attention: heads [b, H, s, D] of a projection, as
 *   - Transpose(Reshape(proj, [b, s, H, D]), [0,2,1,3]) (GPT-2, Llama: proj [b, s, H*D]), or
 *   - a last-axis Slice/Split [o, o + D) of Transpose(Reshape(proj, [b, s, H, W]), [0,2,1,3]) (a packed
 *     projection in per-head layout: GPT-NeoX's query_key_value, W = 3*D, q at 0, k at D, v at 2D),
 * optionally rotated: a com.microsoft RotaryEmbedding of rank-4 input (fuse-rotary's), or the rotary
 * subgraph itself (matchRotary, bnsh), which the fusion then emits in its 3-D form.
 */
export interface HeadsInput extends Heads {
  /** per-head packed: proj is [b, s, H*W]; these heads are columns [offset, offset + D) of each head's W */
  packed?: { r4: Value; width: number; offset: number };
  rotary?: { node: Node } | { match: RotaryMatch };
}

/** [Rotary](heads of a projection), the forms HeadsInput lists. */
export function matchHeadsInput(info: InferResult, v: Value | undefined): HeadsInput | Fail {
  if (!v) return 'no value';
  let cur = v;
  let rotary: HeadsInput['rotary'];
  const rn = v.producer;
  if (rn && !rn.removed && rn.domain === 'com.microsoft' && rn.opType === 'RotaryEmbedding') {
    if (shapeOf(info, rn.inputs[0])?.length !== 4) return `${rn}: not of a rank-4 [b, heads, s, head] input`;
    if (attrInt(rn.attr('is_packed_batching'), 0) !== 0) return `${rn}: packs batches`;
    if (!oneUse(v) || !oneUse(rn.inputs[0]!)) return `${rn}: its input or output has other uses`;
    rotary = { node: rn };
    cur = rn.inputs[0]!;
  } else if (isHeadTranspose(v)) {
    // rotary before the head transpose (GPT-J): Transpose(rope(Reshape(proj, [b, s, H, D])), [0,2,1,3])
    const bsnh = matchRotatedBeforeTranspose(info, v);
    if (bsnh) return bsnh;
  }
  if (!rotary) {
    const add = producedBy(v, 'Add') ?? producedBy(producedBy(v, 'Concat')?.inputs[0], 'Add');
    if (add && looksRotary(add)) {
      const m = matchRotary(info, add);
      if (isFail(m)) return `rotary: ${m}`;
      if (m.out !== v) return `${add}: the rotary's result is not '${v.name}'`;
      if (m.layout !== 'bnsh') return `${add}: rotary before the head transpose is not matched here`;
      if (m.heads === undefined) return `${add}: the heads dim of '${m.x.name}' is symbolic`;
      rotary = { match: m };
      cur = m.x;
    }
  }
  const h = matchHeads(info, cur, false);
  if (!isFail(h)) return rotary ? { ...h, rotary } : h;
  const p = matchPackedHeads(info, cur);
  if (isFail(p)) return `${h}; nor packed heads: ${p}`;
  return rotary ? { ...p, rotary } : p;
}

function isHeadTranspose(v: Value): boolean {
  const t = producedBy(v, 'Transpose');
  return !!t && attrInts(t.attr('perm'))?.join(',') === '0,2,1,3';
}

/**
 * Transpose(y, [0,2,1,3]) with y a rotary subgraph (matchRotary, layout bsnh) of Reshape(proj, [b, s, H, D]):
 * the heads of proj, rotated (the 3-D RotaryEmbedding the fusion emits reads proj alike). Undefined when
 * not this form (the caller explains the other forms).
 */
function matchRotatedBeforeTranspose(info: InferResult, v: Value): HeadsInput | undefined {
  const t = producedBy(v, 'Transpose')!;
  const y = t.inputs[0]!;
  const add = producedBy(y, 'Add') ?? producedBy(producedBy(y, 'Concat')?.inputs[0], 'Add');
  if (!add || !looksRotary(add)) return undefined;
  const m = matchRotary(info, add);
  if (isFail(m) || m.out !== y || m.layout !== 'bsnh' || m.heads === undefined || !oneUse(y)) return undefined;
  const r = producedBy(m.x, 'Reshape');
  if (!r || attrInt(r.attr('allowzero'), 0) !== 0) return undefined;
  const proj = r.inputs[0]!;
  const ps = shapeOf(info, proj), rs = shapeOf(info, m.x);
  if (!ps || !rs || ps.length !== 3 || rs.length !== 4) return undefined;
  const h = rs[2]!.value, d = rs[3]!.value;
  if (!symEq(ps[0], rs[0]) || !symEq(ps[1], rs[1]) || h === undefined || d === undefined || ps[2]!.value !== h * d || h !== m.heads || d !== m.headSize) return undefined;
  return { proj, heads: h, headSize: d, rotary: { match: m } };
}

/** A last-axis Slice/Split [o, o + D) of Transpose(Reshape(proj, [b, s, H, W]), [0,2,1,3]). */
function matchPackedHeads(info: InferResult, v: Value): HeadsInput | Fail {
  const n = producedBy(v, 'Slice', 'Split');
  if (!n) return `'${v.name}' is not a Slice or Split`;
  const t = producedBy(n.inputs[0], 'Transpose');
  if (!t || attrInts(t.attr('perm'))?.join(',') !== '0,2,1,3') return `${n}: input is not Transpose(.., [0,2,1,3])`;
  const r = producedBy(t.inputs[0], 'Reshape');
  if (!r || attrInt(r.attr('allowzero'), 0) !== 0) return `${t}: input is not a Reshape (allowzero=0)`;
  const proj = r.inputs[0]!;
  const ps = shapeOf(info, proj), rs = shapeOf(info, r.outputs[0]), vs = shapeOf(info, v);
  if (!ps || !rs || !vs || ps.length !== 3 || rs.length !== 4 || vs.length !== 4) return `${r}: not [b, s, H*W] -> [b, s, H, W]`;
  const H = rs[2]!.value, W = rs[3]!.value, D = vs[3]!.value;
  if (!symEq(ps[0], rs[0]) || !symEq(ps[1], rs[1]) || H === undefined || W === undefined || D === undefined || ps[2]!.value !== H * W) return `${r}: ${fmtShape(ps)} -> ${fmtShape(rs)} does not split the last dim into heads`;
  let offset: number | undefined;
  if (n.opType === 'Slice') {
    const starts = symContents(info, n.inputs[1]), axes = n.inputs[3] ? constNumbers(n.inputs[3]) : [0];
    const steps = n.inputs[4] ? constNumbers(n.inputs[4]) : [1];
    if (!starts || starts.length !== 1 || !axes || axes.length !== 1 || !steps || steps[0] !== 1) return `${n}: not one constant last-axis slice with step 1`;
    if (axes[0] !== 3 && axes[0] !== -1) return `${n}: slices axis ${axes[0]}, not the last`;
    offset = starts[0]!.value;
  } else {
    const axis = attrInt(n.attr('axis'), 0);
    if (axis !== 3 && axis !== -1) return `${n}: splits axis ${axis}, not the last`;
    const k = n.outputs.indexOf(v);
    const sizes = n.outputs.map((o) => shapeOf(info, o)?.[3]?.value);
    if (sizes.some((x) => x === undefined)) return `${n}: output sizes unknown`;
    offset = sizes.slice(0, k).reduce((a, x) => a! + x!, 0);
  }
  if (offset === undefined || offset < 0 || offset + D > W) return `${n}: columns [${offset}, ${offset}+${D}) are not inside each head's ${W}`;
  return { proj, heads: H, headSize: D, packed: { r4: r.outputs[0]!, width: W, offset } };
}

/**
 * `v` = Concat(past, Transpose(Reshape(proj, [b, s, H, D]), [0,2,1,3]), axis=2): the key or value
 * cache grown by this step's keys or values, float32, past [b, H, p, D].
 */
export function matchCacheConcat(info: InferResult, v: Value | undefined, what: string): CacheConcat | Fail {
  const concat = producedBy(v, 'Concat');
  if (!v || !concat) return `${what} '${v?.name}' is not a Concat of the cache and this step's heads`;
  const vs = shapeOf(info, v);
  const axis = attrInt(concat.attr('axis'));
  if (!vs || vs.length !== 4 || (axis !== 2 && axis !== -2)) return `${concat}: ${what} ${fmtShape(vs)} is not concatenated on axis 2 of [batch, heads, seq, head_size]`;
  if (concat.inputs.length !== 2) return `${concat}: ${concat.inputs.length} inputs, not the cache and the new ${what}`;
  if (elemTypeOf(info, v) !== DataType.FLOAT) return `${concat}: not float32`;
  const [past, cur] = concat.inputs as [Value, Value];
  const heads = matchHeadsInput(info, cur);
  if (isFail(heads)) return `${concat}: new ${what}: ${heads}`;
  const ps = shapeOf(info, past), hs = shapeOf(info, cur);
  if (!ps || ps.length !== 4 || !hs) return `${concat}: cache '${past.name}' ${fmtShape(ps)} is not [batch, heads, past, head_size]`;
  if (!symEq(ps[0], hs[0]) || ps[1]!.value !== heads.heads || ps[3]!.value !== heads.headSize) {
    return `${concat}: cache '${past.name}' ${fmtShape(ps)} does not match the new ${what} ${fmtShape(hs)}`;
  }
  return { concat, all: v, past, heads };
}

// ---------------------------------------------------------------------------------------------
// the causal mask with past

export interface CausalWhere {
  where: Node;
  /** the scores operand */
  scores: Value;
  /** the fill operand (a scalar constant <= NEG_LIMIT) */
  fill: Value;
  /** Where(cond, scores, fill) (true) or Where(cond, fill, scores) (false) */
  keepWhenTrue: boolean;
}

/** Lower-triangular (keep j <= i) or its complement, checked once per buffer. */
const triangularCache = new WeakMap<Tensor, 'lower' | 'strict-upper' | 'neither'>();

function triangular(t: Tensor): 'lower' | 'strict-upper' | 'neither' {
  const hit = triangularCache.get(t);
  if (hit) return hit;
  let kind: 'lower' | 'strict-upper' | 'neither' = 'neither';
  const vals = t.dims.length >= 2 && t.dims.slice(0, -2).every((d) => d === 1) ? tensorNumbers(t) : undefined;
  if (vals) {
    const rows = t.dims[t.dims.length - 2]!, cols = t.dims[t.dims.length - 1]!;
    let lower = true, upper = true;
    for (let i = 0; i < rows && (lower || upper); i++) {
      for (let j = 0; j < cols; j++) {
        const on = vals[i * cols + j] !== 0;
        if (on !== (j <= i)) lower = false;
        if (on !== (j > i)) upper = false;
      }
    }
    kind = lower ? 'lower' : upper ? 'strict-upper' : 'neither';
  }
  triangularCache.set(t, kind);
  return kind;
}

/**
 * The window a chain of Slices (step 1) and Casts cuts out of the last two axes of a constant:
 * the constant and the window's first row and column (symbolic).
 */
function window(info: InferResult, opset: number, v: Value): { t: Tensor; row: Sym; col: Sym } | Fail {
  let cur = v;
  let row = Sym.ZERO, col = Sym.ZERO;
  for (let guard = 0; guard < 8; guard++) {
    const c = constantValue(cur);
    if (c) return { t: c, row, col };
    const n = cur.producer;
    if (!n || n.domain !== '') break;
    if (n.opType === 'Cast') { cur = n.inputs[0]!; continue; }
    if (n.opType !== 'Slice') break;
    const input = n.inputs[0]!;
    const rank = shapeOf(info, input)?.length;
    if (rank === undefined || rank < 2) return `${n}: input rank unknown`;
    let starts: Sym[] | undefined, axes: number[] | undefined, steps: number[] | undefined;
    if (opset >= 10) {
      starts = symContents(info, n.inputs[1]);
      axes = n.inputs[3] ? constNumbers(n.inputs[3]) : undefined;
      steps = n.inputs[4] ? constNumbers(n.inputs[4]) : undefined;
      if (n.inputs[3] && !axes) return `${n}: axes are not constant`;
      if (n.inputs[4] && !steps) return `${n}: steps are not constant`;
    } else {
      starts = attrInts(n.attr('starts'))?.map((x) => Sym.const(x));
      axes = attrInts(n.attr('axes'));
    }
    if (!starts) return `${n}: starts unknown`;
    axes ??= starts.map((_, i) => i);
    if (steps && steps.some((s) => s !== 1)) return `${n}: step is not 1`;
    for (let i = 0; i < axes.length; i++) {
      const a = axes[i]! < 0 ? axes[i]! + rank : axes[i]!;
      const s = starts[i]!;
      if (s.value !== undefined && s.value < 0) return `${n}: a negative start (${s.value}) counts from the end`;
      if (a === rank - 2) row = row.add(s);
      else if (a === rank - 1) col = col.add(s);
      else if (s.value !== 0) return `${n}: slices a leading axis`;
    }
    cur = input;
  }
  return `'${v.name}' is not a window (Slices with step 1) of a constant`;
}

/**
 * Where(cond, scores, fill) or Where(cond, fill, scores), fill a scalar constant <= NEG_LIMIT,
 * cond a window of a constant lower-triangular buffer (resp. strictly upper for the second form)
 * that is [.., q_len, k_len] and starts at row r0, column c0 with r0 - c0 = k_len - q_len: query i
 * keeps keys j <= i + (k_len - q_len), i.e. every past key and the new keys up to its own position.
 * (GPT-2: bias[:, :, k_len - q_len:k_len, :k_len].)
 */
export function matchCausalWithPast(info: InferResult, opset: number, where: Node, qLen: Sym, kLen: Sym): CausalWhere | Fail {
  const [cond, a, b] = where.inputs as [Value, Value, Value];
  const na = scalarOf(a), nb = scalarOf(b);
  if ((na === undefined) === (nb === undefined)) return `${where}: not one scalar fill value and the scores`;
  const keepWhenTrue = nb !== undefined;
  const fillNumber = keepWhenTrue ? nb : na!;
  if (!(fillNumber! <= NEG_LIMIT)) return `${where}: fill value ${fillNumber} is not <= ${NEG_LIMIT}`;
  const cs = shapeOf(info, cond);
  if (!cs || cs.length < 2 || !symEq(cs[cs.length - 2], qLen) || !symEq(cs[cs.length - 1], kLen) || cs.slice(0, -2).some((d) => d.value !== 1)) {
    return `${where}: condition ${fmtShape(cs)} is not [.., ${qLen}, ${kLen}]`;
  }
  const w = window(info, opset, cond);
  if (isFail(w)) return `${where}: condition ${w}`;
  const kind = triangular(w.t);
  if (kind !== (keepWhenTrue ? 'lower' : 'strict-upper')) {
    return `${where}: condition buffer [${w.t.dims.join(',')}] is not ${keepWhenTrue ? 'lower-triangular' : 'strictly upper-triangular'}`;
  }
  const offset = w.row.sub(w.col), past = kLen.sub(qLen);
  if (!offset.equals(past)) return `${where}: the causal window starts at row ${w.row}, column ${w.col}: query i sees keys <= i + ${offset}, not i + ${past} (the past length)`;
  return { where, scores: keepWhenTrue ? a : b, fill: keepWhenTrue ? b : a, keepWhenTrue };
}
