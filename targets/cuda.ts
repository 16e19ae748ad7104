/**
 * cuda: ONNX Runtime's CUDA execution provider. fp16 with fp32 islands (ops that overflow or lack
 * fp16 kernels stay fp32), fused attention (com.microsoft Attention has CUDA kernels), NHWC
 * convolutions (tensor cores want channels-last): the trunk converted in the graph to
 * com.microsoft NhwcConv (convert-conv-nhwc), and prefer_nhwc for the ops the graph cannot say in
 * NHWC (pools, resizes).
 */
import type { Target } from '../src/target.js';
import { ortCpu } from './capabilities/ort-cpu.js';
import { ortCuda } from './capabilities/ort-cuda.js';
import { FINAL_CLEANUP, FLOAT_FROM_INTEGER, LEGALIZE, NHWC_LAYOUT, ORT_FUSIONS, PORTABLE_PIPELINE, pipeline } from './lib/pipelines.js';

export const cuda: Target = {
  name: 'cuda',
  description: 'ONNX Runtime CUDA EP: fp16 with fp32 islands, fused attention, NHWC convolutions',
  runtime: 'onnxruntime',
  executionProvider: 'CUDAExecutionProvider',
  maxLevel: 3,
  quantizeModes: ['fp16', 'static', 'int4'],
  layout: 'NHWC',
  // ORT always registers the CPU EP behind CUDA: nodes without a CUDA kernel run there (CPU-placed, a warning)
  capabilities: { ...ortCuda, cpuFallback: ortCpu },
  quantization: { mode: 'fp16', source: 'ORT CUDA EP: fp16 tensor-core kernels; keep fp32 for ops that overflow (Softmax input, LayerNorm statistics)' },
  pipeline: pipeline(LEGALIZE, FLOAT_FROM_INTEGER, PORTABLE_PIPELINE, NHWC_LAYOUT, ORT_FUSIONS, FINAL_CLEANUP),
  sessionOptions: {
    graphOptimizationLevel: 'all',
    'cuda:prefer_nhwc': 1,
    'cuda:cudnn_conv_algo_search': 'EXHAUSTIVE',
    'cuda:do_copy_in_default_stream': 1,
  },
};
