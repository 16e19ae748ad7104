/**
 * eliminate-identity
 *
 * Before:  y = Identity(x); z = f(y)
 * After:   z = f(x)
 * Conditions: always (an Identity of a graph input feeding a graph output stays, to keep both names).
 */
import { rulePass, type Rule } from '../../src/pass/pass.js';
import { matchNode, op, v } from '../../src/pass/pattern.js';
import type { Node, Value } from '../../src/ir/graph.js';

const identity = op('Identity', v('x')).as('node');

type Caps = { x: Value; node: Node };

const rule: Rule<Caps> = {
  name: 'identity',
  ops: ['Identity'],
  match: (node) => {
    const caps = matchNode<Caps>(identity, node);
    if (!caps) return null;
    const y = node.outputs[0];
    // y = Identity(x) where both x and y are the model's interface: removing it would lose a name
    if (y?.isGraphOutput && (caps.x.isGraphInput || caps.x.isGraphOutput || caps.x.isConstant || caps.x.graph !== node.graph)) return null;
    return caps;
  },
  rewrite: ({ node }, patch) => {
    patch.replace(node.outputs[0]!, node.inputs[0]!);
  },
};

export const eliminateIdentity = rulePass({
  name: 'eliminate-identity',
  description: 'remove Identity nodes, wiring their users to the input',
  level: 1,
  rules: [rule as Rule],
});
