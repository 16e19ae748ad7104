/**
 * fuse-attention
 *
 * Before (BERT, separate projections, padding mask):
 *   q = Transpose(Reshape(x @ Wq + bq, [b, s, H, D]), [0,2,1,3])      (likewise v)
 *   kT = Transpose(Reshape(x @ Wk + bk, [b, s, H, D]), [0,2,3,1])
 *   m = (1 - Cast(Unsqueeze(mask, [1, 2]))) * -10000                    (mask: [b, s])
 *   y = Reshape(Transpose(Softmax(q @ kT / sqrt(D) + m) @ v, [0,2,1,3]), [b, s, H*D])
 * Before (GPT-2, packed projection, causal mask):
 *   q, k, v = Split(Reshape(Gemm(Reshape(x, [-1, n]), W, c), [b, s, 3n]), axis=-1)
 *   scores = Where(tril[:, :, :s, :s], q @ kT / sqrt(D), finfo.min)     (or + Trilu(-inf, k=1))
 * After:
 *   y = com.microsoft::Attention(x, [Wq|Wk|Wv], [bq|bk|bv], Cast(mask, int32))
 *       {num_heads=H, scale, unidirectional, mask_filter_value}
 *   (the output projection stays a MatMul/Gemm of y)
 * Conditions:
 *   - Softmax over the last axis; q, k, v come from the same x [b, s, in] (self-attention, no
 *     past), through constant float32 weights (a missing bias is a zero bias), split into the same
 *     H heads of size D; every intermediate value (scores, probabilities) has no other use;
 *   - scale: a scalar Div/Mul of the scores, and of q and/or k (product taken);
 *   - masks outside the scaling (added to scaled scores): at most one padding mask
 *     (1 - mask) * f from a [b, s] mask (mask_filter_value = f; the mask holds 0/1, as attention
 *     masks do: ORT reads > 0 as keep) and at most one causal mask (Where with a lower-triangular
 *     constant prefix, or an additive strictly-upper constant/Trilu(ConstantOfShape)) whose fill
 *     is <= -1e4 (softmax gives exactly 0 there, as with ORT's causal mask);
 *   - the [b, s] mask is converted to int32 once and shared by every Attention.
 * Formula: Attention computes softmax(scale * q kT + mask) v per head, with q|k|v = x W + b.
 */
import { attr, attrInt } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { InferResult } from '../../src/analysis/infer.js';
import type { Sym } from '../../src/analysis/symbolic.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';
import {
  fmtShape,
  isFail,
  isNoopCast,
  matchCausalAdditive,
  matchCausalWhere,
  matchHeads,
  matchPaddingMask,
  matchProjection,
  matchScores,
  oneUse,
  probsTimesValues,
  producedBy,
  replaceMergedHeads,
  sliceProjection,
  softmaxScores,
  splitSizes,
  symEq,
  type Fail,
  type Heads,
  type PaddingMask,
  type Projection,
} from '../lib/attention/match.js';
import { elemTypeOf, shapeOf } from '../lib/query.js';

interface AttentionMatch {
  softmax: Node;
  /** Transpose(P @ V, [0,2,1,3]): [b, s, H, D] */
  merged: Value;
  x: Value;
  q: Projection;
  k: Projection;
  v: Projection;
  heads: number;
  headSize: number;
  scale: number;
  causal: boolean;
  padding?: PaddingMask;
  /** [b, s, H*D] reshapes of `merged`: replaced by the Attention output or a Reshape of it */
  reshapes: Node[];
}


