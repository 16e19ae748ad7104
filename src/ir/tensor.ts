/**
 * Constant tensor data. The bytes stay a zero-copy view into the loaded file (or external-data
 * file) until something asks for values; nothing ever writes into a tensor's buffer, so views can
 * be shared freely. Values stored in typed fields (float_data, int64_data, ...) keep that form so
 * that a round trip reproduces the model.
 */
import type { Int64 } from '../onnx/codec.js';
import { DataType, dataField, dataTypeBits, dataTypeName, rawByteLength } from './dtype.js';

export type TensorData =
  | { kind: 'raw'; bytes: Uint8Array }
  | { kind: 'floatData'; values: Float32Array }
  | { kind: 'int32Data'; values: Int32Array }
  | { kind: 'int64Data'; values: Int64[] }
  | { kind: 'doubleData'; values: Float64Array }
  | { kind: 'uint64Data'; values: Int64[] }
  | { kind: 'stringData'; values: Uint8Array[] }
  /** no data field at all: an empty tensor */
  | { kind: 'none' };

export class TensorError extends Error {}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Elements per entry of the typed field: complex types use two, packed 4-bit types share an int32. */
function fieldEntries(dataType: number, count: number): number {
  if (dataType === DataType.COMPLEX64 || dataType === DataType.COMPLEX128) return 2 * count;
  const bits = dataTypeBits(dataType);
  if (bits !== undefined && bits < 8) return Math.ceil((count * bits) / 8);
  return count;
}

export class Tensor {
  /**
   * @param extra TensorProto fields the IR does not interpret (doc_string, segment, metadata_props,
   *   unknown fields); written back unchanged.
   */
  constructor(
    readonly dataType: number,
    readonly dims: readonly number[],
    readonly data: TensorData,
    readonly extra: Readonly<Record<string, unknown>> = {},
    /** The TensorProto's own name; an initializer's name is its Value's. */
    readonly name?: string,
  ) {}

  get elementCount(): number {
    return elementCount(this.dims);
  }

  /** Bytes of the values in raw (little-endian) layout; undefined for strings. */
  get byteLength(): number | undefined {
    if (this.data.kind === 'raw') return this.data.bytes.length;
    return rawByteLength(this.dataType, this.elementCount);
  }

  /** Check that dims and data agree. Throws TensorError naming the problem. */
  validate(what: string): void {
    for (const d of this.dims) {
      if (!Number.isSafeInteger(d) || d < 0) throw new TensorError(`${what}: invalid dim ${d} in shape [${this.dims.join(',')}]`);
    }
    const count = this.elementCount;
    if (!Number.isSafeInteger(count)) throw new TensorError(`${what}: shape [${this.dims.join(',')}] has too many elements`);
    if ('segment' in this.extra) return; // a segment holds part of the tensor
    const d = this.data;
    if (d.kind === 'none') {
      if (count !== 0 && this.dataType !== DataType.UNDEFINED) {
        throw new TensorError(`${what}: no data for ${count} elements of ${dataTypeName(this.dataType)}`);
      }
      return;
    }
    if (d.kind === 'raw') {
      const expected = rawByteLength(this.dataType, count);
      if (expected === undefined) {
        if (this.dataType === DataType.STRING || this.dataType === DataType.UNDEFINED) {
          throw new TensorError(`${what}: raw_data is not allowed for ${dataTypeName(this.dataType)} tensors`);
        }
        return; // a data type newer than this build: keep the bytes as they are
      }
      if (d.bytes.length !== expected) {
        throw new TensorError(`${what}: ${d.bytes.length} bytes of raw_data for shape [${this.dims.join(',')}] of ${dataTypeName(this.dataType)} (expected ${expected})`);
      }
      return;
    }
    const expectedField = dataField(this.dataType);
    if (expectedField !== undefined && expectedField !== d.kind) {
      throw new TensorError(`${what}: ${dataTypeName(this.dataType)} values stored in ${d.kind}`);
    }
    const entries = fieldEntries(this.dataType, count);
    if (d.values.length !== entries) {
      throw new TensorError(`${what}: ${d.values.length} values in ${d.kind} for shape [${this.dims.join(',')}] (expected ${entries})`);
    }
  }

  /**
   * The values as little-endian raw bytes (the raw_data layout). A view when the tensor is stored
   * as raw_data; otherwise a new buffer converted from the typed field.
   */
  rawBytes(): Uint8Array {
    const d = this.data;
    switch (d.kind) {
      case 'raw': return d.bytes;
      case 'none': return new Uint8Array(0);
      case 'stringData': throw new TensorError('string tensors have no raw byte layout');
      case 'floatData': return new Uint8Array(d.values.buffer.slice(d.values.byteOffset, d.values.byteOffset + d.values.byteLength));
      case 'doubleData': return new Uint8Array(d.values.buffer.slice(d.values.byteOffset, d.values.byteOffset + d.values.byteLength));
      case 'int64Data': return new Uint8Array(BigInt64Array.from(d.values, (v) => BigInt(v)).buffer);
      case 'uint64Data': {
        if (this.dataType === DataType.UINT32) return new Uint8Array(Uint32Array.from(d.values, (v) => Number(v)).buffer);
        return new Uint8Array(BigUint64Array.from(d.values, (v) => BigInt.asUintN(64, BigInt(v))).buffer);
      }
      case 'int32Data': return int32FieldToRaw(this.dataType, d.values, this.elementCount);
    }
  }

