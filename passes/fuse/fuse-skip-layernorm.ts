/**
 * fuse-skip-layernorm
 *
 * Before:  s = Add(a, b)                                    (the residual sum)
 *          [a = Add(p, bias) | Add(bias, p)]                (optional bias, one use)
 *          y = LayerNormalization(s, gamma, beta, axis=-1, epsilon)        (standard or ORT's, ONNX domain)
 *          y = SimplifiedLayerNormalization(s, gamma, axis=-1, epsilon)    (RMSNorm, ORT's, ONNX domain)
 *          other users of s (the residual stream of a pre-norm model)
 * After:   y, _, _, s' = com.microsoft.SkipLayerNormalization(input, skip, gamma, beta?, bias?, epsilon)
 *          y, _, _, s' = com.microsoft.SkipSimplifiedLayerNormalization(input, skip, gamma, bias?, epsilon)
 *          output 3 (input_skip_bias_sum, = s) replaces s for its other users; when s has none the node
 *          has one output.
 * Conditions:
 *   - the norm is over the last axis (axis -1 or rank-1); its mean / inv_std_var outputs are unused;
 *   - gamma (and beta) are constant 1-D [H]; the bias (folded in when it is a constant 1-D [H] added
 *     to one side, whose sum has no other use) too;
 *   - shapes (ctx.shapes()): input [B, S, H] (3-D), skip the same shape or [1, S, H] (ONNX Runtime
 *     broadcasts that one: position embeddings), H static and equal to gamma's length;
 *   - float32 or float16 input; neither side of the Add a constant.
 *   Run it after fuse-layernorm(-contrib) (it needs the fused norm) and after fuse-embed-layernorm
 *   (which takes the embedding sum feeding the first LayerNorm of BERT-like models).
 * Formula: SkipLayerNormalization = LayerNorm(input + skip + bias) * gamma + beta over the last axis;
 *   input_skip_bias_sum = input + skip + bias.
 */
import { attrFloat, attrInt } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { rulePass, type Rule } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';
import type { Sym } from '../../src/analysis/symbolic.js';
import { shapesOf } from '../lib/layernorm-pattern.js';
import { elemTypeOf, shapeOf } from '../lib/query.js';

type Caps = {
  m: {
    ln: Node; simplified: boolean; input: Value; skip: Value; gamma: Value; beta?: Value; bias?: Value;
    sum: Value; sumUsedElsewhere: boolean; epsilon: number;
  };
};

function oneD(val: Value | undefined, h: number | undefined): boolean {
  const t = constantValue(val);
  return !!t && t.dims.length === 1 && (h === undefined || t.dims[0] === h);
}

const fmt = (s: Sym[] | undefined): string => (s ? `[${s.join(',')}]` : 'unknown');

