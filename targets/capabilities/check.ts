/**
 * Check a model against a runtime's capability table: every node of every graph (subgraphs too) must be in
 * an accepted domain, have a kernel, have a kernel version range covering the op's schema version, and take
 * a first-input element type the kernel lists. Nodes that call model-local functions are checked through the
 * function's body instead.
 *
 * The kernel is found by `lookupKernel` (src/target.ts, the one lookup `kernelFor` and the pass context's
 * `supports()` use too), at the opset the model (or the function) imports for the node's domain: a row
 * [since, last] covers since..last, and a version past the end of the op's newest row is covered by that row.
 *
 * ai.onnx Constant needs no kernel: ONNX Runtime turns Constant nodes into initializers when it loads the
 * graph (so OperatorKernels.md has no Constant row), and onnx-tensorrt lists it as supported.
 *
 * CPU fallback: a runtime that always registers a CPU execution provider behind the target's (ONNX
 * Runtime's CUDA and WebGPU sessions: ORT places every node the first EP has no kernel for on the CPU
 * EP, by design; that is where shape arithmetic usually runs) declares it as `caps.cpuFallback`. A node
 * the target's table refuses but the fallback table takes is CPU-placed, not a violation: it runs, at
 * the price of copies between devices. `checkPlacement` lists such nodes with the bytes of float
 * tensors that cross: its float inputs that an EP-placed node makes, and its float outputs that an
 * EP-placed node reads (statically known shapes only; 'unknown' when a shape is symbolic). Integer
 * tensors (shapes, indices) are not counted: they are small. Only the tables decide placement here;
 * ORT also moves some nodes with a GPU kernel to the CPU (its shape-subgraph heuristics), which is not
 * modelled.
 *
 * Casts: a runtime that runs a node it has no kernel for in the node's type by casting around it declares
 * it as `caps.castsTo` ({ float16: 'float32' } for ONNX Runtime's CPU EP: its InsertCastTransformer).
 * A node whose first-input type the kernel row lacks, but whose cast-to type the row lists, is not a
 * violation: it is listed in `withCasts` ("runs, with casts": correct, at the price of the casts on every
 * run). The op's schema is not modelled: a type the schema rejects (an invalid model) is not caught here.
 */
import { inferShapes, RULES, type InferResult } from '../../src/analysis/index.js';
import { evaluateNode } from '../../src/analysis/evaluator.js';
import { dataTypeBits, dataTypeName } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Func, Model, OpsetImport } from '../../src/ir/model.js';
import { kernelDomain, kernelTakes, lookupKernel, type Capabilities } from '../../src/target.js';
import { elemTypeOf, staticDims } from '../../passes/lib/query.js';

export interface Violation {
  /** the node's name, or `<op>#<id>` when it has none */
  node: string;
  op: string;
  domain: string;
  reason: string;
}

/** A node the target's execution provider has no kernel for, which the runtime's CPU fallback runs. */
export interface CpuPlaced {
  /** the node's name, or `<op>#<id>` when it has none */
  node: string;
  op: string;
  domain: string;
  /** why the target's own table does not take it */
  reason: string;
  /**
   * bytes copied between the devices per run for this node: float inputs made by EP-placed nodes plus
   * float outputs read by EP-placed nodes; 'unknown' when one of them has a symbolic or unknown shape
   */
  crossBytes: number | 'unknown';
}

/** A node the runtime runs by casting its inputs to another element type (and its outputs back). */
export interface WithCasts {
  /** the node's name, or `<op>#<id>` when it has none */
  node: string;
  op: string;
  domain: string;
  /** the node's first-input element type, which the kernel row lacks */
  from: string;
  /** the type the runtime computes in (`caps.castsTo[from]`) */
  to: string;
}

export interface PlacementReport {
  /** nodes no execution provider of the runtime can run */
  violations: Violation[];
  /** nodes that run on the CPU fallback (empty when the target has none) */
  cpuPlaced: CpuPlaced[];
  /** nodes that run only through casts the runtime inserts (a warning: they run; may also be CPU-placed) */
  withCasts: WithCasts[];
}

function opsetOf(imports: OpsetImport[], domain: string): number | undefined {
  return imports.find((o) => kernelDomain(o.domain) === domain)?.version;
}

const isFloat = (t: number | undefined): boolean => t !== undefined && /^b?float/.test(dataTypeName(t));

