/**
 * Rules for the ONNX Runtime contrib ops (domain com.microsoft) that fusion passes emit:
 * attention (Attention, MultiHeadAttention, GroupQueryAttention), the fused layer norms,
 * Gelu variants, FusedConv/FusedMatMul and the quantized matmuls. Input and output lists follow
 * ORT's ContribOperators.md.
 */
import { DataType } from '../../ir/dtype.js';
import type { InferContext, Rule, RuleTable } from '../infer.js';
import { Sym } from '../symbolic.js';
import type { OutputInfo } from '../types.js';
import { sameAs } from './common.js';
import { convShape, layerNorm, matmulShape, nnOps, t, windowShape } from './nn.js';
import { divide } from './shape-ops.js';

const FLOAT = DataType.FLOAT;
const INT32 = DataType.INT32;

/** a / n, exact when possible, else a fresh dim. */
function div(ctx: InferContext, a: Sym | undefined, n: Sym | number | undefined): Sym {
  if (a === undefined || n === undefined) return ctx.fresh();
  return divide(a, typeof n === 'number' ? Sym.const(n) : n) ?? ctx.fresh();
}

/** Input shape with the last dim set to 1 (the saved statistics of the fused layer norms). */
function lastToOne(shape: Sym[] | undefined): Sym[] | undefined {
  return shape?.map((d, k) => (k === shape.length - 1 ? Sym.ONE : d));
}

const attention: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  const n = ctx.attrInt('num_heads', 1);
  const qkv = ctx.attrInts('qkv_hidden_sizes');
  const w = ctx.shape(1)?.[1] ?? ctx.shape(2)?.[0];
  const hidden = qkv ? Sym.const(qkv[0]!) : div(ctx, w, 3);
  const vHidden = qkv ? Sym.const(qkv[2]!) : div(ctx, w, 3);
  const batch = xs?.[0] ?? ctx.fresh();
  const seq = xs?.[1] ?? ctx.fresh();
  const out: (OutputInfo | undefined)[] = [t(x.elemType, [batch, seq, vHidden])];
  if (ctx.outputCount > 1) {
    const past = ctx.has(4) ? ctx.shape(4) : undefined;
    const head = past?.[4] ?? div(ctx, hidden, n);
    let total: Sym;
    if (past && ctx.attrInt('past_present_share_buffer', 0) === 1) total = past[3]!;
    else total = past ? past[3]!.add(seq) : seq;
    out.push(t(x.elemType, [Sym.const(2), batch, Sym.const(n), total, head]));
  }
  return out;
};

const multiHeadAttention: Rule = (ctx) => {
  const q = ctx.tensor(0);
  if (!q) return [];
  const qs = q.shape;
  const n = ctx.attrInt('num_heads', 1);
  if (!qs) return [t(q.elemType), t(q.elemType), t(q.elemType)];
  const batch = qs[0]!, seq = qs[1]!;
  const ks = ctx.has(1) ? ctx.shape(1) : undefined;
  const vs = ctx.has(2) ? ctx.shape(2) : undefined;
  let kvLen: Sym, headK: Sym, headV: Sym;
  if (qs.length === 5) {
    // packed QKV [B, S, N, 3, H]
    kvLen = seq; headK = qs[4]!; headV = qs[4]!;
  } else if (ks?.length === 5) {
    // packed KV [B, L, N, 2, H]
    kvLen = ks[1]!; headK = ks[4]!; headV = ks[4]!;
  } else if (ks?.length === 4) {
    // BNSH key/value (cross attention with precomputed K, V)
    kvLen = ks[2]!; headK = ks[3]!; headV = vs?.[3] ?? ks[3]!;
  } else if (ks?.length === 3) {
    kvLen = ks[1]!; headK = div(ctx, ks[2], n); headV = vs?.length === 3 ? div(ctx, vs[2], n) : headK;
  } else {
    kvLen = seq; headK = div(ctx, qs[2], n); headV = headK;
  }
  const vHidden = vs?.length === 3 && qs.length === 3 ? vs[2]! : headV.mul(n);
  const past = ctx.has(6) ? ctx.shape(6) : undefined;
  const total = past ? (ks?.length === 4 && !ctx.has(7) ? kvLen : past[2]!.add(kvLen)) : kvLen;
  const out: (OutputInfo | undefined)[] = [
    t(q.elemType, [batch, seq, vHidden]),
    t(q.elemType, [batch, Sym.const(n), total, headK]),
    t(q.elemType, [batch, Sym.const(n), total, headV]),
  ];
  if (ctx.outputCount > 3) out.push(t(q.elemType, [batch, Sym.const(n), seq, total]));
  return out;
};

