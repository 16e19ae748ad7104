/**
 * Shape and type inference with symbolic dims.
 *
 * Walks each graph in order and asks the op's rule (src/analysis/ops/) for its outputs' types, and,
 * for small integer tensors, their symbolic contents (so Shape -> Gather -> Concat -> Reshape keeps
 * `batch` symbolic). Constant inputs are folded with the TypeScript evaluator where it has the op,
 * so static shapes come out exact. Dims that must be equal (broadcasting, MatMul) are unified;
 * users can pin symbols (`batch=1`). What an If branch or a loop body implies about outer dims holds
 * inside it only (State.scoped): a branch taken when n = 4 does not make n = 4 outside. Types
 * already in the model (value_info, graph outputs) are merged with what is inferred; a
 * contradiction is an InferenceError naming the node and both types.
 * Ops without a rule (custom domains) give outputs of unknown type, and inference goes on.
 */
import { attrFloat, attrInt, attrInts, attrString, type Attribute } from '../ir/attribute.js';
import { DataType, dataTypeName } from '../ir/dtype.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { Tensor } from '../ir/tensor.js';
import type { Dim, ValueType } from '../ir/types.js';
import { Sym } from './symbolic.js';
import type { OutputInfo, SymType, SymValue, TensorInfo } from './types.js';

export class InferenceError extends Error {}

/** A shape rule: what an op's outputs are, given its inputs. One entry per output (missing = unknown). */
export type Rule = (ctx: InferContext) => (OutputInfo | undefined)[];

/** Rules by `domain:op` ('' is the default domain). */
export type RuleTable = Record<string, Rule>;

/** Evaluates a node on constant inputs; undefined when it cannot (op not implemented, too big). */
export type ConstantEvaluator = (node: Node, inputs: (Tensor | undefined)[], opset: number) => Tensor[] | undefined;

export interface InferOptions {
  /** pinned symbols: { batch: 1, seq: 64 } */
  dims?: Record<string, number>;
  /** write the inferred types into the IR values (default true) */
  apply?: boolean;
  /** fold constant inputs with this evaluator */
  evaluate?: ConstantEvaluator;
  /** largest constant (elements) the evaluator is asked to produce */
  maxFoldElements?: number;
  /** graph inputs whose contents are known (treated as constants): shapes that depend on input values */
  inputValues?: Map<Value, Tensor>;
}

export interface InferResult {
  /** every value's type, symbols resolved */
  types: Map<Value, SymType>;
  /** values whose contents are known symbolically (shape tensors) */
  symValues: Map<Value, SymValue>;
  /** ops that have no rule, with a count */
  unknownOps: Map<string, number>;
  /** the substitution that unification produced, symbol -> expression */
  unified: Map<string, Sym>;
}

const INT_TYPES = new Set<number>([DataType.INT64, DataType.INT32]);

/** Internal state shared by every graph of one inference run. */
class State {
  readonly types = new Map<Value, SymType>();
  readonly syms = new Map<Value, SymValue>();
  readonly consts = new Map<Value, Tensor>();
  readonly subst = new Map<string, Sym>();
  readonly unknownOps = new Map<string, number>();
  /** symbols the user sees (dim_params of the main graph's inputs): kept when unifying */
  readonly preferred = new Set<string>();
  private freshCount = 0;
  /**
   * Symbols the model's types already name. A fresh symbol must not be one of them: types written
   * back by an earlier run (or by another tool: onnxruntime also names its unknowns unk__N) carry
   * `unk__N` dims, and a fresh `unk__N` of this run would silently alias that unrelated dim (the
   * silero miscompile: a Shape's length, bound to 3, became the batch dim of an If output).
   */
  private readonly taken = new Set<string>();

  constructor(readonly model: Model, readonly rules: RuleTable, readonly opts: InferOptions) {
    for (const [k, v] of Object.entries(opts.dims ?? {})) {
      this.subst.set(k, Sym.const(v));
      this.note(Sym.symbol(k));
    }
    for (const g of model.allGraphs()) for (const v of g.definedValues()) collectSymbols(v.type, this.taken);
  }

