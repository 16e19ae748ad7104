/**
 * Matchers for grouped-query attention with a KV cache as exporters write it (used by fuse-gqa):
 *
 *   q = [RotaryEmbedding](Transpose(Reshape(q_proj, [b, s, N, D]), [0,2,1,3]))          [b, N, s, D]
 *   k_new = [RotaryEmbedding](Transpose(Reshape(k_proj, [b, s, Nkv, D]), [0,2,1,3]))    (likewise v_new)
 *   present_k = Concat(past_k, k_new, axis=2)                                             [b, Nkv, T, D]
 *   repeat_kv(x) = Reshape(Expand(Unsqueeze(x, 2), [b, Nkv, N/Nkv, T, D]), [b, N, T, D])
 *   y = Reshape(Transpose(Softmax(q @ Transpose(repeat_kv(present_k), [0,1,3,2]) * scale + mask)
 *                 @ repeat_kv(present_v), [0,2,1,3]), [b, s, N*D])
 *
 * and a check of the additive mask by evaluating it (probeMask): what a fusion into ORT's causal
 * GroupQueryAttention needs to know about it, for any way an exporter builds it.
 *
 * Every matcher returns the match or a string saying what did not match (for --explain).
 */
import type { InferResult } from '../../../src/analysis/infer.js';
import { evaluateNode } from '../../../src/analysis/evaluator.js';
import { Sym } from '../../../src/analysis/symbolic.js';
import { attrInt } from '../../../src/ir/attribute.js';
import { DataType } from '../../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../../src/ir/graph.js';
import { Tensor } from '../../../src/ir/tensor.js';
import { constantValue } from '../../../src/pass/pattern.js';
import {
  fmtShape,
  isFail,
  isNoopCast,
  matchHeads,
  oneUse,
  peelScale,
  permOf,
  probsTimesValues,
  producedBy,
  softmaxScores,
  symEq,
  type Fail,
} from './match.js';
import { elemTypeOf, shapeOf } from '../query.js';

/** float32's lowest value: transformers' torch.finfo(float32).min, the fill of its additive masks. */
export const LOWEST = -3.4028234663852886e38;

/** One of q, k, v: the [b, s, heads*D] projection, and the 4-D RotaryEmbedding applied after the head split, if any. */
export interface AttentionInput {
  proj: Value;
  rotary?: Node;
}

/** An input as matched: with its head count and head size. */
type Input = AttentionInput & { heads: number; headSize: number };

/** q, k, v and the caches k and v are the new entries of. */
interface Inputs { q: Input; k: Input; v: Input; pastKey: Value; pastValue: Value }

/** repeat_kv(x): x and how many times its heads are repeated. */
type RepeatKv = { x: Value; rep: number };

export interface GqaMatch {
  softmax: Node;
  q: AttentionInput;
  k: AttentionInput;
  v: AttentionInput;
  pastKey: Value;
  pastValue: Value;
  /** Concat(past, new): the present outputs (graph outputs present.N.*), replaced by GQA's */
  presentKey: Value;
  presentValue: Value;
  heads: number;
  kvHeads: number;
  headSize: number;
  scale: number;
  /** the additive mask [b or 1, 1, s, T] */
  mask: Value;
  /** Transpose(P @ V, [0,2,1,3]): [b, s, N, D] */
  merged: Value;
  /** [b, s, N*D] reshapes of `merged`, replaced by the GQA output */
  reshapes: Node[];
  elemType: number;
  /** [b, s] of the query, [b, N, s, T] of the scores */
  batch: Sym;
  seq: Sym;
  total: Sym;
}

/** float32 only: the masks this pass understands are float32's (lowest = finfo(float32).min) */
const ATTN_TYPES: readonly number[] = [DataType.FLOAT];


function skipCastsBack(info: InferResult, v: Value): Value {
  let cur = v;
  while (isNoopCast(info, cur.producer) && oneUse(cur)) cur = cur.producer!.inputs[0]!;
  return cur;
}



