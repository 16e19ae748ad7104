/**
 * wasm: onnxruntime-web's WebAssembly backend (ORT's CPU kernels compiled to wasm, SIMD and threads
 * when the page is cross-origin isolated). int8 and int4 weights: download size is the bottleneck.
 */
import type { Target } from '../src/target.js';
import { ortWasm } from './capabilities/ort-wasm.js';
import { FINAL_CLEANUP, FLOAT32_COMPUTE, LEGALIZE, ORT_FUSIONS, PORTABLE_PIPELINE, pipeline } from './lib/pipelines.js';

export const wasm: Target = {
  name: 'wasm',
  description: 'onnxruntime-web WASM backend in the browser: int8/int4 weights, small downloads',
  runtime: 'onnxruntime-web',
  executionProvider: 'wasm',
  maxLevel: 3,
  quantizeModes: ['dynamic', 'static', 'int4'],
  layout: 'NCHW',
  // no cpuFallback: the WASM EP is ORT's CPU EP itself; what its table lacks runs nowhere in the page
  capabilities: ortWasm,
  quantization: { mode: 'dynamic', activations: 'uint8', weights: 'int8', symmetricWeights: true, perChannel: false, reduceRange: false, source: 'onnxruntime-web WASM: MLAS int8 kernels with wasm SIMD; int4 MatMulNBits for transformer weights' },
  pipeline: pipeline(LEGALIZE, FLOAT32_COMPUTE, PORTABLE_PIPELINE, ORT_FUSIONS, FINAL_CLEANUP),
  sessionOptions: { executionProviders: 'wasm', graphOptimizationLevel: 'all', 'env.wasm.simd': true },
};