const groupQueryAttention: Rule = (ctx) => {
  const q = ctx.tensor(0);
  if (!q) return [];
  const qs = q.shape;
  const n = ctx.attrInt('num_heads', 1);
  const kvn = ctx.attrInt('kv_num_heads', n);
  if (!qs) return [t(q.elemType), t(q.elemType), t(q.elemType)];
  const batch = qs[0]!, seq = qs[1]!;
  const packed = !ctx.has(1);
  const head = packed ? div(ctx, qs[2], n + 2 * kvn) : div(ctx, ctx.shape(1)?.[2], kvn);
  const past = ctx.has(3) ? ctx.shape(3) : undefined;
  const totalLen = ctx.ints(6)?.[0];
  let present: Sym;
  const pv = past?.[2]?.value;
  if (past && ctx.attrInt('past_present_share_buffer', 0) === 1) present = past[2]!;
  else if (totalLen !== undefined && (!past || pv !== undefined)) present = Sym.const(Math.max(totalLen, pv ?? 0));
  else present = ctx.fresh();
  return [
    t(q.elemType, [batch, seq, head.mul(n)]),
    t(q.elemType, [batch, Sym.const(kvn), present, head]),
    t(q.elemType, [batch, Sym.const(kvn), present, head]),
  ];
};

/** SkipLayerNormalization and SkipSimplifiedLayerNormalization: output, mean, inv_std_var, input_skip_bias_sum. */
const skipLayerNorm: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const stat = t(FLOAT, lastToOne(x.shape));
  return [{ type: x }, stat, stat, { type: x }];
};

const embedLayerNorm: Rule = (ctx) => {
  const ids = ctx.shape(0);
  const emb = ctx.tensor(2);
  const elem = emb?.elemType ?? FLOAT;
  const batch = ids?.[0] ?? ctx.fresh();
  const seq = ids?.[1] ?? ctx.fresh();
  const hidden = emb?.shape?.[1] ?? ctx.shape(5)?.[0] ?? ctx.fresh();
  return [t(elem, [batch, seq, hidden]), t(INT32, [batch]), t(elem, [batch, seq, hidden])];
};

/** SimplifiedLayerNormalization (RMSNorm): Y, inv_std_var. */
const simplifiedLayerNorm: Rule = (ctx) => {
  const [y, , inv] = layerNorm(ctx);
  return [y, inv];
};

function transposeLast(s: Sym[]): Sym[] {
  return s.length < 2 ? s : [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!];
}

const fusedMatMul: Rule = (ctx) => {
  const elem = ctx.elemType(0);
  let a = ctx.shape(0), b = ctx.shape(1);
  if (a && ctx.attrInt('transBatchA', 0) === 1 && a.length > 2) a = [...a.slice(1, -1), a[0]!, a[a.length - 1]!];
  if (b && ctx.attrInt('transBatchB', 0) === 1 && b.length > 2) b = [...b.slice(1, -1), b[0]!, b[b.length - 1]!];
  if (a && ctx.attrInt('transA', 0) === 1) a = transposeLast(a);
  if (b && ctx.attrInt('transB', 0) === 1) b = transposeLast(b);
  return [t(elem, matmulShape(ctx, a, b))];
};

const matMulNBits: Rule = (ctx) => {
  const a = ctx.tensor(0);
  if (!a) return [];
  const n = ctx.attrInt('N');
  const k = ctx.attrInt('K');
  if (!a.shape || n === undefined) return [t(a.elemType)];
  if (k !== undefined) ctx.unify(a.shape[a.shape.length - 1]!, Sym.const(k));
  return [t(a.elemType, [...a.shape.slice(0, -1), Sym.const(n)])];
};

