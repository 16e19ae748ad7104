/**
 * fuse-gqa
 *
 * Before (transformers' Llama/Mistral/Qwen2 eager attention with a legacy KV cache, after fuse-rotary):
 *   q = RotaryEmbedding(Transpose(Reshape(x Wq, [b, s, N, D]), [0,2,1,3]))          (rotary optional)
 *   present_k = Concat(past_k, RotaryEmbedding(Transpose(Reshape(x Wk, [b, s, Nkv, D]))), axis=2)
 *   present_v = Concat(past_v, Transpose(Reshape(x Wv, [b, s, Nkv, D])), axis=2)
 *   repeat_kv(t) = Reshape(Expand(Unsqueeze(t, 2), [b, Nkv, N/Nkv, T, D]), [b, N, T, D])
 *   y = Reshape(Transpose(Softmax(q @ repeat_kv(present_k)^T * scale + mask) @ repeat_kv(present_v),
 *               [0,2,1,3]), [b, s, N*D])
 * After:
 *   y, present_k, present_v = com.microsoft::GroupQueryAttention(
 *       RotaryEmbedding(x Wq), RotaryEmbedding(x Wk), x Wv, past_k, past_v,   (rotary in its 3-D form, num_heads set)
 *       seqlens_k = [T - 1] * b (int32), total_sequence_length = T (int32), attention_bias = bias)
 *       {num_heads=N, kv_num_heads=Nkv, scale}
 *   sequence 1:  bias = Clip(mask, min=-3e38)
 *   sequence >1: bias = mask, and y = Where(row fully masked, mean over T of present_v per head, y),
 *                row fully masked = ReduceMax(mask, last axis) < -3e38
 *   T = the mask's last dim; seqlens_k, T, the bias and the row test are made once per mask and shared
 *   by every layer. repeat_kv and the cache Concats are gone; past_key_values.N.* go in and
 *   present.N.* come out of GroupQueryAttention with their names and shapes.
 * Conditions:
 *   - kv heads < heads (equal heads: MultiHeadAttention, fuse-attention-past's), head size a multiple
 *     of 8 (ORT's kernel refuses others), float32, a GroupQueryAttention kernel of that type in the
 *     target's own table (CUDA's is float16/bfloat16 only);
 *   - the scores are only scale * q @ k^T + one additive mask [b or 1, 1, s, T] (scale: scalar
 *     constants on the scores, q or k), Softmax over the last axis; the values between are used only
 *     by the pattern; present_k/v are Concat(past, new) with past [b, Nkv, T - s, D];
 *   - the mask, evaluated on inputs of a few sizes and contents (probeMask: integer inputs all ones,
 *     left-padded, other values), is causal for a past of T - s and holds only 0 and float32's
 *     lowest (transformers' finfo.min masks: causal + padding);
 *   - the dims rule out batch > 1 with sequence > 1 and a past, which ORT's kernel refuses: batch 1,
 *     sequence 1 or no past fixed (compile --dim batch=1, or sequence=1 for a decode-only model).
 *     With symbolic batch and sequence nothing is fused (explained): the model would fail on inputs
 *     the original serves (the left-padded test set: batch 2, past 6, sequence 3).
 * Formula: with seqlens_k = T - 1 for every row the kernel appends the new keys after the whole past
 *   (present = Concat(past, new)) and lets query i see keys j <= T - s + i: the causal half of the
 *   mask, which the probe showed is lowest beyond that. The whole mask is added as attention_bias, so
 *   padding (left padding too) masks as in the original. Rows that the mask masks entirely (a
 *   left-padded prompt's padding queries, a row of zeros): the original's scores are all lowest
 *   (score + lowest rounds to lowest) and ORT's Softmax makes them uniform over all T keys, the
 *   output being the mean of V; GQA's softmax runs over keys j <= T - s + i only and returns zeros
 *   for a row whose maximum is lowest. With one query (s = 1) it sees every key, so lifting the mask
 *   to -3e38 makes its softmax uniform over all T keys as well; with more, the Where puts the mean of
 *   V back for exactly those rows.
 *
 * ORT facts relied on (onnxruntime-node 1.30 CPU EP, checked with one-node models in
 * test/passes/fuse-gqa-ort-facts.test.ts):
 *   - seqlens_k is total length - 1 per row; the kernel takes the row's past length as
 *     seqlens_k + 1 - s and writes the new keys there: ORT's exporters' seqlens_k = sum(mask) - 1
 *     (right padding) puts a left-padded row's new keys inside its past (present_key off by up to
 *     1.8, output by 0.5 on a left-padded decode step); T - 1 for every row is exact;
 *   - attention_bias [b or 1, N or 1, s, T] is added to scale * q k^T before the softmax;
 *   - batch > 1 with sequence > 1 and a past is refused: "batch_size must be 1 when
 *     sequence_length > 1 and past context is given";
 *   - a row whose maximum is lowest (or -inf) gives zeros, one whose entries are -3e38 a uniform
 *     softmax over the keys the row may see;
 *   - head_size % 8 == 0.
 */
