/**
 * Attention-family contrib ops in standard ONNX: Attention, MultiHeadAttention, GroupQueryAttention,
 * RotaryEmbedding (com.microsoft). Each lowering is the op's definition (ONNX Runtime's
 * ContribOperators.md and its CPU kernel), checked against onnxruntime-node's kernels on one-node
 * models in test/passes/lower-contrib-attention.test.ts. Dims that vary at run time (batch,
 * sequence, past length) are read with Shape/Gather; only head counts and head sizes are static.
 *
 * The shared core (attend) is scaled dot-product attention over heads laid out [b, N, s, H]:
 *   scores = scale * q @ k^T (+ attention_bias) (+ additive 0/filter mask) (Where(masked, -inf))
 *   y = Softmax(scores, last axis) @ v
 */
import type { InferResult } from '../../../src/analysis/infer.js';
import { attrFloat, attrInt, attrInts } from '../../../src/ir/attribute.js';
import { DataType } from '../../../src/ir/dtype.js';
import type { Node, Value } from '../../../src/ir/graph.js';
import { Tensor } from '../../../src/ir/tensor.js';
import type { Emitter } from '../emit.js';
import { elemTypeOf, rankOf, shapeOf } from '../query.js';
import { used, type Lowering } from './lowering.js';

const MS = 'com.microsoft';
/** float32's lowest value: GQA's kernel returns zeros for a row whose maximum is at or below it */
const LOWEST = -3.4028234663852886e38;

type Outs = (Value | undefined)[] | string;

// ---------------------------------------------------------------------------------------------
// shapes and small builders


/** The static size of `v`'s dim `axis` (negative counts from the end), or undefined. */
function staticDim(info: InferResult, v: Value | undefined, axis: number): number | undefined {
  const s = shapeOf(info, v);
  if (!s) return undefined;
  return s[axis < 0 ? s.length + axis : axis]?.value;
}

/** Dim `axis` of x at run time: an int64 scalar. */
function dim(e: Emitter, x: Value, axis: number): Value {
  return e.op('Gather', [e.op('Shape', [x]), e.i64([axis], [])], { axis: 0 });
}

/** An int64 scalar constant. */
function int(e: Emitter, n: number): Value {
  return e.i64([n], []);
}

/** [b, s, heads*H] -> [b, heads, s, H] */
function splitHeads(e: Emitter, x: Value, heads: number): Value {
  return e.transpose(e.reshape(x, [0, 0, heads, -1]), [0, 2, 1, 3]);
}

/** [b, heads, s, H] -> [b, s, heads*H] */
function mergeHeads(e: Emitter, x: Value): Value {
  return e.reshape(e.transpose(x, [0, 2, 1, 3]), [0, 0, -1]);
}

/** The first attribute set to something other than its default, as a reason; undefined when none is. */
function unsupportedAttrs(node: Node, defaults: Record<string, number>): string | undefined {
  for (const [name, dflt] of Object.entries(defaults)) {
    const a = node.attr(name);
    if (!a) continue;
    const v = a.type === 'float' ? attrFloat(a) : attrInt(a);
    if (v !== dflt) return `attribute ${name}=${v} is not lowered`;
  }
  return undefined;
}

/** A reason when an input at one of `slots` is given. */
function unsupportedInputs(node: Node, slots: Record<number, string>): string | undefined {
  for (const [i, name] of Object.entries(slots)) if (node.inputs[Number(i)]) return `input ${name} is not lowered`;
  return undefined;
}