  /**
   * The values as a typed array of the natural JS type (Float32Array for float32, BigInt64Array for
   * int64, Uint16Array holding the bits of float16/bfloat16, Uint8Array for bool, fp8 and packed
   * 4-bit types, ...). Always a fresh copy: callers may modify it.
   */
  toTypedArray(): TypedArray {
    const raw = this.rawBytes();
    // new Uint8Array(typedArray) always copies (Buffer#slice would return a view) and starts at offset 0
    const copy = new Uint8Array(raw);
    const ctor = typedArrayConstructor(this.dataType);
    if (!ctor) throw new TensorError(`no typed array for ${dataTypeName(this.dataType)}`);
    return new ctor(copy.buffer, 0, copy.byteLength / ctor.BYTES_PER_ELEMENT);
  }

  /** The strings of a STRING tensor, decoded as UTF-8. */
  strings(): string[] {
    if (this.data.kind !== 'stringData') return [];
    const dec = new TextDecoder();
    return this.data.values.map((s) => dec.decode(s));
  }

  /** A new tensor with the same data and a different shape (same element count). */
  reshaped(dims: readonly number[]): Tensor {
    if (elementCount(dims) !== this.elementCount) throw new TensorError(`cannot reshape [${this.dims.join(',')}] to [${dims.join(',')}]`);
    return new Tensor(this.dataType, [...dims], this.data, this.extra, this.name);
  }

  /** A tensor over little-endian raw bytes (not copied). */
  static fromRaw(dataType: number, dims: readonly number[], bytes: Uint8Array): Tensor {
    return new Tensor(dataType, [...dims], { kind: 'raw', bytes });
  }

  /** A tensor from a typed array in the layout of toTypedArray(); copies the values. */
  static fromTypedArray(dataType: number, dims: readonly number[], values: TypedArray): Tensor {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
    const t = Tensor.fromRaw(dataType, dims, bytes);
    t.validate('tensor');
    return t;
  }

  static float32(values: ArrayLike<number>, dims: readonly number[] = [values.length]): Tensor {
    return Tensor.fromTypedArray(DataType.FLOAT, dims, Float32Array.from(values));
  }

  static int64(values: ArrayLike<number | bigint>, dims: readonly number[] = [values.length]): Tensor {
    return Tensor.fromTypedArray(DataType.INT64, dims, BigInt64Array.from(Array.from(values), (v) => BigInt(v)));
  }

  static int32(values: ArrayLike<number>, dims: readonly number[] = [values.length]): Tensor {
    return Tensor.fromTypedArray(DataType.INT32, dims, Int32Array.from(values));
  }

  static strings(values: string[], dims: readonly number[] = [values.length]): Tensor {
    const enc = new TextEncoder();
    return new Tensor(DataType.STRING, [...dims], { kind: 'stringData', values: values.map((s) => enc.encode(s)) });
  }
}

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

type TypedArrayCtor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

export function typedArrayConstructor(dataType: number): TypedArrayCtor | undefined {
  switch (dataType) {
    case DataType.FLOAT: case DataType.COMPLEX64: return Float32Array;
    case DataType.DOUBLE: case DataType.COMPLEX128: return Float64Array;
    case DataType.INT8: return Int8Array;
    case DataType.INT16: return Int16Array;
    case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: return Uint16Array;
    case DataType.INT32: return Int32Array;
    case DataType.UINT32: return Uint32Array;
    case DataType.INT64: return BigInt64Array;
    case DataType.UINT64: return BigUint64Array;
    case DataType.STRING: case DataType.UNDEFINED: return undefined;
    default: return dataTypeBits(dataType) !== undefined ? Uint8Array : undefined; // bool, uint8, fp8, packed 4-bit
  }
}

/** int32_data holds one element per entry (bit pattern for 16-bit floats), or two 4-bit elements per entry. */
function int32FieldToRaw(dataType: number, values: Int32Array, count: number): Uint8Array {
  const bits = dataTypeBits(dataType) ?? 32;
  const out = new Uint8Array(Math.ceil((count * bits) / 8));
  const view = new DataView(out.buffer);
  if (bits < 8) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]! & 0xff;
  } else if (bits === 8) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]! & 0xff;
  } else if (bits === 16) {
    for (let i = 0; i < values.length; i++) view.setUint16(2 * i, values[i]! & 0xffff, true);
  } else {
    for (let i = 0; i < values.length; i++) view.setInt32(4 * i, values[i]!, true);
  }
  return out;
}

/** Transpose a constant tensor (any fixed-width element type of 8 bits or more). */
export function transposeTensor(t: Tensor, perm: readonly number[]): Tensor | undefined {
  const bits = dataTypeBits(t.dataType);
  if (!bits || bits % 8 !== 0 || t.dataType === DataType.STRING || perm.length !== t.dims.length) return undefined;
  if ('segment' in t.extra) return undefined;
  const es = bits / 8;
  const src = t.rawBytes();
  const r = t.dims.length;
  const outDims = perm.map((a) => t.dims[a]!);
  const inStrides = new Array<number>(r).fill(1);
  for (let i = r - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1]! * t.dims[i + 1]!;
  const dst = new Uint8Array(src.length);
  const n = t.elementCount;
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < n; o++) {
    let off = 0;
    for (let i = 0; i < r; i++) off += idx[i]! * inStrides[perm[i]!]!;
    dst.set(src.subarray(off * es, off * es + es), o * es);
    for (let i = r - 1; i >= 0; i--) {
      if (++idx[i]! < outDims[i]!) break;
      idx[i] = 0;
    }
  }
  return Tensor.fromRaw(t.dataType, outDims, dst);
}
