/**
 * An example retarget plugin: one pass, written against the same API as the built-in ones.
 *
 *   npx retarget compile model.onnx -o out.onnx --plugin examples/plugins/fuse-hardswish.mjs
 *
 * fuse-hardswish
 * Before:  y = Mul(x, HardSigmoid(x, alpha=1/6, beta=0.5))      (older exporters write hardswish so)
 * After:   y = HardSwish(x)                                      (a single op since opset 14)
 * Conditions: default-domain opset >= 14; the HardSigmoid output has no other use.
 */
import { matchNode, op, rulePass, v } from 'retarget';

const hardSigmoid = op('HardSigmoid', v('x')).as('hs').oneUse()
  .where((n) => {
    const alpha = n.attr('alpha')?.value ?? 0.2;
    const beta = n.attr('beta')?.value ?? 0.5;
    return Math.abs(alpha - 1 / 6) < 1e-6 && Math.abs(beta - 0.5) < 1e-6;
  });
// x * hardsigmoid(x), in either operand order; v('x') twice means the same value
const patterns = [op('Mul', v('x'), hardSigmoid).as('mul'), op('Mul', hardSigmoid, v('x')).as('mul')];

export const fuseHardSwish = rulePass({
  name: 'fuse-hardswish',
  description: 'x * HardSigmoid(x, 1/6, 0.5) -> HardSwish(x)',
  level: 1,
  rules: [{
    name: 'mul-hardsigmoid',
    ops: ['Mul'],
    match: (node, ctx) => {
      if (ctx.opset('') < 14) {
        ctx.explain(`${node}: HardSwish needs opset 14, the model imports ${ctx.opset('')}`);
        return null;
      }
      for (const p of patterns) {
        const caps = matchNode(p, node);
        if (caps) return caps;
      }
      return null;
    },
    rewrite: ({ x, mul }, patch) => {
      patch.replace(mul.outputs[0], patch.add('HardSwish', [x], {}, { name: `${mul.name}_hardswish` }));
    },
  }],
});
