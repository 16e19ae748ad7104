/**
 * A small pattern language for rewrite rules, read like the math:
 *
 *   const convBn = op('BatchNormalization',
 *     op('Conv', v('x'), constant('w'), opt(constant('b'))).as('conv').oneUse(),
 *     constant('scale'), constant('bias'), constant('mean'), constant('var')).as('bn');
 *   const caps = matchNode(convBn, node);   // { x, w, b?, conv, scale, ..., bn } or null
 *
 * Patterns match a value by walking back to its producer. A name captured twice must be the same
 * value (`op('Mul', v('a'), v('a'))` is a square).
 */
import { constantValue } from '../analysis/query.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import type { Captures } from './pass.js';

/** The constant contents of a value (src/analysis/query.ts; kept here for the passes and plugins that import it from the patterns). */
export { constantValue };

export interface ValuePattern {
  /** Match value `v` (undefined for a missing optional input), adding to `caps`; false if no match. */
  matchValue(v: Value | undefined, caps: Captures): boolean;
}

function capture(caps: Captures, name: string | undefined, value: unknown): boolean {
  if (name === undefined) return true;
  if (name in caps) return caps[name] === value;
  caps[name] = value;
  return true;
}

/** Any value (present), captured under `name`. */
export function v(name?: string): ValuePattern {
  return { matchValue: (val, caps) => val !== undefined && capture(caps, name, val) };
}

/** A value with constant contents (initializer or Constant node), captured under `name`. */
export function constant(name?: string, pred?: (t: Tensor) => boolean): ValuePattern {
  return {
    matchValue: (val, caps) => {
      const t = constantValue(val);
      return t !== undefined && (!pred || pred(t)) && capture(caps, name, val);
    },
  };
}

/** An optional input: missing, or matching `p`. */
export function opt(p: ValuePattern): ValuePattern {
  return { matchValue: (val, caps) => val === undefined || p.matchValue(val, caps) };
}

/** The first alternative that matches (captures of failed tries are discarded). */
export function alt(...ps: ValuePattern[]): ValuePattern {
  return {
    matchValue: (val, caps) => {
      for (const p of ps) {
        const trial = { ...caps };
        if (p.matchValue(val, trial)) {
          Object.assign(caps, trial);
          return true;
        }
      }
      return false;
    },
  };
}

export class OpPattern implements ValuePattern {
  private nodeName: string | undefined;
  private valueName: string | undefined;
  private domainName = '';
  private single = false;
  private preds: ((n: Node, caps: Captures) => boolean)[] = [];
  private slot = 0;

  constructor(readonly ops: readonly string[], readonly inputs: readonly ValuePattern[]) {}

  /** Capture the matched node under `name`. */
  as(name: string): this { this.nodeName = name; return this; }
  /** Capture the matched output value under `name`. */
  out(name: string): this { this.valueName = name; return this; }
  domain(d: string): this { this.domainName = d; return this; }
  /** The matched value has exactly one use and is not a graph output (safe to fuse away). */
  oneUse(): this { this.single = true; return this; }
  /** Which output of the node the value must be (default 0). */
  output(slot: number): this { this.slot = slot; return this; }
  where(pred: (n: Node, caps: Captures) => boolean): this { this.preds.push(pred); return this; }

  matchValue(val: Value | undefined, caps: Captures): boolean {
    const n = val?.producer;
    if (!val || !n || val.producerSlot !== this.slot) return false;
    if (this.single && (val.uses.length !== 1 || val.isGraphOutput)) return false;
    return this.matchNode(n, caps) && capture(caps, this.valueName, val);
  }

  matchNode(n: Node, caps: Captures): boolean {
    if (n.removed || n.domain !== this.domainName || !this.ops.includes(n.opType)) return false;
    // trailing missing inputs count as absent; more inputs than the pattern describes do not match
    let count = n.inputs.length;
    while (count > 0 && n.inputs[count - 1] === undefined) count--;
    if (count > this.inputs.length) return false;
    for (let i = 0; i < this.inputs.length; i++) {
      if (!this.inputs[i]!.matchValue(n.inputs[i], caps)) return false;
    }
    if (!capture(caps, this.nodeName, n)) return false;
    return this.preds.every((p) => p(n, caps));
  }
}

/** A node of op type `type` (or one of several: 'Relu|Clip') whose inputs match `inputs`. */
export function op(type: string, ...inputs: ValuePattern[]): OpPattern {
  return new OpPattern(type.split('|'), inputs);
}

/** Match a pattern rooted at `node`; the captures, or null. */
export function matchNode<C extends object = Captures>(p: OpPattern, node: Node): C | null {
  const caps: Captures = {};
  return p.matchNode(node, caps) ? (caps as unknown as C) : null;
}

/** Does `v` feed anything outside `graph`'s node list? (outer-scope uses from subgraphs count) */
export function usedOutside(v: Value, graph: Graph): boolean {
  return v.uses.some((u) => u.node.graph !== graph);
}