  /**
   * When each symbol was first seen (a counter): a subgraph's own symbols are those first seen while
   * it is inferred (see scoped). Symbols come from declared types (typeFromIr), fresh() and pinned
   * dims; one never noted counts as seen before any subgraph.
   */
  private readonly born = new Map<string, number>();

  /** Record the symbols of `s` as seen from now on (those not seen yet). */
  note(s: Sym): Sym {
    for (const n of s.symbols()) if (!this.born.has(n)) this.born.set(n, this.born.size);
    return s;
  }

  /** A mark for `scoped`: symbols first seen after it are the subgraph's own. */
  get mark(): number {
    return this.born.size;
  }

  fresh(): Sym {
    let name: string;
    do name = `unk__${this.freshCount++}`; while (this.taken.has(name));
    return this.note(Sym.symbol(name));
  }

  /**
   * Run `f`, the inference of a subgraph, with its facts about outer dims kept inside it. A branch
   * runs only when its condition holds, so what it implies (`If(n == 4)` whose then-branch
   * multiplies by a [4, 3] matrix: n = 4) is true inside it and not outside: a binding made while
   * `f` runs is undone afterwards unless its symbol is the subgraph's own, first seen after `mark`
   * (its value_info's dims, its unknowns, the symbols the control-flow rule made for it, such as a
   * loop's relaxed carried dims). The types inferred inside keep what they learned: they are only
   * seen there.
   */
  scoped<T>(mark: number, f: () => T): T {
    const before = new Map(this.subst);
    try {
      return f();
    } finally {
      this.unscope(mark, before);
    }
  }

  private own(name: string, mark: number): boolean {
    const b = this.born.get(name);
    return b !== undefined && b >= mark;
  }

  /** Undo the bindings of outer symbols made since `before` (see scoped). */
  private unscope(mark: number, before: ReadonlyMap<string, Sym>): void {
    for (const [k, v] of [...this.subst]) {
      if (before.get(k) === v || this.own(k, mark)) continue;
      const prev = before.get(k);
      if (prev) this.subst.set(k, prev);
      else this.subst.delete(k);
      // an outer symbol aliased to one of the subgraph's own: alias that one to it instead (same fact inside)
      const syms = [...v.symbols()];
      const local = syms.length === 1 && v.equals(Sym.symbol(syms[0]!)) ? syms[0]! : undefined;
      if (local !== undefined && this.own(local, mark) && !this.subst.has(local)) this.subst.set(local, Sym.symbol(k));
    }
  }

  /** Drop what was inferred for the values of `g` (and of the graphs nested in it). */
  forget(g: Graph): void {
    for (const m of [this.types, this.syms, this.consts] as Map<Value, unknown>[]) {
      for (const v of [...m.keys()]) if (within(v, g)) m.delete(v);
    }
  }

  resolve(s: Sym): Sym {
    // apply the substitution to a fixed point (aliases may chain)
    let cur = s;
    for (let i = 0; i < 8; i++) {
      const next = cur.subst(this.subst);
      if (next.equals(cur)) return cur;
      cur = next;
    }
    return cur;
  }

  resolveType(t: SymType): SymType {
    switch (t.kind) {
      case 'tensor': return t.shape ? { kind: 'tensor', elemType: t.elemType, shape: t.shape.map((d) => this.resolve(d)) } : t;
      case 'sequence': case 'optional': return t.elem ? { kind: t.kind, elem: this.resolveType(t.elem) } : t;
      default: return t;
    }
  }

  /** Declare a == b. Returns the representative. Throws on two different constants. */
  unify(a: Sym, b: Sym, where: () => string): Sym {
    const x = this.resolve(a);
    const y = this.resolve(b);
    if (x.equals(y)) return x;
    const xv = x.value, yv = y.value;
    if (xv !== undefined && yv !== undefined) throw new InferenceError(`${where()}: dims ${xv} and ${yv} must be equal`);
    const bare = (s: Sym): string | undefined => {
      const syms = [...s.symbols()];
      return syms.length === 1 && s.equals(Sym.symbol(syms[0]!)) ? syms[0] : undefined;
    };
    const bx = bare(x), by = bare(y);
    if (bx === undefined && by === undefined) return x; // two different compound expressions: nothing to record
    // alias a bare symbol to the other side: a fresh one first, then one the user does not see, else the later name
    const rank = (n: string): number => (n.startsWith('unk__') ? 0 : this.preferred.has(n) ? 2 : 1);
    const aliasY = by !== undefined && (bx === undefined || rank(by) < rank(bx) || (rank(by) === rank(bx) && by > bx));
    const [alias, target] = aliasY ? [by!, x] : [bx!, y];
    if (target.symbols().has(alias)) return x; // seq = seq+1 cannot hold; leave both
    this.subst.set(alias, target);
    return target;
  }
}

