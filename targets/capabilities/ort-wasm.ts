/**
 * ONNX Runtime Web WASM backend capability table.
 *
 * The WASM backend is ONNX Runtime's CPU engine compiled to WebAssembly, so it runs the
 * CPUExecutionProvider kernels (ort-cpu.ts). Source consulted: README.md of the onnxruntime-web 1.30.0
 * npm package, "Operators / WebAssembly backend": "ONNX Runtime Web currently support all operators in
 * ai.onnx and ai.onnx.ml", and "ONNX Runtime Web compiles the native ONNX Runtime CPU engine into
 * WebAssembly backend by using Emscripten, so it supports most functionalities native ONNX Runtime offers,
 * including full ONNX operator coverage".
 * No definite statement of kernels EXCLUDED from the WASM build was found (the package's docs folder has
 * only webgl/webgpu/webnn operator tables), so this table is DERIVED from ortCpu unchanged, com.microsoft
 * included (the README neither includes nor excludes contrib ops). Kernels that a reduced web build
 * drops, if any, are not reflected.
 *
 * Measured in onnxruntime-web 1.30.0's wasm EP in Node with the one-node models of
 * test/targets/runtime-types.test.ts: every probe (float32, float16, float64, int32, bfloat16 forms of
 * common ops and of the com.microsoft ops the CPU targets emit) loads or is refused exactly as on
 * onnxruntime-node's CPU EP; float16 nodes without a float16 kernel run there too (the same
 * InsertCastTransformer: castsTo float16 -> float32), bfloat16 and float64 ones are refused.
 */
import type { Capabilities } from '../../src/target.js';
import { ortCpu } from './ort-cpu.js';

export const ortWasm: Capabilities = {
  source:
    'onnxruntime-web 1.30.0 (npm package) README.md "WebAssembly backend: all operators in ai.onnx and ai.onnx.ml"; kernels derived from ortCpu (' +
    ortCpu.source +
    ') since no exclusion list was found',
  domains: [...ortCpu.domains],
  kernels: { ...ortCpu.kernels },
  // measured (see above): the same casts as the CPU EP
  castsTo: { float16: 'float32' },
};