/** A com.microsoft RotaryEmbedding of rank-4 [b, heads, s, D] input (fuse-rotary's), producing `v`. */
function rotaryOf(v: Value | undefined): Node | undefined {
  const n = v?.producer;
  return n && !n.removed && n.domain === 'com.microsoft' && n.opType === 'RotaryEmbedding' ? n : undefined;
}

/** [RotaryEmbedding](Transpose(Reshape(proj, [b, s, h, D]), [0,2,1,3])). */
function matchInput(info: InferResult, v: Value, what: string): Input | Fail {
  const rot = rotaryOf(v);
  let cur = v;
  if (rot) {
    if (!oneUse(v)) return `${what}: rotated value '${v.name}' has other uses`;
    if (attrInt(rot.attr('is_packed_batching'), 0) !== 0) return `${what}: ${rot} packs batches`;
    cur = rot.inputs[0]!;
    if (!oneUse(cur)) return `${what}: '${cur.name}' (before ${rot}) has other uses`;
  }
  const h = matchHeads(info, cur, false);
  if (isFail(h)) return `${what}: ${h}`;
  if (!oneUse(cur) || !oneUse(cur.producer!.inputs[0]!)) return `${what}: the head split of '${h.proj.name}' has other uses`;
  return { proj: h.proj, heads: h.heads, headSize: h.headSize, ...(rot ? { rotary: rot } : {}) };
}

/** repeat_kv(x) = Reshape(Expand(Unsqueeze(x, 2), [b, kv, n_rep, T, D]), [b, kv*n_rep, T, D]): returns x and n_rep. */
function matchRepeatKv(info: InferResult, v: Value | undefined): RepeatKv | Fail {
  const r = producedBy(v, 'Reshape');
  if (!r) return `'${v?.name}' is not repeat_kv's Reshape (heads already match: MultiHeadAttention, not grouped)`;
  const e = producedBy(r.inputs[0], 'Expand');
  const u = e && producedBy(e.inputs[0], 'Unsqueeze');
  if (!e || !u) return `${r}: not Reshape(Expand(Unsqueeze(x, 2)))`;
  const x = u.inputs[0]!;
  const xs = shapeOf(info, x), us = shapeOf(info, u.outputs[0]), es = shapeOf(info, e.outputs[0]), rs = shapeOf(info, r.outputs[0]);
  if (!xs || !us || !es || !rs || xs.length !== 4 || us.length !== 5 || es.length !== 5 || rs.length !== 4) return `${r}: repeat_kv shapes ${fmtShape(xs)} -> ${fmtShape(es)} -> ${fmtShape(rs)} are not of ranks 4, 5, 4`;
  const [b, kv, t, d] = xs as [Sym, Sym, Sym, Sym];
  const want5 = (s: Sym[], third: (x: Sym) => boolean): boolean => symEq(s[0], b) && symEq(s[1], kv) && third(s[2]!) && symEq(s[3], t) && symEq(s[4], d);
  if (!want5(us, (x) => x.value === 1)) return `${u}: ${fmtShape(us)} is not x ${fmtShape(xs)} unsqueezed at axis 2`;
  const rep = es[2]!.value;
  if (rep === undefined || !want5(es, () => true)) return `${e}: ${fmtShape(es)} is not [b, kv, n_rep, T, D] of x ${fmtShape(xs)}`;
  if (kv.value === undefined || rs[1]!.value !== kv.value * rep || !symEq(rs[0], b) || !symEq(rs[2], t) || !symEq(rs[3], d)) return `${r}: ${fmtShape(rs)} is not [b, kv*n_rep, T, D]`;
  for (const w of [u.outputs[0]!, e.outputs[0]!, r.outputs[0]!]) if (!oneUse(w)) return `repeat_kv value '${w.name}' has other uses`;
  return { x, rep };
}

/** present = Concat(past, new, axis=2): returns both. */
function matchCacheConcat(v: Value, what: string): { past: Value; fresh: Value } | Fail {
  const c = producedBy(v, 'Concat');
  if (!c || c.inputs.length !== 2) return `${what}: '${v.name}' is not Concat(past, new)`;
  const axis = attrInt(c.attr('axis'), 0);
  if (axis !== 2 && axis !== -2) return `${c}: concatenates axis ${axis}, not the sequence axis 2`;
  const fresh = c.inputs[1]!;
  if (!oneUse(fresh)) return `${what}: new '${fresh.name}' has other uses`;
  return { past: c.inputs[0]!, fresh };
}