/** Is `v` defined in `g` or in a graph nested in it? */
function within(v: Value, g: Graph): boolean {
  for (let h: Graph | undefined = v.graph; h; h = h.parent) if (h === g) return true;
  return false;
}

/** Add the symbols named by the dims of `t` to `out`. */
function collectSymbols(t: ValueType | undefined, out: Set<string>): void {
  if (!t) return;
  if (t.kind === 'tensor') {
    for (const d of t.shape ?? []) if (typeof d === 'string') for (const s of Sym.from(d).symbols()) out.add(s);
  } else if (t.kind === 'sequence' || t.kind === 'optional') {
    collectSymbols(t.elem, out);
  }
}

function typeFromIr(t: ValueType | undefined, st: State): SymType | undefined {
  if (!t) return undefined;
  switch (t.kind) {
    case 'tensor': return { kind: 'tensor', elemType: t.elemType, ...(t.shape ? { shape: t.shape.map((d) => (d === null ? st.fresh() : st.resolve(st.note(Sym.from(d))))) } : {}) };
    case 'sequence': return { kind: 'sequence', ...(t.elem ? { elem: typeFromIr(t.elem, st) } : {}) } as SymType;
    case 'optional': return { kind: 'optional', ...(t.elem ? { elem: typeFromIr(t.elem, st) } : {}) } as SymType;
    default: return { kind: 'other', type: t };
  }
}

export function typeToIr(t: SymType): ValueType {
  switch (t.kind) {
    case 'tensor': return t.shape ? { kind: 'tensor', elemType: t.elemType, shape: t.shape.map((d): Dim => d.toDim()) } : { kind: 'tensor', elemType: t.elemType };
    case 'sequence': return t.elem ? { kind: 'sequence', elem: typeToIr(t.elem) } : { kind: 'sequence' };
    case 'optional': return t.elem ? { kind: 'optional', elem: typeToIr(t.elem) } : { kind: 'optional' };
    case 'other': return t.type;
  }
}

export function formatSymType(t: SymType | undefined): string {
  if (!t) return '?';
  switch (t.kind) {
    case 'tensor': return `${dataTypeName(t.elemType)}${t.shape ? `[${t.shape.map(String).join(',')}]` : '[?rank]'}`;
    case 'sequence': return `seq(${formatSymType(t.elem)})`;
    case 'optional': return `optional(${formatSymType(t.elem)})`;
    case 'other': return t.type.kind;
  }
}

function symValueOf(t: Tensor): SymValue | undefined {
  if (!INT_TYPES.has(t.dataType) || t.dims.length > 1 || t.elementCount > 64) return undefined;
  const a = t.toTypedArray();
  const values: Sym[] = [];
  for (let i = 0; i < a.length; i++) {
    const v = Number(a[i]!);
    if (!Number.isSafeInteger(v)) return undefined;
    values.push(Sym.const(v));
  }
  return { dims: [...t.dims], values };
}

/** What a rule sees of one node. */
export class InferContext {
  /** symbols first seen while this node is inferred are its own (see State.scoped) */
  private readonly mark: number;

  constructor(readonly node: Node, readonly opset: number, private readonly st: State) {
    this.mark = st.mark;
  }

  get inputCount(): number { return this.node.inputs.length; }
  get outputCount(): number { return this.node.outputs.length; }
  has(i: number): boolean { return this.node.inputs[i] !== undefined; }

  type(i: number): SymType | undefined {
    const v = this.node.inputs[i];
    const t = v ? this.st.types.get(v) : undefined;
    return t ? this.st.resolveType(t) : undefined;
  }

