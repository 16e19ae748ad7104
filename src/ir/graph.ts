/**
 * The graph IR: values first (tract, MLIR). A Value has a type, at most one producer (a node output
 * slot; none for graph inputs and initializers) and a list of uses. Links are kept in both
 * directions and only Graph methods change them. Removed nodes are tombstoned and dropped by
 * compact(); nothing splices arrays and repairs indices.
 *
 * Subgraphs (If/Loop/Scan bodies) are Graphs owned by a node attribute. A node in a subgraph may
 * use a value of an enclosing graph (an outer-scope reference); that use is recorded on the outer
 * value like any other, so dead-code and ordering questions see it.
 */
import type { SparseTensorProto } from '../onnx/proto.js';
import type { Attribute } from './attribute.js';
import { Tensor } from './tensor.js';
import { tensorType, type ValueType } from './types.js';

export class IrError extends Error {}

/** Names of values must be unique across a graph and all its subgraphs: one scope per graph tree. */
export class NameScope {
  private readonly used = new Set<string>();
  private readonly next = new Map<string, number>();
  /** node names are a namespace of their own (ORT refuses two nodes with one name) */
  private readonly nodeNames = new Set<string>();
  nodeCounter = 0;

  claimNode(name: string): void { if (name !== '') this.nodeNames.add(name); }

  /** A node name not used yet (`base`, `base_1`, ...), claimed. */
  uniqueNode(base: string): string {
    let name = base;
    for (let i = 1; this.nodeNames.has(name); i++) name = `${base}_${i}`;
    this.nodeNames.add(name);
    return name;
  }

  has(name: string): boolean { return this.used.has(name); }
  claim(name: string): void { this.used.add(name); }
  release(name: string): void { this.used.delete(name); }

  /** `base` if free, else `base_1`, `base_2`, ... */
  unique(base: string): string {
    if (!this.used.has(base)) return base;
    let i = this.next.get(base) ?? 1;
    while (this.used.has(`${base}_${i}`)) i++;
    this.next.set(base, i + 1);
    return `${base}_${i}`;
  }
}

export interface Use {
  readonly node: Node;
  readonly slot: number;
}

export class Value {
  type: ValueType | undefined;
  /** The node that computes this value; undefined for graph inputs, initializers and outer-scope placeholders. */
  producer: Node | undefined;
  producerSlot = -1;
  readonly uses: Use[] = [];
  /** Constant data of an initializer. */
  initializer: Tensor | undefined;
  /** A sparse initializer, kept as its proto. */
  sparseInitializer: SparseTensorProto | undefined;
  /** ValueInfoProto fields the IR does not interpret (doc_string, metadata_props, unknown fields). */
  info: Record<string, unknown> = {};
  /** Listed in the graph's value_info when it was loaded; kept so a round trip reproduces it. */
  inValueInfo = false;
  /** Subgraphs that return this (outer-scope) value directly as one of their outputs. */
  readonly returnedBy = new Set<Graph>();

  constructor(readonly graph: Graph, private _name: string, type?: ValueType) {
    this.type = type;
  }

  get name(): string { return this._name; }

  /** True for initializers (values with constant data). */
  get isConstant(): boolean { return this.initializer !== undefined || this.sparseInitializer !== undefined; }
  get isGraphInput(): boolean { return this.graph.inputs.includes(this); }
  get isGraphOutput(): boolean { return this.graph.outputs.includes(this); }
  /** An output of its own graph, or returned directly by a subgraph: either way it must stay. */
  get isReturned(): boolean { return this.isGraphOutput || this.returnedBy.size > 0; }

  /** Nodes using this value (a node using it twice appears twice). */
  get users(): Node[] { return this.uses.map((u) => u.node); }

  /** @internal only Graph renames */
  _rename(name: string): void { this._name = name; }
}

