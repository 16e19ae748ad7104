/**
 * decompose-layernorm: legalization for targets that cannot run LayerNormalization (TensorRT 8.5's
 * parser, for one): rewrite it back to the standard ops it is made of.
 *
 * Before:  y = LayerNormalization(x, gamma, beta, axis=-1, epsilon=e)
 * After:   m = ReduceMean(x, [-1]); d = x - m; v = ReduceMean(d*d, [-1]);
 *          y = d / Sqrt(v + e) * gamma + beta
 * Conditions: the target lacks ai.onnx::LayerNormalization (ctx.supports); axis -1 (or the last
 *   axis); only output 0 used (the Mean/InvStdDev outputs are training-only); float input.
 * Formula: the ONNX definition of LayerNormalization with stash_type float: a float16 / bfloat16 /
 *   float64 x is Cast to float32 for the statistics and the normalized value is Cast back before
 *   gamma and beta (as the op's function body does), so epsilon is always a float32 constant next
 *   to float32 values (a float32 epsilon beside float16 values made a model ORT refuses to load).
 */
import { attrFloat, attrInt } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass } from '../../src/pass/pass.js';

export const decomposeLayernorm: Pass = {
  name: 'decompose-layernorm',
  description: 'rewrite LayerNormalization into ReduceMean/Sub/Mul/Sqrt/Div for targets without it',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    if (ctx.supports('', 'LayerNormalization')) return 0;
    let changes = 0;
    const opset = ctx.opset('');
    for (const node of graph.nodes) {
      if (node.removed || node.opType !== 'LayerNormalization' || node.domain !== '') continue;
      const [x, gamma, beta] = node.inputs;
      const y = node.outputs[0];
      if (!x || !gamma || !y) continue;
      if (node.outputs.slice(1).some((v) => v && (v.uses.length || v.isReturned))) {
        ctx.explain(`${node}: its Mean/InvStdDev outputs are used`);
        continue;
      }
      const rank = ctx.shapes().types.get(x);
      const r = rank?.kind === 'tensor' ? rank.shape?.length : undefined;
      const axis = attrInt(node.attr('axis'), -1);
      if (!(axis === -1 || (r !== undefined && axis === r - 1))) {
        ctx.explain(`${node}: axis ${axis} is not the last axis`);
        continue;
      }
      if (!ctx.allowRewrite(`decompose-layernorm at ${node}`)) return changes;
      const eps = attrFloat(node.attr('epsilon'), 1e-5)!;
      const p = ctx.patch(graph);
      const name = node.name || 'LayerNorm';
      // ReduceMean takes axes as an attribute before opset 18, as an input from 18
      const mean = (v: typeof x): typeof x => (opset >= 18
        ? p.add('ReduceMean', [v, p.constant(Tensor.int64([-1]), `${name}_axes`)], { keepdims: 1 }, { name: `${name}/ReduceMean` })
        : p.add('ReduceMean', [v], { axes: [-1], keepdims: 1 }, { name: `${name}/ReduceMean` }));
      // the statistics in float32 (stash_type 1), whatever x's float type
      const elem = rank?.kind === 'tensor' ? rank.elemType : undefined;
      const wide = elem !== undefined && elem !== DataType.FLOAT;
      const xs = wide ? p.add('Cast', [x], { to: DataType.FLOAT }, { name: `${name}/CastIn` }) : x;
      const m = mean(xs);
      const d = p.add('Sub', [xs, m], {}, { name: `${name}/Sub` });
      const v = mean(p.add('Mul', [d, d], {}, { name: `${name}/Square` }));
      const std = p.add('Sqrt', [p.add('Add', [v, p.constant(Tensor.float32([eps], []), `${name}_epsilon`)], {}, { name: `${name}/AddEps` })], {}, { name: `${name}/Sqrt` });
      let normalized = p.add('Div', [d, std], {}, { name: `${name}/Div` });
      if (wide) normalized = p.add('Cast', [normalized], { to: elem }, { name: `${name}/CastOut` });
      let out = p.add('Mul', [normalized, gamma], {}, { name: `${name}/Scale` });
      if (beta) out = p.add('Add', [out, beta], {}, { name: `${name}/Shift` });
      p.replace(y, out);
      changes += p.commit();
    }
    return changes;
  },
};
