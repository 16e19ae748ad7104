/** IR -> ModelProto: the inverse of from-proto.ts, `extra` bags written back unchanged. */
import {
  AttributeType, type AttributeProto, type FunctionProto, type GraphProto, type ModelProto, type NodeProto,
  type TensorProto, type TensorShapeDimension, type TypeProto, type ValueInfoProto,
} from '../onnx/proto.js';
import type { Attribute } from './attribute.js';
import type { Graph, Node, Value } from './graph.js';
import { metadataToProto, opsetToProto, type Func, type Model } from './model.js';
import type { Tensor } from './tensor.js';
import type { ValueType } from './types.js';

export function typeToProto(t: ValueType): TypeProto {
  const denotation = t.denotation !== undefined ? { denotation: t.denotation } : {};
  switch (t.kind) {
    case 'tensor':
    case 'sparse_tensor': {
      const body: { elemType: number; shape?: { dim: TensorShapeDimension[] } } = { elemType: t.elemType };
      if (t.shape) {
        body.shape = {
          dim: t.shape.map((d, i) => {
            const dim: TensorShapeDimension = typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {};
            const den = t.dimDenotations?.[i];
            if (den !== undefined) dim.denotation = den;
            return dim;
          }),
        };
      }
      return t.kind === 'tensor' ? { tensorType: body, ...denotation } : { sparseTensorType: body, ...denotation };
    }
    case 'sequence': return { sequenceType: t.elem ? { elemType: typeToProto(t.elem) } : {}, ...denotation };
    case 'optional': return { optionalType: t.elem ? { elemType: typeToProto(t.elem) } : {}, ...denotation };
    case 'map': return { mapType: { keyType: t.keyType, ...(t.value ? { valueType: typeToProto(t.value) } : {}) }, ...denotation };
    case 'opaque': return { opaqueType: { domain: t.domain, name: t.name }, ...denotation };
    case 'none': return { ...denotation };
  }
}

export function tensorToProto(t: Tensor, name?: string): TensorProto {
  const p: TensorProto = { ...t.extra, dims: [...t.dims], dataType: t.dataType };
  const n = name ?? t.name;
  if (n !== undefined) p.name = n;
  const d = t.data;
  switch (d.kind) {
    case 'raw': p.rawData = d.bytes; break;
    case 'floatData': p.floatData = d.values; break;
    case 'int32Data': p.int32Data = d.values; break;
    case 'int64Data': p.int64Data = d.values; break;
    case 'doubleData': p.doubleData = d.values; break;
    case 'uint64Data': p.uint64Data = d.values; break;
    case 'stringData': p.stringData = d.values; break;
    case 'none': break;
  }
  return p;
}

const ATTR_CODE: Record<Attribute['type'], number> = {
  float: AttributeType.FLOAT, int: AttributeType.INT, string: AttributeType.STRING, tensor: AttributeType.TENSOR,
  graph: AttributeType.GRAPH, sparse_tensor: AttributeType.SPARSE_TENSOR, type_proto: AttributeType.TYPE_PROTO,
  floats: AttributeType.FLOATS, ints: AttributeType.INTS, strings: AttributeType.STRINGS, tensors: AttributeType.TENSORS,
  graphs: AttributeType.GRAPHS, sparse_tensors: AttributeType.SPARSE_TENSORS, type_protos: AttributeType.TYPE_PROTOS,
  undefined: AttributeType.UNDEFINED,
};