const rule: Rule<Caps> = {
  name: 'add-layernorm',
  ops: ['LayerNormalization', 'SimplifiedLayerNormalization'],
  match: (ln, ctx) => {
    const simplified = ln.opType === 'SimplifiedLayerNormalization';
    const [sum, gamma, beta] = ln.inputs;
    const addNode = sum?.producer;
    if (!sum || !addNode || addNode.opType !== 'Add' || addNode.domain !== '' || addNode.removed) return null;
    const what = `${addNode} feeding ${ln}`;
    const fail = (why: string): null => { ctx.explain(`${what}: ${why}`); return null; };
    if (sum.uses.some((u) => u.node.graph !== ln.graph)) return fail(`'${sum.name}' is used in a subgraph`);
    if (ln.outputs.slice(1).some((o) => o && (o.uses.length || o.isGraphOutput))) return fail(`${ln}'s mean/inv_std_var outputs are used`);
    const epsilon = attrFloat(ln.attr('epsilon'), 1e-5)!;
    const [a0, b0] = addNode.inputs as [Value, Value];
    if (constantValue(a0) || constantValue(b0)) return fail(`one side of the Add is a constant (a bias, not a residual sum)`);
    const info = shapesOf(ctx);
    const sa = shapeOf(info, a0), sb = shapeOf(info, b0), ss = shapeOf(info, sum);
    if (!ss || ss.length !== 3) return fail(`'${sum.name}' has shape ${fmt(ss)}, not 3-D [batch, seq, hidden]`);
    const axis = attrInt(ln.attr('axis'), -1);
    if (axis !== -1 && axis !== 2) return fail(`${ln} normalizes from axis ${axis}, not the last axis`);
    const h = ss[2]!.value;
    if (h === undefined) return fail(`hidden size of '${sum.name}' ${fmt(ss)} is not static`);
    if (!oneD(gamma, h) || (beta && !oneD(beta, h))) return fail(`gamma/beta of ${ln} are not constant 1-D [${h}]`);
    const elemType = elemTypeOf(info, sum);
    if (elemType !== DataType.FLOAT && elemType !== DataType.FLOAT16) return fail(`element type ${elemType ?? 'unknown'} is not float32/float16`);
    // which side is the [B, S, H] input and which the skip ([B, S, H] or [1, S, H])
    const same = (x: Sym[] | undefined): boolean => !!x && x.length === 3 && x.every((d, i) => d.equals(ss[i]!));
    const bcast = (x: Sym[] | undefined): boolean => !!x && x.length === 3 && x[0]!.value === 1 && x[1]!.equals(ss[1]!) && x[2]!.equals(ss[2]!);
    let input: Value, skip: Value;
    if (same(sa) && (same(sb) || bcast(sb))) { input = a0; skip = b0; }
    else if (same(sb) && bcast(sa)) { input = b0; skip = a0; }
    else return fail(`Add operands have shapes ${fmt(sa)} and ${fmt(sb)}: need [B,S,H] and [B,S,H] or [1,S,H]`);
    // a bias added to one side (the side with the full shape)
    let bias: Value | undefined;
    for (const side of [input, skip]) {
      const p = side.producer;
      if (bias || !p || p.opType !== 'Add' || p.domain !== '' || side.uses.length !== 1 || side.isGraphOutput) continue;
      const ci = constantValue(p.inputs[0]) ? 0 : constantValue(p.inputs[1]) ? 1 : -1;
      if (ci < 0) continue;
      const c = p.inputs[ci]!, other = p.inputs[1 - ci]!;
      if (!oneD(c, h)) { ctx.explain(`${what}: ${p} not folded in as the bias: '${c.name}' is not constant 1-D [${h}]`); continue; }
      if (!(side === input ? same : (x: Sym[] | undefined) => same(x) || bcast(x))(shapeOf(info, other))) continue;
      bias = c;
      if (side === input) input = other; else skip = other;
    }
    const sumUsedElsewhere = sum.isGraphOutput || sum.isReturned || sum.uses.some((u) => u.node !== ln);
    return { m: { ln, simplified, input, skip, gamma: gamma!, ...(beta && !simplified ? { beta } : {}), ...(bias ? { bias } : {}), sum, sumUsedElsewhere, epsilon } };
  },
  rewrite: ({ m }, patch, ctx) => {
    ctx.requireOpset('com.microsoft', 1);
    const inputs = m.simplified ? [m.input, m.skip, m.gamma, m.bias] : [m.input, m.skip, m.gamma, m.beta, m.bias];
    while (inputs.length && inputs[inputs.length - 1] === undefined) inputs.pop();
    const base = m.ln.name.endsWith('LayerNormalization') ? m.ln.name.slice(0, -'LayerNormalization'.length) : `${m.ln.name}_`;
    const opType = m.simplified ? 'SkipSimplifiedLayerNormalization' : 'SkipLayerNormalization';
    const outs = patch.addN(opType, inputs, { epsilon: m.epsilon }, { domain: 'com.microsoft', outputs: m.sumUsedElsewhere ? 4 : 1, name: `${base.replace(/Simplified$/, '')}${opType}` });
    patch.replace(m.ln.outputs[0]!, outs[0]!);
    if (m.sumUsedElsewhere) patch.replace(m.sum, outs[3]!);
  },
};

export const fuseSkipLayernorm = rulePass({
  name: 'fuse-skip-layernorm',
  description: 'Add (+ bias) feeding a LayerNormalization / SimplifiedLayerNormalization -> com.microsoft SkipLayerNormalization / SkipSimplifiedLayerNormalization',
  level: 2,
  rules: [rule as unknown as Rule],
});
