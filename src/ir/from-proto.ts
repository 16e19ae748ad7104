/**
 * ModelProto -> IR. Everything the IR does not interpret is kept in `extra` bags and written back
 * by to-proto.ts. Problems with the model (a node using an undefined value, a value produced twice,
 * a bad dim, tensor data that does not match its shape) throw ModelError naming the node or value.
 */
import type { Int64 } from '../onnx/codec.js';
import {
  AttributeType, type AttributeProto, type FunctionProto, type GraphProto, type ModelProto, type NodeProto,
  type TensorProto, type TypeProto, type ValueInfoProto,
} from '../onnx/proto.js';
import type { Attribute } from './attribute.js';
import { Graph, IrError, type Node, type Value } from './graph.js';
import { Func, Model, metadataFromProto, opsetFromProto } from './model.js';
import { Tensor, TensorError, type TensorData } from './tensor.js';
import type { Dim, ValueType } from './types.js';

export class ModelError extends Error {}

/** `obj` without `keys`; undefined-valued keys dropped. */
export function omit<T extends object>(obj: T, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && !keys.includes(k)) out[k] = v;
  return out;
}

function int64Dim(v: Int64, what: string): number {
  if (typeof v === 'bigint' || !Number.isSafeInteger(v)) throw new ModelError(`${what}: absurd dim ${v}`);
  if (v < 0) throw new ModelError(`${what}: negative dim ${v}`);
  return v;
}

// ------------------------------------------------------------ types

function shapeFromProto(shape: { dim?: { dimValue?: Int64; dimParam?: string; denotation?: string }[] }, what: string): { shape: Dim[]; denotations?: (string | undefined)[] } {
  const dims = shape.dim ?? [];
  const out: Dim[] = dims.map((d) => (d.dimValue !== undefined ? int64Dim(d.dimValue, what) : d.dimParam !== undefined ? d.dimParam : null));
  return dims.some((d) => d.denotation !== undefined) ? { shape: out, denotations: dims.map((d) => d.denotation) } : { shape: out };
}

export function typeFromProto(tp: TypeProto, what: string): ValueType {
  const denotation = tp.denotation !== undefined ? { denotation: tp.denotation } : {};
  if (tp.tensorType || tp.sparseTensorType) {
    const tt = (tp.tensorType ?? tp.sparseTensorType)!;
    const kind = tp.tensorType ? 'tensor' : 'sparse_tensor';
    if (!tt.shape) return { kind, elemType: tt.elemType ?? 0, ...denotation };
    const { shape, denotations } = shapeFromProto(tt.shape, what);
    return { kind, elemType: tt.elemType ?? 0, shape, ...(denotations ? { dimDenotations: denotations } : {}), ...denotation };
  }
  if (tp.sequenceType) return { kind: 'sequence', ...(tp.sequenceType.elemType ? { elem: typeFromProto(tp.sequenceType.elemType, what) } : {}), ...denotation };
  if (tp.optionalType) return { kind: 'optional', ...(tp.optionalType.elemType ? { elem: typeFromProto(tp.optionalType.elemType, what) } : {}), ...denotation };
  if (tp.mapType) return { kind: 'map', keyType: tp.mapType.keyType ?? 0, ...(tp.mapType.valueType ? { value: typeFromProto(tp.mapType.valueType, what) } : {}), ...denotation };
  if (tp.opaqueType) return { kind: 'opaque', domain: tp.opaqueType.domain ?? '', name: tp.opaqueType.name ?? '', ...denotation };
  return { kind: 'none', ...denotation };
}

// ------------------------------------------------------------ tensors

const TENSOR_MODELED = ['dims', 'dataType', 'rawData', 'floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data', 'stringData', 'name'];

