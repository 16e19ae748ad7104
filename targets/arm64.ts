/**
 * arm64 with NEON and the dot-product extension (asimddp): AWS Graviton 2/3/4, Ampere Altra,
 * Apple M-series, Neoverse. ORT's MLAS has int8 kernels using sdot/udot there, and bf16 fast-math
 * GEMM on cores with bf16 (Graviton 3+), enabled by a session config key.
 */
import { ortCpuTarget } from './lib/ort-cpu.js';

export const arm64 = ortCpuTarget({
  name: 'arm64',
  description: 'ONNX Runtime CPU on arm64 NEON with dot product (Graviton, Ampere, Apple)',
  isa: ['asimd', 'asimddp'],
  quantization: {
    mode: 'dynamic',
    activations: 'uint8',
    weights: 'int8',
    symmetricWeights: true,
    perChannel: true,
    reduceRange: false,
    source: 'ORT quantization guide: on ARM64, U8S8 can be faster than U8U8 on low-end cores and is no slower on high-end ones; dot-product kernels need no reduce_range',
  },
  sessionOptions: {
    // ORT >= 1.17: bf16 fast-math GEMM on arm64 cores with bf16 (Graviton 3+); ignored elsewhere
    'session.config:mlas.enable_gemm_fastmath_arm64_bfloat16': '1',
  },
});
