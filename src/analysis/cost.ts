/**
 * Cost model: FLOPs, MACs, bytes read and written, and parameters, per node and per model,
 * symbolic in the dims (`2*batch*seq*768*3072` stays an expression until the dims are pinned).
 *
 * What is counted (the conventions of fvcore / ptflops / torch.profiler, so figures compare):
 *
 * - Contractions (Conv, ConvTranspose, MatMul, Gemm, Einsum, RNN/GRU/LSTM, attention and their
 *   quantized and contrib forms) count MACs; their FLOPs are 2 x MACs. Bias adds and alpha/beta
 *   scaling of these ops are not counted (torch.profiler does not count them either).
 *   Conv: MACs = output elements x (C_in/group x kernel) = out x prod(W.shape[1:]).
 *   ConvTranspose: MACs = input elements x prod(W.shape[1:]).
 *   MatMul/Gemm: MACs = output elements x K.
 *   Attention (com.microsoft): QKV projection (B*S*D_in*(D_q+D_k+D_v)) + Q.K^T (B*S*T*D_q) +
 *   probabilities x V (B*S*T*D_v), T = past + current length; softmax and scaling add
 *   ATTENTION_SOFTMAX_FLOPS per score (B*N*S*T). ORT's Attention has no output projection (its
 *   output is the context, (B, S, v_hidden)); the projection that follows is a MatMul node and is
 *   counted there. Causal (unidirectional) masks are not discounted: kernels compute full S x T.
 *   MultiHeadAttention, GroupQueryAttention and ONNX Attention (opset 23): the Q.K^T and x V terms
 *   only (their inputs are already projected).
 * - Elementwise ops: FLOPS_PER_ELEMENT[op] per output element (1 for arithmetic, comparisons,
 *   Relu...; TRANSCENDENTAL = 4 for exp/log/erf/tanh/trig; activations as the ops of their formula:
 *   Sigmoid 4, Gelu 8 (erf form) or 12 (tanh form), Softmax 8, LayerNormalization 7, ...).
 *   Variadic Sum/Max/Min count (n-1) per output element, Mean n.
 * - Reductions (ReduceSum, ReduceMean, ArgMax, CumSum, global pooling, ...) count input elements.
 *   Windowed pooling counts output elements x kernel size.
 * - Data movement (Reshape, Transpose, Gather, Concat, Slice, Shape, Cast, Pad, Expand, ...) is 0 FLOPs.
 * - Ops without a rule count 0 FLOPs and are reported as `uncounted` (custom domains, DFT, NMS, ...).
 * - Bytes: every tensor input read once and every output written once, from element type and
 *   shape (sub-byte types packed). Constant nodes move nothing (they are initializers in disguise).
 * - Parameters: elements of initializer inputs (model total: each initializer once, even when
 *   several nodes use it, as with tied embeddings).
 * - Subgraphs: an If counts the branch with more FLOPs (then-branch when it cannot tell, e.g.
 *   two incomparable symbolic counts); a Loop counts its body once per iteration when the trip
 *   count M is known (constant or symbolic), else once, with a note; a Scan counts its body once per
 *   element of the scan axis. The control-flow node itself costs nothing.
 * - `complete` is false when a shape the count needed was unknown; what was known is still counted.
 */
import { attrFloat, attrInt, attrInts, attrString } from '../ir/attribute.js';
import { dataTypeBits } from '../ir/dtype.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import type { InferResult } from './infer.js';
import { scalarOf } from './query.js';
import { Sym } from './symbolic.js';
import type { SymType, SymValue } from './types.js';

// ---------------------------------------------------------------- constants (per element)

/** exp, log, erf, tanh, sin, ...: a transcendental function counts as this many FLOPs. */
export const TRANSCENDENTAL = 4;
/** Softmax per element: max (1) + subtract (1) + exp (4) + sum (1) + divide (1). */
export const SOFTMAX_FLOPS = 4 + TRANSCENDENTAL;
/** Attention per score: softmax (8) + scaling (1). */
export const ATTENTION_SOFTMAX_FLOPS = SOFTMAX_FLOPS + 1;
/** LayerNormalization per element: mean (1) + subtract (1) + square (1) + variance sum (1) + normalize (1) + scale (1) + bias (1). */
export const LAYER_NORM_FLOPS = 7;
/** RMS norm per element: square (1) + sum (1) + normalize (1) + scale (1). */
export const RMS_NORM_FLOPS = 4;
const GELU_ERF = 4 + TRANSCENDENTAL; // x * 0.5 * (1 + erf(x / sqrt(2)))
const GELU_TANH = 8 + TRANSCENDENTAL; // 0.5x(1 + tanh(c(x + 0.044715x^3)))

