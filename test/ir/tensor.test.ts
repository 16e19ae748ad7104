/** Tensor: constructors, raw and typed-field storage, packed 4-bit types, validation. */
import fs from 'node:fs';
import { describe, expect, test } from 'vitest';
import { DataType, rawByteLength } from '../../src/ir/dtype.js';
import { elementCount, Tensor, TensorError } from '../../src/ir/tensor.js';
import { parseModel } from '../../src/io.js';
import { readModel } from '../../src/node/files.js';
import { fixtureFile } from './util.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('constructors', () => {
  test('float32 stores little-endian raw bytes', () => {
    const t = Tensor.float32([1, -2, 0.5]);
    expect(t.dataType).toBe(DataType.FLOAT);
    expect(t.dims).toEqual([3]);
    expect(t.elementCount).toBe(3);
    expect(t.byteLength).toBe(12);
    expect(t.data.kind).toBe('raw');
    expect(Array.from(t.rawBytes())).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f]);
    expect(t.toTypedArray()).toBeInstanceOf(Float32Array);
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, -2, 0.5]);
    const m = Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(m.dims).toEqual([2, 3]);
    expect(() => Tensor.float32([1, 2, 3], [2, 2])).toThrow(/12 bytes of raw_data for shape \[2,2\] of float32 \(expected 16\)/);
  });

  test('int64 from numbers and bigints', () => {
    const t = Tensor.int64([1, -2, 2n ** 40n, 2 ** 40]);
    expect(t.dataType).toBe(DataType.INT64);
    expect(t.byteLength).toBe(32);
    expect(Array.from(t.rawBytes().subarray(8, 16))).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const a = t.toTypedArray();
    expect(a).toBeInstanceOf(BigInt64Array);
    expect(Array.from(a as BigInt64Array)).toEqual([1n, -2n, 2n ** 40n, 2n ** 40n]);
    expect(Tensor.int64([5], []).dims).toEqual([]);
    expect(Tensor.int64([5], []).elementCount).toBe(1);
  });

  test('int32', () => {
    const t = Tensor.int32([-1, 256], [2, 1]);
    expect(t.dataType).toBe(DataType.INT32);
    expect(Array.from(t.rawBytes())).toEqual([0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0]);
    expect(Array.from(t.toTypedArray() as Int32Array)).toEqual([-1, 256]);
  });

  test('strings', () => {
    const t = Tensor.strings(['héllo', '', 'x'], [3, 1]);
    expect(t.dataType).toBe(DataType.STRING);
    expect(t.dims).toEqual([3, 1]);
    expect(t.data.kind).toBe('stringData');
    expect(t.strings()).toEqual(['héllo', '', 'x']);
    expect(t.byteLength).toBeUndefined();
    expect(() => t.rawBytes()).toThrow(TensorError);
    expect(() => t.toTypedArray()).toThrow(TensorError);
    expect(() => t.validate('s')).not.toThrow();
    expect(Tensor.float32([1]).strings()).toEqual([]);
  });

  test('fromTypedArray copies (also from an offset view); fromRaw does not', () => {
    const src = Float32Array.of(9, 1, 2, 9);
    const t = Tensor.fromTypedArray(DataType.FLOAT, [2], src.subarray(1, 3));
    src[1] = 100;
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2]);
    const raw = new Uint8Array(Float32Array.of(3, 4).buffer);
    const v = Tensor.fromRaw(DataType.FLOAT, [2], raw);
    expect(v.rawBytes()).toBe(raw); // a view, not a copy
    expect(() => Tensor.fromTypedArray(DataType.FLOAT, [3], Float32Array.of(1, 2))).toThrow(TensorError);
  });

  test('toTypedArray returns a fresh copy each time', () => {
    const t = Tensor.float32([1, 2]);
    const a = t.toTypedArray() as Float32Array;
    a[0] = 42;
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2]);
    expect(t.rawBytes()[3]).toBe(0x3f);
  });

  test('toTypedArray of raw data at an unaligned offset into a larger buffer', () => {
    const buf = new Uint8Array(11);
    buf.set(new Uint8Array(Float32Array.of(1.5, -3).buffer), 3);
    const t = Tensor.fromRaw(DataType.FLOAT, [2], buf.subarray(3, 11));
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1.5, -3]);
  });

  // BUG: toTypedArray copies with `raw.slice()` and then views `copy.buffer` from offset 0. A Node
  // Buffer's slice() is a view, not a copy, so for Buffer-backed raw data (parseModel on the
  // result of fs.readFileSync, or any Buffer given to fromRaw) the values are read from the start of
  // the underlying pool/file buffer instead of the tensor's bytes.
  test('toTypedArray of raw data held in a Node Buffer', () => {
    const pool = Buffer.alloc(64, 0xaa);
    const buf = pool.subarray(16, 24);
    buf.set(new Uint8Array(Float32Array.of(1, 2).buffer));
    const t = Tensor.fromRaw(DataType.FLOAT, [2], buf);
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2]);
  });

  test('parseModel on fs.readFileSync bytes gives the same initializer values as readModel', () => {
    const file = fixtureFile('cnn-tiny-op13');
    const viaReadModel = readModel(file).model.graph.initializers[0]!.initializer!;
    const viaBuffer = parseModel(fs.readFileSync(file)).model.graph.initializers[0]!.initializer!;
    expect(Array.from(viaBuffer.toTypedArray() as Float32Array)).toEqual(Array.from(viaReadModel.toTypedArray() as Float32Array));
  });
});

