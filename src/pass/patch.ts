/**
 * A Patch is how a pass changes a graph: add nodes and constants, rewire values, remove nodes and
 * initializers, then commit(). Nodes and constants are added at once (a rewrite builds on them);
 * every other edit is recorded and applied by commit(), in the order it was asked for, so abort()
 * (or an op the target cannot run) leaves the graph as it was. commit() checks that no replacement
 * changes a known type, keeps graph output names (the model's interface) by handing the name to the
 * value that now carries the output (keepOutputName: the one place that does), and drops the nodes
 * and initializers the rewrite made dead.
 *
 *   add / addN / copy / constant      new nodes (target-checked, except copies) and initializers
 *   replace(from, to)                 every use of `from` reads `to` (same type)
 *   replaceInPlace(from, to)          replace, and `to` takes `from`'s name (a folded value keeps its name)
 *   insertAfter(v, op, ...)           a node after `v`: `v`'s uses read its output (a Cast, a Transpose)
 *   setInput(node, slot, v)           one use rewired
 *   replaceOutput(from, to)           graph outputs holding `from` hold `to`, under their names
 *   replaceReturns(from, to)          subgraphs returning the outer value `from` return `to`
 *   setInitializer / removeInitializer, remove(node)
 *
 * Passes get theirs from ctx.patch(graph), which refuses ops the target cannot run.
 */
import { toAttribute, type Attribute } from '../ir/attribute.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { formatType, type ValueType } from '../ir/types.js';

export class PatchError extends Error {}

/** Thrown by Patch.add for an op the target cannot run; the patch has undone what it added. */
export class UnsupportedOpError extends PatchError {}

export interface PatchOptions {
  /** which ops may be created (default: any) */
  supports?: (domain: string, op: string) => boolean;
  /** how many inputs the target's kernel for an op reads, where it reads fewer than the schema has (Capabilities.maxInputs) */
  maxInputs?: (domain: string, op: string) => number | undefined;
  /** the target's name, for messages */
  target?: string;
}

export interface AddOptions {
  domain?: string;
  /** node name hint; made unique */
  name?: string;
  /** number of outputs (default 1) */
  outputs?: number;
  /** name hints for the outputs (made unique); default: derived from the node's name */
  outputNames?: string[];
}

export interface InsertOptions extends AddOptions {
  /** the new node's inputs (default: [v]) */
  inputs?: (Value | undefined)[];
  /** where a graph output's name moves to the new value: the name hint `v` is renamed to (default `NAME_replaced`) */
  renameFrom?: string;
}

/** An edit commit() applies, in the order the patch was asked for them. */
type Edit =
  | { kind: 'replace'; from: Value; to: Value; takeName: boolean }
  | { kind: 'uses'; from: Value; to: Value; uses: { node: Node; slot: number }[]; renameFrom: string | undefined }
  | { kind: 'input'; node: Node; slot: number; value: Value | undefined }
  | { kind: 'output'; from: Value; to: Value; renameFrom: string | undefined }
  | { kind: 'returns'; from: Value; to: Value }
  | { kind: 'initializer'; value: Value; tensor: Tensor };

/** Types that cannot both describe one value: different element types, ranks or static dims. */
export function typesConflict(a: ValueType | undefined, b: ValueType | undefined): boolean {
  if (!a || !b || a.kind !== 'tensor' || b.kind !== 'tensor') return false;
  if (a.elemType && b.elemType && a.elemType !== b.elemType) return true;
  if (!a.shape || !b.shape) return false;
  if (a.shape.length !== b.shape.length) return true;
  return a.shape.some((d, i) => typeof d === 'number' && typeof b.shape![i] === 'number' && d !== b.shape![i]);
}

export class Patch {
  private readonly added: Node[] = [];
  private readonly edits: Edit[] = [];
  private readonly removals: { node: Node; cascade: boolean }[] = [];
  private readonly initializerRemovals: Value[] = [];
  private committed = false;

  private readonly addedInitializers: Value[] = [];

  constructor(readonly graph: Graph, private readonly opts: PatchOptions = {}) {}