/** FLOPs per output element of elementwise ops (default-domain names; contrib names with `com.microsoft:`). */
export const FLOPS_PER_ELEMENT: Readonly<Record<string, number>> = {
  // arithmetic, comparisons, logic, selections: 1
  ...Object.fromEntries([
    'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Abs', 'Relu', 'Floor', 'Ceil', 'Round', 'Sign', 'Reciprocal', 'Sqrt',
    'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'Where', 'Mod',
    'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'BitwiseNot', 'IsNaN', 'IsInf', 'Clip', 'ThresholdedRelu',
    'Shrink', 'Sum', 'Max', 'Min', 'Mean', 'CastLike',
  ].map((op) => [op, 1])),
  LeakyRelu: 2, PRelu: 2, Celu: TRANSCENDENTAL + 3, Elu: TRANSCENDENTAL + 2, Selu: TRANSCENDENTAL + 3,
  HardSigmoid: 3, HardSwish: 4, Softsign: 3,
  Exp: TRANSCENDENTAL, Log: TRANSCENDENTAL, Erf: TRANSCENDENTAL, Tanh: TRANSCENDENTAL, Pow: TRANSCENDENTAL,
  Sin: TRANSCENDENTAL, Cos: TRANSCENDENTAL, Tan: TRANSCENDENTAL, Asin: TRANSCENDENTAL, Acos: TRANSCENDENTAL,
  Atan: TRANSCENDENTAL, Sinh: TRANSCENDENTAL, Cosh: TRANSCENDENTAL, Asinh: TRANSCENDENTAL, Acosh: TRANSCENDENTAL,
  Atanh: TRANSCENDENTAL,
  Sigmoid: TRANSCENDENTAL, // 1 / (1 + exp(-x)) as one exp-class op
  Softplus: 2 * TRANSCENDENTAL + 1, Mish: 3 * TRANSCENDENTAL + 2,
  Gelu: GELU_ERF, // the tanh approximation (approximate='tanh') counts GELU_TANH
  Softmax: SOFTMAX_FLOPS, LogSoftmax: SOFTMAX_FLOPS, Hardmax: 2,
  LayerNormalization: LAYER_NORM_FLOPS, InstanceNormalization: LAYER_NORM_FLOPS, GroupNormalization: LAYER_NORM_FLOPS,
  MeanVarianceNormalization: 5, LpNormalization: 3, RMSNormalization: RMS_NORM_FLOPS,
  BatchNormalization: 2, // inference form: per-channel scale and shift
  QuantizeLinear: 2, DequantizeLinear: 2, DynamicQuantizeLinear: 4,
  'com.microsoft:Gelu': GELU_ERF, 'com.microsoft:BiasGelu': GELU_ERF + 1, 'com.microsoft:FastGelu': GELU_TANH,
  'com.microsoft:QuickGelu': TRANSCENDENTAL + 2, 'com.microsoft:BiasSplitGelu': GELU_ERF + 2,
  'com.microsoft:BiasAdd': 2, 'com.microsoft:BiasSoftmax': SOFTMAX_FLOPS + 1, 'com.microsoft:BiasDropout': 2,
  'com.microsoft:SkipLayerNormalization': LAYER_NORM_FLOPS + 1, 'com.microsoft:SkipSimplifiedLayerNormalization': RMS_NORM_FLOPS + 1,
  'com.microsoft:SimplifiedLayerNormalization': RMS_NORM_FLOPS, 'SimplifiedLayerNormalization': RMS_NORM_FLOPS,
  'com.microsoft:EmbedLayerNormalization': LAYER_NORM_FLOPS + 2, 'com.microsoft:RotaryEmbedding': 3,
  'com.microsoft:QLinearAdd': 5, 'com.microsoft:QLinearMul': 5, 'com.microsoft:QLinearSigmoid': TRANSCENDENTAL + 4,
  'com.microsoft:QLinearLeakyRelu': 6, 'com.microsoft:QLinearSoftmax': SOFTMAX_FLOPS + 4,
  'com.microsoft:GroupNorm': LAYER_NORM_FLOPS, 'com.microsoft:SkipGroupNorm': LAYER_NORM_FLOPS + 1,
  'com.microsoft:QuantizeLinear': 2, 'com.microsoft:DequantizeLinear': 2,
};

/** FLOPs per input element of reductions. */
export const FLOPS_PER_REDUCED_ELEMENT: Readonly<Record<string, number>> = {
  ReduceSum: 1, ReduceMean: 1, ReduceMax: 1, ReduceMin: 1, ReduceProd: 1, ReduceLogSum: 1,
  ReduceSumSquare: 2, ReduceL1: 2, ReduceL2: 2, ReduceLogSumExp: TRANSCENDENTAL + 1,
  ArgMax: 1, ArgMin: 1, CumSum: 1, TopK: 1,
  GlobalAveragePool: 1, GlobalMaxPool: 1, GlobalLpPool: 2,
  'com.microsoft:QLinearGlobalAveragePool': 1, 'com.microsoft:QLinearReduceMean': 1,
};