export function attributeToProto(a: Attribute): AttributeProto {
  const p: AttributeProto = { ...a.extra, name: a.name };
  p.type = ATTR_CODE[a.type];
  if (a.refAttrName !== undefined) {
    // a reference to the calling node's attribute carries no value of its own
    p.refAttrName = a.refAttrName;
    return p;
  }
  switch (a.type) {
    case 'float': p.f = a.value; break;
    case 'int': p.i = a.value; break;
    case 'string': p.s = a.value; break;
    case 'tensor': p.t = tensorToProto(a.value); break;
    case 'graph': p.g = graphToProto(a.value); break;
    case 'sparse_tensor': p.sparseTensor = a.value; break;
    case 'type_proto': p.tp = typeToProto(a.value); break;
    case 'floats': p.floats = a.value; break;
    case 'ints': p.ints = a.value; break;
    case 'strings': p.strings = a.value; break;
    case 'tensors': p.tensors = a.value.map((t) => tensorToProto(t)); break;
    case 'graphs': p.graphs = a.value.map(graphToProto); break;
    case 'sparse_tensors': p.sparseTensors = a.value; break;
    case 'type_protos': p.typeProtos = a.value.map(typeToProto); break;
    case 'undefined': break;
  }
  return p;
}

function nodeToProto(n: Node): NodeProto {
  const p: NodeProto = { ...n.extra };
  p.input = n.inputs.map((v) => v?.name ?? '');
  p.output = n.outputs.map((v) => v?.name ?? '');
  if (n.name !== '' || n.explicitEmpty?.includes('name')) p.name = n.name;
  p.opType = n.opType;
  if (n.domain !== '' || n.explicitEmpty?.includes('domain')) p.domain = n.domain;
  if (n.attributes.size) p.attribute = [...n.attributes.values()].map(attributeToProto);
  return p;
}

function valueInfo(v: Value): ValueInfoProto {
  const p: ValueInfoProto = { ...v.info, name: v.name };
  if (v.type) p.type = typeToProto(v.type);
  return p;
}

export function graphToProto(g: Graph): GraphProto {
  const p: GraphProto = { ...g.extra, name: g.name };
  p.node = g.nodes.map(nodeToProto);
  const init: TensorProto[] = [];
  const sparse = [];
  for (const v of g.initializers) {
    if (v.initializer) init.push(tensorToProto(v.initializer, v.name));
    else if (v.sparseInitializer) sparse.push(v.sparseInitializer);
  }
  if (init.length) p.initializer = init;
  if (sparse.length) p.sparseInitializer = sparse;
  p.input = g.inputs.map(valueInfo);
  p.output = g.outputs.map(valueInfo);
  // value_info: what the loaded model listed, plus every computed value whose type is known.
  const vi = g.definedValues().filter((v) => v.inValueInfo || (v.type !== undefined && v.producer !== undefined && !v.isGraphOutput));
  if (vi.length) p.valueInfo = vi.map(valueInfo);
  return p;
}

function funcToProto(f: Func): FunctionProto {
  const body = f.body;
  const p: FunctionProto = { ...f.extra, name: f.name };
  p.input = body.inputs.map((v) => v.name);
  p.output = body.outputs.map((v) => v.name);
  if (f.attributeNames.length) p.attribute = f.attributeNames;
  if (f.attributeDefaults.length) p.attributeProto = f.attributeDefaults.map(attributeToProto);
  p.node = body.nodes.map(nodeToProto);
  if (f.opsetImports.length) p.opsetImport = f.opsetImports.map(opsetToProto);
  if (f.domain !== '') p.domain = f.domain;
  if (f.overload !== undefined) p.overload = f.overload;
  const vi = body.definedValues().filter((v) => v.inValueInfo || (v.type !== undefined && v.producer !== undefined));
  if (vi.length) p.valueInfo = vi.map(valueInfo);
  return p;
}

export function modelToProto(m: Model): ModelProto {
  const p: ModelProto = { ...m.extra, irVersion: m.irVersion };
  if (m.opsetImports.length) p.opsetImport = m.opsetImports.map(opsetToProto);
  if (m.producerName !== undefined) p.producerName = m.producerName;
  if (m.producerVersion !== undefined) p.producerVersion = m.producerVersion;
  if (m.domain !== undefined) p.domain = m.domain;
  if (m.modelVersion !== undefined) p.modelVersion = m.modelVersion;
  if (m.docString !== undefined) p.docString = m.docString;
  p.graph = graphToProto(m.graph);
  if (m.metadataProps.length) p.metadataProps = m.metadataProps.map(metadataToProto);
  if (m.functions.length) p.functions = m.functions.map(funcToProto);
  return p;
}