/** The [b, s, N*D] reshape of the merged heads. */
function isMergeReshape(info: InferResult, n: Node, merged: Value, batch: Sym, seq: Sym, hidden: number): boolean {
  if (n.opType !== 'Reshape' || n.domain !== '' || n.inputs[0] !== merged) return false;
  const os = shapeOf(info, n.outputs[0]);
  return !!os && os.length === 3 && symEq(os[0], batch) && symEq(os[1], seq) && os[2]!.value === hidden;
}

/** The Softmax over [batch, heads, seq, total] scores of a type the kernel takes. */
function checkSoftmax(info: InferResult, softmax: Node, opset: number): { ss: Sym[]; elemType: number } | Fail {
  const ss = softmaxScores(info, softmax, opset, 'batch, heads, seq, total');
  if (isFail(ss)) return ss;
  const elemType = elemTypeOf(info, softmax.inputs[0]);
  if (elemType === undefined || !ATTN_TYPES.includes(elemType)) return `${softmax}: not float32 (float16 attention is not matched: its masks use float16's lowest)`;
  return { ss, elemType };
}

/** P @ V (V's heads repeated for the groups), then the heads merged back with Transpose([0,2,1,3]). */
function matchOutput(info: InferResult, softmax: Node): { vr: RepeatKv; merged: Value } | Fail {
  const out = probsTimesValues(info, softmax, 'V');
  if (isFail(out)) return out;
  const vr = matchRepeatKv(info, out.values);
  return isFail(vr) ? `V: ${vr}` : { vr, merged: out.merged };
}

/** scores = scale * (q @ k^T) + mask: the mask, the scale (product of the factors), q, and K's repeat_kv. */
function matchScaledScores(info: InferResult, softmax: Node): { mask: Value; scale: number; qv: Value; kr: RepeatKv } | Fail {
  const scoresIn = softmax.inputs[0]!;
  if (!oneUse(scoresIn)) return `${softmax}: its input '${scoresIn.name}' has other uses`;
  const scores = skipCastsBack(info, scoresIn);
  const add = producedBy(scores, 'Add');
  if (!add) return `${softmax}: scores '${scores.name}' are not scaled q @ k^T plus a mask`;
  if (!oneUse(scores)) return `'${scores.name}' has other uses`;
  let scaled: Value | undefined, mask: Value | undefined;
  for (const [i, j] of [[0, 1], [1, 0]] as const) {
    let cur = add.inputs[i]!;
    cur = peelScale(cur)[0];
    if (producedBy(cur, 'MatMul')) { scaled = add.inputs[i]; mask = add.inputs[j]; break; }
  }
  if (!scaled || !mask) return `${add}: no operand is the (scaled) q @ k^T`;
  if (!oneUse(scaled)) return `'${scaled.name}' has other uses`;
  let scale = 1;
  let cur = scaled;
  { const [x, f] = peelScale(cur); cur = x; scale *= f; }
  const qk = producedBy(cur, 'MatMul')!;
  if (!oneUse(cur)) return `${qk}: output has other uses`;
  let qv = qk.inputs[0]!, kt = qk.inputs[1]!;
  { const [x, f] = peelScale(qv); qv = x; scale *= f; }
  { const [x, f] = peelScale(kt); kt = x; scale *= f; }
  const ktT = producedBy(kt, 'Transpose');
  if (!ktT || permOf(ktT) !== '0,1,3,2' || !oneUse(kt)) return `${qk}: k operand '${kt.name}' is not Transpose(k, [0,1,3,2]) (alone)`;
  const kr = matchRepeatKv(info, ktT.inputs[0]);
  if (isFail(kr)) return `K: ${kr}`;
  return { mask, scale, qv, kr };
}