export function tensorFromProto(tp: TensorProto, what: string, keepName: boolean): Tensor {
  if (tp.dataLocation === 1 || tp.externalData?.length) {
    throw new ModelError(`${what}: external data was not loaded (load the model from a file so its data files can be read)`);
  }
  const dims = (tp.dims ?? []).map((d) => int64Dim(d, what));
  let data: TensorData = { kind: 'none' };
  if (tp.rawData !== undefined) data = { kind: 'raw', bytes: tp.rawData };
  else if (tp.floatData) data = { kind: 'floatData', values: tp.floatData };
  else if (tp.int32Data) data = { kind: 'int32Data', values: tp.int32Data };
  else if (tp.int64Data) data = { kind: 'int64Data', values: tp.int64Data };
  else if (tp.doubleData) data = { kind: 'doubleData', values: tp.doubleData };
  else if (tp.uint64Data) data = { kind: 'uint64Data', values: tp.uint64Data };
  else if (tp.stringData) data = { kind: 'stringData', values: tp.stringData };
  const t = new Tensor(tp.dataType ?? 0, dims, data, omit(tp, TENSOR_MODELED), keepName ? tp.name : undefined);
  try {
    t.validate(what);
  } catch (e) {
    if (e instanceof TensorError) throw new ModelError(e.message);
    throw e;
  }
  return t;
}

// ------------------------------------------------------------ attributes

const ATTR_FIELD_TYPES: [keyof AttributeProto, number][] = [
  ['f', AttributeType.FLOAT], ['i', AttributeType.INT], ['s', AttributeType.STRING], ['t', AttributeType.TENSOR],
  ['g', AttributeType.GRAPH], ['sparseTensor', AttributeType.SPARSE_TENSOR], ['tp', AttributeType.TYPE_PROTO],
  ['floats', AttributeType.FLOATS], ['ints', AttributeType.INTS], ['strings', AttributeType.STRINGS],
  ['tensors', AttributeType.TENSORS], ['graphs', AttributeType.GRAPHS], ['sparseTensors', AttributeType.SPARSE_TENSORS],
  ['typeProtos', AttributeType.TYPE_PROTOS],
];
const ATTR_MODELED = ['name', 'refAttrName', 'type', ...ATTR_FIELD_TYPES.map(([k]) => k)];

