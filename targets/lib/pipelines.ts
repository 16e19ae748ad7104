/**
 * Pipelines shared by targets: the portable cleanup/folding pipeline, and the ONNX Runtime fusion
 * stage that targets running ORT's contrib ops add after it.
 */
import type { QuantizeMode } from '../../src/pass/pass.js';
import type { PipelineSpec } from '../../src/target.js';

/**
 * Legalization, first in every pipeline: a model compiled for ONNX Runtime (com.microsoft fusions,
 * MatMulNBits, QLinearAdd ..., cuda's NhwcConv; LayerNormalization where the target or opset lacks
 * it) moved to a target without those kernels gets each such op written back in standard ONNX
 * (passes/lower/lower-contrib-ops.ts). Before the precision passes, so that what it writes (the QDQ
 * form of ORT's QOperator ops, float16 norms) is theirs to bring to the target's precision; before
 * the folds (the Transposes around NhwcConv's Conv cancel between convolutions there). Nothing is
 * fused into an op the target lacks later: ctx.patch refuses it.
 */
export const LEGALIZE: PipelineSpec[] = ['lower-contrib-ops'];

/**
 * Precision for targets without fast float16 compute (ONNX Runtime's CPU EP, and the WASM EP, which is
 * the CPU EP): a float16 / bfloat16 model computes in float32, its weights converted once here, instead
 * of the runtime inserting Casts around every node it has no float16 kernel for on every inference.
 * First: the folds and fusions then see the float32 model. Targets that run float16 fast (cuda,
 * tensorrt, webgpu) leave it out and keep the model's precision; so does portable.
 */
export const FLOAT32_COMPUTE: PipelineSpec[] = ['widen-to-float32'];

/**
 * Precision for targets whose EP lacks DynamicQuantizeLinear / ConvInteger / MatMulInteger (WebGPU:
 * none of them, measured; CUDA: MatMulInteger int8 only): a model from ONNX Runtime's dynamic
 * quantizer computes as float Conv / MatMul on weights dequantized once, instead of running those
 * nodes on the CPU fallback with copies. First, like FLOAT32_COMPUTE: the folds and fusions (bias
 * into Conv, MatMul + Add into Gemm, attention) then see float ops. The pass itself asks the target
 * and does nothing where it runs the integer ops. Not tensorrt: a level-1 target, and its form for a
 * quantized model is symmetric s8 QDQ (INT8_SYMMETRIC_QDQ), not float.
 */
// + QOperator models (QLinearConv / QLinearMatMul, which neither EP has): float too (qoperator-to-float)
export const FLOAT_FROM_INTEGER: PipelineSpec[] = ['dequantize-integer-ops', 'qoperator-to-float'];

/**
 * Precision for targets that take int8 symmetric QDQ only (tensorrt: s8 Q/DQ, zero point 0): a QDQ
 * model from the CPU / cuda / wasm static presets (uint8 asymmetric activations, int32 biases) is
 * re-expressed in that form (passes/precision/qdq-to-int8-symmetric.ts; judged within int8). First,
 * like FLOAT_FROM_INTEGER: the folds then see the rewritten constants. The pass asks the target's
 * table and does nothing where uint8 and int32 DequantizeLinear run.
 */
// QOperator models (QLinearConv / QLinearMatMul, not in TensorRT's table) are first written as QDQ
// (qoperator-to-qdq), so that qdq-to-int8-symmetric makes their pairs symmetric int8
// ONNX Runtime's dynamic-quantizer form (ConvInteger / MatMulInteger, no TensorRT kernels) becomes
// float activations on int8 DequantizeLinear weights (dequantize-integer-ops: TensorRT's weight-only form)
export const INT8_SYMMETRIC_QDQ: PipelineSpec[] = ['qoperator-to-qdq', 'dequantize-integer-ops', 'qdq-to-int8-symmetric'];

