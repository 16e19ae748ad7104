/**
 * fuse-attention-past
 *
 * Before (decoder self-attention with a KV cache, as GPT-2 exports it):
 *   q = Transpose(Reshape(qp, [b, s, H, D]), [0,2,1,3])                  (qp, kp, vp: [b, s, H*D])
 *   key = Concat(past_key, Transpose(Reshape(kp, [b, s, H, D]), [0,2,1,3]), axis=2)   -> present.N.key
 *   value = Concat(past_value, Transpose(Reshape(vp, ..), [0,2,1,3]), axis=2)          -> present.N.value
 *   w = Where(tril[:, :, t-s:t, :t], q @ Transpose(key, [0,1,3,2]) / sqrt(D), fill)   (t = p + s)
 *   w = w + (1 - mask[:, None, None, :]) * f                                          (mask: [b, t])
 *   y = Reshape(Transpose(Softmax(w) @ value, [0,2,1,3]), [b, s, H*D])
 * After:
 *   y, present.N.key, present.N.value = com.microsoft::MultiHeadAttention(qp, kp, vp, -, -,
 *       attention_bias, past_key, past_value) {num_heads=H, scale}
 *   attention_bias = Where(j > p + i, fill, 0) + (1 - mask[:, None, None, :]) * f: [b, 1, s, t],
 *     i < s, j < t, built once with standard ops (Shape, Gather, Range, Less, Where) and shared by
 *     the layers; with a causal mask alone: no bias, unidirectional=1.
 *   (the projections stay MatMul/Gemm + bias; the graph's inputs and outputs keep their names and shapes)
 * Conditions:
 *   - Softmax over the last axis of float32 scores [b, H, s, t]; P @ value, merged back with
 *     Transpose [0,2,1,3]; every intermediate (scores, probabilities) has no other use;
 *   - key and value are Concat(cache [b, H, p, D], this step's heads) on axis 2; q, k, v are heads
 *     (Reshape + Transpose) of [b, s, H*D] values with the same H and D; scores = q @ key^T;
 *   - scale: scalar constant Mul/Div of the scores, of q, of key^T (product taken);
 *   - a causal mask with past is required: Where with a window of a constant lower-triangular
 *     buffer (or Where(strict upper, fill, scores)), [.., s, t], starting at row r0 and column c0
 *     with r0 - c0 = t - s (symbolically): query i sees keys j <= p + i; fill <= -1e4. The window
 *     lies inside the buffer for every input the original serves (t <= its size, n_positions);
 *   - at most one padding mask (1 - mask) * f, [b, 1, 1, t] from a [b, t] mask, added before or
 *     after the Where;
 *   - or, instead of the causal Where (or besides it), any other additive float32 mask [b|1, H|1, s, t]
 *     added to the scaled scores (transformers' 4-D causal + padding mask, as Llama and GPT-NeoX
 *     build it): it goes into attention_bias as it is. MultiHeadAttention computes
 *     softmax(scale q k^T + bias) @ v, the original's formula for any bias, including rows the mask
 *     masks entirely (0/lowest masks: every score rounds to lowest, a uniform row in both; checked on a
 *     left-padded prefill in test/decoder-family.test.ts);
 *   - q, k, v may also be heads of a packed per-head projection (GPT-NeoX's query_key_value: view
 *     [b, s, H, 3D], transpose, chunk on the last axis): the fused op gets each one's columns
 *     Reshape(Slice(view, [o, o + D), axis 3), [b, s, H*D]); and q, k may be rotated (a rank-4
 *     RotaryEmbedding, or the rotary subgraph fuse-rotary matches, which runs later): the fused op
 *     gets RotaryEmbedding of the 3-D input (num_heads set; passes/lib/attention/rotary.ts).
 * Formula: the masks are moved off the scores and onto a bias, in the original's order:
 *   bias = chain(0) where the original computes chain(scores) (Where(c, x, fill), x + m). Where the
 *   causal mask keeps a key, chain(scores) = scores + chain(0) exactly (x + m rounds the same);
 *   where it masks, the original gives fill (+ m) and the bias gives scores + fill (+ m), which
 *   rounds to the same value for |scores| < ulp(fill)/2 (fill = finfo.min: |scores| < 1e31) and
 *   has softmax weight 0 either way otherwise (fill <= -1e4). So softmax(scale q k^T + bias) is
 *   the original's on every row, including the rows of a left-padded batch whose query itself is
 *   padding (there the original is uniform over the keys j <= p + i, and so is the bias form).
 * ORT facts (onnxruntime-node 1.30, CPU EP; checked in test/passes/fuse-attention-past-ort.test.ts):
 *   - MultiHeadAttention(query, key, value, bias, key_padding_mask, attention_bias, past_key,
 *     past_value) -> (output, present_key, present_value); q/k/v [b, s, H*D], past [b, H, p, D]
 *     (p = 0 works), present = Concat(past, new) [b, H, p+s, D]; scores = scale * q k^T + bias;
 *   - attention_bias must be [b or 1, H or 1, s, t]: [b, 1, 1, t] is refused ('dimension 2
 *     should be same as sequence_length'), hence the bias is built at [b, 1, s, t];
 *   - unidirectional=1 masks keys j > p + i (causal with past) and matches the Where mask exactly
 *     on its own; combined with key_padding_mask (0/1, mask_filter_value = finfo.min) it differs
 *     on padded query rows (uniform over all t keys instead of the j <= p + i ones), which is why
 *     the padding goes into attention_bias (as the original's sum), not key_padding_mask.
 */