/** `owner` is the node the attribute belongs to (the owner of its subgraphs); none for function defaults. */
function attributeFromProto(ap: AttributeProto, where: string, ctx: Loader, owner?: Node): Attribute {
  const name = ap.name ?? '';
  const what = `${where} attribute '${name}'`;
  // IR version 1 had no type field: infer it from the value field that is present
  const type = ap.type ?? ATTR_FIELD_TYPES.find(([k]) => ap[k] !== undefined)?.[1] ?? AttributeType.UNDEFINED;
  const base = { name, ...(ap.refAttrName !== undefined ? { refAttrName: ap.refAttrName } : {}), ...(hasKeys(omit(ap, ATTR_MODELED)) ? { extra: omit(ap, ATTR_MODELED) } : {}) };
  const sub = (gp: GraphProto, i?: number): Graph => ctx.subgraph(gp, owner, `${what}${i === undefined ? '' : `[${i}]`}`);
  switch (type) {
    case AttributeType.FLOAT: return { ...base, type: 'float', value: ap.f ?? 0 };
    case AttributeType.INT: return { ...base, type: 'int', value: ap.i ?? 0 };
    case AttributeType.STRING: return { ...base, type: 'string', value: ap.s ?? new Uint8Array(0) };
    case AttributeType.TENSOR: return { ...base, type: 'tensor', value: tensorFromProto(ap.t ?? {}, what, true) };
    case AttributeType.GRAPH: return { ...base, type: 'graph', value: sub(ap.g ?? {}) };
    case AttributeType.SPARSE_TENSOR: return { ...base, type: 'sparse_tensor', value: ap.sparseTensor ?? {} };
    case AttributeType.TYPE_PROTO: return { ...base, type: 'type_proto', value: typeFromProto(ap.tp ?? {}, what) };
    case AttributeType.FLOATS: return { ...base, type: 'floats', value: ap.floats ?? new Float32Array(0) };
    case AttributeType.INTS: return { ...base, type: 'ints', value: ap.ints ?? [] };
    case AttributeType.STRINGS: return { ...base, type: 'strings', value: ap.strings ?? [] };
    case AttributeType.TENSORS: return { ...base, type: 'tensors', value: (ap.tensors ?? []).map((t, i) => tensorFromProto(t, `${what}[${i}]`, true)) };
    case AttributeType.GRAPHS: return { ...base, type: 'graphs', value: (ap.graphs ?? []).map((g, i) => sub(g, i)) };
    case AttributeType.SPARSE_TENSORS: return { ...base, type: 'sparse_tensors', value: ap.sparseTensors ?? [] };
    case AttributeType.TYPE_PROTOS: return { ...base, type: 'type_protos', value: (ap.typeProtos ?? []).map((t) => typeFromProto(t, what)) };
    case AttributeType.UNDEFINED: return { ...base, type: 'undefined', value: undefined };
    default: throw new ModelError(`${what}: unknown attribute type ${type}`);
  }
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

// ------------------------------------------------------------ graphs

const GRAPH_MODELED = ['node', 'name', 'initializer', 'sparseInitializer', 'input', 'output', 'valueInfo'];
const NODE_MODELED = ['input', 'output', 'name', 'opType', 'domain', 'attribute'];
const VALUE_INFO_MODELED = ['name', 'type'];

class Loader {
  /** Fill `graph` from `gp`. */
  graph(gp: GraphProto, graph: Graph, where: string): void {
    graph.name = gp.name ?? '';
    graph.extra = omit(gp, GRAPH_MODELED);
    const info = (vi: ValueInfoProto, v: Value): void => {
      if (v.type === undefined && vi.type) v.type = typeFromProto(vi.type, `${where} value '${v.name}'`);
      if (!hasKeys(v.info)) v.info = omit(vi, VALUE_INFO_MODELED);
    };
    const define = (fn: () => Value, name: string): Value => {
      try {
        return fn();
      } catch (e) {
        if (e instanceof IrError) throw new ModelError(`${where}: value '${name}' is defined twice`);
        throw e;
      }
    };

    for (const vi of gp.input ?? []) {
      const name = vi.name ?? '';
      const v = define(() => graph.addInput(name), name);
      info(vi, v);
    }
    for (const tp of gp.initializer ?? []) {
      const name = tp.name ?? '';
      const tensor = tensorFromProto(tp, `${where} initializer '${name}'`, false);
      const input = graph.local(name);
      if (input && input.isGraphInput && !input.isConstant) graph.setInitializer(input, tensor);
      else define(() => graph.addInitializer(name, tensor, { exactName: true }), name);
    }
    for (const sp of gp.sparseInitializer ?? []) {
      const name = sp.values?.name ?? '';
      const dims = (sp.dims ?? []).map((d) => int64Dim(d, `${where} sparse initializer '${name}'`));
      define(() => graph.addSparseInitializer(name, sp, { kind: 'tensor', elemType: sp.values?.dataType ?? 0, shape: dims }), name);
    }
    for (const vi of gp.valueInfo ?? []) {
      const name = vi.name ?? '';
      const v = graph.local(name) ?? define(() => graph.declare(name), name);
      v.inValueInfo = true;
      info(vi, v);
    }

    // Pass 1: nodes and their outputs, so that inputs (and subgraphs) can refer to any of them.
    const protos = gp.node ?? [];
    const nodes: Node[] = protos.map((np) => {
      const node = graph.addNode({ opType: np.opType ?? '', domain: np.domain ?? '', name: np.name ?? '', outputs: [], extra: omit(np, NODE_MODELED) });
      if (np.name === '' || np.domain === '') node.explicitEmpty = (['name', 'domain'] as const).filter((k) => np[k] === '');
      (np.output ?? []).forEach((name, slot) => {
        if (name === '') { node.outputs[slot] = undefined; return; }
        const existing = graph.local(name);
        if (existing && (existing.producer || existing.isConstant || existing.isGraphInput)) {
          const other = existing.producer ? `${existing.producer}` : existing.isGraphInput ? 'a graph input' : 'an initializer';
          throw new ModelError(`${where}: value '${name}' is produced twice (${other} and ${node})`);
        }
        const v = existing ?? define(() => graph.declare(name), name);
        graph.attachOutput(node, slot, v);
      });
      return node;
    });
    // Pass 2: attributes and inputs.
    protos.forEach((np: NodeProto, i) => {
      const node = nodes[i]!;
      for (const ap of np.attribute ?? []) {
        const a = attributeFromProto(ap, `${where}: ${node}`, this, node);
        node.attributes.set(a.name, a);
      }
      graph.setInputs(node, (np.input ?? []).map((name) => {
        if (name === '') return undefined;
        const v = graph.lookup(name);
        if (!v || !(v.producer || v.isConstant || v.isGraphInput)) throw new ModelError(`${where}: ${node} uses undefined value '${name}'`);
        return v;
      }));
    });

    for (const vi of gp.output ?? []) {
      const name = vi.name ?? '';
      const v = graph.lookup(name);
      if (!v || !(v.producer || v.isConstant || v.isGraphInput)) throw new ModelError(`${where}: graph output '${name}' is not computed by any node`);
      graph.addOutput(v);
      if (v.graph === graph) info(vi, v);
    }
  }

  subgraph(gp: GraphProto, owner: Node | undefined, what: string): Graph {
    const g = new Graph(gp.name ?? '', owner);
    this.graph(gp, g, `${what} (subgraph '${gp.name ?? ''}')`);
    return g;
  }

  func(fp: FunctionProto): Func {
    const f = new Func(fp.name ?? '', fp.domain ?? '', fp.overload);
    const where = `function '${f.qualifiedName}'`;
    f.attributeNames = fp.attribute ?? [];
    f.opsetImports = (fp.opsetImport ?? []).map(opsetFromProto);
    f.extra = omit(fp, ['name', 'domain', 'overload', 'input', 'output', 'attribute', 'attributeProto', 'node', 'opsetImport', 'valueInfo']);
    // The body is decoded as a graph whose inputs are the formal parameters.
    const body: GraphProto = {
      name: fp.name,
      input: (fp.input ?? []).map((name) => ({ name })),
      output: (fp.output ?? []).map((name) => ({ name })),
      node: fp.node,
      valueInfo: fp.valueInfo,
    };
    this.graph(body, f.body, where);
    f.attributeDefaults = (fp.attributeProto ?? []).map((ap) => attributeFromProto(ap, where, this));
    return f;
  }
}

/** Build the IR for a decoded model. */
export function modelFromProto(p: ModelProto): Model {
  if (!p.graph) throw new ModelError('not an ONNX model: it has no graph');
  const loader = new Loader();
  const model = new Model(new Graph(p.graph.name ?? ''));
  model.irVersion = p.irVersion ?? 0;
  model.opsetImports = (p.opsetImport ?? []).map(opsetFromProto);
  model.producerName = p.producerName;
  model.producerVersion = p.producerVersion;
  model.domain = p.domain;
  model.modelVersion = p.modelVersion;
  model.docString = p.docString;
  model.metadataProps = (p.metadataProps ?? []).map(metadataFromProto);
  model.extra = omit(p, ['irVersion', 'opsetImport', 'producerName', 'producerVersion', 'domain', 'modelVersion', 'docString', 'graph', 'metadataProps', 'functions']);
  loader.graph(p.graph, model.graph, `graph '${p.graph.name ?? ''}'`);
  model.functions = (p.functions ?? []).map((fp) => loader.func(fp));
  return model;
}
