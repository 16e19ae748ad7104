/**
 * fuse-embed-layernorm
 *
 * Before:  w = Gather(word_emb, ids);  p = Gather(pos_emb, pos_ids);  [t = Gather(seg_emb, seg_ids)]
 *          s = Add(Add(w, t), p)    (any order and nesting of the two or three Gathers)
 *          y = LayerNormalization(s, gamma, beta, axis=-1, epsilon)
 * After:   y, mask_index[, s'] = com.microsoft.EmbedLayerNormalization(Cast(ids, int32),
 *              Cast(seg_ids, int32)?, word_emb, pos_emb, seg_emb?, gamma, beta, epsilon)
 *          s' (embedding_sum, output 2) replaces s when s has other users (GPT-2-like models, where
 *          the embedding sum is also the residual stream).
 * Conditions:
 *   - pos_ids are provably 0..S-1 (what EmbedLayerNormalization uses without position_ids): through
 *     Unsqueeze/Reshape/Squeeze/Cast to Range(0, n, 1), or to a Slice (starts 0, steps 1) of a
 *     constant [1, n] / [n] arange (BERT's position_ids buffer), with shape [1, S] or [S] where S is
 *     ids' sequence dim (ctx.shapes());
 *   - ids (and seg_ids) are 2-D [B, S] integer tensors (int64 gets a Cast to int32: ONNX Runtime's
 *     kernel takes int32 only); the tables are constant 2-D [rows, H] float32; Gather axis 0;
 *   - the LayerNormalization is over the last axis, gamma/beta constant 1-D [H] (beta made of zeros
 *     when absent: the kernel requires it); its mean/inv_std_var outputs unused;
 *   - the Adds and Gathers feed only the sum (the final sum may have other users, see above).
 *   Without a position Gather it is not an embedding layer (SkipLayerNormalization covers the Add).
 * Formula: y = LayerNorm(word_emb[ids] + pos_emb[0..S-1] + seg_emb[seg_ids]) * gamma + beta.
 *   Exact up to rounding, for ids in range; ONNX Runtime's kernel rejects ids out of range, where
 *   Gather accepts negative ones (counted from the end): such inputs are invalid token ids anyway.
 * Output 1 (mask_index, int32 [B]) is required by the kernel and left unused (no mask input).
 */
import { attrFloat, attrInt } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { rulePass, type Rule } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';
import { shapesOf } from '../lib/layernorm-pattern.js';
import { elemTypeOf, scalarOf, shapeOf } from '../lib/query.js';

interface Lookup { gather: Node; table: Value; ids: Value }
type Caps = {
  m: {
    ln: Node; sum: Value; word: Lookup; pos: Lookup; seg?: Lookup; gamma: Value; beta?: Value; h: number;
    epsilon: number; sumUsedElsewhere: boolean;
  };
};


/** Leaves of the Add tree under `sum` (Adds whose outputs feed only the tree), up to `max`. */
function addLeaves(sum: Value, max: number): { leaves: Value[]; adds: Node[] } | undefined {
  const leaves: Value[] = [], adds: Node[] = [];
  const walk = (val: Value, root: boolean): boolean => {
    const p = val.producer;
    if (p && p.opType === 'Add' && p.domain === '' && (root || (val.uses.length === 1 && !val.isGraphOutput))) {
      adds.push(p);
      return walk(p.inputs[0]!, false) && walk(p.inputs[1]!, false);
    }
    leaves.push(val);
    return leaves.length <= max;
  };
  return walk(sum, true) ? { leaves, adds } : undefined;
}

function isArange(t: Tensor): boolean {
  if (t.dims.length > 2 || (t.dims.length === 2 && t.dims[0] !== 1)) return false;
  if (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32) return false;
  return Array.from(t.toTypedArray() as ArrayLike<number | bigint>).every((x, i) => Number(x) === i);
}

