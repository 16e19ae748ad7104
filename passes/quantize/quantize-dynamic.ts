/**
 * quantize-dynamic (level 3; runs only with `--quantize dynamic`)
 *
 * Before:  y = MatMul(A, W)                 W: constant float32 [K, N]
 *          y = Gemm(A, W, C)                (transA = 0; transB = 1 means W is stored [N, K])
 *          (and z = Add(MatMul(A, W), c) with a constant bias c [N])
 * After, where the target runs com.microsoft::DynamicQuantizeMatMul (ONNX Runtime CPU):
 *          y = DynamicQuantizeMatMul(A, Wq, w_scale, [w_zero_point], [bias])
 * After, elsewhere (standard ONNX, opset >= 11):
 *          (a, a_scale, a_zp) = DynamicQuantizeLinear(A)
 *          y = Mul(Cast<float>(MatMulInteger(a, Wq, a_zp, [w_zero_point])), Mul(a_scale, w_scale)) [+ bias]
 * Conditions:
 *   - the weight is an initializer of float32, rank 2, and A is float32; Gemm with transA = 0
 *     (alpha folds into the weight scale, beta into the bias);
 *   - K * N >= MIN_WEIGHT_ELEMENTS (4096): below that, quantizing the activation at run time
 *     (one pass over A for its min/max, one to quantize) costs as much as the float product saves,
 *     and the weight bytes saved are negligible;
 *   - the node is not named (by node name or op type) in quantize.keepFloat.
 * Embedding tables (Gather of a constant float32 [V, D] table, axis 0), where the target runs
 * com.microsoft::GatherBlockQuantized: 8-bit codes in blocks of 32 along each row (lib/embedding.ts).
 * The table's rows are gathered, not multiplied, so this only shrinks the file (a decoder's
 * vocabulary table is a fifth of llama-150m's weights) and adds one rounding to each embedding.
 * Weights follow the target's quantization preset: int8 (or uint8) weights, symmetric (zero point 0)
 * when preset.symmetricWeights, one scale per output column (N) when preset.perChannel, and the 7-bit
 * range [-64, 63] (uint8: [0, 127]) when preset.reduceRange (AVX2 without VNNI multiplies u8 x s8
 * with vpmaddubsw, whose int16 pair sums saturate on full-range weights). Activations are quantized
 * at run time to uint8 (asymmetric), which is what both forms do.
 * Formula: y = (a - a_zp) (Wq - w_zp) * a_scale * w_scale, with Wq = clamp(round(W / w_scale) + w_zp).
 *
 * Conv is not quantized: ORT's ConvInteger CPU kernel (im2col + u8u8 GEMM, plus the separate
 * DynamicQuantizeLinear / Cast / Mul nodes) measured slower than its fp32 Conv (NCHWc kernels) on
 * the x86-64 machines we bench on; see bench/quantize.ts (`--conv`).
 *
 * The pass records what it did in quantize.report['quantize-dynamic'].
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import type { QuantizationPreset } from '../../src/target.js';
import { quantizeEmbedding } from '../lib/embedding.js';
import { elemTypeOf } from '../lib/query.js';

/** Rows of an embedding table are quantized in blocks of this many elements (8 bits: 1/8 of a byte of scale per element). */
const EMBEDDING_BLOCK = 32;

/** Weights with fewer elements than this stay float (see the comment above). */
export const MIN_WEIGHT_ELEMENTS = 4096;

export interface WeightQuantSpec {
  type: 'int8' | 'uint8';
  symmetric: boolean;
  perChannel: boolean;
  reduceRange: boolean;
}

/** The weight quantization the target's preset asks for (ORT's U8S8 default without a preset). */
export function weightSpec(preset: QuantizationPreset | undefined): WeightQuantSpec {
  const type = preset?.weights === 'uint8' ? 'uint8' : 'int8';
  return {
    type,
    // uint8 weights are always asymmetric (a symmetric uint8 zero point of 128 buys nothing)
    symmetric: type === 'int8' && (preset?.symmetricWeights ?? true),
    perChannel: preset?.perChannel ?? true,
    reduceRange: preset?.reduceRange ?? false,
  };
}

