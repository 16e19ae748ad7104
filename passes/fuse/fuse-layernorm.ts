/**
 * fuse-layernorm
 *
 * Before:  m = ReduceMean(x, axes=[-1]);  d = Sub(x, m)
 *          v = ReduceMean(Pow(d, 2) | Mul(d, d), axes=[-1])
 *          n = Div(d, Sqrt(Add(v, eps)))          (or Mul(d, Reciprocal(...)), Mul(d, Div(1, ...)))
 *          y = Add(Mul(n, gamma), beta)           (gamma, beta optional)
 * After:   y = LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps)
 * Conditions:
 *   - the model's default opset is >= 17 (the standard LayerNormalization); below that,
 *     fuse-layernorm-contrib (level 2) fuses it into ONNX Runtime's LayerNormalization;
 *   - both ReduceMeans reduce over the last axis only (axes attribute before opset 18, constant
 *     axes input from 18) with keepdims=1; the exponent is 2; eps is a constant scalar;
 *   - x has a float element type; the intermediate values feed only the pattern;
 *   - gamma/beta (folded in when present) are constants of x's type broadcasting along the last
 *     axis only ([H], [1, 1, H], or one element, expanded to [H]); without gamma the hidden size
 *     must be static (a gamma of ones is made).
 *   RMSNorm (no centering: x / sqrt(mean(x^2) + eps) * gamma) has no standard op before opset 23:
 *   not fused here (explained); fuse-layernorm-contrib fuses it.
 * Formula: LayerNormalization computes (x - mean) / sqrt(var + eps) * gamma + beta over the last
 *   axis, var the biased (population) variance: the decomposed graph exactly, up to rounding.
 * The matcher is shared with fuse-layernorm-contrib: passes/lib/layernorm-pattern.ts.
 */
import { rulePass, type Rule } from '../../src/pass/pass.js';
import { affineInputs, matchNorm, type NormMatch } from '../lib/layernorm-pattern.js';

type Caps = { m: NormMatch };

const rule: Rule<Caps> = {
  name: 'decomposed-layernorm',
  ops: ['Div', 'Mul'],
  match: (node, ctx) => {
    const m = matchNorm(node, ctx);
    if (!m) return null;
    if (m.kind === 'rmsnorm') {
      ctx.explain(`RMSNorm of '${m.x.name}' at ${node}: no standard ONNX op for RMSNorm before opset 23 (RMSNormalization, not emitted yet); fuse-layernorm-contrib (level 2) fuses it into SimplifiedLayerNormalization`);
      return null;
    }
    if (ctx.opset() < 17) {
      ctx.explain(`LayerNorm of '${m.x.name}' at ${node}: default opset ${ctx.opset()} < 17 has no standard LayerNormalization; fuse-layernorm-contrib (level 2) fuses it for ONNX Runtime`);
      return null;
    }
    return { m };
  },
  rewrite: ({ m }, patch) => {
    const [gamma, beta] = affineInputs(m, patch, false);
    const y = patch.add('LayerNormalization', beta ? [m.x, gamma, beta] : [m.x, gamma], { axis: -1, epsilon: m.epsilon }, { name: `${m.prefix}LayerNormalization` });
    patch.replace(m.out, y);
  },
};

export const fuseLayernorm = rulePass({
  name: 'fuse-layernorm',
  description: 'decomposed LayerNorm (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div, gamma, beta) -> LayerNormalization (opset >= 17)',
  level: 1,
  rules: [rule as unknown as Rule],
});