export interface NodeInit {
  opType: string;
  domain?: string;
  name?: string;
  inputs?: (Value | undefined)[];
  /** output names, or a count of outputs to name automatically */
  outputs?: (string | undefined)[] | number;
  attributes?: Attribute[];
  /** NodeProto fields the IR does not interpret */
  extra?: Record<string, unknown>;
}

export class Node {
  readonly inputs: (Value | undefined)[] = [];
  readonly outputs: (Value | undefined)[] = [];
  /** Attributes by name, in the order they were given. */
  readonly attributes = new Map<string, Attribute>();
  /** NodeProto fields the IR does not interpret (doc_string, overload, metadata_props, unknown fields). */
  extra: Record<string, unknown>;
  removed = false;
  /**
   * `name`/`domain` when the loaded NodeProto had them present but empty (onnx.helper writes
   * `domain: ""`); kept so that a round trip reproduces the proto exactly.
   */
  explicitEmpty: ('name' | 'domain')[] | undefined;

  constructor(
    readonly graph: Graph,
    readonly id: number,
    public opType: string,
    public domain: string,
    public name: string,
    extra: Record<string, unknown> = {},
  ) {
    this.extra = extra;
  }

  /** `domain::op` with the default domain shown as ai.onnx, as used in histograms. */
  get qualifiedOp(): string { return `${this.domain === '' ? 'ai.onnx' : this.domain}::${this.opType}`; }

  attr(name: string): Attribute | undefined { return this.attributes.get(name); }

  /** Subgraphs held by this node's attributes. */
  subgraphs(): Graph[] {
    const out: Graph[] = [];
    for (const a of this.attributes.values()) {
      if (a.type === 'graph') out.push(a.value);
      else if (a.type === 'graphs') out.push(...a.value);
    }
    return out;
  }

  /** Values of enclosing scopes that this node's subgraphs read (its implicit inputs). */
  capturedValues(): Value[] {
    const subs = this.subgraphs();
    if (subs.length === 0) return [];
    const found = new Set<Value>();
    const visit = (g: Graph): void => {
      for (const n of g.nodes) {
        for (const v of n.inputs) if (v && !v.graph.isWithin(this)) found.add(v);
        for (const s of n.subgraphs()) visit(s);
      }
      for (const v of g.outputs) if (!v.graph.isWithin(this)) found.add(v);
    };
    subs.forEach(visit);
    return [...found];
  }

  toString(): string { return `node '${this.name || `#${this.id}`}' (${this.opType})`; }
}

export class Graph {
  name: string;
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  /** GraphProto fields the IR does not interpret (doc_string, quantization_annotation, metadata_props, unknown fields). */
  extra: Record<string, unknown> = {};
  /** The node whose attribute holds this graph; undefined for a model's main graph and function bodies. */
  readonly owner: Node | undefined;
  readonly scope: NameScope;

  private readonly _nodes: Node[] = [];
  private liveCount = 0;
  private readonly _initializers: Value[] = [];
  /** Values defined in this graph (inputs, initializers, node outputs, value_info entries), in definition order. */
  private readonly values = new Map<string, Value>();

  constructor(name = '', owner?: Node, scope?: NameScope) {
    this.name = name;
    this.owner = owner;
    this.scope = scope ?? owner?.graph.scope ?? new NameScope();
  }

  get parent(): Graph | undefined { return this.owner?.graph; }

  /** True if this graph is `node`'s subgraph or nested inside one of them. */
  isWithin(node: Node): boolean {
    for (let g: Graph | undefined = this; g; g = g.parent) if (g.owner === node) return true;
    return false;
  }

  /** Live nodes in order (a fresh array: safe to mutate the graph while iterating). */
  get nodes(): Node[] {
    if (this.liveCount === this._nodes.length) return this._nodes.slice();
    return this._nodes.filter((n) => !n.removed);
  }

  get nodeCount(): number { return this.liveCount; }

  /** Initializer values in order. */
  get initializers(): Value[] { return this._initializers.slice(); }

  /** Values defined in this graph, in definition order. */
  definedValues(): Value[] { return [...this.values.values()]; }

