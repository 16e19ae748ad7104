/** x86-64 with AVX2 and FMA, no VNNI (e.g. AMD Zen 2/3, Intel Haswell to Skylake client). */
import { ortCpuTarget, ortInt8 } from './lib/ort-cpu.js';

export const x86Avx2 = ortCpuTarget({
  name: 'x86-avx2',
  description: 'ONNX Runtime CPU on x86-64 with AVX2/FMA (int8: u8 activations, s8 weights, reduce-range)',
  isa: ['avx2', 'fma'],
  quantization: ortInt8(true, 'ORT quantization guide: U8S8 on x86-64; reduce_range without VNNI (vpmaddubsw saturation)'),
});