describe('typed-field storage', () => {
  test('floatData', () => {
    const values = Float32Array.of(1, 2);
    const t = new Tensor(DataType.FLOAT, [2], { kind: 'floatData', values });
    expect(() => t.validate('t')).not.toThrow();
    expect(t.byteLength).toBe(8);
    const raw = t.rawBytes();
    expect(Array.from(raw)).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    raw[3] = 0; // a new buffer: the tensor's values are not touched
    expect(values[0]).toBe(1);
    const typed = t.toTypedArray() as Float32Array;
    expect(Array.from(typed)).toEqual([1, 2]);
    typed[0] = 7;
    expect(values[0]).toBe(1);
  });

  test('floatData from a subarray view', () => {
    const all = Float32Array.of(5, 6, 7, 8);
    const t = new Tensor(DataType.FLOAT, [2], { kind: 'floatData', values: all.subarray(1, 3) });
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([6, 7]);
  });

  test('doubleData', () => {
    const t = new Tensor(DataType.DOUBLE, [2], { kind: 'doubleData', values: Float64Array.of(0.1, -1e300) });
    expect(t.rawBytes().length).toBe(16);
    expect(Array.from(t.toTypedArray() as Float64Array)).toEqual([0.1, -1e300]);
  });

  test('int64Data with numbers and bigints', () => {
    const t = new Tensor(DataType.INT64, [3], { kind: 'int64Data', values: [1, -1, 2n ** 62n] });
    expect(() => t.validate('t')).not.toThrow();
    expect(Array.from(t.rawBytes().subarray(8, 16))).toEqual(new Array(8).fill(0xff));
    expect(Array.from(t.toTypedArray() as BigInt64Array)).toEqual([1n, -1n, 2n ** 62n]);
  });

  test('uint64Data for UINT64 and UINT32', () => {
    const u64 = new Tensor(DataType.UINT64, [2], { kind: 'uint64Data', values: [2n ** 64n - 1n, 3] });
    expect(Array.from(u64.toTypedArray() as BigUint64Array)).toEqual([2n ** 64n - 1n, 3n]);
    const u32 = new Tensor(DataType.UINT32, [2], { kind: 'uint64Data', values: [4294967295, 7] });
    expect(u32.rawBytes().length).toBe(8);
    expect(Array.from(u32.toTypedArray() as Uint32Array)).toEqual([4294967295, 7]);
  });

  test('int32Data for INT32, INT8, BOOL, FLOAT16 and UINT16', () => {
    const i32 = new Tensor(DataType.INT32, [2], { kind: 'int32Data', values: Int32Array.of(-5, 70000) });
    expect(Array.from(i32.toTypedArray() as Int32Array)).toEqual([-5, 70000]);
    const i8 = new Tensor(DataType.INT8, [3], { kind: 'int32Data', values: Int32Array.of(-1, 127, -128) });
    expect(Array.from(i8.rawBytes())).toEqual([0xff, 0x7f, 0x80]);
    expect(Array.from(i8.toTypedArray() as Int8Array)).toEqual([-1, 127, -128]);
    const b = new Tensor(DataType.BOOL, [2], { kind: 'int32Data', values: Int32Array.of(1, 0) });
    expect(Array.from(b.toTypedArray() as Uint8Array)).toEqual([1, 0]);
    const h = new Tensor(DataType.FLOAT16, [2], { kind: 'int32Data', values: Int32Array.of(0x3c00, 0xc000) });
    expect(Array.from(h.rawBytes())).toEqual([0x00, 0x3c, 0x00, 0xc0]);
    expect(h.toTypedArray()).toBeInstanceOf(Uint16Array);
    expect(Array.from(h.toTypedArray() as Uint16Array)).toEqual([0x3c00, 0xc000]);
    const u16 = new Tensor(DataType.UINT16, [1], { kind: 'int32Data', values: Int32Array.of(65535) });
    expect(Array.from(u16.toTypedArray() as Uint16Array)).toEqual([65535]);
  });

  test('complex64 holds two floats per element', () => {
    const t = new Tensor(DataType.COMPLEX64, [2], { kind: 'floatData', values: Float32Array.of(1, 2, 3, 4) });
    expect(() => t.validate('c')).not.toThrow();
    expect(t.byteLength).toBe(16);
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4]);
    const short = new Tensor(DataType.COMPLEX64, [2], { kind: 'floatData', values: Float32Array.of(1, 2) });
    expect(() => short.validate('c')).toThrow(/2 values in floatData for shape \[2\] \(expected 4\)/);
  });

  test('an empty tensor with no data field', () => {
    const t = new Tensor(DataType.FLOAT, [0, 3], { kind: 'none' });
    expect(t.elementCount).toBe(0);
    expect(() => t.validate('e')).not.toThrow();
    expect(t.rawBytes().length).toBe(0);
    expect((t.toTypedArray() as Float32Array).length).toBe(0);
  });
});

