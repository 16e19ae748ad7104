/**
 * Build models in code, like onnx.helper: for tests, examples and passes that create whole graphs.
 *
 *   const b = new ModelBuilder({ opset: 17 });
 *   const x = b.input('x', 'float32', ['batch', 4]);
 *   const w = b.constant(Tensor.float32([...], [4, 2]), 'w');
 *   b.output(b.node('Relu', [b.node('MatMul', [x, w])]), 'y');
 *   const model = b.build();
 */
import { toAttribute } from './attribute.js';
import { dataTypeFromName } from './dtype.js';
import type { Graph, Value } from './graph.js';
import { Model } from './model.js';
import type { Tensor } from './tensor.js';
import type { Dim, ValueType } from './types.js';

export interface NodeOptions {
  domain?: string;
  name?: string;
  /** number of outputs (default 1) or their names */
  outputs?: number | string[];
}

export function elemTypeOf(t: number | string): number {
  if (typeof t === 'number') return t;
  const code = dataTypeFromName(t);
  if (code === undefined) throw new Error(`unknown element type '${t}'`);
  return code;
}

export class GraphBuilder {
  constructor(readonly graph: Graph) {}

  input(name: string, elemType: number | string, shape?: Dim[]): Value {
    const type: ValueType = shape === undefined ? { kind: 'tensor', elemType: elemTypeOf(elemType) } : { kind: 'tensor', elemType: elemTypeOf(elemType), shape: [...shape] };
    return this.graph.addInput(name, type);
  }

  constant(tensor: Tensor, name = 'const'): Value {
    return this.graph.addInitializer(name, tensor);
  }

  /** Add a node and return its outputs. Attributes are plain values (see toAttribute) or Attribute objects. */
  nodeN(opType: string, inputs: (Value | undefined)[], attrs: Record<string, unknown> = {}, opts: NodeOptions = {}): Value[] {
    const node = this.graph.addNode({
      opType,
      domain: opts.domain ?? '',
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      inputs,
      outputs: opts.outputs ?? 1,
      attributes: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    });
    return node.outputs as Value[];
  }

  /** Add a single-output node and return its output. */
  node(opType: string, inputs: (Value | undefined)[], attrs: Record<string, unknown> = {}, opts: NodeOptions = {}): Value {
    return this.nodeN(opType, inputs, attrs, opts)[0]!;
  }

  /** Mark `v` as a graph output, renaming it to `name` when given (a fresh output value keeps its name otherwise). */
  output(v: Value, name?: string, type?: ValueType): Value {
    if (name !== undefined && name !== v.name) this.graph.rename(v, name);
    if (type) v.type = type;
    this.graph.addOutput(v);
    return v;
  }
}

export interface ModelBuilderOptions {
  /** default-domain opset version (default 17) */
  opset?: number;
  /** other domains, e.g. { 'com.microsoft': 1 } */
  opsets?: Record<string, number>;
  irVersion?: number;
  name?: string;
}

export class ModelBuilder extends GraphBuilder {
  readonly model: Model;

  constructor(opts: ModelBuilderOptions = {}) {
    const model = new Model();
    super(model.graph);
    this.model = model;
    model.graph.name = opts.name ?? 'main';
    model.irVersion = opts.irVersion ?? 8;
    model.opsetImports = [{ domain: '', version: opts.opset ?? 17 }, ...Object.entries(opts.opsets ?? {}).map(([domain, version]) => ({ domain, version }))];
  }

  build(): Model {
    return this.model;
  }
}
