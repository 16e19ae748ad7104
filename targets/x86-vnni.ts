/** x86-64 with VNNI (AVX512_VNNI or AVX_VNNI: Intel Cascade Lake and later, AMD Zen 4). */
import { ortCpuTarget, ortInt8 } from './lib/ort-cpu.js';

export const x86Vnni = ortCpuTarget({
  name: 'x86-vnni',
  description: 'ONNX Runtime CPU on x86-64 with VNNI (int8: u8/s8, full range)',
  isa: ['avx2', 'fma', 'avx512_vnni|avx_vnni'],
  quantization: ortInt8(false, 'ORT quantization guide: U8S8; VNNI (vpdpbusd) does not saturate, no reduce_range'),
});
