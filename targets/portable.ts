/**
 * portable: standard ONNX ops only, for any runtime (ONNX Runtime, TensorRT, OpenVINO, tract,
 * CoreML tools). Cleanup, constant and shape folding, merges and the classic conv/BN folds.
 */
import type { Target } from '../src/target.js';
import { FINAL_CLEANUP, LEGALIZE, PORTABLE_PIPELINE, pipeline } from './lib/pipelines.js';

export const portable: Target = {
  name: 'portable',
  description: 'standard ONNX ops only, for any runtime',
  runtime: 'any',
  maxLevel: 1,
  quantizeModes: [],
  layout: 'NCHW',
  quantization: { mode: 'none', source: 'no quantization: the model stays fp32 for any runtime' },
  pipeline: pipeline(LEGALIZE, PORTABLE_PIPELINE, FINAL_CLEANUP),
};
