/**
 * The registry of built-in passes: an explicit list, in no particular order (targets decide the
 * order). Plugins add theirs at run time (src/node/plugins.ts). `apply-input-layout` is not here:
 * it is made per call from --input-layout (passes/layout/apply-input-layout.ts).
 */
import type { Pass } from '../src/pass/pass.js';
import { convertConvNhwc } from './layout/convert-conv-nhwc.js';
import { convertFp16 } from './precision/convert-fp16.js';
import { dedupeInitializers } from './cleanup/dedupe-initializers.js';
import { dequantizeIntegerOps } from './precision/dequantize-integer-ops.js';
import { eliminateCommonSubexpressions } from './cleanup/eliminate-common-subexpressions.js';
import { eliminateDeadNodes } from './cleanup/eliminate-dead-nodes.js';
import { eliminateDropout } from './cleanup/eliminate-dropout.js';
import { eliminateIdentity } from './cleanup/eliminate-identity.js';
import { eliminateNoopCast } from './cleanup/eliminate-noop-cast.js';
import { eliminateNoopExpand } from './cleanup/eliminate-noop-expand.js';
import { eliminateNoopPad } from './cleanup/eliminate-noop-pad.js';
import { eliminateNoopReshape } from './cleanup/eliminate-noop-reshape.js';
import { eliminateNoopSlice } from './cleanup/eliminate-noop-slice.js';
import { eliminateNoopTranspose } from './cleanup/eliminate-noop-transpose.js';
import { eliminateUnusedInitializers } from './cleanup/eliminate-unused-initializers.js';
import { fixDims } from './cleanup/fix-dims.js';
import { foldConstants } from './fold/fold-constants.js';
import { foldShapeOps } from './fold/fold-shape-ops.js';
import { fuseAttention } from './fuse/fuse-attention.js';
import { fuseAttentionPast } from './fuse/fuse-attention-past.js';
import { fuseBiasGelu } from './fuse/fuse-bias-gelu.js';
import { fuseBnIntoConv } from './fuse/fuse-bn-into-conv.js';
import { fuseConvActivation } from './fuse/fuse-conv-activation.js';
import { fuseEmbedLayernorm } from './fuse/fuse-embed-layernorm.js';
import { fuseGeluContrib } from './fuse/fuse-gelu-contrib.js';
import { fuseGqa } from './fuse/fuse-gqa.js';
import { fuseGelu } from './fuse/fuse-gelu.js';
import { fuseLayernormContrib } from './fuse/fuse-layernorm-contrib.js';
import { fuseLayernorm } from './fuse/fuse-layernorm.js';
import { fuseMatmulAddIntoGemm } from './fuse/fuse-matmul-add-into-gemm.js';
import { fuseMulAddIntoConv } from './fuse/fuse-mul-add-into-conv.js';
import { fusePadIntoConv } from './fuse/fuse-pad-into-conv.js';
import { fuseRmsnorm } from './fuse/fuse-rmsnorm.js';
import { fuseRotary } from './fuse/fuse-rotary.js';
import { fuseSkipLayernorm } from './fuse/fuse-skip-layernorm.js';
import { lowerContribOps } from './lower/lower-contrib-ops.js';
import { mergeReshapes } from './cleanup/merge-reshapes.js';
import { mergeSqueezeUnsqueeze } from './cleanup/merge-squeeze-unsqueeze.js';
import { mergeTransposes } from './layout/merge-transposes.js';
import { propagateTransposes } from './layout/propagate-transposes.js';
import { qdqToInt8Symmetric } from './precision/qdq-to-int8-symmetric.js';
import { qoperatorToFloat } from './precision/qoperator-to-float.js';
import { qoperatorToQdq } from './precision/qoperator-to-qdq.js';
import { quantizeDynamic } from './quantize/quantize-dynamic.js';
import { quantizeInt4 } from './quantize/quantize-int4.js';
import { quantizeStatic } from './quantize/quantize-static.js';
import { simplifyReshapeShape } from './cleanup/simplify-reshape-shape.js';
import { unflattenGemm } from './fuse/unflatten-gemm.js';
import { widenToFloat32 } from './precision/widen-to-float32.js';

export const PASSES: readonly Pass[] = [
  convertConvNhwc,
  convertFp16,
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
  lowerContribOps,
  mergeReshapes,
  mergeSqueezeUnsqueeze,
  mergeTransposes,
  propagateTransposes,
  qdqToInt8Symmetric,
  qoperatorToFloat,
  qoperatorToQdq,
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
