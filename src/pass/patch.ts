/**
 * A Patch is how a rewrite changes a graph: add nodes and constants, replace values, remove nodes,
 * then commit(). commit() checks that no replacement changes a known type, keeps graph output names
 * (the model's interface) by handing the name to the replacement value, and drops the nodes and
 * initializers the rewrite made dead.
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
}

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
  private readonly replacements: [Value, Value][] = [];
  private readonly removals: Node[] = [];
  private committed = false;

  private readonly addedInitializers: Value[] = [];

  constructor(readonly graph: Graph, private readonly opts: PatchOptions = {}) {}

  /** Undo what this patch added (nodes and initializers); the graph is as before the patch. */
  abort(): void {
    for (const n of [...this.added].reverse()) if (!n.removed) this.graph.removeNode(n, { force: true });
    for (const v of [...this.addedInitializers].reverse()) if (v.initializer && v.uses.length === 0) this.graph.removeInitializer(v);
    this.added.length = 0;
    this.addedInitializers.length = 0;
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
    const node = this.graph.addNode({
      opType,
      domain: opts.domain ?? '',
      name: this.graph.scope.uniqueNode(opts.name ?? opType),
      inputs,
      outputs: opts.outputs ?? 1,
      attributes,
    });
    this.added.push(node);
    return node.outputs as Value[];
  }

  /** Add a single-output node; returns its output. */
  add(opType: string, inputs: (Value | undefined)[], attrs: Record<string, unknown> | Attribute[] = {}, opts: AddOptions = {}): Value {
    return this.addN(opType, inputs, attrs, opts)[0]!;
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
    this.replacements.push([from, to]);
  }

  /** Remove a node (its outputs must be unused once the replacements are done). */
  remove(node: Node): void {
    this.removals.push(node);
  }

  /** Apply the patch. Returns 1 if the graph changed, else 0. */
  commit(): number {
    if (this.committed) throw new PatchError('patch committed twice');
    this.committed = true;
    const g = this.graph;
    for (const [from, to] of this.replacements) {
      if (typesConflict(from.type, to.type)) {
        throw new PatchError(`rewrite would change the type of '${from.name}' from ${formatType(from.type)} to ${formatType(to.type)}`);
      }
    }
    const dead = new Set<Node>();
    for (const [from, to] of this.replacements) {
      g.replaceAllUsesWith(from, to);
      // subgraphs that return `from` directly return `to` now (it is visible to them: same or outer graph)
      for (const sub of [...from.returnedBy]) sub.outputs.forEach((v, i) => { if (v === from) sub.setOutput(i, to); });
      if (from.isGraphOutput) this.keepOutputName(from, to);
      if (from.producer) dead.add(from.producer);
      to.type ??= from.type;
    }
    for (const n of this.removals) {
      for (const v of n.outputs) {
        if (v && (v.uses.length || v.isReturned)) throw new PatchError(`cannot remove ${n}: '${v.name}' is still used`);
      }
      dead.add(n);
    }
    this.dropDead(dead);
    return this.replacements.length || this.removals.length || this.added.some((n) => !n.removed) ? 1 : 0;
  }

  /** `from` was a graph output: the output keeps its name, carried by `to` or by an Identity of it. */
  private keepOutputName(from: Value, to: Value): void {
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
    }
    for (const i of slots) g.setOutput(i, carrier);
    g.rename(from, g.scope.unique(`${name}_replaced`), { interfaceSwap: true });
    g.rename(carrier, name, { interfaceSwap: true });
    carrier.type = from.type ?? carrier.type;
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