  /** Undo what this patch added (nodes and initializers) and forget its edits; the graph is as before the patch. */
  abort(): void {
    for (const n of [...this.added].reverse()) if (!n.removed) this.graph.removeNode(n, { force: true });
    for (const v of [...this.addedInitializers].reverse()) if (v.initializer && v.uses.length === 0) this.graph.removeInitializer(v);
    this.added.length = 0;
    this.addedInitializers.length = 0;
    this.edits.length = 0;
    this.removals.length = 0;
    this.initializerRemovals.length = 0;
    this.committed = true;
  }

  /** Add a node; returns its outputs. Attributes are Attribute objects or plain values (see toAttribute). */
  addN(opType: string, inputs: (Value | undefined)[], attrs: Record<string, unknown> | Attribute[] = {}, opts: AddOptions = {}): Value[] {
    const domain = opts.domain ?? '';
    if (this.opts.supports && !this.opts.supports(domain, opType)) {
      this.abort();
      throw new UnsupportedOpError(`target${this.opts.target ? ` '${this.opts.target}'` : ''} cannot run ${domain || 'ai.onnx'}::${opType}`);
    }
    const most = this.opts.maxInputs?.(domain, opType);
    const given = inputs.filter((v) => v !== undefined).length;
    if (most !== undefined && given > most) {
      this.abort();
      throw new UnsupportedOpError(`target${this.opts.target ? ` '${this.opts.target}'` : ''} runs ${domain || 'ai.onnx'}::${opType} with ${most} input(s), not ${given}`);
    }
    const attributes = Array.isArray(attrs) ? attrs : Object.entries(attrs).map(([k, v]) => toAttribute(k, v));
    return this.addUnchecked(opType, inputs, attributes, opts);
  }

  /** Add a single-output node; returns its output. */
  add(opType: string, inputs: (Value | undefined)[], attrs: Record<string, unknown> | Attribute[] = {}, opts: AddOptions = {}): Value {
    return this.addN(opType, inputs, attrs, opts)[0]!;
  }

  /**
   * A copy of `node` (same op, domain and number of outputs; name made unique) reading `inputs`,
   * with `attrs` (default: node's). Not checked against the target: the op is in the graph already.
   * Returns the copy's outputs, one per output slot of `node`; nothing is rewired.
   */
  copy(node: Node, inputs: (Value | undefined)[], attrs: Attribute[] = [...node.attributes.values()], opts: { name?: string } = {}): Value[] {
    return this.addUnchecked(node.opType, inputs, attrs, { domain: node.domain, name: opts.name ?? (node.name || node.opType), outputs: node.outputs.length });
  }

  private addUnchecked(opType: string, inputs: (Value | undefined)[], attributes: Attribute[], opts: AddOptions): Value[] {
    const node = this.graph.addNode({
      opType,
      domain: opts.domain ?? '',
      name: this.graph.scope.uniqueNode(opts.name ?? opType),
      inputs,
      outputs: opts.outputNames ?? opts.outputs ?? 1,
      attributes,
    });
    this.added.push(node);
    return node.outputs as Value[];
  }

  /** A new initializer. */
  constant(tensor: Tensor, nameHint = 'const'): Value {
    const v = this.graph.addInitializer(nameHint, tensor);
    this.addedInitializers.push(v);
    return v;
  }

  /** Every use of `from` (and a graph output slot holding it) becomes `to`. */
  replace(from: Value, to: Value): void {
    if (from === to) return;
    this.edits.push({ kind: 'replace', from, to, takeName: false });
  }

  /**
   * replace(), and `to` takes `from`'s name once `from` is gone, so the graph reads as if `from`
   * had been rewritten in place (a folded value keeps its name). When the name is still taken at
   * commit (`from` stayed alive), `to` keeps its own.
   */
  replaceInPlace(from: Value, to: Value): void {
    if (from === to) return;
    this.edits.push({ kind: 'replace', from, to, takeName: true });
  }