import { attr, type Attribute } from '../../src/ir/attribute.js';
import { DataType, dataTypeName } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import { isFail } from '../lib/attention/match.js';
import { matchGqa, probeMask, type AttentionInput, type GqaMatch } from '../lib/attention/gqa.js';
import { targetTakesType } from '../lib/attention/target.js';

/**
 * What every layer's GQA shares, computed once per mask: total_sequence_length, seqlens_k, the bias,
 * and (sequence > 1) which query rows the mask masks entirely.
 */
interface Shared { total: Value; seqlens: Value; bias: Value; fully?: Value }

function i64(patch: Patch, values: number[], name: string, dims?: number[]): Value {
  return patch.constant(Tensor.int64(values, dims ?? [values.length]), name);
}

/** ReduceMax/ReduceMean over `axes` (attribute before opset 18, input from 18), keeping dims. */
function reduce(patch: Patch, ctx: PassContext, op: 'ReduceMax' | 'ReduceMean', x: Value, axes: number[], name: string): Value {
  if (ctx.opset() >= 18) return patch.add(op, [x, i64(patch, axes, `${name}_axes`)], { keepdims: 1 }, { name });
  return patch.add(op, [x], { axes, keepdims: 1 }, { name });
}

function sharedFor(patch: Patch, ctx: PassContext, m: GqaMatch, cache: Map<Value, Shared>): Shared {
  const hit = cache.get(m.mask);
  if (hit) return hit;
  const base = `${m.mask.name}_gqa`;
  const total64 = patch.add('Gather', [patch.add('Shape', [m.mask], {}, { name: `${base}/mask_shape` }), i64(patch, [3], `${base}/total_axis`, [])], { axis: 0 }, { name: `${base}/total64` });
  const total = patch.add('Cast', [total64], { to: DataType.INT32 }, { name: `${base}/total_sequence_length` });
  const batch = patch.add('Slice', [patch.add('Shape', [m.q.proj], {}, { name: `${base}/query_shape` }), i64(patch, [0], `${base}/zero`), i64(patch, [1], `${base}/one`)], {}, { name: `${base}/batch` });
  const last = patch.add('Sub', [total, patch.constant(Tensor.int32([1], []), `${base}/one_i32`)], {}, { name: `${base}/last_index` });
  const seqlens = patch.add('Expand', [last, batch], {}, { name: `${base}/seqlens_k` });
  let s: Shared;
  if (m.seq.value === 1) {
    // one query, which sees every key: a fully masked row softmaxes uniformly over all T keys, as in
    // the original, once its entries are above lowest (-3e38 + score rounds to -3e38 for |score| < 1e31)
    const bias = ctx.opset() >= 11
      ? patch.add('Clip', [m.mask, patch.constant(Tensor.float32([-3e38], []), `${base}/masked_value`)], {}, { name: `${base}/bias` })
      : patch.add('Clip', [m.mask], { min: -3e38 }, { name: `${base}/bias` });
    s = { total, seqlens, bias };
  } else {
    const max = reduce(patch, ctx, 'ReduceMax', m.mask, [3], `${base}/row_max`);
    const masked = patch.add('Less', [max, patch.constant(Tensor.float32([-3e38], []), `${base}/masked_below`)], {}, { name: `${base}/row_fully_masked` });
    const fully = patch.add('Reshape', [masked, i64(patch, [0, -1, 1], `${base}/rows_shape`)], {}, { name: `${base}/fully_masked` });
    s = { total, seqlens, bias: m.mask, fully };
  }
  cache.set(m.mask, s);
  return s;
}

/** The 3-D input of GQA: the projection, rotated by a 3-D RotaryEmbedding when the 4-D one was there. */
function input3d(patch: Patch, side: AttentionInput, heads: number, name: string): Value {
  const rot = side.rotary;
  if (!rot) return side.proj;
  const attrs: Attribute[] = [...rot.attributes.values()].filter((a) => a.name !== 'num_heads');
  attrs.push(attr.int('num_heads', heads));
  return patch.add('RotaryEmbedding', [side.proj, rot.inputs[1], rot.inputs[2], rot.inputs[3]], attrs, { domain: 'com.microsoft', name });
}

function baseName(softmax: Node): string {
  const n = softmax.name;
  const i = n.lastIndexOf('/');
  return i >= 0 ? n.slice(0, i + 1) : '';
}