/** The projections of q, k, v: three outputs of one Split of a packed projection, or three projections of one x. */
function matchQkv(info: InferResult, ctx: PassContext, q: Heads, k: Heads, v: Heads): [Projection, Projection, Projection] | Fail {
  const split = producedBy(q.proj, 'Split');
  if (split) {
    if (producedBy(k.proj, 'Split') !== split || producedBy(v.proj, 'Split') !== split) return `${split}: q, k, v are not all outputs of it`;
    if (q.proj.producerSlot !== 0 || k.proj.producerSlot !== 1 || v.proj.producerSlot !== 2 || split.outputs.length !== 3) {
      return `${split}: q, k, v are not its outputs 0, 1, 2`;
    }
    const input = split.inputs[0]!;
    const is = shapeOf(info, input);
    const axis = attrInt(split.attr('axis'), 0);
    if (!is || (axis !== -1 && axis !== is.length - 1)) return `${split}: does not split the last axis`;
    const sizes = splitSizes(split, is[is.length - 1]!.value, ctx.opset());
    if (!sizes || sizes.some((s) => s !== sizes[0])) return `${split}: split sizes [${sizes?.join(',') ?? '?'}] are not equal`;
    const p = matchProjection(info, input);
    if (isFail(p)) return p;
    if (p.n !== 3 * sizes[0]!) return `${split}: packed projection is ${p.n} wide, not 3 x ${sizes[0]}`;
    return [sliceProjection(p, 0, sizes[0]!), sliceProjection(p, sizes[0]!, sizes[0]!), sliceProjection(p, 2 * sizes[0]!, sizes[0]!)];
  }
  const ps: Projection[] = [];
  for (const [name, h] of [['q', q], ['k', k], ['v', v]] as const) {
    const p = matchProjection(info, h.proj);
    if (isFail(p)) return `${name} projection: ${p}`;
    ps.push(p);
  }
  const [pq, pk, pv] = ps as [Projection, Projection, Projection];
  if (pq.x !== pk.x || pq.x !== pv.x) return `q, k, v are projections of different inputs ('${pq.x.name}', '${pk.x.name}', '${pv.x.name}'): not self-attention`;
  return [pq, pk, pv];
}

/** The Softmax over [batch, heads, seq, seq] float32 scores. */
function checkSoftmax(info: InferResult, ctx: PassContext, softmax: Node): Sym[] | Fail {
  const ss = softmaxScores(info, softmax, ctx.opset(), 'batch, heads, seq, seq');
  if (isFail(ss)) return ss;
  return elemTypeOf(info, softmax.inputs[0]) !== DataType.FLOAT ? `${softmax}: not float32` : ss;
}

/** P @ V, then the heads merged back: V's heads and Transpose(P @ V, [0,2,1,3]). */
function matchOutput(info: InferResult, softmax: Node): { vh: Heads; merged: Value } | Fail {
  const out = probsTimesValues(info, softmax, 'V');
  if (isFail(out)) return out;
  const vh = matchHeads(info, out.values, false);
  return isFail(vh) ? `V: ${vh}` : { vh, merged: out.merged };
}

interface Masks {
  /** the scores under the masks */
  scores: Value;
  causal: boolean;
  padding?: PaddingMask;
}

/** The masks on the scores `scoresOut` (walking up to 6 steps: Where, Add, no-op Cast), or why one is not known. */
function matchMasks(info: InferResult, scoresOut: Value, seq: Sym): Masks | Fail {
  const masks: Masks = { scores: scoresOut, causal: false };
  for (let guard = 0; guard < 6; guard++) {
    const cur = masks.scores;
    if (cur !== scoresOut && !oneUse(cur)) return `'${cur.name}' has other uses`;
    if (cur.producer && isNoopCast(info, cur.producer)) { masks.scores = cur.producer.inputs[0]!; continue; }
    const where = producedBy(cur, 'Where');
    if (where) {
      if (masks.causal) return `${where}: a second causal mask`;
      const r = matchCausalWhere(info, where, seq);
      if (isFail(r)) return r;
      masks.causal = true;
      masks.scores = r;
      continue;
    }
    const add = producedBy(cur, 'Add');
    if (!add) break;
    const next = peelAddMask(info, add, seq, masks);
    if (isFail(next)) return next;
    masks.scores = next;
  }
  return masks;
}

/** The operand of `add` under a causal or padding mask on the other one (recorded in `masks`), or why neither is one. */
function peelAddMask(info: InferResult, add: Node, seq: Sym, masks: Masks): Value | Fail {
  const why: string[] = [];
  for (const [i, j] of [[0, 1], [1, 0]] as const) {
    const m = add.inputs[j]!;
    const sm = shapeOf(info, m);
    if (sm && sm.length >= 2 && symEq(sm[sm.length - 2], seq) && !masks.causal) {
      const r = matchCausalAdditive(info, m, seq);
      if (r === true) { masks.causal = true; return add.inputs[i]!; }
      why.push(r);
    } else if (!masks.padding) {
      const r = matchPaddingMask(info, m);
      if (!isFail(r)) { masks.padding = r; return add.inputs[i]!; }
      why.push(r);
    }
  }
  return `${add}: no operand is a mask this fusion knows (${why.join('; ') || 'a second mask of the same kind'})`;
}