/** Ops that only move, copy, index or convert data: 0 FLOPs. */
export const DATA_MOVEMENT_OPS: ReadonlySet<string> = new Set([
  'Reshape', 'Transpose', 'Gather', 'GatherElements', 'GatherND', 'Scatter', 'ScatterElements', 'ScatterND',
  'Concat', 'Split', 'Slice', 'Shape', 'Size', 'Squeeze', 'Unsqueeze', 'Flatten', 'Expand', 'Tile', 'Pad',
  'Identity', 'Cast', 'Constant', 'ConstantOfShape', 'Range', 'DepthToSpace', 'SpaceToDepth', 'OneHot',
  'NonZero', 'Compress', 'Trilu', 'ReverseSequence', 'EyeLike', 'Dropout', 'Col2Im', 'CenterCropPad',
  'Optional', 'OptionalGetElement', 'OptionalHasElement', 'SequenceAt', 'SequenceConstruct', 'SequenceEmpty',
  'SequenceErase', 'SequenceInsert', 'SequenceLength', 'SplitToSequence', 'ConcatFromSequence',
  'If', 'Loop', 'Scan', 'Unique', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike',
  'Multinomial', 'Bernoulli', 'ImageDecoder', 'StringNormalizer', 'StringConcat', 'StringSplit', 'RegexFullMatch',
  'com.microsoft:GatherND', 'com.microsoft:ExpandDims', 'com.microsoft:Range', 'com.microsoft:Pad',
  'com.microsoft:Trilu', 'com.microsoft:Unique', 'com.microsoft:RemovePadding', 'com.microsoft:RestorePadding',
  'com.microsoft:QLinearConcat', 'com.microsoft:GatherBlockQuantized', 'com.microsoft:TorchEmbedding',
]);

// ---------------------------------------------------------------- types

export interface Cost {
  flops: Sym;
  macs: Sym;
  bytesRead: Sym;
  bytesWritten: Sym;
}

export interface NodeCost extends Cost {
  /** elements of the node's initializer inputs */
  params: number;
  /** bytes of the node's initializer inputs */
  paramBytes: number;
  /** false when a shape the count needed was unknown (what was known is counted) */
  complete: boolean;
  /** false when the op has no cost rule (0 FLOPs counted) */
  counted: boolean;
}

export interface NodeCostOptions {
  /** symbolic contents of small integer tensors (InferResult.symValues); no rule needs them yet */
  symValues?: ReadonlyMap<Value, SymValue>;
}

type Types = ReadonlyMap<Value, SymType> | undefined;
interface Tensorish { elemType: number; shape?: Sym[] }

const ZERO_COST = (): Cost => ({ flops: Sym.ZERO, macs: Sym.ZERO, bytesRead: Sym.ZERO, bytesWritten: Sym.ZERO });

/** The tensor type of a value: the inferred one, else the initializer's, else the IR's. */
function tensorOf(v: Value | undefined, types: Types): Tensorish | undefined {
  if (!v) return undefined;
  const t = types?.get(v);
  if (t?.kind === 'tensor' && t.shape) return t;
  if (v.initializer) return { elemType: v.initializer.dataType, shape: v.initializer.dims.map((d) => Sym.const(d)) };
  const ir = v.type;
  if (ir?.kind === 'tensor' && ir.shape && ir.shape.every((d) => d !== null)) {
    return { elemType: t?.kind === 'tensor' && t.elemType ? t.elemType : ir.elemType, shape: ir.shape.map((d) => Sym.from(d!)) };
  }
  if (t?.kind === 'tensor') return t;
  if (ir?.kind === 'tensor') return { elemType: ir.elemType };
  return undefined;
}

function product(dims: readonly Sym[]): Sym {
  return dims.reduce((a, d) => a.mul(d), Sym.ONE);
}

/** Bytes of `elems` elements of `elemType`; undefined for strings and unknown types. */
function bytesOf(elemType: number, elems: Sym): Sym | undefined {
  const bits = dataTypeBits(elemType);
  if (bits === undefined) return undefined;
  return bits % 8 === 0 ? elems.mul(bits / 8) : elems.mul(bits).ceilDiv(8);
}

// ---------------------------------------------------------------- per-node rules

/** What a cost rule sees: shapes of inputs and outputs, and accumulators. */
class CostContext {
  flops = Sym.ZERO;
  macs = Sym.ZERO;
  complete = true;

  constructor(readonly node: Node, private readonly types: Types, readonly opts: NodeCostOptions) {}

  tensor(i: number): Tensorish | undefined { return tensorOf(this.node.inputs[i], this.types); }
  has(i: number): boolean { return this.node.inputs[i] !== undefined; }

  /** Input i's shape; marks the count incomplete when it is unknown. */
  shape(i: number): Sym[] | undefined {
    const s = this.tensor(i)?.shape;
    if (!s) this.complete = false;
    return s;
  }

  outShape(i = 0): Sym[] | undefined {
    const s = tensorOf(this.node.outputs[i], this.types)?.shape;
    if (!s) this.complete = false;
    return s;
  }

  /** Shape of input i if it has one, without marking anything (for optional refinements). */
  peekShape(i: number): Sym[] | undefined { return this.tensor(i)?.shape; }
  peekOutShape(i: number): Sym[] | undefined { return tensorOf(this.node.outputs[i], this.types)?.shape; }

  numel(i: number): Sym | undefined { const s = this.shape(i); return s && product(s); }
  outNumel(i = 0): Sym | undefined { const s = this.outShape(i); return s && product(s); }

