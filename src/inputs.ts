/**
 * Seeded synthetic inputs for a model, from its input types: floats uniform in [-1, 1), integers
 * in [0, intHigh) (valid token ids and indices for small vocabularies), bools at random.
 * Symbolic dims take their value from `dims`, else `defaultDim`.
 */
import { DataType } from './ir/dtype.js';
import type { Model } from './ir/model.js';
import { Tensor } from './ir/tensor.js';

export interface SyntheticOptions {
  seed?: number;
  dims?: Record<string, number>;
  /** size of symbolic dims not in `dims` (default 2) */
  defaultDim?: number;
  /** integer inputs are drawn from [0, intHigh) (default 10) */
  intHigh?: number;
}

/** mulberry32: small, fast, good enough for test data */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SyntheticInputError extends Error {}

export function syntheticInputs(model: Model, opts: SyntheticOptions = {}): Record<string, Tensor> {
  const rand = seededRandom(opts.seed ?? 0);
  const out: Record<string, Tensor> = {};
  for (const v of model.graph.inputs) {
    if (v.initializer) continue;
    const t = v.type;
    if (!t || t.kind !== 'tensor' || !t.shape) throw new SyntheticInputError(`input '${v.name}': needs a tensor type with a known rank`);
    const dims = t.shape.map((d) => (typeof d === 'number' ? d : d === null ? opts.defaultDim ?? 2 : opts.dims?.[d] ?? opts.defaultDim ?? 2));
    const n = dims.reduce((a, b) => a * b, 1);
    const high = opts.intHigh ?? 10;
    switch (t.elemType) {
      case DataType.FLOAT: out[v.name] = Tensor.float32(Array.from({ length: n }, () => rand() * 2 - 1), dims); break;
      case DataType.DOUBLE: out[v.name] = Tensor.fromTypedArray(DataType.DOUBLE, dims, Float64Array.from({ length: n }, () => rand() * 2 - 1)); break;
      case DataType.INT64: out[v.name] = Tensor.int64(Array.from({ length: n }, () => Math.floor(rand() * high)), dims); break;
      case DataType.INT32: out[v.name] = Tensor.int32(Array.from({ length: n }, () => Math.floor(rand() * high)), dims); break;
      case DataType.BOOL: out[v.name] = Tensor.fromTypedArray(DataType.BOOL, dims, Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0))); break;
      case DataType.UINT8: out[v.name] = Tensor.fromTypedArray(DataType.UINT8, dims, Uint8Array.from({ length: n }, () => Math.floor(rand() * 256))); break;
      case DataType.INT8: out[v.name] = Tensor.fromTypedArray(DataType.INT8, dims, Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128)); break;
      default: throw new SyntheticInputError(`input '${v.name}': no synthetic data for element type ${t.elemType}`);
    }
  }
  return out;
}
