/**
 * webgpu: onnxruntime-web's WebGPU execution provider in the browser. Only the ops that EP
 * implements (its capability table), fp16 (shader-f16 where the adapter has it), small models.
 */
import type { Target } from '../src/target.js';
import { ortWasm } from './capabilities/ort-wasm.js';
import { ortWebgpu } from './capabilities/ort-webgpu.js';
import { FINAL_CLEANUP, FLOAT_FROM_INTEGER, LEGALIZE, ORT_FUSIONS, PORTABLE_PIPELINE, pipeline } from './lib/pipelines.js';

export const webgpu: Target = {
  name: 'webgpu',
  description: 'onnxruntime-web WebGPU EP in the browser: its ops only, fp16',
  runtime: 'onnxruntime-web',
  executionProvider: 'webgpu',
  maxLevel: 3,
  quantizeModes: ['fp16', 'int4'],
  layout: 'NHWC',
  // onnxruntime-web always registers its WASM (CPU) EP behind WebGPU: nodes without a WebGPU kernel run
  // there (CPU-placed, a warning), as shape arithmetic such as ConstantOfShape does by design
  capabilities: { ...ortWebgpu, cpuFallback: ortWasm },
  quantization: { mode: 'fp16', source: 'onnxruntime-web WebGPU EP: fp16 shaders (shader-f16); halves download size' },
  pipeline: pipeline(LEGALIZE, FLOAT_FROM_INTEGER, PORTABLE_PIPELINE, ORT_FUSIONS, FINAL_CLEANUP),
  sessionOptions: { executionProviders: 'webgpu', graphOptimizationLevel: 'all', preferredLayout: 'NHWC' },
};