import { attr, type Attribute } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { InferResult } from '../../src/analysis/infer.js';
import type { Sym } from '../../src/analysis/symbolic.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import {
  fmtShape,
  isFail,
  isNoopCast,
  matchPaddingMask,
  matchScores,
  oneUse,
  peelScale,
  permOf,
  probsTimesValues,
  producedBy,
  replaceMergedHeads,
  softmaxScores,
  symEq,
  type Fail,
} from '../lib/attention/match.js';
import { elemTypeOf, shapeOf } from '../lib/query.js';
import { matchCacheConcat, matchCausalWithPast, matchHeadsInput, type CacheConcat, type HeadsInput } from '../lib/attention/past.js';
import { emitRotary, RotaryShared } from '../lib/attention/rotary.js';

/** One mask step, innermost first: Where(causal, x, fill) or x + m. */
type MaskStep = { kind: 'causal'; fill: Value; keepWhenTrue: boolean } | { kind: 'add'; mask: Value; general?: boolean };

interface PastMatch {
  softmax: Node;
  /** Transpose(P @ V, [0,2,1,3]): [b, s, H, D] */
  merged: Value;
  q: HeadsInput;
  key: CacheConcat;
  value: CacheConcat;
  heads: number;
  headSize: number;
  scale: number;
  /** innermost (next to the scores) first */
  steps: MaskStep[];
  qLen: Sym;
  kLen: Sym;
  reshapes: Node[];
}



/** The Softmax over [batch, heads, seq, past + seq] float32 scores. */
function checkSoftmax(info: InferResult, ctx: PassContext, softmax: Node): Sym[] | Fail {
  const ss = softmaxScores(info, softmax, ctx.opset(), 'batch, heads, seq, past + seq');
  if (isFail(ss)) return ss;
  return elemTypeOf(info, softmax.inputs[0]) !== DataType.FLOAT ? `${softmax}: not float32` : ss;
}

/** P @ values (the value cache's Concat), then the heads merged back with Transpose([0,2,1,3]). */
function matchOutput(info: InferResult, softmax: Node): { value: CacheConcat; merged: Value } | Fail {
  const out = probsTimesValues(info, softmax, 'the values');
  if (isFail(out)) return out;
  const value = matchCacheConcat(info, out.values, 'value');
  return isFail(value) ? value : { value, merged: out.merged };
}

/** The masks found walking up from the scores, outermost first, and which kinds were seen. */
interface MaskWalk {
  outerFirst: MaskStep[];
  /** the scores under the masks */
  scores: Value;
  causal: boolean;
  padding: boolean;
  general: boolean;
}