/** The heads of q and k of q @ kT, alike with V's. */
function matchQkHeads(info: InferResult, qv: Value, kv: Value, vh: Heads): { qh: Heads; kh: Heads } | Fail {
  const qh = matchHeads(info, qv, false);
  if (isFail(qh)) return `Q: ${qh}`;
  const kh = matchHeads(info, kv, true);
  if (isFail(kh)) return `K: ${kh}`;
  if (qh.heads !== kh.heads || qh.heads !== vh.heads || qh.headSize !== kh.headSize || qh.headSize !== vh.headSize) {
    return `q, k, v heads differ (${qh.heads}x${qh.headSize}, ${kh.heads}x${kh.headSize}, ${vh.heads}x${vh.headSize})`;
  }
  return { qh, kh };
}

function matchAttention(info: InferResult, ctx: PassContext, softmax: Node): AttentionMatch | Fail {
  const ss = checkSoftmax(info, ctx, softmax);
  if (isFail(ss)) return ss;
  const output = matchOutput(info, softmax);
  if (isFail(output)) return output;
  const { vh, merged } = output;
  // masks, then scale, then Q @ K^T
  const seq = ss[3]!;
  if (!symEq(ss[2], seq)) return `${softmax}: scores ${fmtShape(ss)} are not square (query and key lengths differ)`;
  const masks = matchMasks(info, softmax.inputs[0]!, seq);
  if (isFail(masks)) return masks;
  const { causal, padding } = masks;
  const scores = matchScores(masks.scores, softmax);
  if (isFail(scores)) return scores;
  const scale = scores.scale;
  const heads = matchQkHeads(info, scores.q, scores.k, vh);
  if (isFail(heads)) return heads;
  const { qh, kh } = heads;
  const qkv = matchQkv(info, ctx, qh, kh, vh);
  if (isFail(qkv)) return qkv;
  const [q, k, v] = qkv;
  const xs = shapeOf(info, q.x);
  if (elemTypeOf(info, q.x) !== DataType.FLOAT || !xs || xs.length !== 3 || !symEq(xs[1], seq)) {
    return `input '${q.x.name}' ${fmtShape(xs)} is not float32 [batch, ${seq}, hidden]`;
  }
  if (padding) {
    const rs = shapeOf(info, padding.raw)!;
    if (!symEq(rs[0], xs[0]) || !symEq(rs[1], seq)) return `mask '${padding.raw.name}' ${fmtShape(rs)} is not [${xs[0]}, ${seq}]`;
  }
  const hidden = qh.heads * qh.headSize;
  if (q.n !== hidden || k.n !== hidden || v.n !== hidden) return `projection widths ${q.n}, ${k.n}, ${v.n} are not heads x head_size = ${hidden}`;
  if (!Number.isFinite(scale) || scale === 0) return `scale ${scale} is not usable`;
  const reshapes = merged.uses.map((u) => u.node).filter((n) => isMergeReshape(info, n, merged, xs, hidden));
  return { softmax, merged, x: q.x, q, k, v, heads: qh.heads, headSize: qh.headSize, scale, causal, ...(padding ? { padding } : {}), reshapes };
}



/** Reshape(merged, [b, s, H*D]) as inferred: the Attention output itself. */
function isMergeReshape(info: InferResult, n: Node, merged: Value, xs: Sym[], hidden: number): boolean {
  if (n.opType !== 'Reshape' || n.domain !== '' || n.inputs[0] !== merged) return false;
  const os = shapeOf(info, n.outputs[0]);
  return !!os && os.length === 3 && symEq(os[0], xs[0]) && symEq(os[1], xs[1]) && os[2]!.value === hidden;
}

/** Cast(mask, int32), made once per graph and shared. */
function maskIndex(graph: Graph, patch: Patch, raw: Value, info: InferResult): Value {
  if (elemTypeOf(info, raw) === DataType.INT32) return raw;
  for (const u of raw.uses) {
    const n = u.node;
    if (n.graph === graph && !n.removed && n.opType === 'Cast' && n.domain === '' && attrInt(n.attr('to')) === DataType.INT32) return n.outputs[0]!;
  }
  return patch.add('Cast', [raw], { to: DataType.INT32 }, { name: `${raw.name}_int32` });
}

