/**
 * What the ONNX Runtime CPU targets share: ORT's CPU execution provider and its kernels, the fusion
 * pipeline into com.microsoft contrib ops, NCHW layout, and the session options ORT recommends.
 */
import type { QuantizationPreset, Target } from '../../src/target.js';
import { ortCpu } from '../capabilities/ort-cpu.js';
import { FINAL_CLEANUP, FLOAT32_COMPUTE, LEGALIZE, ORT_CPU_FUSIONS, PORTABLE_PIPELINE, pipeline } from './pipelines.js';

/**
 * ORT's guidance on int8 data types (onnxruntime.ai/docs/performance/model-optimizations/
 * quantization.html, "Data type selection" and "When to use reduce_range"): activations uint8 and
 * weights int8 (U8S8) run the fast integer kernels on x86-64; without VNNI, AVX2/AVX-512 multiply
 * u8*s8 with vpmaddubsw, which saturates int16 sums, so weights use 7 bits (reduce_range). With VNNI
 * (vpdpbusd) the full range is safe.
 */
export function ortInt8(reduceRange: boolean, source: string): QuantizationPreset {
  return { mode: 'dynamic', activations: 'uint8', weights: 'int8', symmetricWeights: true, perChannel: true, reduceRange, source };
}

export function ortCpuTarget(spec: Pick<Target, 'name' | 'description' | 'isa' | 'quantization'> & { sessionOptions?: Target['sessionOptions'] }): Target {
  return {
    runtime: 'onnxruntime',
    executionProvider: 'CPUExecutionProvider',
    maxLevel: 3,
    layout: 'NCHW',
    // fp16 runs on ORT's CPU EP but no faster (it inserts Casts): allowed for accuracy checks
    quantizeModes: ['dynamic', 'static', 'int4', 'fp16'],
    capabilities: ortCpu,
    // float16 models compute in float32: the CPU EP's float16 kernels are few (see FLOAT32_COMPUTE)
    pipeline: pipeline(LEGALIZE, FLOAT32_COMPUTE, PORTABLE_PIPELINE, ORT_CPU_FUSIONS, FINAL_CLEANUP),
    ...spec,
    sessionOptions: {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // one intra-op thread per physical core; hyperthreads slow GEMM down
      intraOpNumThreads: 'physical cores',
      // ORT's own Add + LayerNormalization -> SkipLayerNormalization fusion picks a kernel slower than
      // the pair on the CPU EP (see ORT_CPU_FUSIONS); bert-base seq 128: 1.034x with it off, 0.991x on
      'session.config:optimization.disable_specified_optimizers': 'SkipLayerNormFusion',
      ...spec.sessionOptions,
    },
  };
}