/** A reason when an output at `from` or later is used. */
function unsupportedOutputs(node: Node, from: number, names: string[]): string | undefined {
  for (let i = from; i < node.outputs.length; i++) if (used(node.outputs[i])) return `output ${names[i - from] ?? i} is not lowered`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// scaled dot-product attention and masks

interface Sdpa {
  /** [b, N, s, H], [b, N, t, H], [b, N, t, Hv] */
  q: Value; k: Value; v: Value;
  scale: number;
  elemType: number;
  /** added to the scaled scores: [b|1, N|1, s, t] */
  bias?: Value;
  /** added too: the 0/filter mask of Attention and MultiHeadAttention */
  additive?: Value;
  /** true where a key is excluded (-inf before the softmax) */
  masked?: Value;
  /** GroupQueryAttention: a row whose maximum is at or below float32's lowest gives zeros */
  zeroDeadRows?: boolean;
}

/** softmax(scale * q k^T + bias + additive, masked keys excluded) @ v: [b, N, s, Hv] */
function attend(e: Emitter, a: Sdpa): Value {
  let scores = e.mul(e.matmul(a.q, e.transpose(a.k, [0, 1, 3, 2])), e.scalarLike(a.scale, a.elemType));
  if (a.bias) scores = e.add(scores, a.bias);
  if (a.additive) scores = e.add(scores, a.additive);
  if (a.masked) scores = e.op('Where', [a.masked, e.scalarLike(-Infinity, a.elemType), scores]);
  let probs = e.op('Softmax', [scores], { axis: 3 });
  if (a.zeroDeadRows) {
    const alive = e.op('Greater', [e.reduceMax(scores, [3]), e.scalarLike(LOWEST, a.elemType)]);
    probs = e.op('Where', [alive, probs, e.scalarLike(0, a.elemType)]);
  }
  return e.matmul(probs, a.v);
}

/**
 * masked[.., i, j] = j > offset + i, for i < s and j < t: the causal mask with a past of `offset`
 * (an int64 scalar: [s, t]; or [b, 1, 1, 1]: [b, 1, s, t]).
 */
function keysAfter(e: Emitter, offset: Value, s: Value, t: Value): Value {
  const rows = e.add(offset, e.reshape(e.op('Range', [int(e, 0), s, int(e, 1)]), [-1, 1]));
  return e.op('Less', [rows, e.op('Range', [int(e, 0), t, int(e, 1)])]);
}

/** Where(masked, filter, 0) in the scores' type. */
function filterMask(e: Emitter, masked: Value, filter: number, elemType: number): Value {
  return e.op('Where', [masked, e.scalarLike(filter, elemType), e.scalarLike(0, elemType)]);
}

// ---------------------------------------------------------------------------------------------
// Attention and MultiHeadAttention: the unfused (CPU) kernel's formula

interface Classic {
  /** [b, s, N*H], [b, L, N*H], [b, L, N*Hv] */
  q: Value; k: Value; v: Value;
  pastKey?: Value; pastValue?: Value;
  heads: number;
  scale: number;
  elemType: number;
  attentionBias?: Value;
  unidirectional: boolean;
  /** [b, t] key mask, > 0 keeps the key */
  keyMask?: Value;
  filter: number;
}

/**
 * The kernel's masks: mask_filter_value added where the key is padding (mask <= 0); keys later than
 * the query (unidirectional: j > past + i) excluded outright, so that a query whose visible keys
 * are all padding attends over those (onnxruntime-node 1.30 CPU, checked in the test).
 */
function classicMask(e: Emitter, c: Classic, pastLen: Value, k: Value): { additive?: Value; masked?: Value } {
  const masked = c.unidirectional ? keysAfter(e, pastLen, dim(e, c.q, 1), dim(e, k, 2)) : undefined;
  if (!c.keyMask) return masked ? { masked } : {};
  const pad = e.op('Not', [e.op('Greater', [c.keyMask, e.constant(Tensor.int32([0], []), 'zero')])]);
  const additive = filterMask(e, e.unsqueeze(pad, [1, 2]), c.filter, c.elemType);
  return masked ? { additive, masked } : { additive };
}

/** [output, present_key, present_value] */
function classicAttention(e: Emitter, c: Classic): [Value, Value, Value] {
  let k = splitHeads(e, c.k, c.heads);
  let v = splitHeads(e, c.v, c.heads);
  let pastLen = int(e, 0);
  if (c.pastKey && c.pastValue) {
    pastLen = dim(e, c.pastKey, 2);
    k = e.op('Concat', [c.pastKey, k], { axis: 2 });
    v = e.op('Concat', [c.pastValue, v], { axis: 2 });
  }
  const y = attend(e, {
    q: splitHeads(e, c.q, c.heads), k, v, scale: c.scale, elemType: c.elemType,
    ...(c.attentionBias ? { bias: c.attentionBias } : {}), ...classicMask(e, c, pastLen, k),
  });
  return [mergeHeads(e, y), k, v];
}

/** The 2-D [b, t] key mask, or why the mask form is not lowered. */
function keyMaskOf(info: InferResult, m: Value | undefined, what: string): Value | undefined | string {
  if (!m) return undefined;
  if (rankOf(info, m) !== 2) return `${what} of rank ${rankOf(info, m) ?? '?'} is not lowered (only the 2-D [batch, total_length] 0/1 mask)`;
  if (elemTypeOf(info, m) !== DataType.INT32) return `${what} is not int32`;
  return m;
}

/** The scale attribute, or 1/sqrt(head size) for 0 (the default). */
function scaleOf(node: Node, headSize: number | undefined): number | string {
  const s = attrFloat(node.attr('scale'), 0) ?? 0;
  if (s !== 0) return s;
  if (headSize === undefined) return 'the head size is not static (the default scale needs it)';
  return 1 / Math.sqrt(headSize);
}

/**
 * com.microsoft::Attention
 *
 * Before:  y = Attention(x, W, B, mask_index?, -, attention_bias?) {num_heads=N, scale, unidirectional,
 *              mask_filter_value, qkv_hidden_sizes}
 * After:   q|k|v = Split(x @ W + B, last axis), heads split by Reshape [0, 0, N, -1] + Transpose;
 *          y = merge(Softmax(Where(j > i, -inf, scale q k^T + attention_bias + mask)) v)   (Where: unidirectional)
 *          mask = Where(mask_index <= 0, mask_filter_value, 0) [b, 1, 1, t]
 * Conditions: no past / present, past_sequence_length, rotary or shared buffer; mask_index absent or
 *   the 2-D [batch, sequence] 0/1 form (what fuse-attention writes); W's width static.
 * Formula: the CPU kernel adds the 0/mask_filter_value padding mask (default -10000) to scale * q k^T
 *   and never lets a query see a later key (a row whose visible keys are all padding attends over
 *   those); the default scale is 1/sqrt(head size).
 */
const attention: Lowering = {
  domain: MS,
  op: 'Attention',
  lower(node, e, ctx): Outs {
    const why = unsupportedInputs(node, { 4: 'past', 6: 'past_sequence_length' })
      ?? unsupportedAttrs(node, { do_rotary: 0, past_present_share_buffer: 0 })
      ?? unsupportedOutputs(node, 1, ['present']);
    if (why) return why;
    const info = ctx.shapesOrExplain();
    if (!info) return 'shapes cannot be inferred';
    const [x, w, b, mask] = node.inputs;
    const heads = attrInt(node.attr('num_heads')) ?? 0;
    const elemType = elemTypeOf(info, x);
    if (!x || !w || heads <= 0 || elemType === undefined) return 'input, weights, num_heads or the element type missing';
    const width = staticDim(info, w, 1);
    const sizes = attrInts(node.attr('qkv_hidden_sizes')) ?? (width === undefined ? undefined : [width / 3, width / 3, width / 3]);
    if (!sizes || sizes.length !== 3 || sizes.some((n) => !Number.isInteger(n) || n % heads !== 0)) return `qkv sizes [${sizes?.join(',') ?? '?'}] are not static multiples of ${heads} heads`;
    const keyMask = keyMaskOf(info, mask, 'mask_index');
    if (typeof keyMask === 'string') return keyMask;
    const scale = scaleOf(node, sizes[0]! / heads);
    if (typeof scale === 'string') return scale;
    const proj = b ? e.add(e.matmul(x, w), b) : e.matmul(x, w);
    const [q, k, v] = e.split(proj, -1, sizes) as [Value, Value, Value];
    const [y] = classicAttention(e, {
      q, k, v, heads, scale, elemType, unidirectional: attrInt(node.attr('unidirectional'), 0) === 1,
      filter: attrFloat(node.attr('mask_filter_value'), -10000) ?? -10000,
      ...(keyMask ? { keyMask } : {}), ...(node.inputs[5] ? { attentionBias: node.inputs[5] } : {}),
    });
    return [y];
  },
};

/** MultiHeadAttention's q, k, v after the optional packed bias [Dq + Dk + Dv]. */
function withBias(e: Emitter, info: InferResult, q: Value, k: Value, v: Value, bias: Value | undefined): [Value, Value, Value] | string {
  if (!bias) return [q, k, v];
  const sizes = [q, k, v].map((t) => staticDim(info, t, -1));
  if (sizes.some((n) => n === undefined)) return 'bias with non-static hidden sizes';
  const [bq, bk, bv] = e.split(bias, 0, sizes as number[]) as [Value, Value, Value];
  return [e.add(q, bq), e.add(k, bk), e.add(v, bv)];
}

/** Why a MultiHeadAttention's form is not lowered, or undefined. */
function mhaRefusal(node: Node, info: InferResult): string | undefined {
  const [q, k, v] = node.inputs;
  const why = unsupportedInputs(node, { 8: 'past_sequence_length', 9: 'cache_indirection' })
    ?? unsupportedOutputs(node, 3, ['qk']);
  if (why) return why;
  if (!q || !k || !v) return 'packed QKV or KV (no key/value input) is not lowered';
  if (rankOf(info, q) !== 3 || rankOf(info, k) !== 3 || rankOf(info, v) !== 3) return 'query, key, value are not all 3-D [batch, sequence, hidden] (packed or BNSH key/value are not lowered)';
  if (!!node.inputs[6] !== !!node.inputs[7]) return 'past_key without past_value (or the reverse)';
  if (attrInt(node.attr('unidirectional'), 0) === 1) {
    const qs = shapeOf(info, q)![1]!, ks = shapeOf(info, k)![1]!;
    if (!qs.equals(ks)) return 'unidirectional with a key length that may differ from the query length (the kernel masks only for sequence > 1)';
  }
  return undefined;
}

/**
 * com.microsoft::MultiHeadAttention
 *
 * Before:  y, present_key, present_value = MultiHeadAttention(q, k, v, bias?, key_padding_mask?,
 *              attention_bias?, past_key?, past_value?) {num_heads=N, scale, unidirectional, mask_filter_value}
 * After:   K = Concat(past_key, heads(k + bk), axis 2) (likewise V): the presents;
 *          y = merge(Softmax(Where(j > past + i, -inf, scale heads(q + bq) K^T + attention_bias + mask)) V)
 *            (the Where when unidirectional); mask = Where(key_padding_mask <= 0, mask_filter_value, 0) [b, 1, 1, t]
 * Conditions: q, k, v 3-D [b, s|L, hidden] (not packed, no BNSH cross-attention key); key_padding_mask
 *   absent or 2-D [b, total]; unidirectional only for self-attention (key length = query length);
 *   no past_sequence_length, cache_indirection or qk output.
 * Formula: the CPU kernel: scale * q k^T + attention_bias + 0/mask_filter_value padding mask (default
 *   -10000), later keys excluded, softmax, @ v; present = Concat(past, new) [b, N, past + L, H].
 */
const multiHeadAttention: Lowering = {
  domain: MS,
  op: 'MultiHeadAttention',
  lower(node, e, ctx): Outs {
    const info = ctx.shapesOrExplain();
    if (!info) return 'shapes cannot be inferred';
    const why = mhaRefusal(node, info);
    if (why) return why;
    const heads = attrInt(node.attr('num_heads')) ?? 0;
    const [q0, k0, v0, bias, kpm, attentionBias, pastKey, pastValue] = node.inputs as (Value | undefined)[];
    const elemType = elemTypeOf(info, q0);
    if (heads <= 0 || elemType === undefined) return 'num_heads or the element type missing';
    const qkv = withBias(e, info, q0!, k0!, v0!, bias);
    if (typeof qkv === 'string') return qkv;
    const keyMask = keyMaskOf(info, kpm, 'key_padding_mask');
    if (typeof keyMask === 'string') return keyMask;
    const hidden = staticDim(info, q0, -1);
    const scale = scaleOf(node, hidden === undefined ? undefined : hidden / heads);
    if (typeof scale === 'string') return scale;
    const [q, k, v] = qkv;
    return classicAttention(e, {
      q, k, v, heads, scale, elemType, unidirectional: attrInt(node.attr('unidirectional'), 0) === 1,
      filter: attrFloat(node.attr('mask_filter_value'), -10000) ?? -10000,
      ...(keyMask ? { keyMask } : {}), ...(attentionBias ? { attentionBias } : {}),
      ...(pastKey && pastValue ? { pastKey, pastValue } : {}),
    });
  },
};

// ---------------------------------------------------------------------------------------------
// rotary

interface Rotation {
  /** rank-4 input, heads on axis `headAxis` (1: [b, N, s, H]; 2: [b, s, N, H]) */
  x: Value;
  headAxis: 1 | 2;
  /** [b|1, s] int64 positions */
  positions: Value;
  cosCache: Value; sinCache: Value;
  /** R: the leading R elements of each head are rotated, the rest pass through */
  rotaryDim: number;
  /** whether R is less than the head size */
  partial: boolean;
  interleaved: boolean;
}

/** cos_cache[positions] (or sin), with an axis for the heads: [b|1, 1, s, R/2] or [b|1, s, 1, R/2]. */
function gatherAngles(e: Emitter, cache: Value, r: Rotation): Value {
  return e.unsqueeze(e.op('Gather', [cache, r.positions], { axis: 0 }), [r.headAxis]);
}

/** (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) */
function rotatePair(e: Emitter, x1: Value, x2: Value, cos: Value, sin: Value): [Value, Value] {
  return [e.sub(e.mul(x1, cos), e.mul(x2, sin)), e.add(e.mul(x2, cos), e.mul(x1, sin))];
}

/** The rotary embedding of r.x (rank 4). */
function rotate(e: Emitter, r: Rotation): Value {
  const R = r.rotaryDim, h = R / 2;
  const big = 2 ** 62;
  const xr = r.partial ? e.slice(r.x, [0], [R], [3]) : r.x;
  let cos = gatherAngles(e, r.cosCache, r), sin = gatherAngles(e, r.sinCache, r);
  let y: Value;
  if (r.interleaved) {
    // pairs (x[2i], x[2i+1]) rotated by angle i
    const [x1, x2] = e.split(e.reshape(xr, [0, 0, 0, h, 2]), 4, [1, 1]) as [Value, Value];
    cos = e.unsqueeze(cos, [4]); sin = e.unsqueeze(sin, [4]);
    const [y1, y2] = rotatePair(e, x1, x2, cos, sin);
    y = e.reshape(e.op('Concat', [y1, y2], { axis: 4 }), [0, 0, 0, R]);
  } else {
    // halves (x[i], x[i + R/2]) rotated by angle i
    const [x1, x2] = e.split(xr, 3, [h, h]) as [Value, Value];
    const [y1, y2] = rotatePair(e, x1, x2, cos, sin);
    y = e.op('Concat', [y1, y2], { axis: 3 });
  }
  return r.partial ? e.op('Concat', [y, e.slice(r.x, [R], [big], [3])], { axis: 3 }) : y;
}

/** RotaryEmbedding's position_ids as [b|1, s]: as given ([b, s]), or offset + Range(s) for the 1-element form. */
function positionsOf(e: Emitter, info: InferResult, ids: Value, seq: Value): Value | string {
  const rank = rankOf(info, ids);
  if (rank === 2) return ids;
  if (rank === 0 || (rank === 1 && staticDim(info, ids, 0) === 1)) {
    const start = e.reshape(ids, []);
    return e.unsqueeze(e.op('Range', [start, e.add(start, seq), int(e, 1)]), [0]);
  }
  return `position_ids of shape rank ${rank ?? '?'} is not [batch, sequence] nor one offset`;
}

/** R and the head size for a RotaryEmbedding node, or why they are not static. */
function rotaryDims(node: Node, info: InferResult, x: Value, cos: Value): { R: number; H: number | undefined; heads: number } | string {
  const rd = attrInt(node.attr('rotary_embedding_dim'), 0);
  const heads = attrInt(node.attr('num_heads'), 0);
  const half = staticDim(info, cos, 1);
  const rank = rankOf(info, x);
  if (rd > 0 && heads <= 0) return 'rotary_embedding_dim without num_heads';
  const R = rd > 0 ? rd : half === undefined ? undefined : 2 * half;
  if (R === undefined) return 'cos_cache width is not static';
  if (rank === 4) {
    const H = staticDim(info, x, 3);
    if (rd === 0 && H !== R) return `4-D input head size ${H ?? '?'} is not 2 x cos_cache width ${R}`;
    return { R, H, heads: staticDim(info, x, 1) ?? 0 };
  }
  const hidden = staticDim(info, x, 2);
  const H = rd > 0 ? (hidden === undefined ? undefined : hidden / heads) : R;
  return { R, H, heads };
}

/**
 * com.microsoft::RotaryEmbedding
 *
 * Before:  y = RotaryEmbedding(x, position_ids, cos_cache, sin_cache) {interleaved, rotary_embedding_dim=R, num_heads}
 * After:   x4 = x [b, N, s, H] as is, or Reshape(x [b, s, N*H], [0, 0, N, H]);
 *          cos = Unsqueeze(Gather(cos_cache, position_ids), heads axis) (likewise sin);
 *          rotate-half: y = Concat(x1 cos - x2 sin, x2 cos + x1 sin, x4[..., R:])  (x1, x2 = halves of x4[..., :R])
 *          interleaved: the same on pairs (x[2i], x[2i+1]), through a [.., R/2, 2] reshape;
 *          y reshaped back to 3-D for a 3-D x.
 * Conditions: rank 3 or 4; position_ids [b, s] or one offset (positions offset + i); R and the head
 *   size static (R = 2 x cos_cache width when rotary_embedding_dim is 0); no packed batching.
 * Formula: the CPU kernel: y[i] = x[i] cos[p, i % (R/2)] + sign x[j] sin[p, i % (R/2)], j the partner
 *   of i (i +- R/2, or i ^ 1 interleaved), sign -1 for the first of a pair; y[R:] = x[R:].
 */
const rotaryEmbedding: Lowering = {
  domain: MS,
  op: 'RotaryEmbedding',
  lower(node, e, ctx): Outs {
    const why = unsupportedAttrs(node, { is_packed_batching: 0 });
    if (why) return why;
    const info = ctx.shapesOrExplain();
    if (!info) return 'shapes cannot be inferred';
    const [x, ids, cosCache, sinCache] = node.inputs;
    if (!x || !ids || !cosCache || !sinCache) return 'an input is missing';
    const rank = rankOf(info, x);
    if (rank !== 3 && rank !== 4) return `input of rank ${rank ?? '?'} (not 3 or 4)`;
    const dims = rotaryDims(node, info, x, cosCache);
    if (typeof dims === 'string') return dims;
    const { R, H } = dims;
    if (H === undefined || !Number.isInteger(H) || R > H || R % 2 !== 0) return `head size ${H ?? '?'} and rotary dim ${R} are not static and compatible`;
    const x4 = rank === 4 ? x : e.reshape(x, [0, 0, -1, H]);
    const positions = positionsOf(e, info, ids, dim(e, x, rank === 4 ? 2 : 1));
    if (typeof positions === 'string') return positions;
    const y = rotate(e, {
      x: x4, headAxis: rank === 4 ? 1 : 2, positions, cosCache, sinCache, rotaryDim: R, partial: R < H,
      interleaved: attrInt(node.attr('interleaved'), 0) === 1,
    });
    return [rank === 4 ? y : e.reshape(y, [0, 0, -1])];
  },
};

// ---------------------------------------------------------------------------------------------
// GroupQueryAttention

interface Gqa {
  heads: number; kvHeads: number; headSize: number; elemType: number;
  /** [b, N, s, H], [b, Nkv, s, H] x2 */
  q: Value; k: Value; v: Value;
  pastKey?: Value; pastValue?: Value;
  /** int64 scalar: s; [b] int64: each row's past length */
  seq: Value; past: Value;
}

/** Each row's past length [b]: 0 on a first prompt (s = total_sequence_length), else seqlens_k + 1 - s. */
function gqaPast(e: Emitter, seqlens: Value, total: Value, seq: Value): Value {
  const totalLen = e.reshape(e.cast(total, DataType.INT64), []);
  const first = e.op('Equal', [seq, totalLen]);
  const rest = e.sub(e.add(e.cast(seqlens, DataType.INT64), int(e, 1)), seq);
  return e.op('Where', [first, int(e, 0), rest]);
}

/**
 * The present cache [b, Nkv, T, H], T = max(past buffer, total): row b holds its past[: p_b],
 * then the s new entries, then zeros (the kernel's layout for a past of p_b).
 */
function gqaPresent(e: Emitter, g: Gqa, past: Value | undefined, fresh: Value, total: Value): Value {
  const buf = past ? dim(e, past, 2) : int(e, 0);
  const all = past ? e.op('Concat', [past, fresh], { axis: 2 }) : fresh;
  const T = e.op('Max', [buf, e.reshape(e.cast(total, DataType.INT64), [])]);
  const j = e.op('Range', [int(e, 0), T, int(e, 1)]);
  const pb = e.unsqueeze(g.past, [1]);
  const inPast = e.op('Less', [j, pb]);
  const valid = e.op('Less', [j, e.add(pb, g.seq)]);
  const src = e.op('Where', [valid, e.op('Where', [inPast, j, e.add(buf, e.sub(j, pb))]), int(e, 0)]);
  const idx = e.op('Expand', [e.unsqueeze(src, [1, 3]), e.i64([1, g.kvHeads, 1, g.headSize])]);
  const gathered = e.op('GatherElements', [all, idx], { axis: 2 });
  return e.op('Where', [e.unsqueeze(valid, [1, 3]), gathered, e.scalarLike(0, g.elemType)]);
}

/** [b, Nkv, T, H] -> [b, N, T, H], kv head n / (N / Nkv) for query head n */
function repeatKv(e: Emitter, g: Gqa, x: Value): Value {
  const rep = g.heads / g.kvHeads;
  if (rep === 1) return x;
  const x5 = e.op('Expand', [e.unsqueeze(x, [2]), e.i64([1, 1, rep, 1, 1])]);
  return e.reshape(x5, [0, g.heads, -1, g.headSize]);
}

/** Why a GroupQueryAttention's form is not lowered, or undefined. */
function gqaRefusal(node: Node, info: InferResult): string | undefined {
  const why = unsupportedInputs(node, { 11: 'head_sink' })
    ?? unsupportedAttrs(node, { softcap: 0, smooth_softmax: 0, local_window_size: -1, qk_output: 0 })
    ?? unsupportedOutputs(node, 3, ['output_qk']);
  if (why) return why;
  if (!node.inputs[5] || !node.inputs[6]) return 'seqlens_k or total_sequence_length missing';
  if (!!node.inputs[3] !== !!node.inputs[4]) return 'past_key without past_value (or the reverse)';
  if (rankOf(info, node.inputs[0]) !== 3) return 'query is not 3-D [batch, sequence, hidden]';
  if (node.inputs[3] && rankOf(info, node.inputs[3]) !== 4) return 'past_key is not 4-D BNSH';
  return undefined;
}

/** q, k, v [b, s, *] from separate or packed inputs, with the head size. */
function gqaInputs(e: Emitter, info: InferResult, node: Node, heads: number, kvHeads: number): [Value, Value, Value, number] | string {
  const [q, k, v] = node.inputs;
  const hidden = staticDim(info, q, 2);
  if (hidden === undefined) return 'query hidden size is not static';
  if (k && v) return [q!, k, v, hidden / heads];
  if (k || v) return 'key without value (or the reverse)';
  const H = hidden / (heads + 2 * kvHeads);
  const [pq, pk, pv] = e.split(q!, 2, [heads * H, kvHeads * H, kvHeads * H]) as [Value, Value, Value];
  return [pq, pk, pv, H];
}

/** do_rotary: q and k rotated at position_ids, or at past_b + i. */
function gqaRotary(e: Emitter, info: InferResult, node: Node, g: Gqa): [Value, Value] | string {
  const [cos, sin, ids] = [node.inputs[7], node.inputs[8], node.inputs[9]];
  if (!cos || !sin) return 'do_rotary without cos_cache/sin_cache';
  const positions = ids ?? e.add(e.unsqueeze(g.past, [1]), e.unsqueeze(e.op('Range', [int(e, 0), g.seq, int(e, 1)]), [0]));
  const half = staticDim(info, cos, 1);
  if (half === undefined || 2 * half > g.headSize) return `cos_cache width ${half ?? '?'} is not static or exceeds half the head size ${g.headSize}`;
  const spin = (x: Value): Value => rotate(e, {
    x, headAxis: 1, positions, cosCache: cos, sinCache: sin, rotaryDim: 2 * half, partial: 2 * half < g.headSize,
    interleaved: attrInt(node.attr('rotary_interleaved'), 0) === 1,
  });
  return [spin(g.q), spin(g.k)];
}

/**
 * com.microsoft::GroupQueryAttention
 *
 * Before:  y, present_key, present_value = GroupQueryAttention(q, k, v, past_key?, past_value?, seqlens_k,
 *              total_sequence_length, cos_cache?, sin_cache?, position_ids?, attention_bias?)
 *              {num_heads=N, kv_num_heads=Nkv, scale, do_rotary, rotary_interleaved}
 * After:   p_b = 0 if s == total_sequence_length (first prompt) else seqlens_k[b] + 1 - s;
 *          q, k rotated (do_rotary) at position_ids or p_b + i;
 *          present[b, :, j] = past[b, :, j] (j < p_b), new[b, :, j - p_b] (j < p_b + s), else 0;
 *            T = max(past buffer length, total_sequence_length) (GatherElements over Concat(past, new));
 *          y = merge(Softmax(Where(j > p_b + i, -inf, scale q K^T + attention_bias)) V), K, V the
 *            present with each kv head repeated N/Nkv times; rows whose maximum is <= float32's lowest give 0.
 * Conditions: 3-D query (packed QKV when key/value are absent), BNSH past; static head counts and
 *   head size; no softcap, smooth_softmax, local window, head_sink or qk output.
 * Formula: the CPU kernel: query i of row b sees keys j <= p_b + i of the present cache, the softmax
 *   runs over those only, and the new keys are written after the row's past.
 */
const groupQueryAttention: Lowering = {
  domain: MS,
  op: 'GroupQueryAttention',
  lower(node, e, ctx): Outs {
    const info = ctx.shapesOrExplain();
    if (!info) return 'shapes cannot be inferred';
    const why = gqaRefusal(node, info);
    if (why) return why;
    if (ctx.opset('') < 11) return `opset ${ctx.opset('')} < 11 (Range, GatherElements)`;
    const heads = attrInt(node.attr('num_heads'), 0), kvHeads = attrInt(node.attr('kv_num_heads'), 0);
    const elemType = elemTypeOf(info, node.inputs[0]);
    if (heads <= 0 || kvHeads <= 0 || heads % kvHeads !== 0 || elemType === undefined) return 'num_heads, kv_num_heads or the element type unusable';
    const ins = gqaInputs(e, info, node, heads, kvHeads);
    if (typeof ins === 'string') return ins;
    const [q3, k3, v3, headSize] = ins;
    if (!Number.isInteger(headSize)) return `hidden size is not heads x a head size`;
    const scale = scaleOf(node, headSize);
    if (typeof scale === 'string') return scale;
    const seq = dim(e, q3, 1);
    const g: Gqa = {
      heads, kvHeads, headSize, elemType, seq, past: gqaPast(e, node.inputs[5]!, node.inputs[6]!, seq),
      q: splitHeads(e, q3, heads), k: splitHeads(e, k3, kvHeads), v: splitHeads(e, v3, kvHeads),
    };
    if (attrInt(node.attr('do_rotary'), 0) === 1) {
      const r = gqaRotary(e, info, node, g);
      if (typeof r === 'string') return r;
      [g.q, g.k] = r;
    }
    const total = node.inputs[6]!;
    const presentKey = gqaPresent(e, g, node.inputs[3], g.k, total);
    const presentValue = gqaPresent(e, g, node.inputs[4], g.v, total);
    const masked = keysAfter(e, e.reshape(g.past, [-1, 1, 1, 1]), seq, dim(e, presentKey, 2));
    const y = attend(e, {
      q: g.q, k: repeatKv(e, g, presentKey), v: repeatKv(e, g, presentValue), scale, elemType, masked, zeroDeadRows: true,
      ...(node.inputs[10] ? { bias: node.inputs[10] } : {}),
    });
    return [mergeHeads(e, y), presentKey, presentValue];
  },
};

export const ATTENTION_LOWERINGS: Lowering[] = [attention, multiHeadAttention, groupQueryAttention, rotaryEmbedding];
