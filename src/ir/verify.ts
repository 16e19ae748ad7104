/**
 * Structural checks of the IR: SSA (one definition per name), producers before uses, no dangling
 * uses, use lists that match node inputs, graph outputs that exist, initializer types that match
 * their data. The pass manager runs this after every pass in tests and under --verify-each.
 */
import { IrError, type Graph, type Node, type Value } from './graph.js';
import type { Model } from './model.js';
import { formatType, sameType, tensorType } from './types.js';

export class VerifyError extends IrError {
  constructor(readonly problems: string[]) {
    super(`IR verification failed: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  }
}

/** All problems found in a graph tree (empty when valid). */
export function verifyGraph(graph: Graph): string[] {
  const problems: string[] = [];
  const names = new Map<string, Value>();
  checkGraph(graph, problems, names);
  return problems;
}

/** All problems found in a model's graphs and functions. */
export function verifyModel(model: Model): string[] {
  const problems = verifyGraph(model.graph);
  for (const f of model.functions) problems.push(...verifyGraph(f.body).map((p) => `function '${f.qualifiedName}': ${p}`));
  return problems;
}

/** Throws VerifyError listing the problems, if any. */
export function verify(target: Model | Graph): void {
  const problems = 'graph' in target ? verifyModel(target) : verifyGraph(target);
  if (problems.length) throw new VerifyError(problems);
}

function isDefined(v: Value): boolean {
  return v.isConstant || v.isGraphInput || (v.producer !== undefined && !v.producer.removed);
}

/** Is `v` visible from `g` (defined in g or an enclosing graph)? */
function visibleFrom(v: Value, g: Graph): boolean {
  for (let s: Graph | undefined = g; s; s = s.parent) if (v.graph === s) return true;
  return false;
}

function checkGraph(g: Graph, problems: string[], names: Map<string, Value>): void {
  const where = g.owner ? `subgraph '${g.name}' of ${g.owner}` : `graph '${g.name}'`;
  const define = (v: Value): void => {
    const seen = names.get(v.name);
    if (seen && seen !== v) problems.push(`${where}: name '${v.name}' is defined twice`);
    names.set(v.name, v);
  };
  for (const v of g.inputs) define(v);
  for (const v of g.initializers) {
    if (!g.inputs.includes(v)) define(v);
    if (v.initializer && v.type && !sameType(v.type, tensorType(v.initializer.dataType, [...v.initializer.dims])) && v.type.kind === 'tensor') {
      const t = v.type;
      const dimsOk = t.shape === undefined || (t.shape.length === v.initializer.dims.length && t.shape.every((d, i) => d === null || typeof d === 'string' || d === v.initializer!.dims[i]));
      if (t.elemType !== v.initializer.dataType || !dimsOk) {
        problems.push(`${where}: initializer '${v.name}' has type ${formatType(v.type)} but its data is ${formatType(tensorType(v.initializer.dataType, [...v.initializer.dims]))}`);
      }
    }
  }

  const position = new Map<Node, number>();
  g.nodes.forEach((n, i) => position.set(n, i));
  g.nodes.forEach((n, i) => {
    if (n.graph !== g) problems.push(`${where}: ${n} is listed in a graph it does not belong to`);
    n.inputs.forEach((v, slot) => {
      if (!v) return;
      if (!isDefined(v)) problems.push(`${where}: ${n} uses '${v.name}', which nothing defines (dangling use)`);
      else if (!visibleFrom(v, g)) problems.push(`${where}: ${n} uses '${v.name}' from a graph that does not enclose it`);
      const p = v.producer;
      if (p && p.graph === g && (position.get(p) ?? -1) >= i) problems.push(`${where}: ${n} uses '${v.name}' before ${p} computes it`);
      const count = v.uses.filter((u) => u.node === n && u.slot === slot).length;
      if (count !== 1) problems.push(`${where}: use list of '${v.name}' has ${count} entries for input ${slot} of ${n}`);
    });
    for (const v of n.capturedValues()) {
      const p = v.producer;
      if (p && p.graph === g && (position.get(p) ?? -1) >= i) problems.push(`${where}: ${n} reads '${v.name}' in a subgraph before ${p} computes it`);
    }
    n.outputs.forEach((v, slot) => {
      if (!v) return;
      define(v);
      if (v.producer !== n || v.producerSlot !== slot) problems.push(`${where}: output ${slot} of ${n} ('${v.name}') does not point back to it`);
      if (v.graph !== g) problems.push(`${where}: output '${v.name}' of ${n} belongs to another graph`);
    });
    for (const s of n.subgraphs()) {
      if (s.owner !== n) problems.push(`${where}: subgraph '${s.name}' of ${n} has another owner`);
      checkGraph(s, problems, names);
    }
  });

  for (const v of g.definedValues()) {
    for (const u of v.uses) {
      if (u.node.removed) problems.push(`${where}: '${v.name}' lists a use by removed ${u.node}`);
      else if (u.node.inputs[u.slot] !== v) problems.push(`${where}: '${v.name}' lists a use by ${u.node} input ${u.slot}, which is not it`);
    }
  }
  for (const v of g.outputs) {
    if (!isDefined(v)) problems.push(`${where}: graph output '${v.name}' is not defined`);
    else if (!visibleFrom(v, g)) problems.push(`${where}: graph output '${v.name}' is not visible here`);
  }
}