  /** A value by name, looked up in this graph and then in enclosing graphs. */
  lookup(name: string): Value | undefined {
    for (let g: Graph | undefined = this; g; g = g.parent) {
      const v = g.values.get(name);
      if (v) return v;
    }
    return undefined;
  }

  /** A value defined in this graph itself. */
  local(name: string): Value | undefined { return this.values.get(name); }

  // ------------------------------------------------------------ values

  /** A new value defined in this graph. `name` is made unique unless `exact`. */
  private define(name: string, type: ValueType | undefined, exact: boolean): Value {
    if (exact && this.scope.has(name)) throw new IrError(`value '${name}' is defined twice`);
    const unique = exact ? name : this.scope.unique(name);
    this.scope.claim(unique);
    const v = new Value(this, unique, type);
    this.values.set(unique, v);
    return v;
  }

  /** Add a graph input. The name is kept exactly (it is part of the model's interface). */
  addInput(name: string, type?: ValueType): Value {
    const v = this.define(name, type, true);
    this.inputs.push(v);
    return v;
  }

  /** Add an initializer. Its type follows the tensor. */
  addInitializer(name: string, tensor: Tensor, opts: { exactName?: boolean } = {}): Value {
    const v = this.define(name, tensorType(tensor.dataType, [...tensor.dims]), opts.exactName ?? false);
    v.initializer = tensor;
    this._initializers.push(v);
    return v;
  }

  /** Make an existing value (e.g. a graph input) an initializer too, as IR version < 4 models do. */
  setInitializer(v: Value, tensor: Tensor): void {
    if (v.graph !== this) throw new IrError(`value '${v.name}' belongs to another graph`);
    if (v.producer) throw new IrError(`value '${v.name}' is computed by ${v.producer}; it cannot also be an initializer`);
    if (!this._initializers.includes(v)) this._initializers.push(v);
    v.initializer = tensor;
    v.type ??= tensorType(tensor.dataType, [...tensor.dims]);
  }

  /** Add a sparse initializer (kept as its proto). */
  addSparseInitializer(name: string, proto: SparseTensorProto, type?: ValueType): Value {
    const v = this.define(name, type, true);
    v.sparseInitializer = proto;
    this._initializers.push(v);
    return v;
  }

  /** Remove an initializer that nothing uses any more. */
  removeInitializer(v: Value): void {
    if (v.uses.length) throw new IrError(`initializer '${v.name}' still has ${v.uses.length} use(s)`);
    if (v.returnedBy.size) throw new IrError(`initializer '${v.name}' is returned by a subgraph`);
    if (v.isGraphOutput) throw new IrError(`initializer '${v.name}' is a graph output`);
    const i = this._initializers.indexOf(v);
    if (i < 0) throw new IrError(`'${v.name}' is not an initializer of this graph`);
    this._initializers.splice(i, 1);
    v.initializer = undefined;
    v.sparseInitializer = undefined;
    if (!v.isGraphInput) this.forget(v);
  }

  /**
   * Declare a value by name before its producer exists (used by the loader for value_info entries).
   * @internal
   */
  declare(name: string, type?: ValueType): Value {
    return this.define(name, type, true);
  }

  addOutput(v: Value): void {
    this.outputs.push(v);
    if (v.graph !== this) v.returnedBy.add(this);
  }

  setOutput(index: number, v: Value): void {
    if (index < 0 || index >= this.outputs.length) throw new IrError(`graph has no output #${index}`);
    const old = this.outputs[index]!;
    this.outputs[index] = v;
    if (old.graph !== this && !this.outputs.includes(old)) old.returnedBy.delete(this);
    if (v.graph !== this) v.returnedBy.add(this);
  }