/** [qmin, qmax] for a spec: int8 [-128, 127] ([-64, 63] reduced), uint8 [0, 255] ([0, 127] reduced). */
export function quantRange(spec: Pick<WeightQuantSpec, 'type' | 'reduceRange'>): [number, number] {
  if (spec.type === 'int8') return spec.reduceRange ? [-64, 63] : [-128, 127];
  return spec.reduceRange ? [0, 127] : [0, 255];
}

export interface QuantizedWeight {
  /** [K, N] quantized values, row-major */
  q: Int8Array | Uint8Array;
  /** one per column (perChannel) or one */
  scales: Float32Array;
  /** same length as scales; all 0 when symmetric int8 */
  zeroPoints: Int32Array;
}

/** Round half to even, as ONNX QuantizeLinear does. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Quantize a row-major [K, N] float matrix along its columns (N): symmetric int8 uses
 * scale = max|w| / min(-qmin, qmax) (so [-63, 63] reduced, [-127, 127] full), asymmetric uses
 * scale = (max - min) / (qmax - qmin) over a range widened to include 0.
 */
export function quantizeWeight(w: Float32Array, k: number, n: number, spec: WeightQuantSpec): QuantizedWeight {
  const [qmin, qmax] = quantRange(spec);
  const groups = spec.perChannel ? n : 1;
  const scales = new Float32Array(groups);
  const zeroPoints = new Int32Array(groups);
  const lo = new Float64Array(groups).fill(0);
  const hi = new Float64Array(groups).fill(0);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      const g = spec.perChannel ? c : 0;
      const x = w[r * n + c]!;
      if (x < lo[g]!) lo[g] = x;
      if (x > hi[g]!) hi[g] = x;
    }
  }
  for (let g = 0; g < groups; g++) {
    if (spec.symmetric) {
      const amax = Math.max(-lo[g]!, hi[g]!);
      scales[g] = amax > 0 ? amax / Math.min(-qmin, qmax) : 1;
      zeroPoints[g] = 0;
    } else {
      const range = hi[g]! - lo[g]!;
      const s = range > 0 ? range / (qmax - qmin) : 1;
      scales[g] = s;
      zeroPoints[g] = Math.min(qmax, Math.max(qmin, roundEven(qmin - lo[g]! / s)));
    }
  }
  const q = spec.type === 'int8' ? new Int8Array(k * n) : new Uint8Array(k * n);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      const g = spec.perChannel ? c : 0;
      const v = roundEven(w[r * n + c]! / scales[g]!) + zeroPoints[g]!;
      q[r * n + c] = Math.min(qmax, Math.max(qmin, v));
    }
  }
  return { q, scales, zeroPoints };
}

/** A float32 initializer's values, or undefined. */
export function floatConstant(v: Value | undefined): Tensor | undefined {
  const t = v?.initializer;
  return t && t.dataType === DataType.FLOAT ? t : undefined;
}

/** The [K, N] weight of a MatMul/Gemm as a row-major Float32Array (transposed for Gemm transB = 1). */
export function weightKN(t: Tensor, transB: boolean): { w: Float32Array; k: number; n: number } {
  const src = t.toTypedArray() as Float32Array;
  const [d0, d1] = t.dims as [number, number];
  if (!transB) return { w: src, k: d0, n: d1 };
  const w = new Float32Array(d0 * d1);
  for (let r = 0; r < d0; r++) for (let c = 0; c < d1; c++) w[c * d0 + r] = src[r * d1 + c]!;
  return { w, k: d1, n: d0 };
}

export function intAttr(node: Node, name: string, dflt: number): number {
  const a = node.attr(name);
  return a?.type === 'int' ? Number(a.value) : dflt;
}

export function floatAttr(node: Node, name: string, dflt: number): number {
  const a = node.attr(name);
  return a?.type === 'float' ? a.value : dflt;
}

/** Is the node listed in keepFloat, by name or op type? */
export function keptFloat(node: Node, keepFloat: readonly string[] | undefined): boolean {
  return !!keepFloat && (keepFloat.includes(node.name) || keepFloat.includes(node.opType));
}

