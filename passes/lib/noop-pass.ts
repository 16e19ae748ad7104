/**
 * The shape every no-op elimination shares: a node of one of `ops` for which `isNoop` holds is
 * removed and its users read its first input instead. Removing a no-op changes no value's type or
 * contents, so the shape analysis stays valid across the rewrites (preservesTypes).
 */
import type { Node } from '../../src/ir/graph.js';
import { rulePass, type Pass, type PassContext } from '../../src/pass/pass.js';

export function noopEliminationPass(spec: {
  name: string;
  description: string;
  ops: string[];
  isNoop: (node: Node, ctx: PassContext) => boolean;
}): Pass {
  return rulePass({
    name: spec.name,
    description: spec.description,
    level: 1,
    rules: [{
      name: 'noop',
      ops: spec.ops,
      preservesTypes: true,
      match: (node: Node, ctx: PassContext) => (node.inputs[0] && node.outputs[0] && spec.isNoop(node, ctx) ? { node } : null),
      rewrite: ({ node }: { node: Node }, patch) => patch.replace(node.outputs[0]!, node.inputs[0]!),
    }],
  });
}
