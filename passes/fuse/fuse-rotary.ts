/**
 * fuse-rotary
 *
 * Before:  y = x * cos + rotate_half(x) * sin                          (Llama, Mistral, Qwen2, GPT-NeoX: rotate-half form)
 *          rotate_half(x) = Concat(Neg(x[..., h:]), x[..., :h], axis=-1)   (Neg or Mul by -1)
 *          cos = Unsqueeze(Gather(cos_table[:n], position_ids, axis=0), head axis)   (likewise sin; the
 *                prefix Slice to the key length is optional, no-op Casts are allowed)
 *          partial rotary (Phi, GPT-NeoX rotary_pct): x_rot = x[..., :R], y = Concat(rope(x_rot), x[..., R:])
 * After:   y = com.microsoft::RotaryEmbedding(x, position_ids, cos_table[:, :R/2], sin_table[:, :R/2])
 *              {interleaved=0, rotary_embedding_dim=R and num_heads for partial rotary}
 *          x [batch, heads, seq, head] (rotary after the head transpose, as transformers exports) is
 *          passed as is (ORT reads a 4-D input as BNSH); x [batch, seq, heads, head] goes through a
 *          Reshape to [batch, seq, heads*head] and back (num_heads set).
 * Conditions:
 *   - x has rank 4, float32 or float16, a static head size; cos and sin broadcast over its heads axis
 *     only ([batch, 1, seq, R] or [batch, seq, 1, R]), gathered by the same int64 [batch, seq]
 *     position ids (a table row per position; a [1, seq] broadcast over the batch is not matched);
 *   - the tables are constants [positions, R] whose rows have equal halves (cat(freqs, freqs), what
 *     makes rotate_half's rotation the one RotaryEmbedding computes: it reads cos[:R/2] for both
 *     halves), of x's element type;
 *   - the two products and rotate_half's Concat have no other use.
 * Formula: RotaryEmbedding computes, per head and position p = position_ids[b, s] and i < R/2,
 *   y[i] = x[i] cos[p, i] - x[i + R/2] sin[p, i],  y[i + R/2] = x[i + R/2] cos[p, i] + x[i] sin[p, i],
 *   y[R:] = x[R:]: the same as x * cos + rotate_half(x) * sin when cos[p, i] = cos[p, i + R/2].
 *   Positions beyond the sliced prefix (n = the key length) were an error in the original (Gather out
 *   of range); the fused op reads the whole table there, so it accepts more inputs, never fewer.
 *
 * Interleaved rotary (GPT-J, rotate_every_two): y = x * cos + rotate_every_two(x) * sin with
 *   rotate_every_two(x) = Reshape(Concat(Unsqueeze(-x[..., 1::2], -1), Unsqueeze(x[..., ::2], -1), axis=-1), x's shape)
 *   and constant tables gathered by position ids whose rows are repeat_interleave'd (c0 c0 c1 c1 ...)
 *   -> RotaryEmbedding {interleaved=1}, caches = the tables' even columns [positions, R/2]. ORT computes
 *   y[2i] = x[2i] cos[p, i] - x[2i+1] sin[p, i], y[2i+1] = x[2i+1] cos[p, i] + x[2i] sin[p, i]
 *   (checked against torch on fixtures/models/gptj-past-tiny-op14). Not matched (explained): interleaved
 *   rotary with cos/sin computed in the graph, or repeat_interleave applied after the gather.
 *
 * Computed cos/sin (transformers >= 4.38, GPT-NeoX: cos = Cos(cat(freqs, freqs)) of position_ids x
 * inv_freq, computed once per forward): cos = Unsqueeze(C, heads axis), C [b or 1, s, R] any value
 * whose rows provably have equal halves (provesEqualHalves: Concat(f, f) on that axis, constants
 * with equal halves, elementwise ops, Transpose/Unsqueeze/Expand followed). After: the fused op reads
 * the graph's own angles as its cache, cos_cache = Reshape(C[..., :R/2], [-1, R/2]) (rows b*s, or s
 * for a C shared by the batch), position_ids = the row numbers Reshape(Range(0, rows), [b or 1, s])
 * (Expanded to [b, s] if C has batch 1), made once per C and shared by every layer. Exact for every
 * input: no table length is assumed, and nothing is assumed of how C depends on position_ids.
 * ORT reads cos_cache[position_ids[b, s]] per batch row and position (test/passes/fuse-gqa-ort-facts.test.ts).
 */
