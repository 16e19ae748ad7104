/**
 * fuse-gelu-contrib
 *
 * Before:  the erf or tanh form of GELU, spelled out in Erf/Tanh, Pow, Mul, Div and Add (every
 *          variant fuse-gelu matches: Div by 1.4142 or Mul by 0.7071, 0.5 applied first or last,
 *          Pow(x, 3) or x * x * x, operands in either order)
 * After:   y = com.microsoft.Gelu(x)        (erf form)
 *          y = com.microsoft.FastGelu(x)    (tanh form)
 * Conditions:
 *   - the conditions of fuse-gelu's matcher (one use of every intermediate value, constants within
 *     1e-3 of their GELU values), at any opset: at opset >= 20 run fuse-gelu first for the
 *     standard op;
 *   - x's element type is one the target's Gelu / FastGelu kernel takes (its table: float32 on the
 *     CPU EP; float16 too on CUDA and WebGPU, where a float16 model keeps its precision).
 * Formula:  Gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
 *           FastGelu(x) = 0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x^3)))
 */
import { DataType, dataTypeName } from '../../src/ir/dtype.js';
import { rulePass, type Rule } from '../../src/pass/pass.js';
import { targetTakesType } from '../lib/attention/target.js';
import { elemTypeOf } from '../lib/query.js';
import { matchGelu, type GeluMatch } from './fuse-gelu.js';

const MS = 'com.microsoft';

const rule: Rule<GeluMatch> = {
  name: 'gelu-contrib',
  ops: ['Erf', 'Tanh'],
  match: (node, ctx) => {
    const m = matchGelu(node, ctx);
    if (!m) return null;
    const et = elemTypeOf(ctx.shapesOrExplain(), m.x);
    const op = m.approximate === 'tanh' ? 'FastGelu' : 'Gelu';
    // without a table: float32, the type ONNX Runtime's CPU kernels take
    const takes = et !== undefined && (ctx.options.target?.capabilities ? targetTakesType(ctx, `${MS}::${op}`, et) : et === DataType.FLOAT);
    if (!takes) {
      ctx.explain(`${m.root}: a GELU of '${m.x.name}' whose element type is ${et === undefined ? 'unknown' : dataTypeName(et)}, which the target's ${op} kernel does not take`);
      return null;
    }
    return m;
  },
  rewrite: ({ x, root, approximate }, patch, ctx) => {
    ctx.requireOpset(MS, 1);
    const op = approximate === 'tanh' ? 'FastGelu' : 'Gelu';
    const y = patch.add(op, [x], {}, { domain: MS, name: root.name ? `${root.name}_${op.toLowerCase()}` : op });
    patch.replace(root.outputs[0]!, y);
  },
};

export const fuseGeluContrib = rulePass({
  name: 'fuse-gelu-contrib',
  description: 'fuse the erf form of GELU into com.microsoft Gelu and the tanh form into com.microsoft FastGelu',
  level: 2,
  rules: [rule as Rule],
});