/** The masks on the scores `scoresOut` [b, H, s, t] (walking up to 6 steps: Where, Add, no-op Cast), or why one is not known. */
function matchMasks(info: InferResult, ctx: PassContext, scoresOut: Value, ss: Sym[]): MaskWalk | Fail {
  const qLen = ss[2]!, kLen = ss[3]!;
  const walk: MaskWalk = { outerFirst: [], scores: scoresOut, causal: false, padding: false, general: false };
  for (let guard = 0; guard < 6; guard++) {
    const cur = walk.scores;
    if (cur !== scoresOut && !oneUse(cur)) return `'${cur.name}' has other uses`;
    if (cur.producer && isNoopCast(info, cur.producer)) { walk.scores = cur.producer.inputs[0]!; continue; }
    const where = producedBy(cur, 'Where');
    if (where) {
      if (walk.causal) return `${where}: a second causal mask`;
      const r = matchCausalWithPast(info, ctx.opset(), where, qLen, kLen);
      if (isFail(r)) return r;
      walk.causal = true;
      walk.outerFirst.push({ kind: 'causal', fill: r.fill, keepWhenTrue: r.keepWhenTrue });
      walk.scores = r.scores;
      continue;
    }
    const add = producedBy(cur, 'Add');
    if (!add) break;
    const next = peelAddMask(info, add, ss, walk);
    if (isFail(next)) return next;
    walk.scores = next;
  }
  return walk;
}

/**
 * The operand of `add` under a mask on the other one (recorded in `walk`): a padding mask, or
 * failing that, while neither is there yet, a general additive mask; or why neither is one.
 */
function peelAddMask(info: InferResult, add: Node, ss: Sym[], walk: MaskWalk): Value | Fail {
  const qLen = ss[2]!, kLen = ss[3]!;
  const why: string[] = [];
  for (const [i, j] of [[0, 1], [1, 0]] as const) {
    if (walk.padding) { why.push('a second padding mask'); break; }
    const m = add.inputs[j]!;
    const r = matchPaddingMask(info, m);
    if (isFail(r)) { why.push(r); continue; }
    const rs = shapeOf(info, r.raw)!;
    if (!symEq(rs[1], kLen)) { why.push(`mask '${r.raw.name}' ${fmtShape(rs)} is not [batch, ${kLen}]`); continue; }
    walk.padding = true;
    walk.outerFirst.push({ kind: 'add', mask: m });
    return add.inputs[i]!;
  }
  if (!walk.general && !walk.padding) {
    // any other additive mask the attention op can take as attention_bias as it is: [b|1, H|1, s, t]
    // (transformers' 4-D causal + padding masks, ALiBi-like biases), added to the scaled scores
    for (const [i, j] of [[0, 1], [1, 0]] as const) {
      const m = add.inputs[j]!, other = peelScale(add.inputs[i]!)[0];
      if (!producedBy(other, 'MatMul', 'Where', 'Add', 'Cast') || producedBy(peelScale(m)[0], 'MatMul')) continue;
      const ms = shapeOf(info, m);
      if (!ms || ms.length !== 4 || !(ms[0]!.value === 1 || symEq(ms[0], ss[0])) || !(ms[1]!.value === 1 || symEq(ms[1], ss[1])) || !symEq(ms[2], qLen) || !symEq(ms[3], kLen)) {
        why.push(`'${m.name}' ${fmtShape(ms)} is not an additive mask [batch or 1, heads or 1, ${qLen}, ${kLen}]`);
        continue;
      }
      if (elemTypeOf(info, m) !== DataType.FLOAT) { why.push(`'${m.name}' is not float32`); continue; }
      walk.general = true;
      walk.outerFirst.push({ kind: 'add', mask: m, general: true });
      return add.inputs[i]!;
    }
  }
  return `${add}: no operand is a mask this fusion knows (${why.join('; ')})`;
}

/**
 * q and the key cache of scores = q @ Transpose(key, [0,1,3,2]), with the value cache: heads alike,
 * [batch, s, hidden] float32 projections, t keys, caches of one length; q's projection shape too.
 */