/** Standard-ONNX cleanup, folding and classic folds: every target starts with these. */
export const PORTABLE_PIPELINE: PipelineSpec[] = [
  'fix-dims',
  'eliminate-identity',
  'eliminate-dropout',
  {
    fixedPoint: [
      'fold-constants',
      'fold-shape-ops',
      'simplify-reshape-shape',
      'unflatten-gemm',
      'eliminate-noop-cast',
      'eliminate-noop-reshape',
      'eliminate-noop-transpose',
      'eliminate-noop-expand',
      'eliminate-noop-pad',
      'eliminate-noop-slice',
      'eliminate-identity',
      'propagate-transposes',
      'merge-transposes',
      'merge-reshapes',
      'merge-squeeze-unsqueeze',
      'eliminate-common-subexpressions',
      'eliminate-dead-nodes',
    ],
  },
  'fuse-pad-into-conv',
  'fuse-bn-into-conv',
  'fuse-mul-add-into-conv',
  'fuse-matmul-add-into-gemm',
  'fuse-layernorm',
  'fuse-gelu',
];

/** Cleanup that ends every pipeline. */
export const FINAL_CLEANUP: PipelineSpec[] = [
  'dedupe-initializers',
  'eliminate-dead-nodes',
  'eliminate-unused-initializers',
];

/**
 * The convolution trunk in channels-last for NHWC targets (convert-conv-nhwc, then the Transpose
 * pairs between convolutions sunk and cancelled). Before ORT_FUSIONS: an NhwcConv is not a Conv, so
 * fuse-conv-activation leaves it (the runtime fuses the activation into its NHWC kernel itself).
 */
export const NHWC_LAYOUT: PipelineSpec[] = [
  // CSE merges the Transposes two convolutions put on one shared NCHW input (after a MaxPool)
  { fixedPoint: ['convert-conv-nhwc', 'propagate-transposes', 'merge-transposes', 'eliminate-noop-transpose', 'eliminate-common-subexpressions', 'eliminate-dead-nodes'] },
];

/** Fusions into ONNX Runtime's com.microsoft contrib ops (level 2), in dependency order. */
export const ORT_FUSIONS: PipelineSpec[] = [
  // RMSNorm -> SimplifiedLayerNormalization (ONNX domain; every ORT table here has it). First: its
  // Cast forms (float16 x normalized in float) are fused whole here, while fuse-layernorm-contrib
  // would take the float core alone and leave the Casts. On the CPU EP it is neutral, not slower:
  // ORT's level-all optimizer fuses the float form itself (llama-150m-past: 634 nodes after ORT with
  // and without it), decode past 128 0.98x / prefill 64 0.97-0.99x of compiled-without, in the noise.
  'fuse-rmsnorm',
  'fuse-layernorm-contrib',
  'fuse-gelu-contrib',
  'fuse-bias-gelu',
  'fuse-attention',
  // decoder self-attention with a KV cache -> MultiHeadAttention (past in, present out). On the CPU
  // EP not slower: gpt2-small-past, 1 thread, decode past 128 p50 0.96-1.02x and prefill 64
  // 0.95-1.00x of compiled-without (noisy shared host); ORT's profile puts the attention core at
  // 1.3 ms (MultiHeadAttention + mask) vs 2.1 ms (Concat, FusedMatMul, Where, Softmax...) per decode step.
  'fuse-attention-past',
  // rotary position embedding -> RotaryEmbedding, then grouped-query attention with a KV cache ->
  // GroupQueryAttention (which takes fuse-rotary's RotaryEmbedding in its 3-D form; it fuses only
  // when --dim fixes batch 1 or sequence 1: ORT's kernel refuses batched multi-token steps with a
  // past). On the CPU EP not slower: llama-150m-past, 1 thread, CPU time per run, each pair run in
  // both orders (A/A 0.98x): rotary 0.94x decode past 128, 0.99x past 512, 0.99x prefill 64 of
  // compiled-without; with --dim batch=1, GQA 0.93x / 1.01x / 0.99x of rotary alone.
  'fuse-rotary',
  'fuse-gqa',
  // the embeddings' LayerNorm first: skip-layernorm would otherwise take the embedding sum
  'fuse-embed-layernorm',
  'fuse-skip-layernorm',
  'fuse-conv-activation',
];