/** Static byte size of a tensor value, or undefined when its shape (or element size) is not known. */
function byteSize(v: Value, info: InferResult | undefined): number | undefined {
  const dims = staticDims(info, v);
  const elemType = elemTypeOf(info, v);
  if (!dims || elemType === undefined || dims.some((d) => d === undefined)) return undefined;
  const bits = dataTypeBits(elemType);
  if (bits === undefined) return undefined;
  return Math.ceil(((dims as number[]).reduce((a, b) => a * b, 1) * bits) / 8);
}

/** Violations only: what `checkPlacement` reports as not runnable at all. */
export function checkCapabilities(model: Model, caps: Capabilities): Violation[] {
  return checkPlacement(model, caps).violations;
}

type Placement = 'ep' | 'cpu' | 'none';

/**
 * Place every node of `model` (subgraphs and function bodies too) on the target's execution provider,
 * on its CPU fallback (`caps.cpuFallback`), or nowhere (a violation).
 */
export function checkPlacement(model: Model, caps: Capabilities): PlacementReport {
  const placer = new Placer(model, caps, inferOrUndefined(model));
  placer.checkGraph(model.graph, model.opsetImports);
  return { violations: placer.violations, cpuPlaced: placer.cpuPlaced(), withCasts: placer.withCasts };
}

/** The model's shapes and types, or undefined when inference fails (then the types the model declares count). */
function inferOrUndefined(model: Model): InferResult | undefined {
  try {
    return inferShapes(model, RULES, { evaluate: evaluateNode, apply: false });
  } catch {
    return undefined;
  }
}

/** What a table says of a node: why it cannot run it, or that it can (through casts, when `castBy` is set). */
type Verdict = { reason: string } | { reason?: undefined; castBy?: { from: string; to: string } };

/** One placement of a model: the nodes as placed so far, and what was found. */
class Placer {
  readonly violations: Violation[] = [];
  readonly withCasts: WithCasts[] = [];
  private readonly cpuNodes: { node: Node; reason: string }[] = [];
  private readonly placement = new Map<Node, Placement>();
  /** the model's functions, by `domain::name::overload` */
  private readonly functions = new Map<string, Func>();
  /** the functions whose bodies are being checked (a recursive call is not checked again) */
  private readonly active = new Set<Func>();

  constructor(private readonly model: Model, private readonly caps: Capabilities, private readonly info: InferResult | undefined) {
    for (const f of model.functions) this.functions.set(`${kernelDomain(f.domain)}::${f.name}::${f.overload ?? ''}`, f);
  }

  checkGraph(graph: Graph, imports: OpsetImport[]): void {
    for (const g of graph.allGraphs()) for (const node of g.nodes) this.checkNode(node, imports);
  }

  private checkNode(node: Node, imports: OpsetImport[]): void {
    const domain = kernelDomain(node.domain);
    const overload = typeof node.extra['overload'] === 'string' ? node.extra['overload'] : '';
    const fn = this.functions.get(`${domain}::${node.opType}::${overload}`);
    if (fn) return this.checkCall(fn);
    if (domain === 'ai.onnx' && node.opType === 'Constant') return; // an initializer once loaded
    // a kernel that ignores inputs the node has: the EP still takes the node (no fallback) and computes something else
    const most = this.caps.maxInputs?.[`${domain}::${node.opType}`];
    const given = node.inputs.filter((x) => x !== undefined).length;
    if (most !== undefined && given > most) {
      this.placement.set(node, 'none');
      this.violations.push({ node: nameOf(node), op: node.opType, domain, reason: `the kernel reads ${most} input(s) and ignores the rest; this node has ${given}` });
      return;
    }
    const ep = this.judge(node, domain, imports, this.caps);
    if (ep.reason === undefined) return this.place(node, 'ep', domain, ep.castBy);
    const fallback = this.caps.cpuFallback;
    const cpu = fallback ? this.judge(node, domain, imports, fallback) : undefined;
    if (cpu && cpu.reason === undefined) {
      this.cpuNodes.push({ node, reason: ep.reason });
      return this.place(node, 'cpu', domain, cpu.castBy);
    }
    this.placement.set(node, 'none');
    this.violations.push({ node: nameOf(node), op: node.opType, domain, reason: cpu ? `${ep.reason}; CPU EP: ${cpu.reason}` : ep.reason });
  }

  /** A node that calls a model-local function: checked through the function's body. */
  private checkCall(fn: Func): void {
    if (this.active.has(fn)) return; // recursive call: the body is being checked already
    this.active.add(fn);
    this.checkGraph(fn.body, fn.opsetImports.length > 0 ? fn.opsetImports : this.model.opsetImports);
    this.active.delete(fn);
  }