function matchQueryKey(info: InferResult, qk: Node, qv: Value, kt: Value, value: CacheConcat, qLen: Sym, kLen: Sym): { q: HeadsInput; key: CacheConcat; qs: Sym[] } | Fail {
  const t = producedBy(kt, 'Transpose');
  if (!t || permOf(t) !== '0,1,3,2') return `${qk}: right operand '${kt.name}' is not Transpose(key, [0,1,3,2])`;
  if (!oneUse(kt)) return `${t}: output has other uses`;
  const key = matchCacheConcat(info, t.inputs[0], 'key');
  if (isFail(key)) return key;
  if (key.concat === value.concat) return `${key.concat}: one cache for keys and values`;
  const q = matchHeadsInput(info, qv);
  if (isFail(q)) return `q: ${q}`;
  const kh = key.heads, vh = value.heads;
  if (q.heads !== kh.heads || q.heads !== vh.heads || q.headSize !== kh.headSize || q.headSize !== vh.headSize) {
    return `q, key, value heads differ (${q.heads}x${q.headSize}, ${kh.heads}x${kh.headSize}, ${vh.heads}x${vh.headSize})`;
  }
  const qs = shapeOf(info, q.proj)!, ks = shapeOf(info, kh.proj)!, vs = shapeOf(info, vh.proj)!;
  if (!symEq(qs[0], ks[0]) || !symEq(qs[0], vs[0]) || !symEq(qs[1], ks[1]) || !symEq(qs[1], vs[1]) || !symEq(qs[1], qLen)) {
    return `q, k, v projections ${fmtShape(qs)}, ${fmtShape(ks)}, ${fmtShape(vs)} are not [batch, ${qLen}, hidden] alike: not self-attention`;
  }
  if (elemTypeOf(info, q.proj) !== DataType.FLOAT || elemTypeOf(info, kh.proj) !== DataType.FLOAT || elemTypeOf(info, vh.proj) !== DataType.FLOAT) return `q, k, v projections are not float32`;
  const ts = shapeOf(info, key.all);
  if (!ts || !symEq(ts[2], kLen)) return `${key.concat}: key ${fmtShape(ts)} has not the scores' ${kLen} keys`;
  if (!symEq(shapeOf(info, key.past)?.[2], shapeOf(info, value.past)?.[2])) return `caches '${key.past.name}' and '${value.past.name}' have different lengths`;
  return { q, key, qs };
}

function matchPast(info: InferResult, ctx: PassContext, softmax: Node): PastMatch | Fail {
  const ss = checkSoftmax(info, ctx, softmax);
  if (isFail(ss)) return ss;
  const qLen = ss[2]!, kLen = ss[3]!;
  const output = matchOutput(info, softmax);
  if (isFail(output)) return output;
  const { value, merged } = output;
  // masks (outermost first as we walk), then scale, then q @ key^T
  const walk = matchMasks(info, ctx, softmax.inputs[0]!, ss);
  if (isFail(walk)) return walk;
  if (!walk.causal && !walk.general) return `${softmax}: no causal mask with past (Where over a lower-triangular buffer window) nor a 4-D additive mask on the scores: not decoder self-attention`;
  const scores = matchScores(walk.scores, softmax);
  if (isFail(scores)) return scores;
  const { qk, q: qv, k: kt, scale } = scores;
  const qkey = matchQueryKey(info, qk, qv, kt, value, qLen, kLen);
  if (isFail(qkey)) return qkey;
  const { q, key, qs } = qkey;
  if (!Number.isFinite(scale) || scale === 0) return `scale ${scale} is not usable`;
  const hidden = q.heads * q.headSize;
  const reshapes = merged.uses.map((u) => u.node).filter((n) => isMergeReshape(info, n, merged, qs, hidden));
  return { softmax, merged, q, key, value, heads: q.heads, headSize: q.headSize, scale, steps: walk.outerFirst.reverse(), qLen, kLen, reshapes };
}

/** Reshape(merged, [b, s, H*D]) as inferred: the attention output itself. */
function isMergeReshape(info: InferResult, n: Node, merged: Value, qs: Sym[], hidden: number): boolean {
  if (n.opType !== 'Reshape' || n.domain !== '' || n.inputs[0] !== merged) return false;
  const os = shapeOf(info, n.outputs[0]);
  return !!os && os.length === 3 && symEq(os[0], qs[0]) && symEq(os[1], qs[1]) && os[2]!.value === hidden;
}

/** Per graph: the causal masks [s, t] (as bool "masked") and the biases built so far, by what they are. */
interface Shared {
  masked: Map<string, Value>;
  bias: Map<string, Value>;
  rotary: RotaryShared;
}