/** q, and k and v as the new entries of their caches Concat(past, new): the inputs, heads alike and grouped. */
function matchInputs(info: InferResult, qv: Value, kr: RepeatKv, vr: RepeatKv): Inputs | Fail {
  const q = matchInput(info, qv, 'Q');
  if (isFail(q)) return q;
  const kc = matchCacheConcat(kr.x, 'K');
  if (isFail(kc)) return kc;
  const vc = matchCacheConcat(vr.x, 'V');
  if (isFail(vc)) return vc;
  const k = matchInput(info, kc.fresh, 'K');
  if (isFail(k)) return k;
  const v = matchInput(info, vc.fresh, 'V');
  if (isFail(v)) return v;
  if (v.rotary) return `V: ${v.rotary} rotates the values`;
  const N = q.heads, kv = k.heads, D = q.headSize;
  if (v.heads !== kv || k.headSize !== D || v.headSize !== D) return `k, v heads ${k.heads}x${k.headSize}, ${v.heads}x${v.headSize} differ from each other or from q's head size ${D}`;
  if (kv >= N || N % kv !== 0) return `${N} query heads and ${kv} kv heads: not grouped-query attention (MultiHeadAttention's case when equal)`;
  if (kr.rep !== N / kv || vr.rep !== N / kv) return `repeat_kv repeats ${kr.rep} and ${vr.rep} times, not ${N / kv}`;
  if (D % 8 !== 0) return `head size ${D} is not a multiple of 8 (ORT's GroupQueryAttention requires it)`;
  return { q, k, v, pastKey: kc.past, pastValue: vc.past };
}

/**
 * The shapes agree: q, k, v projections [b, s, .], scores [b, N, s, T], caches [b, kv, T - s, D] and
 * the mask [b|1, 1, s, T] of the scores' type. Returns b, s and T, or why not.
 */
function checkShapes(info: InferResult, ss: Sym[], elemType: number, inputs: Inputs, mask: Value): { batch: Sym; seq: Sym; total: Sym } | Fail {
  const { q, k, v } = inputs;
  const N = q.heads, kv = k.heads, D = q.headSize;
  const qs = shapeOf(info, q.proj), ks = shapeOf(info, k.proj), vs = shapeOf(info, v.proj);
  if (!qs || !ks || !vs || qs.length !== 3 || !symEq(qs[0], ks[0]) || !symEq(qs[0], vs[0]) || !symEq(qs[1], ks[1]) || !symEq(qs[1], vs[1])) {
    return `q, k, v projections ${fmtShape(qs)}, ${fmtShape(ks)}, ${fmtShape(vs)} differ in batch or sequence (not self-attention)`;
  }
  const [batch, seq] = qs as [Sym, Sym];
  const total = ss[3]!;
  if (!symEq(ss[0], batch) || ss[1]!.value !== N || !symEq(ss[2], seq)) return `scores ${fmtShape(ss)} are not [${batch}, ${N}, ${seq}, T]`;
  for (const [name, past] of [['key', inputs.pastKey], ['value', inputs.pastValue]] as const) {
    const ps = shapeOf(info, past);
    if (!ps || ps.length !== 4 || !symEq(ps[0], batch) || ps[1]!.value !== kv || ps[3]!.value !== D) return `past ${name} '${past.name}' ${fmtShape(ps)} is not [${batch}, ${kv}, past, ${D}]`;
    if (!symEq(ps[2]!.add(seq), total)) return `past ${name} '${past.name}' ${fmtShape(ps)}: past + ${seq} is not the key length ${total}`;
    if (elemTypeOf(info, past) !== elemType) return `past ${name} '${past.name}' is not of the scores' element type`;
  }
  const ms = shapeOf(info, mask);
  if (!ms || ms.length !== 4 || !(ms[0]!.value === 1 || symEq(ms[0], batch)) || ms[1]!.value !== 1 || !symEq(ms[2], seq) || !symEq(ms[3], total)) {
    return `mask '${mask.name}' ${fmtShape(ms)} is not [${batch} or 1, 1, ${seq}, ${total}]`;
  }
  if (elemTypeOf(info, mask) !== elemType) return `mask '${mask.name}' is not of the scores' element type`;
  return { batch, seq, total };
}

