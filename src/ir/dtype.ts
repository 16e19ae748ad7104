/** ONNX element types (TensorProto.DataType), their names and storage sizes. */

export const DataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
  FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18, FLOAT8E5M2: 19, FLOAT8E5M2FNUZ: 20, UINT4: 21, INT4: 22,
  FLOAT4E2M1: 23, FLOAT8E8M0: 24, UINT2: 25, INT2: 26,
} as const;
export type DataType = number;

interface DTypeInfo {
  readonly name: string;
  /** bits per element in raw_data (4 for the packed 4-bit types); 0 for STRING/UNDEFINED */
  readonly bits: number;
  /** TensorProto field that holds the values when raw_data is not used */
  readonly field: 'floatData' | 'int32Data' | 'int64Data' | 'doubleData' | 'uint64Data' | 'stringData' | undefined;
}

const INFO: Record<number, DTypeInfo> = {
  0: { name: 'undefined', bits: 0, field: undefined },
  1: { name: 'float32', bits: 32, field: 'floatData' },
  2: { name: 'uint8', bits: 8, field: 'int32Data' },
  3: { name: 'int8', bits: 8, field: 'int32Data' },
  4: { name: 'uint16', bits: 16, field: 'int32Data' },
  5: { name: 'int16', bits: 16, field: 'int32Data' },
  6: { name: 'int32', bits: 32, field: 'int32Data' },
  7: { name: 'int64', bits: 64, field: 'int64Data' },
  8: { name: 'string', bits: 0, field: 'stringData' },
  9: { name: 'bool', bits: 8, field: 'int32Data' },
  10: { name: 'float16', bits: 16, field: 'int32Data' },
  11: { name: 'float64', bits: 64, field: 'doubleData' },
  12: { name: 'uint32', bits: 32, field: 'uint64Data' },
  13: { name: 'uint64', bits: 64, field: 'uint64Data' },
  14: { name: 'complex64', bits: 64, field: 'floatData' },
  15: { name: 'complex128', bits: 128, field: 'doubleData' },
  16: { name: 'bfloat16', bits: 16, field: 'int32Data' },
  17: { name: 'float8e4m3fn', bits: 8, field: 'int32Data' },
  18: { name: 'float8e4m3fnuz', bits: 8, field: 'int32Data' },
  19: { name: 'float8e5m2', bits: 8, field: 'int32Data' },
  20: { name: 'float8e5m2fnuz', bits: 8, field: 'int32Data' },
  21: { name: 'uint4', bits: 4, field: 'int32Data' },
  22: { name: 'int4', bits: 4, field: 'int32Data' },
  23: { name: 'float4e2m1', bits: 4, field: 'int32Data' },
  24: { name: 'float8e8m0', bits: 8, field: 'int32Data' },
  25: { name: 'uint2', bits: 2, field: 'int32Data' },
  26: { name: 'int2', bits: 2, field: 'int32Data' },
};

export function isKnownDataType(t: number): boolean {
  return INFO[t] !== undefined;
}

/** Short lowercase name (float32, int64, float8e4m3fn, ...); `dtype(N)` for types newer than this table. */
export function dataTypeName(t: number): string {
  return INFO[t]?.name ?? `dtype(${t})`;
}

const BY_NAME = new Map<string, number>(Object.entries(INFO).map(([k, v]) => [v.name, Number(k)]));
BY_NAME.set('float', DataType.FLOAT).set('double', DataType.DOUBLE).set('half', DataType.FLOAT16);

/** Parse a type name as printed by dataTypeName (also accepts float, double, half). */
export function dataTypeFromName(name: string): number | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** Bits per element in raw_data; undefined for STRING, UNDEFINED and unknown types. */
export function dataTypeBits(t: number): number | undefined {
  const bits = INFO[t]?.bits;
  return bits ? bits : undefined;
}

/** Bytes that `count` elements take in raw_data (packed sub-byte types round up). */
export function rawByteLength(t: number, count: number): number | undefined {
  const bits = dataTypeBits(t);
  return bits === undefined ? undefined : Math.ceil((count * bits) / 8);
}

/** The TensorProto field used for this type when raw_data is not. */
export function dataField(t: number): DTypeInfo['field'] {
  return INFO[t]?.field;
}

/** float16 or bfloat16 (the half-precision float types). */
export function isHalfFloat(elemType: number | undefined): boolean {
  return elemType === DataType.FLOAT16 || elemType === DataType.BFLOAT16;
}