  /**
   * Add a node after `v`: it reads `opts.inputs` (default [v]), and on commit every use `v` has now
   * (node inputs in any graph, subgraph returns; not the nodes this patch added) reads the node's
   * output instead. Graph outputs holding `v` move to the new value under their names (`v` is
   * renamed, to `opts.renameFrom` made unique), except where `v` is a graph input: an input passed
   * straight through stays so. Unlike replace(), the type may change (that is what a Cast is for).
   * Returns the new node's (first) output.
   */
  insertAfter(v: Value, opType: string, attrs: Record<string, unknown> | Attribute[] = {}, opts: InsertOptions = {}): Value {
    const uses = v.uses.filter((u) => !this.added.includes(u.node)).map((u) => ({ node: u.node, slot: u.slot }));
    const out = this.add(opType, opts.inputs ?? [v], attrs, opts);
    this.edits.push({ kind: 'uses', from: v, to: out, uses, renameFrom: opts.renameFrom });
    return out;
  }

  /** Input `slot` of `node` reads `v` (one use rewired; any graph of the model). */
  setInput(node: Node, slot: number, v: Value | undefined): void {
    this.edits.push({ kind: 'input', node, slot, value: v });
  }

  /**
   * The graph outputs holding `from` hold `to` instead, under their names: `to` takes the name and
   * `from` is renamed (to `renameFrom` made unique; default `NAME_replaced`). When `to` cannot take
   * a name (a graph input, another graph's value), an Identity of it carries the output. Uses of
   * `from` are not touched; the type may change (a Cast at the interface).
   */
  replaceOutput(from: Value, to: Value, opts: { renameFrom?: string } = {}): void {
    if (from === to) return;
    this.edits.push({ kind: 'output', from, to, renameFrom: opts.renameFrom });
  }

  /** Subgraphs that return the outer value `from` directly return `to` instead (uses of `from` are not touched). */
  replaceReturns(from: Value, to: Value): void {
    if (from === to) return;
    this.edits.push({ kind: 'returns', from, to });
  }

  /** `v` (an initializer, or a value of this graph that no node computes) holds `tensor` from now on. */
  setInitializer(v: Value, tensor: Tensor): void {
    this.edits.push({ kind: 'initializer', value: v, tensor });
  }

  /**
   * Remove a node (its outputs must be unused once the edits are done). With `cascade` (the
   * default) what it alone kept alive goes too: nodes and initializers of this graph; without, only
   * the node (a pass that asks allowRewrite for each removal).
   */
  remove(node: Node, opts: { cascade?: boolean } = {}): void {
    this.removals.push({ node, cascade: opts.cascade ?? true });
  }

  /** Remove an initializer of any graph (it must be unused once the edits and removals are done; not a graph input). */
  removeInitializer(v: Value): void {
    this.initializerRemovals.push(v);
  }

  /** Apply the patch. Returns 1 if the graph changed, else 0. */
  commit(): number {
    if (this.committed) throw new PatchError('patch committed twice');
    this.committed = true;
    for (const e of this.edits) {
      if (e.kind === 'replace' && typesConflict(e.from.type, e.to.type)) {
        throw new PatchError(`rewrite would change the type of '${e.from.name}' from ${formatType(e.from.type)} to ${formatType(e.to.type)}`);
      }
    }
    const dead = new Set<Node>();
    const names: [Value, string][] = [];
    for (const e of this.edits) this.apply(e, dead, names);
    for (const { node, cascade } of this.removals) {
      for (const v of node.outputs) {
        if (v && (v.uses.length || v.isReturned)) throw new PatchError(`cannot remove ${node}: '${v.name}' is still used`);
      }
      if (cascade) dead.add(node);
      else node.graph.removeNode(node);
    }
    this.dropDead(dead);
    for (const v of this.initializerRemovals) {
      if (!v.isConstant) continue; // gone with the nodes that alone used it
      if (v.uses.length || v.isReturned || v.isGraphInput) throw new PatchError(`cannot remove initializer '${v.name}': it is still used or part of the interface`);
      v.graph.removeInitializer(v);
    }
    for (const [v, name] of names) if (v.name !== name && !v.graph.scope.has(name)) v.graph.rename(v, name);
    const changed = this.edits.length || this.removals.length || this.initializerRemovals.length || this.added.some((n) => !n.removed);
    return changed ? 1 : 0;
  }