describe('packed 4-bit types', () => {
  test('raw INT4/UINT4 take ceil(n/2) bytes', () => {
    expect(rawByteLength(DataType.INT4, 3)).toBe(2);
    expect(rawByteLength(DataType.UINT4, 4)).toBe(2);
    expect(rawByteLength(DataType.INT4, 0)).toBe(0);
    expect(rawByteLength(DataType.INT2, 5)).toBe(2);
    for (const dt of [DataType.INT4, DataType.UINT4]) {
      expect(() => Tensor.fromRaw(dt, [3], bytes(0x21, 0x03)).validate('q')).not.toThrow();
      expect(() => Tensor.fromRaw(dt, [4], bytes(0x21, 0x43)).validate('q')).not.toThrow();
      expect(() => Tensor.fromRaw(dt, [2, 3], bytes(1, 2, 3)).validate('q')).not.toThrow();
      expect(() => Tensor.fromRaw(dt, [3], bytes(0x21)).validate('q')).toThrow(/q: 1 bytes of raw_data for shape \[3\] of u?int4 \(expected 2\)/);
      expect(() => Tensor.fromRaw(dt, [3], bytes(1, 2, 3)).validate('q')).toThrow(/expected 2/);
      expect(() => Tensor.fromRaw(dt, [4], bytes(1, 2, 3, 4)).validate('q')).toThrow(/4 bytes .*expected 2/);
    }
    const t = Tensor.fromRaw(DataType.INT4, [3], bytes(0x21, 0x03));
    expect(t.byteLength).toBe(2);
    expect(Array.from(t.toTypedArray() as Uint8Array)).toEqual([0x21, 0x03]); // packed bytes, as documented
  });

  test('int32Data for INT4 holds one packed byte per entry', () => {
    const t = new Tensor(DataType.INT4, [3], { kind: 'int32Data', values: Int32Array.of(0x21, 0x03) });
    expect(() => t.validate('q')).not.toThrow();
    expect(t.byteLength).toBe(2);
    expect(Array.from(t.rawBytes())).toEqual([0x21, 0x03]);
    const wrong = new Tensor(DataType.INT4, [3], { kind: 'int32Data', values: Int32Array.of(1, 2, 3) });
    expect(() => wrong.validate('q')).toThrow(/3 values in int32Data for shape \[3\] \(expected 2\)/);
  });
});