import type { InferResult } from '../../src/analysis/infer.js';
import { dataTypeName } from '../../src/ir/dtype.js';
import type { Graph, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import { isFail } from '../lib/attention/match.js';
import { emitRotary, looksRotary, matchRotary, RotaryShared, type RotaryMatch } from '../lib/attention/rotary.js';
import { targetTakesType } from '../lib/attention/target.js';

function baseName(m: RotaryMatch): string {
  const n = m.add.name;
  const i = n.lastIndexOf('/');
  return i >= 0 ? n.slice(0, i + 1) : '';
}

function rewrite(patch: Patch, ctx: PassContext, m: RotaryMatch, shared: RotaryShared, info: InferResult): void {
  const base = baseName(m);
  const name = `${base}RotaryEmbedding`;
  let y: Value;
  if (m.layout === 'bnsh') {
    y = emitRotary(patch, m, shared, m.x, 'bnsh', info, name);
  } else {
    const n = m.heads!;
    const flat = patch.add('Reshape', [m.x, patch.constant(Tensor.int64([0, 0, n * m.headSize]), `${base}rotary_flat_shape`)], {}, { name: `${base}rotary_flatten` });
    const r = emitRotary(patch, m, shared, flat, '3d', info, name);
    y = patch.add('Reshape', [r, patch.constant(Tensor.int64([0, 0, n, m.headSize]), `${base}rotary_heads_shape`)], {}, { name: `${base}rotary_unflatten` });
  }
  ctx.requireOpset('com.microsoft', 1);
  patch.replace(m.out, y);
}

export const fuseRotary: Pass = {
  name: 'fuse-rotary',
  description: 'rotary position embedding (x * cos + rotate_half(x) * sin, or rotate_every_two (interleaved), cos/sin gathered from tables by position_ids or computed in the graph, full or partial) -> com.microsoft RotaryEmbedding',
  level: 2,
  subgraphs: 'recurse',
  emits: ['com.microsoft::RotaryEmbedding', 'ai.onnx::Reshape', 'ai.onnx::Slice', 'ai.onnx::Shape', 'ai.onnx::Gather', 'ai.onnx::Mul', 'ai.onnx::Range', 'ai.onnx::Expand'],
  run(graph: Graph, ctx: PassContext) {
    const info = ctx.shapesOrExplain();
    if (!info) return 0;
    // One inference serves the pass: a rewrite replaces a value by an equal one, and what a later
    // match reads (x, the tables or computed angles, the position ids) is never made by an earlier rewrite.
    const shared = new RotaryShared();
    let changes = 0;
    for (const node of [...graph.nodes]) {
      if (node.removed || node.opType !== 'Add' || node.domain !== '') continue;
      const m = matchRotary(info, node);
      if (isFail(m)) {
        if (looksRotary(node)) ctx.explain(m.startsWith(`${node}`) ? m : `${node}: ${m}`);
        continue;
      }
      if (m.heads === undefined && (m.layout === 'bsnh' || m.rotaryDim !== m.headSize)) { ctx.explain(`${node}: the heads dim of '${m.x.name}' is symbolic`); continue; }
      if (!targetTakesType(ctx, 'com.microsoft::RotaryEmbedding', m.elemType)) {
        ctx.explain(`${node}: target '${ctx.options.target?.name}' has no ${dataTypeName(m.elemType)} RotaryEmbedding kernel`);
        continue;
      }
      if (!ctx.allowRewrite(`fuse-rotary at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      try {
        rewrite(patch, ctx, m, shared, info);
      } catch (e) {
        if (!(e instanceof UnsupportedOpError)) throw e;
        shared.rollback();
        ctx.explain(`${node}: ${e.message}`);
        continue;
      }
      changes += patch.commit();
      shared.commit();
    }
    return changes;
  },
};
