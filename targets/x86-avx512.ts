/** x86-64 with AVX-512 (F, BW, VL), no VNNI (e.g. Intel Skylake-SP/X). */
import { ortCpuTarget, ortInt8 } from './lib/ort-cpu.js';

export const x86Avx512 = ortCpuTarget({
  name: 'x86-avx512',
  description: 'ONNX Runtime CPU on x86-64 with AVX-512 (int8: u8/s8, reduce-range)',
  isa: ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl'],
  quantization: ortInt8(true, 'ORT quantization guide: U8S8 on x86-64; reduce_range on AVX-512 without VNNI'),
});