  private place(node: Node, where: 'ep' | 'cpu', domain: string, castBy: { from: string; to: string } | undefined): void {
    this.placement.set(node, where);
    if (castBy) this.withCasts.push({ node: nameOf(node), op: node.opType, domain, ...castBy });
  }

  /** Whether `table` runs `node` (as it is, or through the casts its runtime inserts), or why not. */
  private judge(node: Node, domain: string, imports: OpsetImport[], table: Capabilities): Verdict {
    const found = lookupKernel(table, node.opType, domain, opsetOf(imports, domain) ?? opsetOf(this.model.opsetImports, domain));
    if (!found.row) return { reason: found.reason };
    const allowed = found.row[2];
    if (!allowed) return {};
    const t = elemTypeOf(this.info, node.inputs[0]);
    if (t === undefined) return {};
    const name = dataTypeName(t);
    if (kernelTakes(found.row, name)) return {};
    const to = table.castsTo?.[name];
    if (to !== undefined && allowed.includes(to)) return { castBy: { from: name, to } };
    return { reason: `type ${name} not supported (${allowed.join(', ')})` };
  }

  /** The CPU-placed nodes, with the bytes of the float tensors that cross between them and EP-placed nodes. */
  cpuPlaced(): CpuPlaced[] {
    return this.cpuNodes.map(({ node, reason }) => ({
      node: nameOf(node), op: node.opType, domain: kernelDomain(node.domain), reason, crossBytes: this.crossBytes(node),
    }));
  }

  /** Float inputs of `node` made by EP-placed nodes plus its float outputs read by EP-placed nodes, in bytes. */
  private crossBytes(node: Node): number | 'unknown' {
    const onEp = (n: Node | undefined): boolean => n !== undefined && this.placement.get(n) === 'ep';
    let bytes = 0;
    let unknown = false;
    const add = (v: Value): void => {
      const b = byteSize(v, this.info);
      if (b === undefined) unknown = true;
      else bytes += b;
    };
    const seen = new Set<Value>();
    for (const v of node.inputs) {
      if (!v || seen.has(v)) continue;
      seen.add(v);
      if (isFloat(elemTypeOf(this.info, v)) && onEp(v.producer)) add(v);
    }
    for (const v of node.outputs) {
      if (!v || !isFloat(elemTypeOf(this.info, v))) continue;
      if (v.uses.some((u) => onEp(u.node))) add(v);
    }
    return unknown ? 'unknown' : bytes;
  }
}

/** The node's name, or `<op>#<id>` when it has none. */
function nameOf(node: Node): string {
  return node.name || `${node.opType}#${node.id}`;
}

/** One line about nodes that run through inserted casts: "3 node(s) run with casts: Conv x2, Relu x1 (float16 -> float32)". */
export function summarizeWithCasts(withCasts: WithCasts[]): string {
  const byOp = new Map<string, number>();
  for (const c of withCasts) byOp.set(c.op, (byOp.get(c.op) ?? 0) + 1);
  const ops = [...byOp].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([op, n]) => `${op} x${n}`).join(', ');
  const pairs = [...new Set(withCasts.map((c) => `${c.from} -> ${c.to}`))].sort().join(', ');
  return `${withCasts.length} node(s) run with casts: ${ops} (${pairs})`;
}

/**
 * One line about CPU-placed nodes: "5 node(s) run on the CPU EP: Shape x4, ConstantOfShape x1; ~1.2 KiB
 * cross" (the byte figure counts the statically known copies, and says at how many nodes they are symbolic).
 */
export function summarizeCpuPlaced(cpuPlaced: CpuPlaced[], formatBytes: (n: number) => string = (n) => `${n} bytes`): string {
  const byOp = new Map<string, number>();
  for (const c of cpuPlaced) byOp.set(c.op, (byOp.get(c.op) ?? 0) + 1);
  const ops = [...byOp].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([op, n]) => `${op} x${n}`).join(', ');
  const known = cpuPlaced.reduce((s, c) => s + (typeof c.crossBytes === 'number' ? c.crossBytes : 0), 0);
  const unknown = cpuPlaced.filter((c) => c.crossBytes === 'unknown').length;
  const cross = `~${formatBytes(known)} cross${unknown ? ` (+ copies of symbolic size at ${unknown} node(s))` : ''}`;
  return `${cpuPlaced.length} node(s) run on the CPU EP: ${ops}; ${cross}`;
}
