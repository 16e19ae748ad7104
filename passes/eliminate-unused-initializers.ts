/**
 * eliminate-unused-initializers
 *
 * Before:  initializer w, used by no node
 * After:   w is gone
 * Conditions: no node of any graph uses it (a subgraph node reading it is a use), it is not a
 *   graph input (IR < 4 models list initializers as inputs: those are the interface) or a graph
 *   output, and no subgraph returns it as one of its outputs.
 */
import type { Value } from '../src/ir/graph.js';
import type { Pass } from '../src/pass/pass.js';

export const eliminateUnusedInitializers: Pass = {
  name: 'eliminate-unused-initializers',
  description: 'remove initializers that nothing uses',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    // values that a graph returns although an enclosing graph defines them
    const returned = new Set<Value>();
    for (const g of ctx.model.allGraphs()) for (const v of g.outputs) if (v.graph !== g) returned.add(v);
    let changes = 0;
    for (const v of graph.initializers) {
      if (v.uses.length || v.isGraphInput || v.isGraphOutput || returned.has(v)) continue;
      if (!ctx.allowRewrite(`eliminate-unused-initializers: '${v.name}'`)) return changes;
      graph.removeInitializer(v);
      changes++;
    }
    return changes;
  },
};