  /**
   * Rename a value. Graph inputs and outputs are the model's interface and are refused, unless
   * `interfaceSwap` (used by Patch to give a replacement value the name of the output it replaces).
   */
  rename(v: Value, name: string, opts: { interfaceSwap?: boolean } = {}): void {
    if (v.name === name) return;
    if (!opts.interfaceSwap && (v.isGraphInput || v.isGraphOutput)) throw new IrError(`refusing to rename graph input/output '${v.name}'`);
    if (this.scope.has(name)) throw new IrError(`cannot rename '${v.name}' to '${name}': name in use`);
    const g = v.graph;
    g.values.delete(v.name);
    this.scope.release(v.name);
    v._rename(name);
    this.scope.claim(name);
    g.values.set(name, v);
  }

  private forget(v: Value): void {
    if (this.values.get(v.name) === v) {
      this.values.delete(v.name);
      this.scope.release(v.name);
    }
  }

  // ------------------------------------------------------------ nodes

  /** Add a node at the end of the node list. Outputs get unique names derived from the node's name or op. */
  addNode(init: NodeInit): Node {
    const node = new Node(this, this.scope.nodeCounter++, init.opType, init.domain ?? '', init.name ?? '', init.extra ?? {});
    if (init.name === undefined) node.name = this.scope.uniqueNode(`${init.opType}_${node.id}`);
    else this.scope.claimNode(init.name);
    for (const a of init.attributes ?? []) node.attributes.set(a.name, a);
    for (const v of init.inputs ?? []) this.attachInput(node, node.inputs.length, v);
    const outs = init.outputs ?? 1;
    const names = typeof outs === 'number' ? Array.from({ length: outs }, (_, i) => `${node.name}_out${outs > 1 ? i : ''}`) : outs;
    names.forEach((name, slot) => {
      if (name === undefined || name === '') { node.outputs.push(undefined); return; }
      const v = this.define(name, undefined, false);
      v.producer = node;
      v.producerSlot = slot;
      node.outputs.push(v);
    });
    this._nodes.push(node);
    this.liveCount++;
    return node;
  }

  /**
   * Give a node an output that was declared earlier (loader only: value_info entries are declared
   * before their producers).
   * @internal
   */
  attachOutput(node: Node, slot: number, v: Value): void {
    if (v.producer) throw new IrError(`value '${v.name}' is produced twice (${v.producer} and ${node})`);
    if (v.isConstant || v.isGraphInput) throw new IrError(`value '${v.name}' is a graph input or initializer and also an output of ${node}`);
    v.producer = node;
    v.producerSlot = slot;
    node.outputs[slot] = v;
  }

  private attachInput(node: Node, slot: number, v: Value | undefined): void {
    node.inputs[slot] = v;
    if (v) v.uses.push({ node, slot });
  }

  private detachInput(node: Node, slot: number): void {
    const v = node.inputs[slot];
    if (!v) return;
    const i = v.uses.findIndex((u) => u.node === node && u.slot === slot);
    if (i >= 0) {
      v.uses[i] = v.uses[v.uses.length - 1]!;
      v.uses.pop();
    }
    node.inputs[slot] = undefined;
  }

  /** Set (or clear) one input of a node; appends when slot == inputs.length. */
  setInput(node: Node, slot: number, v: Value | undefined): void {
    if (slot < 0 || slot > node.inputs.length) throw new IrError(`${node} has no input slot ${slot}`);
    this.detachInput(node, slot);
    this.attachInput(node, slot, v);
  }

  /** Replace all of a node's inputs. */
  setInputs(node: Node, values: (Value | undefined)[]): void {
    for (let i = 0; i < node.inputs.length; i++) this.detachInput(node, i);
    node.inputs.length = 0;
    values.forEach((v, i) => this.attachInput(node, i, v));
  }

  /**
   * Make every node that uses `from` use `to` instead (in this graph and its subgraphs).
   * Graph outputs are not changed: a graph output is part of the model's interface, so a rewrite
   * that replaces one must decide how to keep its name (see Patch).
   */
  replaceAllUsesWith(from: Value, to: Value): number {
    if (from === to) return 0;
    const uses = from.uses.slice();
    for (const u of uses) u.node.graph.setInput(u.node, u.slot, to);
    return uses.length;
  }