/** A MatMul or Gemm whose weight can be quantized, with its bias (constant, as [N]) when it has one. */
export interface WeightedMatMul {
  node: Node;
  a: Value;
  weight: Value;
  transB: boolean;
  /** multiplies the product (Gemm alpha) */
  alpha: number;
  k: number;
  n: number;
  /** constant bias [N] (Gemm's beta*C, or a following Add's constant) */
  bias?: Float32Array;
  /** a non-constant (or not [N]-shaped) Gemm C, added after the product */
  addC?: Value;
  /** the node whose output the rewrite replaces (the Add when a bias Add was absorbed) */
  last: Node;
}

function biasVector(t: Tensor, n: number, scale: number): Float32Array | undefined {
  const dims = t.dims;
  const count = t.elementCount;
  if (dims.length > 2 || (dims.length === 2 && dims[0] !== 1)) return undefined;
  const vals = t.toTypedArray() as Float32Array;
  if (count === n) return Float32Array.from(vals, (x) => x * scale);
  if (count === 1) return new Float32Array(n).fill(vals[0]! * scale);
  return undefined;
}

/**
 * Match a MatMul / Gemm with a constant float32 2-D weight. `absorbAdd`: also take a following
 * Add of a constant [N] bias (when the product has no other use).
 */
export function matchWeighted(node: Node, ctx: PassContext, absorbAdd: boolean, why: (m: string) => void): WeightedMatMul | undefined {
  if (node.domain !== '' || (node.opType !== 'MatMul' && node.opType !== 'Gemm')) return undefined;
  const [a, weight, c] = node.inputs;
  const wt = floatConstant(weight);
  if (!a || !weight || !wt || wt.dims.length !== 2) return undefined;
  const at = elemTypeOf(ctx.shapesOrExplain(), a);
  if (at !== undefined && at !== DataType.FLOAT) return undefined;
  const isGemm = node.opType === 'Gemm';
  if (isGemm && intAttr(node, 'transA', 0) !== 0) {
    why(`${node}: Gemm with transA = 1 is left float`);
    return undefined;
  }
  const transB = isGemm && intAttr(node, 'transB', 0) === 1;
  const alpha = isGemm ? floatAttr(node, 'alpha', 1) : 1;
  const beta = isGemm ? floatAttr(node, 'beta', 1) : 1;
  const [d0, d1] = wt.dims as [number, number];
  const k = transB ? d1 : d0, n = transB ? d0 : d1;
  const m: WeightedMatMul = { node, a, weight, transB, alpha, k, n, last: node };
  if (isGemm && c) {
    const ct = floatConstant(c);
    const bias = ct ? biasVector(ct, n, beta) : undefined;
    if (bias) m.bias = bias;
    else if (beta === 1) m.addC = c;
    else {
      why(`${node}: Gemm with a non-constant C and beta != 1 is left float`);
      return undefined;
    }
  }
  if (!isGemm && absorbAdd) {
    const out = node.outputs[0]!;
    const user = out.uses.length === 1 && !out.isReturned ? out.uses[0]!.node : undefined;
    if (user && user.opType === 'Add' && user.domain === '') {
      const other = user.inputs[user.inputs[0] === out ? 1 : 0];
      const ct = floatConstant(other);
      const bias = ct && ct.dims.length === 1 ? biasVector(ct, n, 1) : undefined;
      if (bias && ct!.elementCount === n) {
        m.bias = bias;
        m.last = user;
      }
    }
  }
  return m;
}

/** Report bookkeeping shared by the quantization passes. */
export interface QuantReport {
  quantized: number;
  nodes: string[];
  skipped: Record<string, number>;
  weightBytesBefore: number;
  weightBytesAfter: number;
  [k: string]: unknown;
}

export function newReport(extra: Record<string, unknown> = {}): QuantReport {
  return { quantized: 0, nodes: [], skipped: {}, weightBytesBefore: 0, weightBytesAfter: 0, ...extra };
}

export function skip(report: QuantReport, reason: string): void {
  report.skipped[reason] = (report.skipped[reason] ?? 0) + 1;
}

