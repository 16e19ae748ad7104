/**
 * The registry of built-in passes: an explicit list, in no particular order (targets decide the
 * order). Plugins add theirs at run time (src/node/plugins.ts). `apply-input-layout` is not here:
 * it is made per call from --input-layout (passes/apply-input-layout.ts).
 */
import type { Pass } from '../src/pass/pass.js';
import { convertConvNhwc } from './convert-conv-nhwc.js';
import { convertFp16 } from './convert-fp16.js';
import { decomposeLayernorm } from './decompose-layernorm.js';
import { decomposeNhwcConv } from './decompose-nhwc-conv.js';
import { dedupeInitializers } from './dedupe-initializers.js';
import { dequantizeIntegerOps } from './precision/dequantize-integer-ops.js';
import { eliminateCommonSubexpressions } from './eliminate-common-subexpressions.js';
import { eliminateDeadNodes } from './eliminate-dead-nodes.js';
import { eliminateDropout } from './eliminate-dropout.js';
import { eliminateIdentity } from './eliminate-identity.js';
import { eliminateNoopCast } from './eliminate-noop-cast.js';
import { eliminateNoopExpand } from './eliminate-noop-expand.js';
import { eliminateNoopPad } from './eliminate-noop-pad.js';
import { eliminateNoopReshape } from './eliminate-noop-reshape.js';
import { eliminateNoopSlice } from './eliminate-noop-slice.js';
import { eliminateNoopTranspose } from './eliminate-noop-transpose.js';
import { eliminateUnusedInitializers } from './eliminate-unused-initializers.js';
import { fixDims } from './fix-dims.js';
import { foldConstants } from './fold-constants.js';
import { foldShapeOps } from './fold-shape-ops.js';
import { fuseAttention } from './fuse-attention.js';
import { fuseAttentionPast } from './fuse-attention-past.js';
import { fuseBiasGelu } from './fuse-bias-gelu.js';
import { fuseBnIntoConv } from './fuse-bn-into-conv.js';
import { fuseConvActivation } from './fuse-conv-activation.js';
import { fuseEmbedLayernorm } from './fuse-embed-layernorm.js';
import { fuseGeluContrib } from './fuse-gelu-contrib.js';
import { fuseGqa } from './fuse-gqa.js';
import { fuseGelu } from './fuse-gelu.js';
import { fuseLayernormContrib } from './fuse-layernorm-contrib.js';
import { fuseLayernorm } from './fuse-layernorm.js';
import { fuseMatmulAddIntoGemm } from './fuse-matmul-add-into-gemm.js';
import { fuseMulAddIntoConv } from './fuse-mul-add-into-conv.js';
import { fusePadIntoConv } from './fuse-pad-into-conv.js';
import { fuseRmsnorm } from './fuse-rmsnorm.js';
import { fuseRotary } from './fuse-rotary.js';
import { fuseSkipLayernorm } from './fuse-skip-layernorm.js';
import { mergeReshapes } from './merge-reshapes.js';
import { mergeSqueezeUnsqueeze } from './merge-squeeze-unsqueeze.js';
import { mergeTransposes } from './merge-transposes.js';
import { propagateTransposes } from './propagate-transposes.js';
import { qdqToInt8Symmetric } from './precision/qdq-to-int8-symmetric.js';
import { quantizeDynamic } from './quantize-dynamic.js';
import { quantizeInt4 } from './quantize-int4.js';
import { quantizeStatic } from './quantize-static.js';
import { simplifyReshapeShape } from './simplify-reshape-shape.js';
import { unflattenGemm } from './unflatten-gemm.js';
import { widenToFloat32 } from './precision/widen-to-float32.js';

export const PASSES: readonly Pass[] = [
  convertConvNhwc,
  convertFp16,
  decomposeLayernorm,
  decomposeNhwcConv,
  dedupeInitializers,
  dequantizeIntegerOps,
  eliminateCommonSubexpressions,
  eliminateDeadNodes,
  eliminateDropout,
  eliminateIdentity,
  eliminateNoopCast,
  eliminateNoopExpand,
  eliminateNoopPad,
  eliminateNoopReshape,
  eliminateNoopSlice,
  eliminateNoopTranspose,
  eliminateUnusedInitializers,
  fixDims,
  foldConstants,
  foldShapeOps,
  fuseAttention,
  fuseAttentionPast,
  fuseBiasGelu,
  fuseBnIntoConv,
  fuseConvActivation,
  fuseEmbedLayernorm,
  fuseGeluContrib,
  fuseGqa,
  fuseGelu,
  fuseLayernormContrib,
  fuseLayernorm,
  fuseMatmulAddIntoGemm,
  fuseMulAddIntoConv,
  fusePadIntoConv,
  fuseRmsnorm,
  fuseRotary,
  fuseSkipLayernorm,
  mergeReshapes,
  mergeSqueezeUnsqueeze,
  mergeTransposes,
  propagateTransposes,
  qdqToInt8Symmetric,
  quantizeDynamic,
  quantizeInt4,
  quantizeStatic,
  simplifyReshapeShape,
  unflattenGemm,
  widenToFloat32,
];

export function findPass(name: string, extra: readonly Pass[] = []): Pass | undefined {
  return [...extra, ...PASSES].find((p) => p.name === name);
}