/** Are `val`'s contents 0..S-1 (given that its shape is [1, S] or [S])? The reason when not. */
function positionsProblem(val: Value): string | undefined {
  let cur = val;
  for (let i = 0; i < 8; i++) {
    const c = constantValue(cur);
    if (c) return isArange(c) ? undefined : `'${cur.name}' is a constant that is not 0, 1, 2, ...`;
    const p = cur.producer;
    if (!p || p.domain !== '') return `'${cur.name}' is not computed by Range or Slice`;
    if (['Unsqueeze', 'Reshape', 'Squeeze', 'Cast', 'Identity'].includes(p.opType)) { cur = p.inputs[0]!; continue; }
    if (p.opType === 'Range') {
      if (scalarOf(p.inputs[0]) !== 0 || scalarOf(p.inputs[2]) !== 1) return `${p} does not start at 0 with step 1`;
      return undefined;
    }
    if (p.opType === 'Slice') {
      const data = constantValue(p.inputs[0]);
      if (!data || !isArange(data)) return `${p} does not slice a constant 0, 1, 2, ... row`;
      const starts = constantValue(p.inputs[1]);
      if (!starts || Array.from(starts.toTypedArray() as ArrayLike<number | bigint>).some((x) => Number(x) !== 0)) return `${p} starts are not constant zeros`;
      const steps = p.inputs[4] ? constantValue(p.inputs[4]) : undefined;
      if (p.inputs[4] && (!steps || Array.from(steps.toTypedArray() as ArrayLike<number | bigint>).some((x) => Number(x) !== 1))) return `${p} steps are not constant ones`;
      return undefined;
    }
    return `'${cur.name}' is computed by ${p}, not Range or Slice`;
  }
  return `'${val.name}': too many steps back to its source`;
}

