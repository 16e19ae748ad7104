/**
 * eliminate-unused-initializers
 *
 * Before:  initializer w, used by no node
 * After:   w is gone
 * Conditions: no node of any graph uses it (a subgraph node reading it is a use), it is not a
 *   graph input (IR < 4 models list initializers as inputs: those are the interface) or a graph
 *   output, and no subgraph returns it as one of its outputs.
 */
import type { Pass } from '../../src/pass/pass.js';

export const eliminateUnusedInitializers: Pass = {
  name: 'eliminate-unused-initializers',
  description: 'remove initializers that nothing uses',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    const patch = ctx.patch(graph);
    let changes = 0;
    for (const v of graph.initializers) {
      if (v.uses.length || v.isGraphInput || v.isReturned) continue;
      if (!ctx.allowRewrite(`eliminate-unused-initializers: '${v.name}'`)) break;
      patch.removeInitializer(v);
      changes++;
    }
    patch.commit();
    return changes;
  },
};
