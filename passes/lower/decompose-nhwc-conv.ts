/**
 * decompose-nhwc-conv: legalization for targets without com.microsoft::NhwcConv (every runtime but
 * ONNX Runtime's CUDA EP): a model compiled for cuda (convert-conv-nhwc) moved to a CPU, wasm or
 * WebGPU target gets its convolutions back as standard Conv in NCHW.
 *
 * Before:  y = com.microsoft::NhwcConv(x, W, [B])       x, y NHWC; W [M, kH, kW, C/group]
 * After:   y = Transpose(Conv(Transpose(x, [0,3,1,2]), Transpose(W, [0,3,1,2]), [B]), [0,2,3,1])
 *          (the Conv keeps NhwcConv's attributes; the weight's Transpose folds into an initializer,
 *          and the activation Transposes between two convolutions cancel in the portable pipeline's
 *          propagate-transposes / merge-transposes)
 * Conditions: the target lacks com.microsoft::NhwcConv (ctx.supports); a 2-D convolution (x rank 4).
 * Formula: NhwcConv is Conv with its input, weight and output in channels-last order (ORT's CUDA
 *   contrib op); the same composition is the CPU stand-in validation runs it as (src/bench/stand-in.ts).
 */
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Pass } from '../../src/pass/pass.js';
import type { Patch } from '../../src/pass/patch.js';

/** Rewrite one NhwcConv through `patch` (not committed): its NCHW Conv between Transposes. */
export function nhwcConvAsConv(patch: Patch, n: Node): Value {
  const [x, w, b] = n.inputs;
  const xc = patch.add('Transpose', [x], { perm: [0, 3, 1, 2] }, { name: `${n.name}_x_nchw` });
  const wc = patch.add('Transpose', [w], { perm: [0, 3, 1, 2] }, { name: `${n.name}_w_oihw` });
  const y = patch.add('Conv', b ? [xc, wc, b] : [xc, wc], [...n.attributes.values()], { name: `${n.name}_nchw` });
  const out = patch.add('Transpose', [y], { perm: [0, 2, 3, 1] }, { name: `${n.name}_y_nhwc` });
  patch.replace(n.outputs[0]!, out);
  return out;
}

export const decomposeNhwcConv: Pass = {
  name: 'decompose-nhwc-conv',
  description: 'rewrite com.microsoft NhwcConv back to Transpose + Conv + Transpose for targets without it',
  level: 1,
  subgraphs: 'recurse',
  run(graph: Graph, ctx) {
    if (ctx.supports('com.microsoft', 'NhwcConv')) return 0;
    let changes = 0;
    for (const node of graph.nodes) {
      if (node.removed || node.domain !== 'com.microsoft' || node.opType !== 'NhwcConv') continue;
      const t = ctx.shapes().types.get(node.inputs[0]!);
      const rank = t?.kind === 'tensor' ? t.shape?.length : undefined;
      if (rank !== undefined && rank !== 4) {
        ctx.explain(`${node}: input of rank ${rank}: only 2-D (NHWC) convolutions are rewritten`);
        continue;
      }
      if (!ctx.allowRewrite(`decompose-nhwc-conv at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      nhwcConvAsConv(patch, node);
      changes += patch.commit();
    }
    return changes;
  },
};