const rule: Rule<Caps> = {
  name: 'gathers-add-layernorm',
  ops: ['LayerNormalization'],
  match: (ln, ctx) => {
    const [sum, gamma, beta] = ln.inputs;
    if (!sum) return null;
    const tree = addLeaves(sum, 3);
    if (!tree || tree.adds.length === 0) return null;
    const lookups: Lookup[] = [];
    for (const leaf of tree.leaves) {
      const g = leaf.producer;
      if (!g || g.opType !== 'Gather' || g.domain !== '' || !constantValue(g.inputs[0]) || leaf.uses.length !== 1 || leaf.isGraphOutput) return null;
      lookups.push({ gather: g, table: g.inputs[0]!, ids: g.inputs[1]! });
    }
    if (lookups.length < 2) return null;
    // candidate: an embedding layer. From here on, failures are explained.
    const what = `embedding sum '${sum.name}' feeding ${ln}`;
    const fail = (why: string): null => { ctx.explain(`${what}: ${why}`); return null; };
    if (ln.outputs.slice(1).some((o) => o && (o.uses.length || o.isGraphOutput))) return fail(`${ln}'s mean/inv_std_var outputs are used`);
    const info = shapesOf(ctx);
    const xs = shapeOf(info, sum);
    if (!xs || xs.length !== 3) return fail(`sum has shape ${xs ? `[${xs.join(',')}]` : 'unknown'}, not [B, S, H]`);
    const axis = attrInt(ln.attr('axis'), -1);
    if (axis !== -1 && axis !== 2) return fail(`${ln} normalizes from axis ${axis}, not the last axis`);
    const h = xs[2]!.value;
    if (h === undefined) return fail('hidden size is not static');
    for (const l of lookups) {
      const t = constantValue(l.table)!;
      if (attrInt(l.gather.attr('axis'), 0) !== 0) return fail(`${l.gather} gathers along axis ${attrInt(l.gather.attr('axis'), 0)}, not 0`);
      if (t.dims.length !== 2 || t.dims[1] !== h || t.dataType !== DataType.FLOAT) return fail(`table '${l.table.name}' is not float32 [rows, ${h}]`);
    }
    for (const [val, role] of [[gamma, 'gamma'], [beta, 'beta']] as [Value | undefined, string][]) {
      if (role === 'beta' && !val) continue;
      const t = constantValue(val);
      if (!t || t.dims.length !== 1 || t.dims[0] !== h || t.dataType !== DataType.FLOAT) return fail(`${role} of ${ln} is not a constant float32 [${h}]`);
    }
    // the position lookup: ids of shape [1, S] or [S], contents 0..S-1
    const seq = xs[1]!;
    const posProblems: string[] = [];
    let pos: Lookup | undefined;
    for (const l of lookups) {
      const s = shapeOf(info, l.ids);
      if (!s || !((s.length === 1 && s[0]!.equals(seq)) || (s.length === 2 && s[0]!.value === 1 && s[1]!.equals(seq)))) continue;
      const problem = positionsProblem(l.ids);
      if (problem) posProblems.push(`${l.gather}: ${problem}`);
      else { pos = l; break; }
    }
    if (!pos) return fail(posProblems.length ? `position ids not provably 0..S-1: ${posProblems.join('; ')}` : 'no Gather with [1, S] position ids (not an embedding layer with positions)');
    const rest = lookups.filter((l) => l !== pos);
    if (rest.length === 0) return null;
    for (const l of rest) {
      const s = shapeOf(info, l.ids);
      const et = elemTypeOf(info, l.ids);
      if (!s || s.length !== 2 || !s[0]!.equals(xs[0]!) || !s[1]!.equals(seq)) return fail(`${l.gather} ids '${l.ids.name}' are not [B, S] like the sum`);
      if (et !== DataType.INT64 && et !== DataType.INT32) return fail(`${l.gather} ids '${l.ids.name}' are not int32/int64`);
    }
    // word: the larger table; segment: the other
    rest.sort((a, b) => constantValue(b.table)!.dims[0]! - constantValue(a.table)!.dims[0]!);
    const sumUsedElsewhere = sum.isGraphOutput || sum.isReturned || sum.uses.some((u) => u.node !== ln);
    return {
      m: {
        ln, sum, word: rest[0]!, pos, ...(rest[1] ? { seg: rest[1] } : {}), gamma: gamma!, ...(beta ? { beta } : {}), h,
        epsilon: attrFloat(ln.attr('epsilon'), 1e-5)!, sumUsedElsewhere,
      },
    };
  },
  rewrite: ({ m }, patch, ctx) => {
    ctx.requireOpset('com.microsoft', 1);
    const int32 = (ids: Value): Value => (elemTypeOf(shapesOf(ctx), ids) === DataType.INT32 ? ids : patch.add('Cast', [ids], { to: DataType.INT32 }, { name: `${ids.name}_int32` }));
    const beta = m.beta ?? patch.constant(Tensor.float32(new Float32Array(m.h), [m.h]), `${m.ln.name}_beta`);
    const prefix = m.ln.name.endsWith('LayerNormalization') ? m.ln.name.slice(0, -'LayerNormalization'.length) : `${m.ln.name}_`;
    const outs = patch.addN('EmbedLayerNormalization', [
      int32(m.word.ids), m.seg ? int32(m.seg.ids) : undefined, m.word.table, m.pos.table, m.seg?.table, m.gamma, beta,
    ], { epsilon: m.epsilon }, { domain: 'com.microsoft', outputs: m.sumUsedElsewhere ? 3 : 2, name: `${prefix}EmbedLayerNormalization` });
    patch.replace(m.ln.outputs[0]!, outs[0]!);
    if (m.sumUsedElsewhere) patch.replace(m.sum, outs[2]!);
  },
};

export const fuseEmbedLayernorm = rulePass({
  name: 'fuse-embed-layernorm',
  description: 'word + position (+ segment) embedding Gathers, Add, LayerNormalization -> com.microsoft EmbedLayerNormalization',
  level: 2,
  rules: [rule as unknown as Rule],
});