  addMacs(m: Sym | undefined): void {
    if (m === undefined) { this.complete = false; return; }
    this.macs = this.macs.add(m);
    this.flops = this.flops.add(m.mul(2));
  }

  addFlops(f: Sym | undefined, per = 1): void {
    if (f === undefined) { this.complete = false; return; }
    if (per !== 0) this.flops = this.flops.add(f.mul(per));
  }

  attrInt(name: string, fallback: number): number { return attrInt(this.node.attr(name), fallback); }
  attrInts(name: string): number[] | undefined { return attrInts(this.node.attr(name)); }
  attrString(name: string, fallback: string): string { return attrString(this.node.attr(name), fallback) ?? fallback; }
  attrFloat(name: string, fallback: number): number { return attrFloat(this.node.attr(name), fallback) ?? fallback; }
}

type CostRule = (c: CostContext) => void;

/** MACs = output elements x K, K from input `a` (its last dim, or second-to-last when transposed). */
const contraction = (a: number, transAttr?: string): CostRule => (c) => {
  const out = c.outNumel(0);
  const s = c.shape(a);
  if (!out || !s || s.length === 0) { c.complete = false; return; }
  const trans = transAttr ? c.attrInt(transAttr, 0) !== 0 : false;
  const k = s.length === 1 ? s[0]! : trans ? s[s.length - 2]! : s[s.length - 1]!;
  c.addMacs(out.mul(k));
};

/** MACs = output elements x prod(W.shape[1:]) (W = [M, C/group, k...]). */
const conv = (w: number): CostRule => (c) => {
  const out = c.outNumel(0);
  const ws = c.shape(w);
  if (!out || !ws) { c.complete = false; return; }
  c.addMacs(out.mul(product(ws.slice(1))));
};

const convTranspose: CostRule = (c) => {
  const x = c.numel(0);
  const ws = c.shape(1);
  if (!x || !ws) { c.complete = false; return; }
  c.addMacs(x.mul(product(ws.slice(1))));
};

const pool: CostRule = (c) => {
  const k = c.attrInts('kernel_shape');
  c.addFlops(c.outNumel(0), k ? k.reduce((a, b) => a * b, 1) : 1);
};

/** Variadic elementwise: (n - 1) ops per output element (Mean: n). */
const variadic = (extra: number): CostRule => (c) => {
  const n = c.node.inputs.filter((v) => v).length;
  c.addFlops(c.outNumel(0), Math.max(n - 1 + extra, 0));
};

const pow: CostRule = (c) => {
  const e = scalarOf(c.node.inputs[1]);
  const per = e === 2 ? 1 : e === 3 ? 2 : e === 1 ? 0 : e === 0.5 ? 1 : TRANSCENDENTAL;
  c.addFlops(c.outNumel(0), per);
};

const gelu: CostRule = (c) => c.addFlops(c.outNumel(0), c.attrString('approximate', 'none') === 'tanh' ? GELU_TANH : GELU_ERF);

const resize: CostRule = (c) => {
  const mode = c.attrString('mode', 'nearest');
  if (mode === 'nearest') return;
  const x = c.peekShape(0), y = c.outShape(0);
  if (!y) return;
  let k = 0;
  if (x && x.length === y.length) {
    for (let i = 0; i < x.length; i++) if (!x[i]!.equals(y[i]!)) k++;
  } else {
    k = Math.max(y.length - 2, 1);
  }
  // each output element interpolates 2^k (linear) or 4^k (cubic) points: multiply + add each
  const points = (mode === 'cubic' ? 4 : 2) ** k;
  c.addFlops(product(y), 2 * points);
};

