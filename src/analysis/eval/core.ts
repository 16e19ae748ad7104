/**
 * Shared machinery of the constant evaluator: the working array form of a tensor, the element-type
 * classes the evaluator computes in, the work cap, broadcasting and index helpers.
 *
 * Browser-safe: no Node built-ins (see DESIGN.md).
 */
import { attrInt, attrInts } from '../../ir/attribute.js';
import { DataType } from '../../ir/dtype.js';
import type { Node } from '../../ir/graph.js';
import { Tensor, typedArrayConstructor, type TypedArray } from '../../ir/tensor.js';

/** Thrown when the evaluator does not handle a case (op variant, dtype, size): evaluateNode returns undefined. */
export class Refuse extends Error {}

export function refuse(why: string): never {
  throw new Refuse(why);
}

/** Largest input or output (elements) the evaluator works on. */
export const MAX_ELEMENTS = 1_000_000;

/** A tensor as the evaluator works on it: dims and a typed array of the natural JS type. */
export interface Arr {
  dt: number;
  dims: number[];
  data: TypedArray;
}

/** Element classes: how values are computed on. */
export type Kind = 'float' | 'int' | 'bigint' | 'bool' | 'half';

export function kindOf(dt: number): Kind | undefined {
  switch (dt) {
    case DataType.FLOAT: case DataType.DOUBLE: return 'float';
    case DataType.INT8: case DataType.UINT8: case DataType.INT16: case DataType.UINT16: case DataType.INT32: case DataType.UINT32: return 'int';
    case DataType.INT64: case DataType.UINT64: return 'bigint';
    case DataType.BOOL: return 'bool';
    case DataType.FLOAT16: case DataType.BFLOAT16: return 'half'; // moved, cast; not computed on
    default: return undefined;
  }
}

export function isNumeric(dt: number): boolean {
  const k = kindOf(dt);
  return k === 'float' || k === 'int' || k === 'bigint';
}

export function count(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function checkSize(dims: readonly number[]): void {
  const n = count(dims);
  if (!(n <= MAX_ELEMENTS)) refuse(`${n} elements exceed the evaluator's cap`);
}

/** A fresh zeroed array of `dt` with `dims`; refuses beyond the cap. */
export function alloc(dt: number, dims: readonly number[]): Arr {
  for (const d of dims) if (!Number.isSafeInteger(d) || d < 0) refuse(`invalid dim ${d}`);
  checkSize(dims);
  const ctor = typedArrayConstructor(dt);
  if (!ctor || kindOf(dt) === undefined) refuse(`dtype ${dt}`);
  const n = count(dims);
  return { dt, dims: [...dims], data: new ctor(new ArrayBuffer(n * ctor.BYTES_PER_ELEMENT), 0, n) };
}

export function fromTensor(t: Tensor): Arr {
  if (kindOf(t.dataType) === undefined) refuse(`dtype ${t.dataType}`);
  checkSize(t.dims);
  return { dt: t.dataType, dims: [...t.dims], data: t.toTypedArray() };
}

export function toTensor(a: Arr): Tensor {
  return Tensor.fromTypedArray(a.dt, a.dims, a.data);
}

/** Row-major strides. */
export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) { s[i] = acc; acc *= dims[i]!; }
  return s;
}

/** Multidirectional (numpy) broadcast of shapes; refuses incompatible ones. */
export function broadcastShapes(shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!, o = out[off + i]!;
      if (d === o || d === 1) continue;
      if (o === 1) out[off + i] = d;
      else refuse(`shapes [${shapes.map((x) => x.join(',')).join('] [')}] do not broadcast`);
    }
  }
  return out;
}

/**
 * For each element of `outDims`, the flat index into an input of `inDims` broadcast to it.
 * Returns an Int32Array of offsets (inputs are capped well below 2^31 elements).
 */
export function broadcastIndex(inDims: readonly number[], outDims: readonly number[]): Int32Array {
  const n = count(outDims);
  const idx = new Int32Array(n);
  const rank = outDims.length;
  const off = rank - inDims.length;
  const inStrides = stridesOf(inDims);
  const bs = new Array<number>(rank).fill(0);
  for (let i = 0; i < inDims.length; i++) bs[off + i] = inDims[i] === 1 ? 0 : inStrides[i]!;
  if (inDims.length === rank && inDims.every((d, i) => d === outDims[i])) {
    for (let i = 0; i < n; i++) idx[i] = i;
    return idx;
  }
  const counter = new Array<number>(rank).fill(0);
  let cur = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = cur;
    for (let ax = rank - 1; ax >= 0; ax--) {
      counter[ax]!++;
      cur += bs[ax]!;
      if (counter[ax]! < outDims[ax]!) break;
      cur -= bs[ax]! * counter[ax]!;
      counter[ax] = 0;
    }
  }
  return idx;
}

/** An axis in [-rank, rank-1] made non-negative; refuses outside. */
export function normAxis(axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) refuse(`axis ${axis} out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** The values of an integer tensor as numbers (int64 beyond 2^53 keeps its order of magnitude: fine for clamping). */
export function intValues(t: Tensor | Arr): number[] {
  const dt = t instanceof Tensor ? t.dataType : t.dt;
  if (dt !== DataType.INT64 && dt !== DataType.INT32 && dt !== DataType.UINT64 && dt !== DataType.UINT32 && dt !== DataType.INT16 && dt !== DataType.INT8 && dt !== DataType.UINT8 && dt !== DataType.UINT16) {
    refuse(`expected an integer tensor, got dtype ${dt}`);
  }
  const data = t instanceof Tensor ? (checkSize(t.dims), t.toTypedArray()) : t.data;
  return Array.from(data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** A scalar (or one-element) tensor's value as a number. */
export function scalarNumber(t: Tensor): number {
  if (t.elementCount !== 1) refuse('expected one element');
  const k = kindOf(t.dataType);
  if (k === undefined || k === 'half') refuse(`dtype ${t.dataType}`);
  return Number(t.toTypedArray()[0]!);
}

export function int64Arr(values: readonly (number | bigint)[], dims: readonly number[] = [values.length]): Arr {
  const a = alloc(DataType.INT64, dims);
  const d = a.data as BigInt64Array;
  for (let i = 0; i < values.length; i++) d[i] = BigInt(values[i]!);
  return a;
}

/** Inputs of a node, `i`-th required. */
export function need(inputs: readonly (Tensor | undefined)[], i: number): Tensor {
  const t = inputs[i];
  if (!t) refuse(`input ${i} missing`);
  return t;
}

export function intAttr(node: Node, name: string, fallback: number): number {
  return attrInt(node.attr(name), fallback);
}

export function intsAttr(node: Node, name: string): number[] | undefined {
  return attrInts(node.attr(name));
}

export type Evaluator = (node: Node, inputs: (Tensor | undefined)[], opset: number) => Tensor[];