function rewrite(graph: Graph, patch: Patch, ctx: PassContext, m: AttentionMatch, info: InferResult): void {
  const { q, k, v, heads, headSize } = m;
  const hidden = heads * headSize, inDim = q.inDim;
  const w = new Float32Array(inDim * 3 * hidden);
  for (let i = 0; i < inDim; i++) {
    w.set(q.w.subarray(i * hidden, (i + 1) * hidden), i * 3 * hidden);
    w.set(k.w.subarray(i * hidden, (i + 1) * hidden), i * 3 * hidden + hidden);
    w.set(v.w.subarray(i * hidden, (i + 1) * hidden), i * 3 * hidden + 2 * hidden);
  }
  const b = new Float32Array(3 * hidden);
  b.set(q.b, 0); b.set(k.b, hidden); b.set(v.b, 2 * hidden);
  const base = m.softmax.name.replace(/\/?Softmax[^/]*$/, '') || 'attention';
  const wv = patch.constant(Tensor.float32(w, [inDim, 3 * hidden]), `${base}/qkv_weight`);
  const bv = patch.constant(Tensor.float32(b, [3 * hidden]), `${base}/qkv_bias`);
  const inputs: (Value | undefined)[] = [m.x, wv, bv];
  const attrs = [attr.int('num_heads', heads), attr.float('scale', m.scale)];
  if (m.causal) attrs.push(attr.int('unidirectional', 1));
  if (m.padding) {
    inputs.push(maskIndex(graph, patch, m.padding.raw, info));
    attrs.push(attr.float('mask_filter_value', m.padding.filter));
  }
  const out = patch.add('Attention', inputs, attrs, { domain: 'com.microsoft', name: `${base}/Attention` });
  ctx.requireOpset('com.microsoft', 1);
  replaceMergedHeads(patch, m, out, heads, headSize, base);
}

/** A Softmax that looks like attention: its input comes from a MatMul, or its output feeds one. */
function isCandidate(softmax: Node): boolean {
  const out = softmax.outputs[0]!;
  if (out.uses.some((u) => u.node.opType === 'MatMul' || (u.node.opType === 'Cast' && u.node.outputs[0]!.uses.some((w) => w.node.opType === 'MatMul')))) return true;
  let cur: Value | undefined = softmax.inputs[0];
  for (let i = 0; i < 6 && cur?.producer; i++) {
    const p: Node = cur.producer;
    if (p.opType === 'MatMul') return true;
    if (!['Add', 'Where', 'Div', 'Mul', 'Cast'].includes(p.opType)) return false;
    cur = p.inputs.find((x) => x?.producer && !constantValue(x) && ['MatMul', 'Add', 'Where', 'Div', 'Mul', 'Cast'].includes(x.producer.opType));
  }
  return false;
}

export const fuseAttention: Pass = {
  name: 'fuse-attention',
  description: 'fuse BERT/GPT-2 self-attention (Q/K/V projections, scaled dot product, masks, softmax) into com.microsoft Attention',
  level: 2,
  subgraphs: 'recurse',
  emits: ['com.microsoft::Attention', 'ai.onnx::Cast', 'ai.onnx::Reshape'],
  run(graph, ctx) {
    const info = ctx.shapesOrExplain();
    if (!info) return 0;
    // One inference serves the pass: a rewrite replaces values by equivalent ones, and the values
    // a later match looks at are not created by an earlier rewrite (the shared mask Cast excepted,
    // whose type is not needed).
    let changes = 0;
    for (const node of [...graph.nodes]) {
      if (node.removed || node.opType !== 'Softmax' || node.domain !== '') continue;
      if (!isCandidate(node)) continue;
      const m = matchAttention(info, ctx, node);
      if (isFail(m)) {
        ctx.explain(m.startsWith(`${node}`) ? m : `${node}: ${m}`);
        continue;
      }
      if (!ctx.allowRewrite(`fuse-attention at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      try {
        rewrite(graph, patch, ctx, m, info);
      } catch (e) {
        if (!(e instanceof UnsupportedOpError)) throw e;
        ctx.explain(`${node}: ${e.message}`);
        continue;
      }
      changes += patch.commit();
    }
    return changes;
  },
};