function rewrite(patch: Patch, ctx: PassContext, m: GqaMatch, cache: Map<Value, Shared>): void {
  const base = baseName(m.softmax);
  const s = sharedFor(patch, ctx, m, cache);
  const q = input3d(patch, m.q, m.heads, `${base}q_rotary`);
  const k = input3d(patch, m.k, m.kvHeads, `${base}k_rotary`);
  const [out, presentK, presentV] = patch.addN('GroupQueryAttention',
    [q, k, m.v.proj, m.pastKey, m.pastValue, s.seqlens, s.total, undefined, undefined, undefined, s.bias],
    { num_heads: m.heads, kv_num_heads: m.kvHeads, scale: m.scale },
    { domain: 'com.microsoft', name: `${base}GroupQueryAttention`, outputs: 3 }) as [Value, Value, Value];
  let y = out;
  if (s.fully) {
    // rows the mask masks entirely: the mean of V over all T keys (what Softmax's uniform row gives), per query head
    const rep = m.heads / m.kvHeads;
    const mean = reduce(patch, ctx, 'ReduceMean', presentV, [2], `${base}value_mean`);
    const perHead = patch.add('Expand', [mean, i64(patch, [1, 1, rep, 1], `${base}repeat_shape`)], {}, { name: `${base}value_mean_per_head` });
    const flat = patch.add('Reshape', [perHead, i64(patch, [0, 1, -1], `${base}mean_shape`)], {}, { name: `${base}value_mean_flat` });
    y = patch.add('Where', [s.fully, flat, out], {}, { name: `${base}masked_rows` });
  }
  ctx.requireOpset('com.microsoft', 1);
  for (const r of m.reshapes) patch.replace(r.outputs[0]!, y);
  if (m.merged.uses.some((u) => !m.reshapes.includes(u.node)) || m.merged.isReturned) {
    patch.replace(m.merged, patch.add('Reshape', [y, i64(patch, [0, 0, m.heads, m.headSize], `${base}heads_shape`)], {}, { name: `${base}split_heads` }));
  }
  patch.replace(m.presentKey, presentK);
  patch.replace(m.presentValue, presentV);
}

export const fuseGqa: Pass = {
  name: 'fuse-gqa',
  description: 'grouped-query attention with a KV cache (rotary, past Concat, repeat_kv, causal + padding mask) -> com.microsoft GroupQueryAttention',
  level: 2,
  subgraphs: 'recurse',
  emits: [
    'com.microsoft::GroupQueryAttention', 'com.microsoft::RotaryEmbedding', 'ai.onnx::Where', 'ai.onnx::ReduceMean', 'ai.onnx::ReduceMax',
    'ai.onnx::Clip', 'ai.onnx::Shape', 'ai.onnx::Gather', 'ai.onnx::Cast', 'ai.onnx::Slice', 'ai.onnx::Sub', 'ai.onnx::Expand', 'ai.onnx::Less', 'ai.onnx::Reshape',
  ],
  run(graph: Graph, ctx: PassContext) {
    const info = ctx.shapesOrExplain();
    if (!info) return 0;
    if (ctx.opset() < 10) { ctx.explain(`opset ${ctx.opset()} < 10`); return 0; }
    const cache = new Map<Value, Shared>();
    const probed = new Map<Value, string | undefined>();
    let changes = 0;
    for (const node of [...graph.nodes]) {
      if (node.removed || node.opType !== 'Softmax' || node.domain !== '') continue;
      const m = matchGqa(info, node, ctx.opset());
      if (isFail(m)) {
        ctx.explain(m.startsWith(`${node}`) ? m : `${node}: ${m}`);
        continue;
      }
      if (!targetTakesType(ctx, 'com.microsoft::GroupQueryAttention', m.elemType)) {
        ctx.explain(`${node}: target '${ctx.options.target?.name}' has no ${dataTypeName(m.elemType)} GroupQueryAttention kernel`);
        continue;
      }
      // ORT's kernel refuses batch > 1 with sequence > 1 and a past: fuse only where the dims rule it out
      if (m.batch.value !== 1 && m.seq.value !== 1 && !m.total.equals(m.seq)) {
        ctx.explain(`${node}: batch ${m.batch} and sequence ${m.seq} with a past (total ${m.total}): ORT's GroupQueryAttention refuses batch > 1 with sequence > 1 and a past ("batch_size must be 1 when sequence_length > 1 and past context is given"), which this model accepts; fix --dim batch=1 (or sequence=1 for a decode-only model) to fuse`);
        continue;
      }
      if (!probed.has(m.mask)) probed.set(m.mask, probeMask(graph, info, m.mask, m, ctx.opset()));
      const why = probed.get(m.mask);
      if (why) { ctx.explain(`${node}: ${why}`); continue; }
      if (!ctx.allowRewrite(`fuse-gqa at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      const before = new Map(cache);
      try {
        rewrite(patch, ctx, m, cache);
      } catch (e) {
        if (!(e instanceof UnsupportedOpError)) throw e;
        cache.clear();
        for (const [k, v] of before) cache.set(k, v);
        ctx.explain(`${node}: ${e.message}`);
        continue;
      }
      changes += patch.commit();
    }
    return changes;
  },
};
