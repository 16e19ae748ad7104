/** Numeric comparison of tensors, as ONNX's backend test runner does it (|a-b| <= atol + rtol*|b|). */
import { DataType, dataTypeName } from './ir/dtype.js';
import { fromBfloat16Bits, fromFloat16Bits } from './ir/half.js';
import type { Tensor } from './ir/tensor.js';

export interface Tolerance { rtol: number; atol: number }

export interface Comparison {
  ok: boolean;
  /** why it failed, one line */
  problem?: string;
  maxAbsError: number;
  mismatches: number;
}

/** Values as numbers (float16/bfloat16 decoded; 64-bit integers as bigint). */
export function tensorValues(t: Tensor): ArrayLike<number | bigint> | string[] {
  if (t.dataType === DataType.STRING) return t.strings();
  const a = t.toTypedArray();
  if (t.dataType === DataType.FLOAT16) return Float32Array.from(a as Uint16Array, fromFloat16Bits);
  if (t.dataType === DataType.BFLOAT16) return Float32Array.from(a as Uint16Array, fromBfloat16Bits);
  return a as ArrayLike<number | bigint>;
}

const FLOATS = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16, DataType.COMPLEX64, DataType.COMPLEX128]);

export function compareTensors(actual: Tensor, expected: Tensor, tol: Tolerance): Comparison {
  const fail = (problem: string): Comparison => ({ ok: false, problem, maxAbsError: NaN, mismatches: NaN });
  if (actual.dataType !== expected.dataType) return fail(`type ${dataTypeName(actual.dataType)}, expected ${dataTypeName(expected.dataType)}`);
  if (actual.dims.join(',') !== expected.dims.join(',')) return fail(`shape [${actual.dims.join(',')}], expected [${expected.dims.join(',')}]`);
  const a = tensorValues(actual);
  const e = tensorValues(expected);
  let maxAbs = 0;
  let mismatches = 0;
  let first = -1;
  const float = FLOATS.has(actual.dataType);
  for (let i = 0; i < e.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (float) {
      const xn = x as number, yn = y as number;
      if (Number.isNaN(xn) && Number.isNaN(yn)) continue;
      if (xn === yn) continue; // also equal infinities
      const d = Math.abs(xn - yn);
      if (!(d <= tol.atol + tol.rtol * Math.abs(yn))) { mismatches++; if (first < 0) first = i; }
      if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
    } else if (x !== y) {
      mismatches++;
      if (first < 0) first = i;
      if (typeof x !== 'string') maxAbs = Math.max(maxAbs, Math.abs(Number(x) - Number(y)));
    }
  }
  if (mismatches) {
    return { ok: false, problem: `${mismatches} of ${e.length} values differ (first at ${first}: ${String(a[first])} vs ${String(e[first])}; max abs error ${maxAbs})`, maxAbsError: maxAbs, mismatches };
  }
  return { ok: true, maxAbsError: maxAbs, mismatches: 0 };
}