  tensor(i: number): TensorInfo | undefined {
    const t = this.type(i);
    return t?.kind === 'tensor' ? t : undefined;
  }

  shape(i: number): Sym[] | undefined { return this.tensor(i)?.shape; }
  rank(i: number): number | undefined { return this.tensor(i)?.shape?.length; }
  elemType(i: number): number | undefined { return this.tensor(i)?.elemType; }

  /** Exact contents of input i when it is a constant (initializer, Constant node, or folded). */
  constant(i: number): Tensor | undefined {
    const v = this.node.inputs[i];
    return v ? this.st.consts.get(v) : undefined;
  }

  /** Symbolic contents of a small integer input (rank 0 or 1). */
  sym(i: number): SymValue | undefined {
    const v = this.node.inputs[i];
    if (!v) return undefined;
    const s = this.st.syms.get(v);
    return s ? { dims: s.dims, values: s.values.map((x) => this.st.resolve(x)) } : undefined;
  }

  /** Integer contents of input i when fully known (constant, or symbolic with constant values). */
  ints(i: number): number[] | undefined {
    const s = this.sym(i);
    if (s && s.values.every((x) => x.value !== undefined)) return s.values.map((x) => x.value!);
    const c = this.constant(i);
    if (c && (INT_TYPES.has(c.dataType) || c.dataType === DataType.UINT8 || c.dataType === DataType.INT8 || c.dataType === DataType.INT16)) {
      return Array.from(c.toTypedArray() as ArrayLike<number | bigint>, (x) => Number(x));
    }
    return undefined;
  }

  attr(name: string): Attribute | undefined { return this.node.attr(name); }
  attrInt(name: string, fallback: number): number;
  attrInt(name: string): number | undefined;
  attrInt(name: string, fallback?: number): number | undefined { return attrInt(this.node.attr(name)) ?? fallback; }
  attrInts(name: string): number[] | undefined { return attrInts(this.node.attr(name)); }
  attrFloat(name: string, fallback?: number): number | undefined { return attrFloat(this.node.attr(name), fallback); }
  /** A FLOATS attribute (an INTS one is accepted too: builders store integral float lists as ints). */
  attrFloats(name: string): number[] | undefined {
    const a = this.node.attr(name);
    if (a?.type === 'floats') return Array.from(a.value);
    return attrInts(a);
  }
  attrString(name: string, fallback?: string): string | undefined { return attrString(this.node.attr(name), fallback); }

  /** A new symbol for a dim known only at run time (NonZero's count, a data-dependent Reshape). */
  fresh(): Sym { return this.st.fresh(); }

  /** Declare two dims equal (they must be, for the op to be valid); returns the one to use. */
  unify(a: Sym, b: Sym): Sym { return this.st.unify(a, b, () => `${this.node}`); }

  /** Multidirectional (numpy) broadcasting of shapes; undefined if any rank is unknown. */
  broadcast(...shapes: (Sym[] | undefined)[]): Sym[] | undefined {
    if (shapes.some((s) => s === undefined)) return undefined;
    const rank = Math.max(0, ...shapes.map((s) => s!.length));
    const out: Sym[] = [];
    for (let k = 0; k < rank; k++) {
      let d: Sym | undefined;
      for (const s of shapes as Sym[][]) {
        const e = s[s.length - rank + k];
        if (e === undefined) continue;
        const r = this.st.resolve(e);
        if (d === undefined || d.value === 1) { d = r; continue; }
        if (r.value === 1 || r.equals(d)) continue;
        // a symbol against a constant > 1: the constant (the symbol may be 1 or equal to it, we cannot
        // tell, so nothing is unified); two different symbols must be equal (or one is 1 at run time,
        // which no static shape can express): unify them
        if (r.value !== undefined && d.value !== undefined) this.error(`dims ${d.value} and ${r.value} cannot broadcast`);
        if (r.value !== undefined) { d = r; continue; }
        if (d.value !== undefined) continue;
        d = this.unify(d, r);
      }
      out.push(d ?? Sym.ONE);
    }
    return out;
  }

