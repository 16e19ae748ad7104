/**
 * tensorrt: NVIDIA TensorRT (through its ONNX parser, or ORT's TensorRT EP). Standard ONNX ops only
 * (no contrib ops: the parser rejects them); int8 as explicit symmetric s8 QDQ (TensorRT's
 * explicit-quantization mode needs zero points of 0 and per-channel weight scales).
 */
import type { Target } from '../src/target.js';
import { tensorrt as caps } from './capabilities/tensorrt.js';
import { FINAL_CLEANUP, INT8_SYMMETRIC_QDQ, LEGALIZE, PORTABLE_PIPELINE, pipeline } from './lib/pipelines.js';

export const tensorrt: Target = {
  name: 'tensorrt',
  description: 'TensorRT: standard ONNX ops only, int8 as symmetric s8 QDQ',
  runtime: 'tensorrt',
  executionProvider: 'TensorrtExecutionProvider',
  maxLevel: 1,
  // QDQ and fp16 are standard ONNX: the quantization pass may run although the pipeline is level 1
  quantizeModes: ['static', 'fp16'],
  layout: 'NCHW',
  // no cpuFallback: the runtime is TensorRT itself, whose engine build fails on any node the parser refuses.
  // (ORT's TensorRT EP would hand such nodes to its CUDA/CPU EPs, but then the model is a cuda-target model
  // with TensorRT subgraphs, not a TensorRT engine; this target promises the engine.)
  capabilities: caps,
  quantization: {
    mode: 'static', activations: 'int8', weights: 'int8', symmetricActivations: true, symmetricWeights: true, perChannel: true, reduceRange: false,
    source: 'TensorRT developer guide, explicit quantization: symmetric int8 Q/DQ, zero point 0, per-channel weights',
  },
  pipeline: pipeline(LEGALIZE, INT8_SYMMETRIC_QDQ, PORTABLE_PIPELINE, FINAL_CLEANUP),
  sessionOptions: { 'trt:trt_fp16_enable': 1, 'trt:trt_int8_enable': 1, 'trt:trt_engine_cache_enable': 1 },
};
