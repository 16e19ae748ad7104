/**
 * Seeded synthetic inputs for a model, from its input types: floats uniform in [-1, 1), integers
 * in [0, intHigh) (valid token ids and indices for small vocabularies), bools at random.
 * Symbolic dims take their value from `dims`, else `defaultDim`.
 */
import { DataType } from './ir/dtype.js';
import type { Node, Value } from './ir/graph.js';
import type { Model } from './ir/model.js';
import { Tensor } from './ir/tensor.js';

export interface SyntheticOptions {
  seed?: number;
  dims?: Record<string, number>;
  /** size of symbolic dims not in `dims` (default 2) */
  defaultDim?: number;
  /** integer inputs are drawn from [0, intHigh) (default 10) */
  intHigh?: number;
  /** per-input upper bounds for integer inputs (see intInputRanges) */
  intRanges?: Record<string, number>;
}

/**
 * Valid value ranges for integer inputs, read off the model: an input used as Gather indices into
 * a constant table (token ids into an embedding) gets [0, rows); one named like a mask gets {0, 1}.
 */
export function intInputRanges(model: Model): Record<string, number> {
  const out: Record<string, number> = {};
  // ops that move values without changing them: ids reach their Gather through these
  const passThrough = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Expand', 'Cast', 'Transpose']);
  // index input slot -> table input slot, for ops that look ids up in a table
  const lookups: Record<string, Record<number, number>> = {
    ':Gather': { 1: 0 },
    'com.microsoft:EmbedLayerNormalization': { 0: 2, 1: 4, 7: 3 }, // input_ids, segment_ids, position_ids
    'com.microsoft:GatherBlockQuantized': { 1: 0 },
  };
  const tableRows = (n: Node, slot: number): number | undefined => {
    const tableSlot = lookups[`${n.domain}:${n.opType}`]?.[slot];
    if (tableSlot === undefined) return undefined;
    const table = n.inputs[tableSlot];
    const t = table?.initializer ?? (table?.producer?.opType === 'Constant' ? (() => { const a = table.producer!.attr('value'); return a?.type === 'tensor' ? a.value : undefined; })() : undefined);
    if (!t) return undefined;
    const a = n.attr(n.opType === 'GatherBlockQuantized' ? 'gather_axis' : 'axis');
    const axis = n.opType === 'EmbedLayerNormalization' ? 0 : a?.type === 'int' ? Number(a.value) : 0;
    return t.dims[axis < 0 ? axis + t.dims.length : axis];
  };
  for (const v of model.graph.inputs) {
    const t = v.type;
    if (t?.kind !== 'tensor' || (t.elemType !== DataType.INT64 && t.elemType !== DataType.INT32)) continue;
    let high: number | undefined;
    const seen = new Set<Value>();
    const visit = (x: Value, depth: number): void => {
      if (seen.has(x) || depth > 6) return;
      seen.add(x);
      for (const u of x.uses) {
        const n = u.node;
        const rows = tableRows(n, u.slot);
        if (rows !== undefined) {
          high = Math.min(high ?? rows, rows);
        } else if (passThrough.has(n.opType) && u.slot === 0 && n.outputs[0]) {
          visit(n.outputs[0], depth + 1);
        }
      }
    };
    visit(v, 0);
    if (high === undefined && /mask/i.test(v.name)) high = 2;
    if (high !== undefined) out[v.name] = high;
  }
  return out;
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
    const high = opts.intRanges?.[v.name] ?? opts.intHigh ?? 10;
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