  error(msg: string): never {
    throw new InferenceError(`${this.node}: ${msg}`);
  }

  /**
   * Infer a subgraph that never runs here (an If's other branch when the condition is known), for
   * its values' types (inspect, cost). It may be invalid for what is known (a branch for another
   * sample rate): if its inference fails, none of its values keep a type, so that no contradictory
   * type is written into the model.
   */
  inferDeadSubgraph(g: Graph): void {
    try {
      this.inferSubgraph(g, []);
    } catch {
      this.st.forget(g);
    }
  }

  /**
   * Infer a subgraph (If branch, Loop/Scan body) given its inputs' types; returns its outputs' types.
   * Outer-scope values keep the types already inferred for them, and what the subgraph implies about
   * outer dims stays inside it (State.scoped): a branch taken only when n = 4 must not make n = 4.
   */
  inferSubgraph(g: Graph, inputTypes: (SymType | undefined)[]): (SymType | undefined)[] {
    return this.st.scoped(this.mark, () => {
      g.inputs.forEach((v, i) => {
        const declared = typeFromIr(v.type, this.st);
        const t = merge(declared, inputTypes[i], this.st, () => `${this.node} subgraph '${g.name}' input '${v.name}'`);
        if (t) this.st.types.set(v, t);
      });
      inferGraph(g, this.st);
      return g.outputs.map((v) => {
        const t = this.st.types.get(v);
        return t ? this.st.resolveType(t) : undefined;
      });
    });
  }
}

function opsetFor(model: Model, domain: string): number {
  return model.opsetVersion(domain) ?? (domain === '' ? 1 : 1);
}

function ruleKey(domain: string, op: string): string {
  return `${domain === 'ai.onnx' ? '' : domain}:${op}`;
}

/** Merge an inferred type with what the model declared for the value. */
function merge(declared: SymType | undefined, inferred: SymType | undefined, st: State, where: () => string): SymType | undefined {
  if (!declared) return inferred;
  if (!inferred) return declared;
  if (declared.kind !== 'tensor' || inferred.kind !== 'tensor') return inferred.kind === 'other' ? declared : inferred;
  const bad = (): never => {
    throw new InferenceError(`${where()}: inferred ${formatSymType(st.resolveType(inferred))} but the model declares ${formatSymType(st.resolveType(declared))}`);
  };
  if (declared.elemType !== 0 && inferred.elemType !== 0 && declared.elemType !== inferred.elemType) bad();
  const elemType = inferred.elemType || declared.elemType;
  if (!declared.shape) return { kind: 'tensor', elemType, ...(inferred.shape ? { shape: inferred.shape } : {}) };
  if (!inferred.shape) return { kind: 'tensor', elemType, shape: declared.shape };
  if (declared.shape.length !== inferred.shape.length) bad();
  const shape = inferred.shape.map((d, i) => {
    try {
      return st.unify(d, declared.shape![i]!, where);
    } catch {
      return bad();
    }
  });
  return { kind: 'tensor', elemType, shape };
}

function inferNode(node: Node, st: State): void {
  const opset = opsetFor(st.model, node.domain);
  const ctx = new InferContext(node, opset, st);
  const where = (): string => `${node}`;

  // constant folding: all inputs known, evaluator has the op
  let outs: (OutputInfo | undefined)[] | undefined;
  const evaluate = st.opts.evaluate;
  if (evaluate && node.subgraphs().length === 0 && node.inputs.every((v) => !v || st.consts.has(v))) {
    const values = evaluate(node, node.inputs.map((v) => (v ? st.consts.get(v) : undefined)), opset);
    const cap = st.opts.maxFoldElements ?? 1 << 16;
    if (values && values.every((t) => t.elementCount <= cap)) {
      outs = values.map((t) => ({ value: t, type: { kind: 'tensor', elemType: t.dataType, shape: t.dims.map((d) => Sym.const(d)) } }));
    }
  }
  if (!outs) {
    const rule = st.rules[ruleKey(node.domain, node.opType)];
    if (rule) {
      outs = rule(ctx);
    } else {
      const key = node.qualifiedOp;
      st.unknownOps.set(key, (st.unknownOps.get(key) ?? 0) + 1);
      outs = [];
    }
  }

  node.outputs.forEach((v, i) => {
    if (!v) return;
    const info = outs![i];
    const declared = st.types.get(v);
    const t = merge(declared, info?.type, st, where);
    if (t) st.types.set(v, t);
    if (info?.value) {
      st.consts.set(v, info.value);
      const s = symValueOf(info.value);
      if (s) st.syms.set(v, s);
    } else if (info?.sym) {
      st.syms.set(v, info.sym);
      // contents all known (static dims of a partly symbolic shape): a constant for the nodes that
      // follow, so that Equal(Gather(Shape(x), 1), 1) decides an If and its branch's rank is known
      const c = t?.kind === 'tensor' ? constantOfSym(info.sym, t.elemType, st) : undefined;
      if (c) st.consts.set(v, c);
    }
  });
}