export function matchGqa(info: InferResult, softmax: Node, opset: number): GqaMatch | Fail {
  const sm = checkSoftmax(info, softmax, opset);
  if (isFail(sm)) return sm;
  const { ss, elemType } = sm;
  const output = matchOutput(info, softmax);
  if (isFail(output)) return output;
  const { vr, merged } = output;
  const scores = matchScaledScores(info, softmax);
  if (isFail(scores)) return scores;
  const { mask, scale, qv, kr } = scores;
  const inputs = matchInputs(info, qv, kr, vr);
  if (isFail(inputs)) return inputs;
  const { q, k, v } = inputs;
  const dims = checkShapes(info, ss, elemType, inputs, mask);
  if (isFail(dims)) return dims;
  const { batch, seq, total } = dims;
  const N = q.heads, D = q.headSize;
  if (!Number.isFinite(scale) || scale <= 0) return `scale ${scale} is not usable`;
  const reshapes = merged.uses.map((u) => u.node).filter((n) => isMergeReshape(info, n, merged, batch, seq, N * D));
  if (reshapes.length === 0) return `'${merged.name}' is not reshaped to [${batch}, ${seq}, ${N * D}]`;
  return {
    softmax, q, k, v, pastKey: inputs.pastKey, pastValue: inputs.pastValue, presentKey: kr.x, presentValue: vr.x,
    heads: N, kvHeads: k.heads, headSize: D, scale, mask, merged, reshapes, elemType, batch, seq, total,
  };
}

// ---------------------------------------------------------------------------------------------
// the mask, by evaluation

/**
 * Check what fusing into ORT's GroupQueryAttention assumes of an additive mask [b|1, 1, s, T] added
 * to the scaled scores: that it is causal for a past of T - s (entry [i, j] is float32's lowest for
 * every j > T - s + i), and that every entry is 0 or lowest (so that a row is fully masked exactly
 * when its maximum is lowest). The mask is computed from the graph inputs; it is evaluated on
 * inputs of a few sizes (every symbol of their shapes set alike) and contents (integer inputs all
 * ones, left-padded, and with other values; float inputs zeros). Returns undefined when it holds,
 * else what failed.
 */
export function probeMask(graph: Graph, info: InferResult, mask: Value, dims: { batch: Sym; seq: Sym; total: Sym }, opset: number): Fail | undefined {
  // the cone of nodes computing the mask
  const cone: Node[] = [];
  const seen = new Set<Node>();
  const inputs = new Set<Value>();
  const stack: Value[] = [mask];
  while (stack.length) {
    const v = stack.pop()!;
    if (constantValue(v)) continue;
    const n = v.producer;
    if (!n) {
      if (v.isGraphInput && v.graph === graph) { inputs.add(v); continue; }
      return `mask: '${v.name}' is neither a graph input nor computed in this graph`;
    }
    if (seen.has(n)) continue;
    seen.add(n);
    if (n.subgraphs().length) return `mask: ${n} has subgraphs`;
    cone.push(n);
    if (cone.length > 300) return 'mask: computed by more than 300 nodes';
    for (const w of n.inputs) if (w) stack.push(w);
  }
  const order = graph.topoOrder().filter((n) => seen.has(n));
  const symbols = new Set<string>();
  for (const d of [dims.batch, dims.seq, dims.total]) for (const s of d.symbols()) symbols.add(s);
  for (const v of inputs) for (const d of shapeOf(info, v) ?? []) for (const s of d.symbols()) symbols.add(s);
  const names = [...symbols].sort();
  const assignments = [names.map(() => 1), names.map(() => 3), names.map((_, i) => 2 + (i % 3))];
  let probed = 0, withSeq = 0, withPast = 0;
  for (const values of assignments) {
    const env = new Map(names.map((n, i) => [n, Sym.const(values[i]!)]));
    const at = (d: Sym): number | undefined => d.subst(env).value;
    const B = at(dims.batch), S = at(dims.seq), T = at(dims.total);
    if (B === undefined || S === undefined || T === undefined || B < 1 || S < 1 || T < S) continue;
    const P = T - S;
    for (const pattern of ['ones', 'left-padded', 'other-values'] as const) {
      const feeds = new Map<Value, Tensor>();
      for (const v of inputs) {
        const shape = (shapeOf(info, v) ?? []).map(at);
        if (shape.some((x) => x === undefined)) return `mask: input '${v.name}' ${fmtShape(shapeOf(info, v))} has a dim not fixed by the sizes probed`;
        const t = synthetic(elemTypeOf(info, v), shape as number[], pattern);
        if (!t) return `mask: input '${v.name}' is of a type the probe cannot fill`;
        feeds.set(v, t);
      }
      const got = evaluateCone(order, feeds, opset);
      if (isFail(got)) return got;
      const m = got.get(mask);
      if (!m) return 'mask: not computed';
      const why = checkMask(m, B, S, T, P);
      if (why) return `mask '${mask.name}' (b=${B}, s=${S}, past=${P}, ${pattern} inputs): ${why}`;
      probed++;
    }
    if (S > 1) withSeq++;
    if (P > 0) withPast++;
  }
  if (probed === 0) return 'mask: no probe size gives a valid batch, sequence and past';
  if (withSeq === 0 && dims.seq.value !== 1) return 'mask: no probe size has a sequence above 1';
  if (withPast === 0 && !dims.total.equals(dims.seq)) return 'mask: no probe size has a past';
  return undefined;
}