  private apply(e: Edit, dead: Set<Node>, names: [Value, string][]): void {
    const g = this.graph;
    switch (e.kind) {
      case 'replace': {
        const { from, to } = e;
        const name = from.name;
        g.replaceAllUsesWith(from, to);
        this.moveReturns(from, to);
        if (from.isGraphOutput) this.keepOutputName(from, to, `${name}_replaced`, true);
        if (from.producer) dead.add(from.producer);
        to.type ??= from.type;
        if (e.takeName) names.push([to, name]);
        return;
      }
      case 'uses': {
        const { from, to } = e;
        for (const u of e.uses) if (!u.node.removed && u.node.inputs[u.slot] === from) u.node.graph.setInput(u.node, u.slot, to);
        this.moveReturns(from, to);
        if (from.isGraphOutput && !from.isGraphInput) this.keepOutputName(from, to, e.renameFrom ?? `${from.name}_replaced`, false);
        return;
      }
      case 'input':
        e.node.graph.setInput(e.node, e.slot, e.value);
        return;
      case 'output':
        if (e.from.isGraphOutput) this.keepOutputName(e.from, e.to, e.renameFrom ?? `${e.from.name}_replaced`, false);
        return;
      case 'returns':
        this.moveReturns(e.from, e.to);
        return;
      case 'initializer':
        e.value.graph.setInitializer(e.value, e.tensor);
        return;
    }
  }

  /** Subgraphs that return `from` directly return `to` now (it is visible to them: same or outer graph). */
  private moveReturns(from: Value, to: Value): void {
    for (const sub of [...from.returnedBy]) sub.outputs.forEach((v, i) => { if (v === from) sub.setOutput(i, to); });
  }

  /**
   * `from` was a graph output: the output keeps its name, carried by `to` or by an Identity of it;
   * `from` is renamed to `renameFrom` (made unique). With `sameType` (a replacement) the carrier
   * gets `from`'s type; otherwise it keeps its own (a Cast at the interface).
   */
  private keepOutputName(from: Value, to: Value, renameFrom: string, sameType: boolean): void {
    const g = this.graph;
    const name = from.name;
    // a computed value or an initializer of this graph can be renamed; inputs and outputs cannot
    const canTake = (to.producer !== undefined || to.initializer !== undefined) && to.graph === g && !to.isGraphInput && !to.isGraphOutput;
    const slots = g.outputs.map((v, i) => (v === from ? i : -1)).filter((i) => i >= 0);
    let carrier = to;
    if (!canTake) {
      const node = g.addNode({ opType: 'Identity', name: g.scope.uniqueNode(`${name}_keep`), inputs: [to], outputs: 1 });
      this.added.push(node);
      carrier = node.outputs[0]!;
      if (!sameType) carrier.type = to.type;
    }
    for (const i of slots) g.setOutput(i, carrier);
    g.rename(from, g.scope.unique(renameFrom), { interfaceSwap: true });
    g.rename(carrier, name, { interfaceSwap: true });
    if (sameType) carrier.type = from.type ?? carrier.type;
    if (Object.keys(from.info).length) carrier.info = from.info;
  }

  /** Remove nodes that are dead (no output used, none a graph output), and what they alone kept alive. */
  private dropDead(start: Set<Node>): void {
    const g = this.graph;
    const work = [...start];
    while (work.length) {
      const n = work.pop()!;
      if (n.removed) continue;
      if (n.outputs.some((v) => v && (v.uses.length > 0 || v.isReturned))) continue;
      const inputs = n.inputs.filter((v): v is Value => v !== undefined);
      n.graph.removeNode(n);
      for (const v of inputs) {
        if (v.uses.length || v.isReturned) continue;
        if (v.producer) work.push(v.producer);
        else if (v.initializer && !v.isGraphInput && v.graph === g) g.removeInitializer(v);
      }
    }
  }
}
