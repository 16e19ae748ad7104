/**
 * fuse-bias-gelu
 *
 * Before:  s = Add(x, bias)   (or Add(bias, x));   y = Gelu(s)   (com.microsoft, or standard with approximate='none')
 *          s = Add(x, bias);                        y = FastGelu(s) (com.microsoft, no bias input yet),
 *                                                       or standard Gelu with approximate='tanh'
 * After:   y = com.microsoft.BiasGelu(x, bias)      (erf GELU)
 *          y = com.microsoft.FastGelu(x, bias)      (tanh GELU)
 * Conditions:
 *   - runs after fuse-gelu / fuse-gelu-contrib, which make the Gelu and FastGelu ops;
 *   - bias is a 1-D constant whose length is x's last dim (a static dim of the inferred shape), so
 *     that the Add's output has x's shape and the op's "bias over the last dim" is exactly the Add;
 *   - s has one use (the Gelu) and is not a graph output;
 *   - x and bias are float32 (ONNX Runtime's CPU kernels of BiasGelu and FastGelu).
 * Formula:  BiasGelu(x, b) = Gelu(x + b);  FastGelu(x, b) = FastGelu(x + b)
 */
import { attrString } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';
import type { Patch } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';
import { tensorTypeOf } from '../lib/query.js';

const MS = 'com.microsoft';

/** "has 2 uses", "has 1 use and is a graph output" */
function usesText(v: Value): string {
  const n = v.uses.length;
  return `has ${n} use${n === 1 ? '' : 's'}${v.isReturned ? ' and is a graph output' : ''}`;
}

type Caps = { x: Value; bias: Value; add: Node; gelu: Node; op: 'BiasGelu' | 'FastGelu' };

function match(gelu: Node, ctx: PassContext, tanh: boolean): Caps | null {
  const s = gelu.inputs[0];
  const add = s?.producer;
  if (!s || !add || add.opType !== 'Add' || add.domain !== '' || add.inputs.length !== 2) return null;
  const [a, b] = add.inputs;
  if (!a || !b) return null;
  // the bias is the constant operand; when both are constant there is nothing to gain
  const ca = constantValue(a), cb = constantValue(b);
  if (!ca && !cb) {
    ctx.explain(`${add}: feeds ${gelu} but neither operand is a constant bias`);
    return null;
  }
  if (ca && cb) return null;
  const [x, bias, bt] = cb ? [a, b, cb] : [b, a, ca!];
  if (s.uses.length !== 1 || s.isReturned) {
    ctx.explain(`${add}: its output ${usesText(s)}; it can only be fused into ${gelu} when the Gelu is its one use`);
    return null;
  }
  if (bt.dims.length !== 1) {
    ctx.explain(`${add}: bias '${bias.name}' has shape [${bt.dims.join(', ')}], not 1-D`);
    return null;
  }
  const xt = tensorTypeOf(ctx.shapesOrExplain(), x);
  const shape = xt?.shape;
  const last = shape?.[shape.length - 1];
  if (!shape || shape.length === 0 || last?.value !== bt.dims[0]) {
    ctx.explain(`${add}: bias '${bias.name}' has length ${bt.dims[0]}, and the last dim of '${x.name}' is ${last ? String(last) : 'unknown'}: not a bias over the last dim`);
    return null;
  }
  if (xt?.elemType !== DataType.FLOAT || bt.dataType !== DataType.FLOAT) {
    ctx.explain(`${add}: '${x.name}' or bias '${bias.name}' is not float32 (ONNX Runtime's BiasGelu/FastGelu kernels take float32)`);
    return null;
  }
  return { x, bias, add, gelu, op: tanh ? 'FastGelu' : 'BiasGelu' };
}

const rewrite = ({ x, bias, gelu, op }: Caps, patch: Patch, ctx: PassContext): void => {
  ctx.requireOpset(MS, 1);
  const y = patch.add(op, [x, bias], {}, { domain: MS, name: gelu.name ? `${gelu.name}_bias` : op });
  patch.replace(gelu.outputs[0]!, y);
};

const contribGelu: Rule<Caps> = {
  name: 'add-gelu',
  ops: ['Gelu'],
  domain: MS,
  match: (node, ctx) => match(node, ctx, false),
  rewrite,
};

const contribFastGelu: Rule<Caps> = {
  name: 'add-fastgelu',
  ops: ['FastGelu'],
  domain: MS,
  match: (node, ctx) => {
    if (node.inputs[1]) return null; // has its bias already
    return match(node, ctx, true);
  },
  rewrite,
};

const standardGelu: Rule<Caps> = {
  name: 'add-standard-gelu',
  ops: ['Gelu'],
  match: (node, ctx) => {
    const approximate = attrString(node.attr('approximate'), 'none');
    if (approximate !== 'none' && approximate !== 'tanh') return null;
    return match(node, ctx, approximate === 'tanh');
  },
  rewrite,
};

export const fuseBiasGelu = rulePass({
  name: 'fuse-bias-gelu',
  description: 'fuse the Add of a 1-D bias before a Gelu or FastGelu into com.microsoft BiasGelu or FastGelu with its bias input',
  level: 2,
  rules: [contribGelu as Rule, contribFastGelu as Rule, standardGelu as Rule],
});
