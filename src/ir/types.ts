/** Types of values: tensors with (possibly symbolic) shapes, and the other ONNX value kinds. */
import { dataTypeName } from './dtype.js';

/** A dimension: a size, a symbolic name (dim_param), or null when unknown. */
export type Dim = number | string | null;

export interface TensorType {
  kind: 'tensor' | 'sparse_tensor';
  elemType: number;
  /** undefined: rank unknown */
  shape?: Dim[];
  /** TensorShapeProto.Dimension.denotation per dim, kept when the model has them */
  dimDenotations?: (string | undefined)[];
  denotation?: string;
}
export interface SequenceType { kind: 'sequence'; elem?: ValueType; denotation?: string }
export interface MapType { kind: 'map'; keyType: number; value?: ValueType; denotation?: string }
export interface OptionalType { kind: 'optional'; elem?: ValueType; denotation?: string }
export interface OpaqueType { kind: 'opaque'; domain: string; name: string; denotation?: string }
/** A TypeProto with none of its kinds set. */
export interface EmptyType { kind: 'none'; denotation?: string }

export type ValueType = TensorType | SequenceType | MapType | OptionalType | OpaqueType | EmptyType;

export function tensorType(elemType: number, shape?: Dim[]): TensorType {
  return shape === undefined ? { kind: 'tensor', elemType } : { kind: 'tensor', elemType, shape: [...shape] };
}

export function formatShape(shape: Dim[] | undefined): string {
  if (shape === undefined) return '[?rank]';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(',')}]`;
}

export function formatType(t: ValueType | undefined): string {
  if (t === undefined) return '?';
  switch (t.kind) {
    case 'tensor': return `${dataTypeName(t.elemType)}${formatShape(t.shape)}`;
    case 'sparse_tensor': return `sparse ${dataTypeName(t.elemType)}${formatShape(t.shape)}`;
    case 'sequence': return `seq(${formatType(t.elem)})`;
    case 'map': return `map(${dataTypeName(t.keyType)}, ${formatType(t.value)})`;
    case 'optional': return `optional(${formatType(t.elem)})`;
    case 'opaque': return `opaque(${t.domain}.${t.name})`;
    case 'none': return 'none';
  }
}

/** Structural equality of two types (denotations included). */
export function sameType(a: ValueType | undefined, b: ValueType | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
