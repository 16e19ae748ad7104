/**
 * fuse-layernorm-contrib
 *
 * Before:  the decomposed LayerNorm of fuse-layernorm (ReduceMean, Sub, Pow, ReduceMean, Add eps,
 *          Sqrt, Div, Mul gamma, Add beta), at any opset; or an RMSNorm:
 *          y = Mul(Div(x, Sqrt(Add(ReduceMean(Pow(x, 2), [-1]), eps))), gamma)
 *              (also x * Reciprocal(...), x * Div(1, Sqrt(...)): Llama's x * rsqrt(...))
 * After:   y = LayerNormalization(x, gamma, beta, axis=-1, epsilon)               (LayerNorm)
 *          y = SimplifiedLayerNormalization(x, gamma, axis=-1, epsilon)          (RMSNorm)
 *          Both in the DEFAULT ONNX domain, not com.microsoft: ONNX Runtime registers its
 *          LayerNormalization contrib kernel (from before ONNX had the op) in the ONNX domain for
 *          opsets 1-16, and SimplifiedLayerNormalization in the ONNX domain from opset 1; the
 *          com.microsoft domain has neither (ORT 1.30 refuses com.microsoft:LayerNormalization and
 *          com.microsoft:SimplifiedLayerNormalization: "not a registered function/op"). So below
 *          opset 17 the result runs in ONNX Runtime only (hence level 2); at opset >= 17 the
 *          LayerNormalization is the standard op.
 * Conditions: those of fuse-layernorm's matcher (passes/lib/layernorm-pattern.ts): last-axis
 *   ReduceMeans with keepdims, exponent 2, constant scalar eps, float input, intermediates used only
 *   inside the pattern, gamma/beta constants along the last axis.
 * Formula: LayerNorm as in fuse-layernorm; SimplifiedLayerNormalization computes
 *   x / sqrt(mean(x^2) + eps) * gamma over the last axis.
 */
import { rulePass, type Rule } from '../../src/pass/pass.js';
import { affineInputs, matchNorm, type NormMatch } from '../lib/layernorm-pattern.js';

type Caps = { m: NormMatch };

const rule: Rule<Caps> = {
  name: 'decomposed-norm',
  ops: ['Div', 'Mul'],
  match: (node, ctx) => {
    const m = matchNorm(node, ctx);
    return m ? { m } : null;
  },
  rewrite: ({ m }, patch) => {
    const [gamma, beta] = affineInputs(m, patch, false);
    const y = m.kind === 'layernorm'
      ? patch.add('LayerNormalization', beta ? [m.x, gamma, beta] : [m.x, gamma], { axis: -1, epsilon: m.epsilon }, { name: `${m.prefix}LayerNormalization` })
      : patch.add('SimplifiedLayerNormalization', [m.x, gamma], { axis: -1, epsilon: m.epsilon }, { name: `${m.prefix}SimplifiedLayerNormalization` });
    patch.replace(m.out, y);
  },
};

export const fuseLayernormContrib = rulePass({
  name: 'fuse-layernorm-contrib',
  description: "decomposed LayerNorm / RMSNorm -> ONNX Runtime's LayerNormalization (any opset) / SimplifiedLayerNormalization",
  level: 2,
  rules: [rule as unknown as Rule],
});
