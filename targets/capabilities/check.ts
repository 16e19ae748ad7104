/**
 * Check a model against a runtime's capability table: every node of every graph (subgraphs too) must be in
 * an accepted domain, have a kernel, have a kernel version range covering the op's schema version, and take
 * a first-input element type the kernel lists. Nodes that call model-local functions are checked through the
 * function's body instead.
 *
 * The op's schema version is approximated by the opset the model (or the function) imports for the node's
 * domain, since ONNX's per-op version history is not available here. A range [since, last] covers opset v
 * when since <= v and (last is null, or v <= last, or it is the op's newest range: an op whose newest kernel
 * ends at `last` may simply not have changed since).
 *
 * ai.onnx Constant needs no kernel: ONNX Runtime turns Constant nodes into initializers when it loads the
 * graph (so OperatorKernels.md has no Constant row), and onnx-tensorrt lists it as supported.
 */
import { inferShapes, RULES, type SymType } from '../../src/analysis/index.js';
import { evaluateNode } from '../../src/analysis/evaluator.js';
import { dataTypeName } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Func, Model, OpsetImport } from '../../src/ir/model.js';
import type { Capabilities } from '../../src/target.js';

export interface Violation {
  /** the node's name, or `<op>#<id>` when it has none */
  node: string;
  op: string;
  domain: string;
  reason: string;
}

type Range = [number, number | null, string[] | null];

const normDomain = (d: string | undefined): string => (d === undefined || d === '' ? 'ai.onnx' : d);

function opsetOf(imports: OpsetImport[], domain: string): number | undefined {
  return imports.find((o) => normDomain(o.domain) === domain)?.version;
}

function describeRanges(ranges: Range[]): string {
  return [...ranges]
    .sort((a, b) => a[0] - b[0])
    .map(([s, l]) => (l === null ? `${s}+` : s === l ? `${s}` : `${s}-${l}`))
    .join(', ');
}

/** The range covering opset `v`, or undefined. */
function coveringRange(ranges: Range[], v: number): Range | undefined {
  const newestSince = Math.max(...ranges.map((r) => r[0]));
  // prefer an exact cover; fall back to the newest range for versions past its end
  return (
    ranges.find(([s, l]) => s <= v && (l === null || v <= l)) ??
    ranges.find(([s]) => s <= v && s === newestSince)
  );
}

function elemTypeOf(v: Value | undefined, inferred: Map<Value, SymType> | undefined): number | undefined {
  if (!v) return undefined;
  const t = inferred?.get(v);
  if (t?.kind === 'tensor') return t.elemType;
  if (v.type?.kind === 'tensor' && v.type.elemType !== 0) return v.type.elemType;
  return undefined;
}

export function checkCapabilities(model: Model, caps: Capabilities): Violation[] {
  let inferred: Map<Value, SymType> | undefined;
  try {
    inferred = inferShapes(model, RULES, { evaluate: evaluateNode, apply: false }).types;
  } catch {
    inferred = undefined; // fall back to the types the model declares
  }
  const accepted = new Set(caps.domains.map(normDomain));
  const functions = new Map<string, Func>();
  for (const f of model.functions) functions.set(`${normDomain(f.domain)}::${f.name}::${f.overload ?? ''}`, f);
  const out: Violation[] = [];
  const active = new Set<Func>();

  const checkGraph = (graph: Graph, imports: OpsetImport[]): void => {
    for (const g of graph.allGraphs()) for (const node of g.nodes) checkNode(node, imports);
  };

  const checkNode = (node: Node, imports: OpsetImport[]): void => {
    const domain = normDomain(node.domain);
    const overload = typeof node.extra['overload'] === 'string' ? node.extra['overload'] : '';
    const fn = functions.get(`${domain}::${node.opType}::${overload}`);
    if (fn) {
      if (active.has(fn)) return; // recursive call: the body is being checked already
      active.add(fn);
      checkGraph(fn.body, fn.opsetImports.length > 0 ? fn.opsetImports : model.opsetImports);
      active.delete(fn);
      return;
    }
    const report = (reason: string): void => {
      out.push({ node: node.name || `${node.opType}#${node.id}`, op: node.opType, domain, reason });
    };
    if (!accepted.has(domain)) return report(`domain ${domain} not supported`);
    const ranges = caps.kernels[`${domain}::${node.opType}`];
    if (!ranges || ranges.length === 0) {
      if (domain === 'ai.onnx' && node.opType === 'Constant') return;
      return report('op not implemented');
    }
    const v = opsetOf(imports, domain) ?? opsetOf(model.opsetImports, domain);
    let range: Range | undefined;
    if (v === undefined) {
      range = [...ranges].sort((a, b) => b[0] - a[0])[0];
    } else {
      range = coveringRange(ranges, v);
      if (!range) return report(`opset ${v} not covered (kernels ${describeRanges(ranges)})`);
    }
    const allowed = range?.[2];
    if (!allowed) return;
    const t = elemTypeOf(node.inputs[0], inferred);
    if (t === undefined || t === 0) return;
    const name = dataTypeName(t);
    if (!allowed.includes(name)) report(`type ${name} not supported (${allowed.join(', ')})`);
  };

  checkGraph(model.graph, model.opsetImports);
  return out;
}
