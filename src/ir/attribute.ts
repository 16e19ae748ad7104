/** Typed node attributes. */
import type { Int64 } from '../onnx/codec.js';
import type { SparseTensorProto } from '../onnx/proto.js';
import type { Graph } from './graph.js';
import type { Tensor } from './tensor.js';
import type { ValueType } from './types.js';

interface AttributeBase {
  name: string;
  /** In a function body: the attribute takes the value of this attribute of the calling node. */
  refAttrName?: string;
  /** AttributeProto fields the IR does not interpret (doc_string, unknown fields). */
  extra?: Record<string, unknown>;
}

export type Attribute = AttributeBase & (
  | { type: 'float'; value: number }
  | { type: 'int'; value: Int64 }
  | { type: 'string'; value: Uint8Array }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'sparse_tensor'; value: SparseTensorProto }
  | { type: 'type_proto'; value: ValueType }
  | { type: 'floats'; value: Float32Array }
  | { type: 'ints'; value: Int64[] }
  | { type: 'strings'; value: Uint8Array[] }
  | { type: 'tensors'; value: Tensor[] }
  | { type: 'graphs'; value: Graph[] }
  | { type: 'sparse_tensors'; value: SparseTensorProto[] }
  | { type: 'type_protos'; value: ValueType[] }
  /** AttributeType UNDEFINED: a reference attribute, or a model that left the type out */
  | { type: 'undefined'; value: undefined }
);

export type AttributeKind = Attribute['type'];

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export const attr = {
  float: (name: string, value: number): Attribute => ({ name, type: 'float', value }),
  int: (name: string, value: Int64): Attribute => ({ name, type: 'int', value }),
  string: (name: string, value: string): Attribute => ({ name, type: 'string', value: utf8.encode(value) }),
  tensor: (name: string, value: Tensor): Attribute => ({ name, type: 'tensor', value }),
  graph: (name: string, value: Graph): Attribute => ({ name, type: 'graph', value }),
  floats: (name: string, value: ArrayLike<number>): Attribute => ({ name, type: 'floats', value: Float32Array.from(value) }),
  ints: (name: string, value: ArrayLike<Int64>): Attribute => ({ name, type: 'ints', value: Array.from(value) }),
  strings: (name: string, value: string[]): Attribute => ({ name, type: 'strings', value: value.map((s) => utf8.encode(s)) }),
};

/**
 * A plain JS value as an attribute, as onnx.helper.make_attribute does: integers become INT,
 * other numbers FLOAT, strings STRING, arrays the list kind of their elements. Use `attr.float`
 * for a float attribute whose value happens to be integral.
 */
/**
 * Attribute names that are FLOAT (or FLOATS) wherever ONNX and com.microsoft use them, so that a
 * plain number like `{ alpha: 1 }` becomes FLOAT 1.0 and not INT 1 (which runtimes refuse).
 */
export const FLOAT_ATTRIBUTE_NAMES: ReadonlySet<string> = new Set([
  'alpha', 'beta', 'gamma', 'epsilon', 'momentum', 'bias', 'lambd', 'scale', 'spatial_scale', 'threshold',
  'seed', 'mean', 'low', 'high', 'min', 'max', 'value_float', 'extrapolation_value', 'cubic_coeff_a',
  'mask_filter_value', 'scales', 'activation_params', 'activation_alpha', 'activation_beta', 'value_floats',
]);

export function toAttribute(name: string, value: unknown): Attribute {
  const isFloat = FLOAT_ATTRIBUTE_NAMES.has(name);
  if (typeof value === 'number') return Number.isInteger(value) && !isFloat ? attr.int(name, value) : attr.float(name, value);
  if (typeof value === 'bigint') return attr.int(name, value);
  if (typeof value === 'string') return attr.string(name, value);
  if (value instanceof Float32Array) return attr.floats(name, value);
  if (Array.isArray(value)) {
    if (value.every((x) => typeof x === 'string')) return attr.strings(name, value as string[]);
    if (!isFloat && value.every((x) => typeof x === 'bigint' || (typeof x === 'number' && Number.isInteger(x)))) return attr.ints(name, value as Int64[]);
    if (value.every((x) => typeof x === 'number')) return attr.floats(name, value as number[]);
  }
  if (value && typeof value === 'object' && 'type' in value && 'name' in value) return value as Attribute;
  if (value && typeof value === 'object' && 'dataType' in value && 'dims' in value) return attr.tensor(name, value as Tensor);
  throw new Error(`attribute '${name}': cannot infer an attribute type for ${String(value)}`);
}

/** An INT attribute as a number (bigint values beyond 2^53 become +-Infinity), or `fallback`. */
export function attrInt(a: Attribute | undefined, fallback: number): number;
export function attrInt(a: Attribute | undefined): number | undefined;
export function attrInt(a: Attribute | undefined, fallback?: number): number | undefined {
  if (!a || a.type !== 'int') return fallback;
  return int64ToNumber(a.value);
}

export function attrInts(a: Attribute | undefined): number[] | undefined {
  if (!a || a.type !== 'ints') return undefined;
  return a.value.map(int64ToNumber);
}

/** A FLOAT attribute's value (an INT attribute is read as its number, as runtimes do), or `fallback`. */
export function attrFloat(a: Attribute | undefined, fallback?: number): number | undefined {
  if (a?.type === 'float') return a.value;
  if (a?.type === 'int') return int64ToNumber(a.value);
  return fallback;
}

export function attrString(a: Attribute | undefined, fallback?: string): string | undefined {
  if (!a || a.type !== 'string') return fallback;
  return fromUtf8.decode(a.value);
}

export function int64ToNumber(v: Int64): number {
  if (typeof v === 'number') return v;
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Infinity;
  if (v < BigInt(Number.MIN_SAFE_INTEGER)) return -Infinity;
  return Number(v);
}
