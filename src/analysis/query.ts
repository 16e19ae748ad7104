/**
 * Asking the graph: what a value's element type, shape and rank are, what constant it holds and
 * what number a scalar constant holds. One implementation of each, for the passes (through
 * passes/lib/query.ts, which re-exports this module), the pass framework's patterns
 * (src/pass/pattern.ts re-exports `constantValue`), the cost model, the input generator and the
 * bench. It lives in src/analysis so that code below passes/ in the layering can ask too.
 *
 * Types come from shape inference (`info`: `ctx.shapes()`, or `ctx.shapesOrExplain()`, which is
 * undefined when inference failed: how to react to a failure stays the caller's choice), and where
 * it says nothing, from what the model declares (`value.type`). Inference already merges the
 * declared types into its result, so the fallback only matters when `info` is undefined or does not
 * know the value.
 *
 * - `tensorTypeOf`, `shapeOf`: inferred only. Symbolic dims are inference's symbols (unified,
 *   resolved); a declared shape's names are not, so comparing the two would be wrong.
 * - `elemTypeOf`: inferred, else declared; 0 (undefined element type) reads as undefined.
 * - `rankOf`: inferred shape, else declared shape, else a constant's dims.
 * - `staticDims`: inferred dims' static values, else the declared dims (numbers; symbols as undefined).
 * - `constantValue`: an initializer's tensor (not a graph input's default) or a Constant node's.
 * - `scalarOf` / `tensorScalar`: the number in a one-element constant (any rank), float16 and
 *   bfloat16 decoded, bool as 0/1; undefined for other types (strings, fp8, 4-bit) or types outside
 *   `types` when that list is given (a matcher that only wants float constants says so).
 */
import { DataType } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import { fromBfloat16Bits, fromFloat16Bits } from '../ir/half.js';
import { Tensor } from '../ir/tensor.js';
import type { Sym } from './symbolic.js';
import type { SymType, TensorInfo } from './types.js';

/** The constant contents of a value: an initializer (not a graph input), or a Constant node's tensor. */
export function constantValue(v: Value | undefined): Tensor | undefined {
  if (!v) return undefined;
  if (v.initializer && !v.isGraphInput) return v.initializer;
  const p = v.producer;
  if (!p || p.opType !== 'Constant' || p.domain !== '') return undefined;
  for (const a of p.attributes.values()) {
    if (a.refAttrName !== undefined) return undefined;
    switch (a.name) {
      case 'value': return a.type === 'tensor' ? a.value : undefined;
      case 'value_float': return a.type === 'float' ? Tensor.float32([a.value], []) : undefined;
      case 'value_floats': return a.type === 'floats' ? Tensor.float32(a.value) : undefined;
      case 'value_int': return a.type === 'int' ? Tensor.int64([a.value], []) : undefined;
      case 'value_ints': return a.type === 'ints' ? Tensor.int64(a.value) : undefined;
    }
  }
  return undefined;
}

/** Where the queries read inferred types: an InferResult (or anything with its `types`), or undefined for none. */
export type TypeInfo = { readonly types: ReadonlyMap<Value, SymType> } | undefined;

/** The inferred tensor type of `v` (element type, and shape when known), or undefined. */
export function tensorTypeOf(info: TypeInfo, v: Value | undefined): TensorInfo | undefined {
  const t = v ? info?.types.get(v) : undefined;
  return t?.kind === 'tensor' ? t : undefined;
}

/** The inferred shape of `v` (inference's symbols), or undefined. */
export function shapeOf(info: TypeInfo, v: Value | undefined): Sym[] | undefined {
  return tensorTypeOf(info, v)?.shape;
}

/** The element type of `v` (DataType): inferred, else declared; undefined when neither knows it. */
export function elemTypeOf(info: TypeInfo, v: Value | undefined): number | undefined {
  if (!v) return undefined;
  const t = tensorTypeOf(info, v);
  if (t?.elemType) return t.elemType;
  return v.type?.kind === 'tensor' && v.type.elemType ? v.type.elemType : undefined;
}

/** The rank of `v`: inferred shape, else declared shape, else a constant's dims; undefined when unknown. */
export function rankOf(info: TypeInfo, v: Value | undefined): number | undefined {
  if (!v) return undefined;
  const s = shapeOf(info, v);
  if (s) return s.length;
  if (v.type?.kind === 'tensor' && v.type.shape) return v.type.shape.length;
  return constantValue(v)?.dims.length;
}

/** The dims of `v` as numbers where static (undefined where symbolic): inferred, else declared; undefined when the shape is unknown. */
export function staticDims(info: TypeInfo, v: Value | undefined): (number | undefined)[] | undefined {
  if (!v) return undefined;
  const s = shapeOf(info, v);
  if (s) return s.map((d) => d.value);
  if (v.type?.kind === 'tensor' && v.type.shape) return v.type.shape.map((d) => (typeof d === 'number' ? d : undefined));
  return undefined;
}

/** Element types whose single element reads as a number (float16/bfloat16 decoded, bool as 0/1). */
const NUMERIC = new Set<number>([
  DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16, DataType.BOOL,
  DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
  DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64,
]);

/** Float constants only (float32, float64): what the float matchers (GELU, Clip bounds) accept. */
export const FLOAT32_64: readonly number[] = [DataType.FLOAT, DataType.DOUBLE];

/** The number in a one-element tensor (any rank), or undefined (more elements, a non-numeric type, or a type outside `types`). */
export function tensorScalar(t: Tensor | undefined, types?: readonly number[]): number | undefined {
  if (!t || t.elementCount !== 1 || !NUMERIC.has(t.dataType)) return undefined;
  if (types && !types.includes(t.dataType)) return undefined;
  let raw: number | bigint | undefined;
  try {
    raw = t.toTypedArray()[0];
  } catch {
    return undefined; // a malformed constant (wrong byte count): not a number we can read
  }
  if (raw === undefined) return undefined;
  if (t.dataType === DataType.FLOAT16) return fromFloat16Bits(Number(raw));
  if (t.dataType === DataType.BFLOAT16) return fromBfloat16Bits(Number(raw));
  return Number(raw);
}

/** The number in a one-element constant `v` (initializer or Constant), or undefined; `types` limits the element types accepted. */
export function scalarOf(v: Value | undefined, types?: readonly number[]): number | undefined {
  return tensorScalar(constantValue(v), types);
}