describe('validate', () => {
  test('negative and non-integer dims', () => {
    expect(() => new Tensor(DataType.FLOAT, [2, -1], { kind: 'none' }).validate('w')).toThrow(/^w: invalid dim -1 in shape \[2,-1\]$/);
    expect(() => new Tensor(DataType.FLOAT, [1.5], { kind: 'raw', bytes: new Uint8Array(6) }).validate('w')).toThrow(/invalid dim 1.5/);
    expect(() => new Tensor(DataType.FLOAT, [2 ** 30, 2 ** 30, 2 ** 30], { kind: 'none' }).validate('w')).toThrow(/too many elements/);
  });

  test('data length does not match the shape', () => {
    expect(() => Tensor.fromRaw(DataType.FLOAT, [3], new Uint8Array(8)).validate('w')).toThrow(/^w: 8 bytes of raw_data for shape \[3\] of float32 \(expected 12\)$/);
    expect(() => new Tensor(DataType.FLOAT, [2], { kind: 'floatData', values: Float32Array.of(1, 2, 3) }).validate('w'))
      .toThrow(/^w: 3 values in floatData for shape \[2\] \(expected 2\)$/);
    expect(() => new Tensor(DataType.INT64, [2], { kind: 'int64Data', values: [1] }).validate('w')).toThrow(/1 values in int64Data/);
    expect(() => new Tensor(DataType.FLOAT, [2], { kind: 'none' }).validate('w')).toThrow(/^w: no data for 2 elements of float32$/);
    expect(() => Tensor.strings(['a', 'b'], [3]).validate('s')).toThrow(/2 values in stringData for shape \[3\] \(expected 3\)/);
  });

  test('values in the wrong field, and raw data for strings', () => {
    expect(() => new Tensor(DataType.FLOAT, [1], { kind: 'int32Data', values: Int32Array.of(1) }).validate('w'))
      .toThrow(/^w: float32 values stored in int32Data$/);
    expect(() => new Tensor(DataType.INT64, [1], { kind: 'int32Data', values: Int32Array.of(1) }).validate('w')).toThrow(/int64 values stored in int32Data/);
    expect(() => Tensor.fromRaw(DataType.STRING, [1], new Uint8Array(1)).validate('w')).toThrow(/raw_data is not allowed for string tensors/);
  });

  test('a segment is not checked against the full shape; an unknown data type keeps its bytes', () => {
    const seg = new Tensor(DataType.FLOAT, [100], { kind: 'raw', bytes: new Uint8Array(8) }, { segment: { begin: 0, end: 2 } });
    expect(() => seg.validate('s')).not.toThrow();
    expect(() => Tensor.fromRaw(99, [2], new Uint8Array(3)).validate('new')).not.toThrow();
  });
});

describe('reshaped', () => {
  test('same data, new dims; the original is unchanged', () => {
    const t = Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]);
    const r = t.reshaped([3, 1, 2]);
    expect(r.dims).toEqual([3, 1, 2]);
    expect(r.dataType).toBe(DataType.FLOAT);
    expect(r.data).toBe(t.data);
    expect(t.dims).toEqual([2, 3]);
    expect(Array.from(r.toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.reshaped([6]).elementCount).toBe(6);
    expect(() => t.reshaped([4, 2])).toThrow(/cannot reshape \[2,3\] to \[4,2\]/);
    const scalar = Tensor.float32([9], []);
    expect(scalar.reshaped([1, 1]).dims).toEqual([1, 1]);
  });

  test('keeps typed-field storage and extra fields', () => {
    const t = new Tensor(DataType.FLOAT, [4], { kind: 'floatData', values: Float32Array.of(1, 2, 3, 4) }, { docString: 'd' }, 'name');
    const r = t.reshaped([2, 2]);
    expect(r.data.kind).toBe('floatData');
    expect(r.extra).toEqual({ docString: 'd' });
    expect(r.name).toBe('name');
  });
});

test('elementCount', () => {
  expect(elementCount([])).toBe(1);
  expect(elementCount([2, 0, 3])).toBe(0);
  expect(elementCount([2, 3, 4])).toBe(24);
});