/** Add `report` to quantize.report under `key` (accumulating over graphs and runs). */
export function publish(ctx: PassContext, key: string, report: QuantReport): void {
  const q = ctx.options.quantize;
  if (!q) return;
  q.report ??= {};
  const prev = q.report[key] as QuantReport | undefined;
  if (!prev) {
    q.report[key] = report;
    return;
  }
  prev.quantized += report.quantized;
  prev.nodes.push(...report.nodes);
  for (const [r, n] of Object.entries(report.skipped)) prev.skipped[r] = (prev.skipped[r] ?? 0) + n;
  prev.weightBytesBefore += report.weightBytesBefore;
  prev.weightBytesAfter += report.weightBytesAfter;
  for (const [key, v] of Object.entries(report)) {
    if (typeof v === 'number' && typeof prev[key] === 'number' && !['quantized', 'weightBytesBefore', 'weightBytesAfter', 'minWeightElements', 'blockSize', 'accuracyLevel'].includes(key)) prev[key] = (prev[key] as number) + v;
  }
}

function quantTensor(spec: WeightQuantSpec, values: Int8Array | Uint8Array | Int32Array, dims: number[]): Tensor {
  const type = spec.type === 'int8' ? DataType.INT8 : DataType.UINT8;
  const arr = spec.type === 'int8' ? Int8Array.from(values) : Uint8Array.from(values);
  return Tensor.fromTypedArray(type, dims, arr);
}

interface Prepared {
  wq: Value;
  scale: Value;
  zp?: Value;
  bytes: number;
}

function rewrite(m: WeightedMatMul, patch: Patch, ctx: PassContext, spec: WeightQuantSpec, cache: Map<Value, Prepared>, fused: boolean): number {
  // alpha folds into the scales; quantized weights are cached per (weight, alpha) so a shared weight stays shared
  let prep = m.alpha === 1 && !m.transB ? cache.get(m.weight) : undefined;
  const base = m.weight.name;
  if (!prep) {
    const { w, k, n } = weightKN(m.weight.initializer!, m.transB);
    const qw = quantizeWeight(w, k, n, spec);
    const scales = m.alpha === 1 ? qw.scales : Float32Array.from(qw.scales, (s) => s * m.alpha);
    const wq = patch.constant(quantTensor(spec, qw.q, [k, n]), `${base}_quantized`);
    const scale = patch.constant(Tensor.float32(scales, [scales.length]), `${base}_scale`);
    const needZp = !spec.symmetric;
    const zp = needZp ? patch.constant(quantTensor(spec, qw.zeroPoints, [qw.zeroPoints.length]), `${base}_zero_point`) : undefined;
    prep = { wq, scale, ...(zp ? { zp } : {}), bytes: k * n + 4 * scales.length + (needZp ? scales.length : 0) };
    if (m.alpha === 1 && !m.transB) cache.set(m.weight, prep);
  }
  const biasV = m.bias ? patch.constant(Tensor.float32(m.bias, [m.n]), `${base}_bias`) : undefined;
  let y: Value;
  if (fused) {
    y = patch.add('DynamicQuantizeMatMul', [m.a, prep.wq, prep.scale, prep.zp, biasV], {}, { domain: 'com.microsoft', name: `${m.node.name || 'MatMul'}_quant` });
  } else {
    const [aq, aScale, aZp] = patch.addN('DynamicQuantizeLinear', [m.a], {}, { outputs: 3, name: `${m.node.name || 'MatMul'}_quant_a` });
    const acc = patch.add('MatMulInteger', [aq!, prep.wq, aZp!, prep.zp], {}, { name: `${m.node.name || 'MatMul'}_quant` });
    const f = patch.add('Cast', [acc], { to: DataType.FLOAT });
    const s = patch.add('Mul', [aScale!, prep.scale]);
    y = patch.add('Mul', [f, s]);
    if (biasV) y = patch.add('Add', [y, biasV]);
  }
  if (m.addC) y = patch.add('Add', [y, m.addC]);
  patch.replace(m.last.outputs[0]!, y);
  return prep.bytes;
}