const dynamicQuantizeMatMul: Rule = (ctx) => [t(FLOAT, matmulShape(ctx, ctx.shape(0), ctx.shape(1)))];
const matMulIntegerToFloat: Rule = (ctx) => [t(ctx.elemType(2) ?? FLOAT, matmulShape(ctx, ctx.shape(0), ctx.shape(1)))];

const qgemm: Rule = (ctx) => {
  const elem = ctx.has(8) ? ctx.elemType(8) : FLOAT;
  const a = ctx.shape(0), b = ctx.shape(3);
  if (!a || !b || a.length !== 2 || b.length !== 2) return [t(elem)];
  const [m, ka] = ctx.attrInt('transA', 0) === 1 ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [kb, n] = ctx.attrInt('transB', 0) === 1 ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  ctx.unify(ka, kb);
  return [t(elem, [m, n])];
};

const fusedConv: Rule = (ctx) => [t(ctx.elemType(0), convShape(ctx, 0, 1))];
/** NhwcConv: X [N, spatial..., C], W [M, kernel..., C/group] -> [N, out spatial..., M] */
const nhwcConv: Rule = (ctx) => {
  const xs = ctx.shape(0), ws = ctx.shape(1);
  if (!xs || xs.length < 3) return [t(ctx.elemType(0))];
  const n = xs.length - 2;
  const kernel = ctx.attrInts('kernel_shape') ?? ws?.slice(1, 1 + n).map((d) => d.value ?? NaN);
  if (!kernel || kernel.length !== n) return [t(ctx.elemType(0))];
  const spatial = xs.slice(1, 1 + n);
  const out = kernel.some((k) => Number.isNaN(k)) ? spatial.map(() => ctx.fresh()) : windowShape(ctx, spatial, kernel);
  return [t(ctx.elemType(0), [xs[0]!, ...out, ws?.[0] ?? ctx.fresh()])];
};

export const contribOps: RuleTable = {
  'com.microsoft:Attention': attention,
  'com.microsoft:MultiHeadAttention': multiHeadAttention,
  'com.microsoft:GroupQueryAttention': groupQueryAttention,
  'com.microsoft:SkipLayerNormalization': skipLayerNorm,
  'com.microsoft:SkipSimplifiedLayerNormalization': skipLayerNorm,
  'com.microsoft:EmbedLayerNormalization': embedLayerNorm,
  // ONNX Runtime registers these two in the default domain (LayerNormalization for opsets 1-16, before
  // the standard op; SimplifiedLayerNormalization at every opset), not in com.microsoft
  'com.microsoft:LayerNormalization': layerNorm,
  'com.microsoft:SimplifiedLayerNormalization': simplifiedLayerNorm,
  ':SimplifiedLayerNormalization': simplifiedLayerNorm,
  'com.microsoft:FastGelu': sameAs(0),
  'com.microsoft:BiasGelu': sameAs(0),
  'com.microsoft:Gelu': sameAs(0),
  'com.microsoft:QuickGelu': sameAs(0),
  'com.microsoft:BiasAdd': sameAs(0),
  'com.microsoft:RotaryEmbedding': sameAs(0),
  'com.microsoft:FusedConv': fusedConv,
  'com.microsoft:NhwcConv': nhwcConv,
  'com.microsoft:FusedMatMul': fusedMatMul,
  'com.microsoft:MatMulNBits': matMulNBits,
  'com.microsoft:DynamicQuantizeMatMul': dynamicQuantizeMatMul,
  'com.microsoft:MatMulIntegerToFloat': matMulIntegerToFloat,
  'com.microsoft:QGemm': qgemm,
  'com.microsoft:QuantizeLinear': nnOps[':QuantizeLinear']!,
  'com.microsoft:DequantizeLinear': (ctx) => [t(ctx.elemType(1) ?? FLOAT, ctx.shape(0))],
};
