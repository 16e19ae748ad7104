/**
 * portable: standard ONNX ops only, for any runtime (ONNX Runtime, TensorRT, OpenVINO, tract,
 * CoreML tools). Cleanup, constant and shape folding, merges and the classic conv/BN folds.
 */
import type { Target } from '../src/target.js';

export const portable: Target = {
  name: 'portable',
  description: 'standard ONNX ops only, for any runtime',
  runtime: 'any',
  maxLevel: 1,
  pipeline: [
    'fix-dims',
    'eliminate-identity',
    'eliminate-dropout',
    {
      fixedPoint: [
        'fold-constants',
        'fold-shape-ops',
        'simplify-reshape-shape',
        'eliminate-noop-cast',
        'eliminate-noop-reshape',
        'eliminate-noop-transpose',
        'eliminate-noop-expand',
        'eliminate-noop-pad',
        'eliminate-noop-slice',
        'eliminate-identity',
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
    'dedupe-initializers',
    'eliminate-dead-nodes',
    'eliminate-unused-initializers',
  ],
};
