/**
 * lower-contrib-ops: legalization for targets without a contrib op's kernel. A model compiled for
 * ONNX Runtime (fused into com.microsoft ops: FusedConv, SkipLayerNormalization, Attention,
 * MatMulNBits ...) and then moved to a target that lacks them (portable, tensorrt, another runtime)
 * gets each such node written back in standard ONNX ops, by the op's definition.
 *
 * Before:  y = com.microsoft::FusedConv(x, W, B, activation="Relu")        (for example)
 * After:   y = Relu(Conv(x, W, B))
 * Conditions: the target cannot run the node's op (ctx.supports) and a lowering for it exists
 *   (passes/lib/lowerings/index.ts, one entry per op); the lowering may refuse a form it does not
 *   cover, with a reason (--explain), and the node then stays for the target's check to report.
 * Formula: each lowering is the op's documented definition (ONNX Runtime's ContribOperators.md and
 *   its CPU kernel), checked against that kernel on one-node models.
 *
 * The lowered graph then goes through the target's cleanup (constant folding, transposes), and a
 * lowered op whose parts the target runs fused is fused again by that target's own passes.
 */
import type { Graph } from '../../src/ir/graph.js';
import { UnsupportedOpError } from '../../src/pass/patch.js';
import type { Pass } from '../../src/pass/pass.js';
import { Emitter } from '../lib/emit.js';
import { lowering } from '../lib/lowerings/index.js';

export const lowerContribOps: Pass = {
  name: 'lower-contrib-ops',
  description: 'write contrib ops the target cannot run (com.microsoft fusions, MatMulNBits, NhwcConv ...) in standard ONNX ops',
  level: 1,
  subgraphs: 'recurse',
  run(graph: Graph, ctx) {
    let changes = 0;
    for (const node of graph.nodes) {
      if (node.removed || ctx.supports(node.domain, node.opType)) continue;
      const rule = lowering(node.domain, node.opType);
      if (!rule) continue;
      if (!ctx.allowRewrite(`lower-contrib-ops at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      let outs;
      try {
        outs = rule.lower(node, new Emitter(patch, ctx.opset(''), node.name || node.opType), ctx);
      } catch (e) {
        if (!(e instanceof UnsupportedOpError)) throw e;
        outs = e.message;
      }
      if (typeof outs === 'string') {
        patch.abort();
        ctx.explain(`${node}: not lowered: ${outs}`);
        continue;
      }
      node.outputs.forEach((v, i) => { if (v && outs[i]) patch.replace(v, outs[i]!); });
      changes += patch.commit();
      ctx.invalidate();
    }
    return changes;
  },
};
