/**
 * TypeScript shapes of the decoded ONNX messages (see schema.ts). A key is present only if the
 * field was on the wire; `$unknown` holds the raw bytes of fields the schema does not know.
 */
import type { Int64 } from './codec.js';

export type { Int64 };

interface Extensible { $unknown?: Uint8Array[] }

export interface StringStringEntryProto extends Extensible { key?: string; value?: string }
export interface OperatorSetIdProto extends Extensible { domain?: string; version?: Int64 }

export interface TensorShapeDimension extends Extensible { dimValue?: Int64; dimParam?: string; denotation?: string }
export interface TensorShapeProto extends Extensible { dim?: TensorShapeDimension[] }

export interface TypeProto extends Extensible {
  tensorType?: { elemType?: number; shape?: TensorShapeProto } & Extensible;
  sequenceType?: { elemType?: TypeProto } & Extensible;
  mapType?: { keyType?: number; valueType?: TypeProto } & Extensible;
  optionalType?: { elemType?: TypeProto } & Extensible;
  sparseTensorType?: { elemType?: number; shape?: TensorShapeProto } & Extensible;
  opaqueType?: { domain?: string; name?: string } & Extensible;
  denotation?: string;
}

export interface TensorProto extends Extensible {
  dims?: Int64[];
  dataType?: number;
  segment?: { begin?: Int64; end?: Int64 } & Extensible;
  floatData?: Float32Array;
  int32Data?: Int32Array;
  stringData?: Uint8Array[];
  int64Data?: Int64[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: StringStringEntryProto[];
  dataLocation?: number;
  doubleData?: Float64Array;
  uint64Data?: Int64[];
  metadataProps?: StringStringEntryProto[];
}

export interface SparseTensorProto extends Extensible { values?: TensorProto; indices?: TensorProto; dims?: Int64[] }

export interface AttributeProto extends Extensible {
  name?: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  tp?: TypeProto;
  floats?: Float32Array;
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  sparseTensors?: SparseTensorProto[];
  typeProtos?: TypeProto[];
}

export interface ValueInfoProto extends Extensible {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps?: StringStringEntryProto[];
}

export interface NodeProto extends Extensible {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute?: AttributeProto[];
  docString?: string;
  metadataProps?: StringStringEntryProto[];
  deviceConfigurations?: Record<string, unknown>[];
}

export interface TensorAnnotation extends Extensible { tensorName?: string; quantParameterTensorNames?: StringStringEntryProto[] }

export interface GraphProto extends Extensible {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparseInitializer?: SparseTensorProto[];
  docString?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  quantizationAnnotation?: TensorAnnotation[];
  metadataProps?: StringStringEntryProto[];
}

export interface FunctionProto extends Extensible {
  name?: string;
  input?: string[];
  output?: string[];
  attribute?: string[];
  attributeProto?: AttributeProto[];
  node?: NodeProto[];
  docString?: string;
  opsetImport?: OperatorSetIdProto[];
  domain?: string;
  overload?: string;
  valueInfo?: ValueInfoProto[];
  metadataProps?: StringStringEntryProto[];
}

export interface ModelProto extends Extensible {
  irVersion?: Int64;
  opsetImport?: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: GraphProto;
  metadataProps?: StringStringEntryProto[];
  trainingInfo?: Record<string, unknown>[];
  functions?: FunctionProto[];
  configuration?: Record<string, unknown>[];
}

/** TensorProto.DataLocation */
export const DATA_LOCATION_EXTERNAL = 1;

/** AttributeProto.AttributeType */
export const AttributeType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, SPARSE_TENSOR: 11, TYPE_PROTO: 13,
  FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10, SPARSE_TENSORS: 12, TYPE_PROTOS: 14,
} as const;