  /**
   * Remove a node (tombstone). Its outputs must have no uses and must not be graph outputs, unless
   * `force`, which leaves any such uses dangling for the caller to repair (verify() reports them).
   */
  removeNode(node: Node, opts: { force?: boolean } = {}): void {
    if (node.removed) return;
    if (node.graph !== this) throw new IrError(`${node} belongs to another graph`);
    if (!opts.force) {
      for (const v of node.outputs) {
        if (!v) continue;
        if (v.uses.length) throw new IrError(`cannot remove ${node}: its output '${v.name}' is used by ${v.uses[0]!.node}`);
        if (v.isGraphOutput) throw new IrError(`cannot remove ${node}: its output '${v.name}' is a graph output`);
        if (v.returnedBy.size) throw new IrError(`cannot remove ${node}: its output '${v.name}' is returned by a subgraph`);
      }
    }
    for (let i = 0; i < node.inputs.length; i++) this.detachInput(node, i);
    // nodes inside its subgraphs die with it: their uses of outer values must go too
    for (const g of node.subgraphs()) g.detachAll();
    for (const v of node.outputs) {
      if (!v) continue;
      v.producer = undefined;
      if (v.uses.length === 0 && !v.isGraphOutput) this.forget(v);
    }
    node.removed = true;
    this.liveCount--;
  }

  /** Detach every node of this graph (and nested subgraphs) from the values it uses: the graph is being dropped. */
  private detachAll(): void {
    for (const n of this.nodes) {
      for (let i = 0; i < n.inputs.length; i++) this.detachInput(n, i);
      for (const g of n.subgraphs()) g.detachAll();
    }
  }

  /** Drop tombstones from the node list. */
  compact(): void {
    let w = 0;
    for (let r = 0; r < this._nodes.length; r++) {
      const n = this._nodes[r]!;
      if (!n.removed) this._nodes[w++] = n;
    }
    this._nodes.length = w;
    for (const n of this._nodes) for (const g of n.subgraphs()) g.compact();
  }

  /**
   * The live nodes in an order where every value is produced before it is used (stable: a graph
   * already in order keeps its order). Outer-scope values read by subgraphs count as inputs of the
   * owning node. Throws IrError on a cycle. Does not change the graph.
   */
  topoOrder(): Node[] {
    const live = this.nodes;
    const state = new Map<Node, number>(); // 1 = visiting, 2 = done
    const order: Node[] = [];
    const depsOf = (n: Node): Node[] => {
      const deps: Node[] = [];
      const add = (v: Value | undefined): void => {
        const p = v?.producer;
        if (p && p.graph === this && !p.removed) deps.push(p);
      };
      n.inputs.forEach(add);
      n.capturedValues().forEach(add);
      return deps;
    };
    for (const start of live) {
      if (state.get(start) === 2) continue;
      const stack: { node: Node; deps: Node[]; i: number }[] = [{ node: start, deps: depsOf(start), i: 0 }];
      state.set(start, 1);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        if (top.i < top.deps.length) {
          const d = top.deps[top.i++]!;
          const s = state.get(d);
          if (s === 2) continue;
          if (s === 1) throw new IrError(`graph '${this.name}' has a cycle through ${d}`);
          state.set(d, 1);
          stack.push({ node: d, deps: depsOf(d), i: 0 });
        } else {
          state.set(top.node, 2);
          order.push(top.node);
          stack.pop();
        }
      }
    }
    return order;
  }

  /** Put the nodes in topological order (see topoOrder), in this graph and its subgraphs. */
  toposort(): void {
    const order = this.topoOrder();
    this._nodes.length = 0;
    this._nodes.push(...order);
    this.liveCount = order.length;
    for (const n of order) for (const g of n.subgraphs()) g.toposort();
  }

  /** Every graph in this tree: this one and all nested subgraphs. */
  *allGraphs(): Generator<Graph> {
    yield this;
    for (const n of this.nodes) for (const g of n.subgraphs()) yield* g.allGraphs();
  }
}