/** masked[i, j] = j > p + i, [s, t], from the shapes of a cache (p) and of q (s). */
function causalMasked(patch: Patch, shared: Shared, m: PastMatch, info: InferResult): Value {
  const pLen = shapeOf(info, m.key.past)![2]!;
  const key = `${pLen}|${m.qLen}`;
  const hit = shared.masked.get(key);
  if (hit) return hit;
  const base = 'attention_past_mask';
  const scalar = (n: number, name: string): Value => patch.constant(Tensor.int64([n], []), `${base}/${name}`);
  const p = patch.add('Gather', [patch.add('Shape', [m.key.past], {}, { name: `${base}/past_shape` }), scalar(2, 'axis2')], { axis: 0 }, { name: `${base}/past_len` });
  const s = patch.add('Gather', [patch.add('Shape', [m.q.proj], {}, { name: `${base}/query_shape` }), scalar(1, 'axis1')], { axis: 0 }, { name: `${base}/query_len` });
  const t = patch.add('Add', [p, s], {}, { name: `${base}/total_len` });
  const one = scalar(1, 'one');
  // rows: p + i for i < s, as a column [s, 1]; cols: j < t
  const rows = patch.add('Reshape', [patch.add('Range', [p, t, one], {}, { name: `${base}/rows` }), patch.constant(Tensor.int64([-1, 1]), `${base}/column`)], {}, { name: `${base}/rows_column` });
  const cols = patch.add('Range', [scalar(0, 'zero'), t, one], {}, { name: `${base}/cols` });
  const masked = patch.add('Less', [rows, cols], {}, { name: `${base}/masked` });
  shared.masked.set(key, masked);
  return masked;
}

/** The masks replayed on 0 in the original's order: [b, 1, s, t]. */
function attentionBias(patch: Patch, shared: Shared, m: PastMatch, info: InferResult): Value {
  const key = `${shapeOf(info, m.key.past)![2]}|${m.qLen}|` + m.steps.map((s) => (s.kind === 'causal' ? `W${s.fill.name}` : `A${s.mask.name}`)).join('|');
  const hit = shared.bias.get(key);
  if (hit) return hit;
  let x: Value | undefined;
  for (const step of m.steps) {
    if (step.kind === 'add') {
      x = x ? patch.add('Add', [x, step.mask], {}, { name: 'attention_past_bias/add_mask' }) : step.mask;
    } else {
      const zero = x ?? patch.constant(Tensor.float32([0], []), 'attention_past_bias/zero');
      x = patch.add('Where', [causalMasked(patch, shared, m, info), step.fill, zero], {}, { name: 'attention_past_bias/causal' });
    }
  }
  shared.bias.set(key, x!);
  return x!;
}

/**
 * The [b, s, H*D] input of the attention op for q, k or v: the projection, or for packed heads its
 * columns [offset, offset + D) of every head (Slice of the [b, s, H, W] reshape, merged back), then
 * the rotary in its 3-D form (num_heads set) when the heads were rotated.
 */
function input3d(patch: Patch, h: HeadsInput, rot: RotaryShared, info: InferResult, name: string): Value {
  let x = h.proj;
  if (h.packed) {
    const i64 = (v: number[], n: string): Value => patch.constant(Tensor.int64(v), `${name}/${n}`);
    const cols = patch.add('Slice', [h.packed.r4, i64([h.packed.offset], 'start'), i64([h.packed.offset + h.headSize], 'end'), i64([3], 'axis')], {}, { name: `${name}/heads` });
    x = patch.add('Reshape', [cols, i64([0, 0, h.heads * h.headSize], 'merged_shape')], {}, { name: `${name}/merged` });
  }
  const r = h.rotary;
  if (!r) return x;
  if ('match' in r) return emitRotary(patch, r.match, rot, x, '3d', info, `${name}/RotaryEmbedding`);
  const attrs: Attribute[] = [...r.node.attributes.values()].filter((a) => a.name !== 'num_heads');
  attrs.push(attr.int('num_heads', h.heads));
  return patch.add('RotaryEmbedding', [x, r.node.inputs[1], r.node.inputs[2], r.node.inputs[3]], attrs, { domain: 'com.microsoft', name: `${name}/RotaryEmbedding` });
}