function synthetic(elemType: number | undefined, shape: number[], pattern: 'ones' | 'left-padded' | 'other-values'): Tensor | undefined {
  const n = shape.reduce((a, b) => a * b, 1);
  const last = shape.length ? shape[shape.length - 1]! : 1;
  const intAt = (i: number): number => {
    if (pattern === 'ones') return 1;
    const j = i % last;
    if (pattern === 'left-padded') return Math.floor(i / last) % 2 === 1 && j < Math.ceil(last / 2) ? 0 : 1;
    return [1, 0, 2, 1, -1][i % 5]!;
  };
  switch (elemType) {
    case DataType.INT64: return Tensor.int64(Array.from({ length: n }, (_, i) => intAt(i)), shape);
    case DataType.INT32: return Tensor.int32(Array.from({ length: n }, (_, i) => intAt(i)), shape);
    case DataType.BOOL: return Tensor.fromTypedArray(DataType.BOOL, shape, Uint8Array.from({ length: n }, (_, i) => (intAt(i) !== 0 ? 1 : 0)));
    case DataType.FLOAT: return Tensor.float32(new Float32Array(n), shape);
    default: return undefined;
  }
}

function evaluateCone(order: Node[], feeds: Map<Value, Tensor>, opset: number): Map<Value, Tensor> | Fail {
  const values = new Map(feeds);
  for (const n of order) {
    const ins = n.inputs.map((v) => (v ? values.get(v) ?? constantValue(v) : undefined));
    if (n.inputs.some((v, i) => v && !ins[i])) return `mask: an input of ${n} is unknown`;
    const outs = evaluateNode(n, ins, n.domain === '' ? opset : 1);
    if (!outs) return `mask: ${n} cannot be evaluated here`;
    n.outputs.forEach((v, i) => { if (v && outs[i]) values.set(v, outs[i]!); });
  }
  return values;
}

/** [B|1, 1, S, T]: entries 0 or lowest, lowest for j > P + i. */
function checkMask(m: Tensor, B: number, S: number, T: number, P: number): string | undefined {
  const d = m.dims;
  if (d.length !== 4 || (d[0] !== B && d[0] !== 1) || d[1] !== 1 || d[2] !== S || d[3] !== T) return `evaluates to shape [${d.join(',')}], not [${B}, 1, ${S}, ${T}]`;
  if (m.dataType !== DataType.FLOAT) return 'is not float32';
  const a = m.toTypedArray() as Float32Array;
  for (let b = 0; b < d[0]!; b++) {
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < T; j++) {
        const x = a[(b * S + i) * T + j]!;
        if (x !== 0 && x !== LOWEST) return `entry [${b}, 0, ${i}, ${j}] is ${x}, not 0 or float32's lowest`;
        if (j > P + i && x !== LOWEST) return `entry [${b}, 0, ${i}, ${j}] is ${x}: not causal (a query would see a later key)`;
      }
    }
  }
  return undefined;
}