const einsum: CostRule = (c) => {
  const eq = c.attrString('equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  const terms = (lhs ?? '').split(',');
  const sizes = new Map<string, Sym>();
  let ellipsis: Sym[] = [];
  for (let t = 0; t < terms.length; t++) {
    const s = c.shape(t);
    if (!s) return;
    const term = terms[t]!;
    const dots = term.indexOf('...');
    const labels = term.replace('...', '');
    const nEll = dots >= 0 ? s.length - labels.length : 0;
    let pos = 0;
    for (let i = 0; i < term.length; i++) {
      if (term.startsWith('...', i)) {
        const ell = s.slice(pos, pos + nEll);
        if (ell.length > ellipsis.length) ellipsis = ell;
        pos += nEll;
        i += 2;
        continue;
      }
      const d = s[pos++];
      if (d && (!sizes.has(term[i]!) || sizes.get(term[i]!)!.value === 1)) sizes.set(term[i]!, d);
    }
  }
  const all = product([...sizes.values(), ...ellipsis]);
  if (terms.length >= 2) {
    c.addMacs(all.mul(terms.length - 1));
  } else {
    // one operand: a transpose (0), or a sum over the labels missing from the output
    const out = rhs ?? '';
    const reduces = [...sizes.keys()].some((l) => !out.includes(l));
    if (reduces) c.addFlops(all);
  }
};

/** RNN (gates 1), GRU (3), LSTM (4): MACs = steps x batch x (|W| + |R|), plus the gate math. */
const recurrent = (gates: number, stateFlops: number): CostRule => (c) => {
  const x = c.shape(0), w = c.shape(1), r = c.shape(2);
  if (!x || !w || !r || x.length < 2 || w.length < 2) { c.complete = false; return; }
  const layout = c.attrInt('layout', 0);
  const steps = layout === 0 ? x[0]! : x[1]!;
  const batch = layout === 0 ? x[1]! : x[0]!;
  const stepsBatch = steps.mul(batch);
  c.addMacs(stepsBatch.mul(product(w).add(product(r))));
  // per gate element: two bias adds + activation; per hidden element: the state update
  const gateElems = stepsBatch.mul(w[0]!).mul(w[1]!);
  c.addFlops(gateElems, 2 + TRANSCENDENTAL);
  const hidden = gateElems.floorDiv(gates);
  c.addFlops(hidden, stateFlops);
};

/**
 * Scores Q.K^T and context P.V: MACs = (elements of Q) x T + (elements of the output) x T, where T is
 * the total (past + current) key length; softmax and scaling per score: ATTENTION_SOFTMAX_FLOPS.
 */
function attentionCore(c: CostContext, qElems: Sym, outElems: Sym, t: Sym, scores: Sym): void {
  c.addMacs(qElems.mul(t));
  c.addMacs(outElems.mul(t));
  c.addFlops(scores, ATTENTION_SOFTMAX_FLOPS);
}

/** com.microsoft Attention: input (B,S,D_in), weights (D_in, D_q+D_k+D_v), past (2,B,N,P,H); output (B,S,D_v). */
const msAttention: CostRule = (c) => {
  const x = c.shape(0), w = c.shape(1), out = c.outShape(0);
  if (!x || !w || !out || x.length !== 3 || w.length !== 2 || out.length !== 3) { c.complete = false; return; }
  const [b, s] = [x[0]!, x[1]!];
  const total = w[1]!;
  const sizes = c.attrInts('qkv_hidden_sizes');
  const dq = sizes && sizes.length === 3 ? Sym.const(sizes[0]!) : total.floorDiv(3);
  const heads = c.attrInt('num_heads', 1);
  c.addMacs(b.mul(s).mul(x[2]!).mul(total)); // QKV projection
  const present = c.peekOutShape(1);
  const past = c.has(4) ? c.peekShape(4) : undefined;
  let t = s;
  if (present && present.length === 5) t = present[3]!;
  else if (past && past.length === 5) t = s.add(past[3]!);
  else if (c.has(4)) c.complete = false;
  attentionCore(c, b.mul(s).mul(dq), product(out), t, b.mul(s).mul(t).mul(heads));
};

/** Key length of MultiHeadAttention's key: (B,L,D), (B,N,L,H) or packed (B,L,N,2,H). */
function mhaKeyLength(k: Sym[] | undefined): Sym | undefined {
  if (!k) return undefined;
  if (k.length === 3 || k.length === 5) return k[1];
  if (k.length === 4) return k[2];
  return undefined;
}

/** com.microsoft MultiHeadAttention: query (B,S,D) or packed (B,S,N,3,H); output (B,S,D_v). */
const msMultiHeadAttention: CostRule = (c) => {
  const q = c.shape(0), out = c.outShape(0);
  if (!q || !out || out.length !== 3) { c.complete = false; return; }
  const b = q[0]!, s = q[1]!;
  const qElems = q.length === 5 ? b.mul(s).mul(q[2]!).mul(q[4]!) : product(q);
  const heads = c.attrInt('num_heads', 1);
  const present = c.peekOutShape(1);
  let t: Sym | undefined;
  if (present && present.length === 4) t = present[2];
  else {
    const l = c.has(1) ? mhaKeyLength(c.peekShape(1)) : s;
    const past = c.has(6) ? c.peekShape(6) : undefined;
    t = l && (past && past.length === 4 ? l.add(past[2]!) : l);
    if (!t || (c.has(6) && !past)) c.complete = false;
  }
  if (!t) return;
  attentionCore(c, qElems, product(out), t, b.mul(s).mul(t).mul(heads));
};

/** com.microsoft GroupQueryAttention: output (B,S,N*H); present_key (B,N_kv,T,H). Q and V heads have the output's size. */
const msGroupQueryAttention: CostRule = (c) => {
  const out = c.outShape(0);
  if (!out || out.length !== 3) { c.complete = false; return; }
  const b = out[0]!, s = out[1]!;
  const heads = c.attrInt('num_heads', 1);
  const present = c.peekOutShape(1);
  const past = c.has(3) ? c.peekShape(3) : undefined;
  let t: Sym | undefined;
  if (present && present.length === 4) t = present[2];
  else if (past && past.length === 4) t = past[2]!.add(s);
  else if (!c.has(3)) t = s;
  if (!t) { c.complete = false; return; }
  const o = product(out);
  attentionCore(c, o, o, t, b.mul(s).mul(t).mul(heads));
};

/** ONNX Attention (opset 23): Q (B,Nq,S,H) or (B,S,Nq*H); K (B,Nkv,L,H) or (B,L,Nkv*H); past_key (B,Nkv,P,H). */
const onnxAttention: CostRule = (c) => {
  const q = c.shape(0), k = c.shape(1), out = c.outShape(0);
  if (!q || !k || !out) return;
  const present = c.peekOutShape(1);
  let t: Sym;
  if (present && present.length === 4) t = present[2]!;
  else {
    t = k.length === 4 ? k[2]! : k[1]!;
    if (c.has(4)) {
      const p = c.peekShape(4);
      if (p && p.length === 4) t = t.add(p[2]!); else c.complete = false;
    }
  }
  const heads = q.length === 4 ? q[1]! : Sym.const(c.attrInt('q_num_heads', 1));
  const b = q[0]!, s = q.length === 4 ? q[2]! : q[1]!;
  attentionCore(c, product(q), product(out), t, b.mul(heads).mul(s).mul(t));
};

const RULES: Record<string, CostRule> = {
  Conv: conv(1), ConvInteger: conv(1), QLinearConv: conv(3), DeformConv: conv(1), ConvTranspose: convTranspose,
  'com.microsoft:FusedConv': conv(1), 'com.microsoft:NhwcConv': conv(1), 'com.microsoft:NhwcFusedConv': conv(1),
  'com.microsoft:QLinearConv': conv(3), 'com.microsoft:ConvTransposeWithDynamicPads': convTranspose,
  MatMul: contraction(0), Gemm: contraction(0, 'transA'), MatMulInteger: contraction(0), QLinearMatMul: contraction(0),
  'com.microsoft:FusedMatMul': contraction(0, 'transA'), 'com.microsoft:TransposeMatMul': contraction(0, 'transA'),
  'com.microsoft:FusedGemm': contraction(0, 'transA'), 'com.microsoft:QGemm': contraction(0, 'transA'),
  'com.microsoft:GemmFloat8': contraction(0, 'transA'),
  'com.microsoft:MatMulNBits': contraction(0), 'com.microsoft:MatMulBnb4': contraction(0), 'com.microsoft:MatMulFpQ4': contraction(0),
  'com.microsoft:MatMulInteger16': contraction(0), 'com.microsoft:MatMulIntegerToFloat': contraction(0),
  'com.microsoft:DynamicQuantizeMatMul': contraction(0), 'com.microsoft:QOrderedMatMul': contraction(0),
  'com.microsoft:GemmFastGelu': (c) => { contraction(0)(c); c.addFlops(c.outNumel(0), GELU_TANH); },
  'com.microsoft:FusedMatMulActivation': contraction(0, 'transA'),
  Einsum: einsum,
  RNN: recurrent(1, 0), GRU: recurrent(3, 4), LSTM: recurrent(4, 3 + TRANSCENDENTAL),
  'com.microsoft:DynamicQuantizeLSTM': recurrent(4, 3 + TRANSCENDENTAL),
  'com.microsoft:Attention': msAttention, 'com.microsoft:MultiHeadAttention': msMultiHeadAttention,
  'com.microsoft:GroupQueryAttention': msGroupQueryAttention, Attention: onnxAttention,
  MaxPool: pool, AveragePool: pool, LpPool: pool, 'com.microsoft:QLinearAveragePool': pool, 'com.microsoft:NhwcMaxPool': pool,
  Sum: variadic(0), Max: variadic(0), Min: variadic(0), Mean: variadic(1),
  Pow: pow, Gelu: gelu, Resize: resize, Upsample: resize,
};

function ruleKey(node: Node): string {
  return node.domain === '' || node.domain === 'ai.onnx' ? node.opType : `${node.domain}:${node.opType}`;
}

function costRule(node: Node): CostRule | undefined {
  const key = ruleKey(node);
  const plain = node.domain === '' || node.domain === 'ai.onnx';
  const r = RULES[key];
  if (r) return r;
  const per = FLOPS_PER_ELEMENT[key];
  if (per !== undefined) return (c) => c.addFlops(c.outNumel(0), per);
  const red = FLOPS_PER_REDUCED_ELEMENT[key];
  if (red !== undefined) return (c) => c.addFlops(c.numel(0), red);
  if (DATA_MOVEMENT_OPS.has(key)) return () => {};
  if (plain && node.opType.startsWith('Reduce')) return (c) => c.addFlops(c.numel(0), 1);
  return undefined;
}

/** The op's own rule exists (custom ops and ops like DFT or NonMaxSuppression have none). */
export function hasCostRule(node: Node): boolean {
  return costRule(node) !== undefined;
}

function isConstantNode(node: Node): boolean {
  return node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx');
}

/**
 * The cost of one node on its own: FLOPs, MACs, bytes read (inputs) and written (outputs), and
 * its initializer inputs. Control-flow nodes cost nothing here; their bodies are counted by
 * modelCost. Shapes come from `types` (an InferResult's), else from the IR.
 */
export function nodeCost(node: Node, types?: ReadonlyMap<Value, SymType>, opts: NodeCostOptions = {}): NodeCost {
  const c = new CostContext(node, types, opts);
  const rule = costRule(node);
  rule?.(c);
  let bytesRead = Sym.ZERO, bytesWritten = Sym.ZERO;
  let params = 0, paramBytes = 0;
  const control = node.subgraphs().length > 0;
  if (!isConstantNode(node) && !control) {
    const bytes = (v: Value | undefined): Sym | undefined => {
      if (!v) return Sym.ZERO;
      const t = tensorOf(v, types);
      if (!t?.shape) return undefined;
      return bytesOf(t.elemType, product(t.shape)) ?? Sym.ZERO;
    };
    for (const v of node.inputs) {
      const b = bytes(v);
      if (b === undefined) c.complete = false; else bytesRead = bytesRead.add(b);
    }
    for (const v of node.outputs) {
      const b = bytes(v);
      if (b === undefined) c.complete = false; else bytesWritten = bytesWritten.add(b);
    }
  }
  for (const v of node.inputs) {
    if (v?.initializer) {
      params += v.initializer.elementCount;
      paramBytes += v.initializer.byteLength ?? 0;
    }
  }
  return { flops: c.flops, macs: c.macs, bytesRead, bytesWritten, params, paramBytes, complete: c.complete, counted: rule !== undefined };
}

// ---------------------------------------------------------------- whole model

export interface ModelCostOptions {
  /** pin symbols (`{ batch: 1, sequence: 64 }`): the figures become numbers */
  dims?: Record<string, number>;
}

export interface NodeCostEntry {
  node: Node;
  /** `domain::op` */
  op: string;
  /** the node's cost times `multiplier`, dims substituted */
  cost: NodeCost;
  /** how many times the node runs per model run (Loop/Scan iterations); 1 in the main graph */
  multiplier: Sym;
}

export interface OpCost {
  /** nodes of this op (static count, each counted once) */
  count: number;
  flops: Sym;
  macs: Sym;
}

export interface ModelCost {
  total: Cost;
  /** the totals as numbers, when no symbol is left */
  numbers?: { flops: number; macs: number; bytesRead: number; bytesWritten: number };
  /** elements of the model's initializers that nodes use (each counted once) */
  params: number;
  paramBytes: number;
  /** by `domain::op` */
  byOp: Record<string, OpCost>;
  /** every node counted, in graph order (subgraph nodes after their owner) */
  nodes: NodeCostEntry[];
  /** nodes whose count missed a shape */
  incomplete: Node[];
  /** ops without a cost rule (0 FLOPs counted), with a count */
  uncounted: Record<string, number>;
  /** how subgraphs were counted, where that needed a choice */
  notes: string[];
}

/** What one graph (with its subgraphs) costs. */
interface Tally {
  total: Cost;
  nodes: NodeCostEntry[];
  incomplete: Node[];
  uncounted: Map<string, number>;
  notes: string[];
}

function addCost(a: Cost, b: Cost): Cost {
  return { flops: a.flops.add(b.flops), macs: a.macs.add(b.macs), bytesRead: a.bytesRead.add(b.bytesRead), bytesWritten: a.bytesWritten.add(b.bytesWritten) };
}

function scale<T extends Cost>(c: T, m: Sym): T {
  if (m.value === 1) return c;
  return { ...c, flops: c.flops.mul(m), macs: c.macs.mul(m), bytesRead: c.bytesRead.mul(m), bytesWritten: c.bytesWritten.mul(m) };
}

function mergeTally(into: Tally, from: Tally): void {
  into.total = addCost(into.total, from.total);
  into.nodes.push(...from.nodes);
  into.incomplete.push(...from.incomplete);
  for (const [k, n] of from.uncounted) into.uncounted.set(k, (into.uncounted.get(k) ?? 0) + n);
  into.notes.push(...from.notes);
}

/** a >= b for any values of the symbols? true / false, or undefined when it cannot tell. */
function symGreaterEq(a: Sym, b: Sym): boolean | undefined {
  const d = a.sub(b);
  if (d.value !== undefined) return d.value >= 0;
  const syms = [...d.symbols()];
  const at = (x: number): number | undefined => d.subst(new Map(syms.map((s) => [s, Sym.const(x)]))).value;
  const lo = at(1), hi = at(4096);
  if (lo === undefined || hi === undefined) return undefined;
  if (lo >= 0 && hi >= 0) return true;
  if (lo <= 0 && hi <= 0) return false;
  return undefined;
}

/** Trip count of a Loop: its M input when known (constant or symbolic). */
function loopTripCount(node: Node, symValues: ReadonlyMap<Value, SymValue> | undefined): Sym | undefined {
  const m = node.inputs[0];
  if (!m) return undefined;
  const s = symValues?.get(m);
  if (s && s.values.length === 1) return s.values[0];
  const c = scalarOf(m);
  return c !== undefined && Number.isSafeInteger(c) ? Sym.const(c) : undefined;
}

/** Iterations of a Scan (opset >= 9): the length of the first scan input along its scan axis. */
function scanTripCount(node: Node, types: Types): Sym | undefined {
  const m = attrInt(node.attr('num_scan_inputs'), 0);
  const first = node.inputs.length - m;
  const s = tensorOf(node.inputs[first], types)?.shape;
  if (!s || m === 0) return undefined;
  let axis = attrInts(node.attr('scan_input_axes'))?.[0] ?? 0;
  if (axis < 0) axis += s.length;
  return s[axis];
}

class Walker {
  constructor(private readonly types: Types, private readonly symValues: ReadonlyMap<Value, SymValue> | undefined, private readonly opsets: Model) {}

  graph(g: Graph, mult: Sym): Tally {
    const t: Tally = { total: ZERO_COST(), nodes: [], incomplete: [], uncounted: new Map(), notes: [] };
    for (const node of g.nodes) {
      const own = nodeCost(node, this.types, this.symValues ? { symValues: this.symValues } : {});
      const scaled = scale(own, mult);
      t.total = addCost(t.total, scaled);
      t.nodes.push({ node, op: node.qualifiedOp, cost: scaled, multiplier: mult });
      if (!own.complete) t.incomplete.push(node);
      if (!own.counted) t.uncounted.set(node.qualifiedOp, (t.uncounted.get(node.qualifiedOp) ?? 0) + 1);
      const subs = node.subgraphs();
      if (subs.length) mergeTally(t, this.control(node, subs, mult));
    }
    return t;
  }

  private control(node: Node, subs: Graph[], mult: Sym): Tally {
    const plain = node.domain === '' || node.domain === 'ai.onnx';
    if (plain && node.opType === 'If' && subs.length === 2) {
      const thenG = node.attr('then_branch')?.value as Graph | undefined;
      const elseG = node.attr('else_branch')?.value as Graph | undefined;
      const a = this.graph(thenG ?? subs[0]!, mult);
      const b = this.graph(elseG ?? subs[1]!, mult);
      const ge = symGreaterEq(a.total.flops, b.total.flops);
      if (ge === undefined) a.notes.push(`${node}: branches' FLOPs cannot be compared (${a.total.flops} vs ${b.total.flops}); counted the then-branch`);
      return ge === false ? b : a;
    }
    if (plain && node.opType === 'Loop') {
      const trip = loopTripCount(node, this.symValues);
      const t = this.graph(subs[0]!, trip ? mult.mul(trip) : mult);
      if (!trip) t.notes.push(`${node}: trip count unknown; body counted once`);
      return t;
    }
    if (plain && node.opType === 'Scan' && (this.opsets.opsetVersion('') ?? 1) >= 9) {
      const trip = scanTripCount(node, this.types);
      const t = this.graph(subs[0]!, trip ? mult.mul(trip) : mult);
      if (!trip) t.notes.push(`${node}: scan length unknown; body counted once`);
      return t;
    }
    const t: Tally = { total: ZERO_COST(), nodes: [], incomplete: [], uncounted: new Map(), notes: [`${node}: subgraphs counted once each`] };
    for (const g of subs) mergeTally(t, this.graph(g, mult));
    return t;
  }
}

function substCost<T extends Cost>(c: T, map: ReadonlyMap<string, Sym>): T {
  if (map.size === 0) return c;
  return { ...c, flops: c.flops.subst(map), macs: c.macs.subst(map), bytesRead: c.bytesRead.subst(map), bytesWritten: c.bytesWritten.subst(map) };
}

/**
 * The cost of a whole model: totals, per op, per node. `infer` is inferShapes' result (its types,
 * and symValues for Loop trip counts); without it, the shapes the IR holds are used.
 */
export function modelCost(model: Model, infer?: Pick<InferResult, 'types'> & Partial<Pick<InferResult, 'symValues'>>, opts: ModelCostOptions = {}): ModelCost {
  const walker = new Walker(infer?.types, infer?.symValues, model);
  const tally = walker.graph(model.graph, Sym.ONE);
  const map = new Map(Object.entries(opts.dims ?? {}).map(([k, v]) => [k, Sym.const(v)]));
  const nodes = tally.nodes.map((e) => ({ ...e, cost: substCost(e.cost, map), multiplier: e.multiplier.subst(map) }));
  const total = substCost(tally.total, map);

  const byOp: Record<string, OpCost> = {};
  for (const e of nodes) {
    const o = (byOp[e.op] ??= { count: 0, flops: Sym.ZERO, macs: Sym.ZERO });
    o.count++;
    o.flops = o.flops.add(e.cost.flops);
    o.macs = o.macs.add(e.cost.macs);
  }

  // parameters: each initializer used by a counted node, once
  const seen = new Set<Value>();
  let params = 0, paramBytes = 0;
  for (const e of nodes) {
    for (const v of e.node.inputs) {
      if (!v?.initializer || seen.has(v)) continue;
      seen.add(v);
      params += v.initializer.elementCount;
      paramBytes += v.initializer.byteLength ?? 0;
    }
  }

  const out: ModelCost = {
    total, params, paramBytes, byOp, nodes,
    incomplete: tally.incomplete,
    uncounted: Object.fromEntries(tally.uncounted),
    notes: tally.notes,
  };
  const [f, m, r, w] = [total.flops.value, total.macs.value, total.bytesRead.value, total.bytesWritten.value];
  if (f !== undefined && m !== undefined && r !== undefined && w !== undefined) out.numbers = { flops: f, macs: m, bytesRead: r, bytesWritten: w };
  return out;
}