function rewrite(patch: Patch, ctx: PassContext, shared: Shared, m: PastMatch, info: InferResult): void {
  const { heads, headSize } = m;
  const base = m.softmax.name.replace(/\/?Softmax[^/]*$/, '') || 'attention';
  const attrs = [attr.int('num_heads', heads), attr.float('scale', m.scale)];
  let bias: Value | undefined;
  if (m.steps.length === 1 && m.steps[0]!.kind === 'causal') attrs.push(attr.int('unidirectional', 1));
  else bias = attentionBias(patch, shared, m, info);
  const q = input3d(patch, m.q, shared.rotary, info, `${base}/query`);
  const k = input3d(patch, m.key.heads, shared.rotary, info, `${base}/key`);
  const v = input3d(patch, m.value.heads, shared.rotary, info, `${base}/value`);
  const inputs: (Value | undefined)[] = [q, k, v, undefined, undefined, bias, m.key.past, m.value.past];
  const [out, presentKey, presentValue] = patch.addN('MultiHeadAttention', inputs, attrs, { domain: 'com.microsoft', name: `${base}/MultiHeadAttention`, outputs: 3 }) as [Value, Value, Value];
  ctx.requireOpset('com.microsoft', 1);
  patch.replace(m.key.all, presentKey);
  patch.replace(m.value.all, presentValue);
  replaceMergedHeads(patch, m, out, heads, headSize, base);
}

/** A Softmax whose output feeds (maybe through a Cast) a MatMul with a Concat: attention over a cache. */
function isCandidate(softmax: Node): boolean {
  return softmax.outputs[0]!.uses.some((u) => {
    const n = u.node.opType === 'Cast' ? u.node.outputs[0]!.uses[0]?.node : u.node;
    return n?.opType === 'MatMul' && n.inputs[1]?.producer?.opType === 'Concat';
  });
}

export const fuseAttentionPast: Pass = {
  name: 'fuse-attention-past',
  description: 'fuse decoder self-attention with a KV cache (past in, present out; causal and padding masks) into com.microsoft MultiHeadAttention',
  level: 2,
  subgraphs: 'recurse',
  emits: [
    'com.microsoft::MultiHeadAttention', 'ai.onnx::Shape', 'ai.onnx::Gather', 'ai.onnx::Add', 'ai.onnx::Range',
    'ai.onnx::Reshape', 'ai.onnx::Less', 'ai.onnx::Where', 'com.microsoft::RotaryEmbedding', 'ai.onnx::Slice', 'ai.onnx::Mul',
    'ai.onnx::Expand',
  ],
  run(graph: Graph, ctx) {
    const info = ctx.shapesOrExplain();
    if (!info) return 0;
    // One inference serves the pass: a rewrite replaces values by equivalent ones (present.N.* by
    // the MultiHeadAttention outputs), and a later match looks only at values no rewrite created.
    const shared: Shared = { masked: new Map(), bias: new Map(), rotary: new RotaryShared() };
    let changes = 0;
    for (const node of [...graph.nodes]) {
      if (node.removed || node.opType !== 'Softmax' || node.domain !== '' || !isCandidate(node)) continue;
      const m = matchPast(info, ctx, node);
      if (isFail(m)) {
        ctx.explain(m.startsWith(`${node}`) ? m : `${node}: ${m}`);
        continue;
      }
      if (m.steps.length > 1 && ctx.opset() < 11) {
        ctx.explain(`${node}: opset ${ctx.opset()} < 11 has no Range to build the causal mask with past`);
        continue;
      }
      if (!ctx.allowRewrite(`fuse-attention-past at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      const saved = { masked: new Map(shared.masked), bias: new Map(shared.bias) };
      try {
        rewrite(patch, ctx, shared, m, info);
      } catch (e) {
        if (!(e instanceof UnsupportedOpError)) throw e;
        shared.masked = saved.masked;
        shared.bias = saved.bias;
        shared.rotary.rollback();
        ctx.explain(`${node}: ${e.message}`);
        continue;
      }
      changes += patch.commit();
      shared.rotary.commit();
    }
    return changes;
  },
};