function runOnGraph(graph: Graph, ctx: PassContext, report: QuantReport): number {
  const q = ctx.options.quantize!;
  const spec = weightSpec(ctx.options.target?.quantization);
  const fused = ctx.supports('com.microsoft', 'DynamicQuantizeMatMul');
  if (!fused && ctx.opset() < 11) {
    ctx.explain(`opset ${ctx.opset()} < 11 has no DynamicQuantizeLinear, and the target has no DynamicQuantizeMatMul`);
    return 0;
  }
  if (fused) ctx.requireOpset('com.microsoft', 1);
  report.form = fused ? 'com.microsoft::DynamicQuantizeMatMul' : 'DynamicQuantizeLinear + MatMulInteger';
  report.weights = spec;
  const cache = new Map<Value, Prepared>();
  const canGather = ctx.supports('com.microsoft', 'GatherBlockQuantized');
  let changes = 0;
  for (const node of graph.nodes) {
    if (node.removed || node.domain !== '') continue;
    if (node.opType === 'Gather' && canGather) {
      // embedding tables: 8-bit blocks along the row (GatherBlockQuantized; see lib/embedding.ts)
      const r = quantizeEmbedding(graph, node, ctx, { bits: 8, blockSize: EMBEDDING_BLOCK, symmetric: true }, report);
      if (r === 'stop') break;
      changes += r;
      continue;
    }
    if (node.opType === 'Conv') {
      skip(report, 'Conv (ConvInteger is slower than fp32 Conv in ORT CPU)');
      continue;
    }
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
    const m = matchWeighted(node, ctx, fused, (msg) => ctx.explain(msg));
    if (!m) {
      skip(report, 'no constant float32 2-D weight');
      continue;
    }
    if (keptFloat(node, q.keepFloat)) {
      skip(report, 'keepFloat');
      continue;
    }
    if (m.k * m.n < MIN_WEIGHT_ELEMENTS) {
      ctx.explain(`${node}: weight ${m.k}x${m.n} < ${MIN_WEIGHT_ELEMENTS} elements: left float`);
      skip(report, `weight < ${MIN_WEIGHT_ELEMENTS} elements`);
      continue;
    }
    if (!ctx.allowRewrite(`quantize-dynamic at ${node}`)) break;
    const patch = ctx.patch(graph);
    const floatBytes = m.k * m.n * 4;
    let qBytes: number;
    try {
      qBytes = rewrite(m, patch, ctx, spec, cache, fused);
    } catch (e) {
      patch.abort();
      if (e instanceof UnsupportedOpError) {
        ctx.explain(`${node}: ${e.message}`);
        skip(report, 'target cannot run the quantized ops');
        continue;
      }
      throw e;
    }
    changes += patch.commit();
    report.quantized++;
    report.nodes.push(node.name);
    report.weightBytesBefore += floatBytes;
    report.weightBytesAfter += qBytes;
  }
  return changes;
}

export const quantizeDynamic: Pass = {
  name: 'quantize-dynamic',
  description: 'int8 weights, activations quantized at run time: MatMul/Gemm with constant weights -> DynamicQuantizeMatMul (or DynamicQuantizeLinear + MatMulInteger)',
  level: 3,
  // subgraphs: the main graph is where the weights are; bodies of If/Loop are left float on purpose
  // (a quantized op inside a loop body would re-quantize the activation every iteration for little gain)
  subgraphs: 'skip',
  // the standard form is the floor; DynamicQuantizeMatMul is used only where ctx.supports() says so
  emits: ['ai.onnx::DynamicQuantizeLinear', 'ai.onnx::MatMulInteger', 'ai.onnx::Cast', 'ai.onnx::Mul', 'ai.onnx::Add'],
  run(graph, ctx) {
    if (ctx.options.quantize?.mode !== 'dynamic') return 0;
    const report = newReport({ mode: 'dynamic', minWeightElements: MIN_WEIGHT_ELEMENTS });
    const changes = runOnGraph(graph, ctx, report);
    publish(ctx, 'quantize-dynamic', report);
    return changes;
  },
};
