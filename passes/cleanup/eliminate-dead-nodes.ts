/**
 * eliminate-dead-nodes
 *
 * Before:  a = f(x); b = g(a)        (b unused, not a graph output)
 * After:   (both nodes gone)
 * Conditions: no output of the node is used, is a graph output, or is read as an output of a
 *   subgraph (an If branch may return an outer value). Works over every graph of the model at once
 *   (subgraphs: 'self'): a node in a subgraph that reads an outer value is a use of it, and removing
 *   a dead If/Loop frees what its bodies read. Loop/If/Scan have no side effects in ONNX. Nodes of
 *   custom domains with no outputs at all are kept (a node that returns nothing exists for its
 *   effect). Initializers that only removed nodes used go too (not graph inputs).
 */
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';

const STANDARD_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft']);

function isLive(v: Value | undefined): boolean {
  return v !== undefined && (v.uses.length > 0 || v.isReturned);
}

export const eliminateDeadNodes: Pass = {
  name: 'eliminate-dead-nodes',
  description: 'remove nodes whose outputs nothing uses (all graphs, subgraph reads count as uses)',
  level: 1,
  subgraphs: 'self',
  run(_graph, ctx) {
    let changes = 0;
    for (;;) {
      const graphs = [...ctx.model.allGraphs()];
      let removedThisRound = 0;
      // innermost graphs first, each graph back to front: a chain of dead nodes goes in one sweep
      for (const g of graphs.reverse()) {
        if (isDropped(g)) continue;
        const nodes = g.nodes;
        for (let i = nodes.length - 1; i >= 0; i--) {
          const n = nodes[i]!;
          if (n.removed || isDropped(g)) continue;
          if (n.outputs.some((v) => isLive(v))) continue;
          if (!n.outputs.some((v) => v !== undefined) && !STANDARD_DOMAINS.has(n.domain)) continue;
          if (!ctx.allowRewrite(`eliminate-dead-nodes: ${n}`)) return changes;
          removeDead(n, ctx);
          removedThisRound++;
          changes++;
        }
      }
      if (removedThisRound === 0) break;
      ctx.invalidate();
    }
    return changes;
  },
};

/** Remove dead `n` alone (each removal asks allowRewrite), then the initializers only it read (of any graph). */
function removeDead(n: Node, ctx: PassContext): void {
  const freed = inputsOf(n);
  const patch = ctx.patch(n.graph);
  patch.remove(n, { cascade: false });
  patch.commit();
  const unused = freed.filter((v) => v.isConstant && !v.uses.length && !v.isGraphInput && !v.isReturned && !v.producer);
  if (!unused.length) return;
  const cleanup = ctx.patch(n.graph);
  for (const v of unused) cleanup.removeInitializer(v);
  cleanup.commit();
}

/** A graph whose owning node (or an owner further out) was removed. */
function isDropped(g: Graph): boolean {
  for (let s: Graph | undefined = g; s; s = s.parent) if (s.owner?.removed) return true;
  return false;
}

/** Everything `n` reads: its inputs and the outer values its subgraphs read. */
function inputsOf(n: Node): Value[] {
  const vs = new Set<Value>();
  for (const v of n.inputs) if (v) vs.add(v);
  for (const v of n.capturedValues()) vs.add(v);
  return [...vs];
}