/** The tensor of an integer value whose symbolic contents are all constants, or undefined. */
function constantOfSym(s: SymValue, elemType: number, st: State): Tensor | undefined {
  if (!INT_TYPES.has(elemType)) return undefined;
  const values: number[] = [];
  for (const x of s.values) {
    const n = st.resolve(x).value;
    if (n === undefined) return undefined;
    values.push(n);
  }
  if (values.length !== (s.dims.length === 0 ? 1 : s.dims[0])) return undefined;
  if (elemType === DataType.INT32 && values.some((n) => n !== (n | 0))) return undefined;
  return elemType === DataType.INT64 ? Tensor.int64(values, s.dims) : Tensor.int32(values, s.dims);
}

function inferGraph(g: Graph, st: State): void {
  for (const v of g.initializers) {
    if (v.initializer) {
      st.consts.set(v, v.initializer);
      const s = symValueOf(v.initializer);
      if (s) st.syms.set(v, s);
      // an initializer that is also a graph input can be overridden at run time: type only
      if (v.isGraphInput) { st.consts.delete(v); st.syms.delete(v); }
    }
    const t = typeFromIr(v.type, st);
    if (t) st.types.set(v, t);
  }
  for (const v of g.inputs) {
    if (!st.types.has(v)) {
      const t = typeFromIr(v.type, st);
      if (t) st.types.set(v, t);
    }
    const known = st.opts.inputValues?.get(v);
    if (known) {
      st.consts.set(v, known);
      const s = symValueOf(known);
      if (s) st.syms.set(v, s);
    }
  }
  // declared types of computed values (value_info, outputs) are merged when their node is inferred
  for (const v of g.definedValues()) {
    if (v.producer && v.type && !st.types.has(v)) {
      const t = typeFromIr(v.type, st);
      if (t) st.types.set(v, t);
    }
  }
  // in dependency order: a rewrite in progress may have appended nodes out of order
  for (const n of g.topoOrder()) inferNode(n, st);
}

/**
 * Infer types and shapes for every value of the model's main graph and subgraphs.
 * With `apply` (default), writes them into the IR (value.type), so they are saved as value_info.
 */
export function inferShapes(model: Model, rules: RuleTable, opts: InferOptions = {}): InferResult {
  const st = new State(model, rules, opts);
  for (const v of model.graph.inputs) {
    if (v.type?.kind === 'tensor') for (const d of v.type.shape ?? []) if (typeof d === 'string') for (const s of Sym.from(d).symbols()) st.preferred.add(s);
  }
  inferGraph(model.graph, st);
  const types = new Map<Value, SymType>();
  for (const [v, t] of st.types) types.set(v, st.resolveType(t));
  const symValues = new Map<Value, SymValue>();
  for (const [v, s] of st.syms) symValues.set(v, { dims: s.dims, values: s.values.map((x) => st.resolve(x)) });
  if (opts.apply ?? true) {
    for (const [v, t] of types) {
      if (v.isGraphInput || v.initializer) continue;
      v.type = typeToIr(t);
    }
  }
  const unified = new Map<string, Sym>();
  for (const [k, v] of st.subst) unified.set(k, st.resolve(v));
  return { types, symValues, unknownOps: st.unknownOps, unified };
}

export { Sym };