/**
 * ORT_FUSIONS for ONNX Runtime's CPU EP: without SkipLayerNormalization. Its CPU kernel (ORT 1.30)
 * is slower than the LayerNormalization + Add it replaces (profiled on bert-base seq 128: 6.1 ms
 * for 24 SkipLayerNormalization vs 2.6 ms for the Adds and LayerNorms; gpt2-small seq 64: 3.5 vs
 * 1.5 ms), so CPU targets keep the pair and ask ORT not to fuse it either (see ort-cpu.ts).
 * Its RMSNorm case (Add + SimplifiedLayerNormalization -> SkipSimplifiedLayerNormalization) gains
 * nothing there either: llama-150m-past decode past 128, 1 thread, p50 1.01x of Add + RMSNorm (A/A
 * 1.03x in the same run; prefill 64 within 3%), so it stays out too.
 */
export const ORT_CPU_FUSIONS: PipelineSpec[] = ORT_FUSIONS.filter((s) => s !== 'fuse-skip-layernorm');

/** A target's pipeline: the parts above, in order. */
export function pipeline(...parts: PipelineSpec[][]): PipelineSpec[] {
  return parts.flat();
}

/**
 * What `--quantize MODE` does to any target's pipeline: the pass that lowers precision runs after
 * it (whatever the target's level: the user asked for it, and the target's quantizeModes say which
 * modes it takes), followed by `after`; the passes in `disables` are left out of the pipeline.
 * Weight-quantizing modes need the compute ops as standard ops: the attention and embedding fusions
 * would hide the projections inside Attention / EmbedLayerNormalization, where they stay fp32, and
 * ONNX Runtime's QDQ fusion turns only ai.onnx Conv (not com.microsoft FusedConv) into QLinearConv;
 * it folds the Relu/Clip into the quantized Conv itself. Likewise NhwcConv (convert-conv-nhwc) is no
 * Conv to the QDQ quantizer, and calibration runs on the CPU, which lacks it.
 */
export interface QuantizeStage {
  pass: string;
  disables: string[];
  /**
   * Run after the pass: cleanup, and those of the disabled fusions that may now fuse what stayed
   * float (a projection too small to quantize, whose attention was left unfused before the pass),
   * where the target's own pipeline has them.
   */
  after: string[];
}

const HIDE_PROJECTIONS = ['fuse-attention', 'fuse-embed-layernorm'];
const QUANTIZE_CLEANUP = ['eliminate-dead-nodes', 'eliminate-unused-initializers'];

export const QUANTIZE_STAGES: Record<QuantizeMode, QuantizeStage> = {
  // gpt2-tiny, x86-avx2, --quantize dynamic: its attention projections stay float (too small), and
  // fusing them after the pass took the model from 69 to 23 nodes, 0.64x the time (bench:precision-matrix)
  dynamic: { pass: 'quantize-dynamic', disables: HIDE_PROJECTIONS, after: [...HIDE_PROJECTIONS, ...QUANTIZE_CLEANUP] },
  int4: { pass: 'quantize-int4', disables: HIDE_PROJECTIONS, after: [...HIDE_PROJECTIONS, ...QUANTIZE_CLEANUP] },
  static: { pass: 'quantize-static', disables: [...HIDE_PROJECTIONS, 'fuse-conv-activation', 'convert-conv-nhwc'], after: QUANTIZE_CLEANUP },
  fp16: { pass: 'convert-fp16', disables: [], after: QUANTIZE_CLEANUP },
};
