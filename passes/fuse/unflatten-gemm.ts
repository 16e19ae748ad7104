/**
 * unflatten-gemm
 *
 * Before:  f = Reshape(x, [-1, K])          x: [d0, ..., dn, K]  (GPT-2's Conv1D, many Linear exports)
 *          g = Gemm(f, W, C)                 transA = 0
 *          y = Reshape(g, s)                 s computes [d0, ..., dn, N] from x's shape at run time
 * After:   y = MatMul(x, W') + C'            W' = alpha * W (transposed when transB), C' = beta * C
 * Conditions: f and g have one use each; shape inference shows y's shape is x's leading dims and N
 *   (so the flattening round trip is the identity on the leading dims); W and C are float32
 *   constants, C broadcasts over the last axis ([N] or [1, N] or a scalar).
 * Why: the shape arithmetic that rebuilds [d0, ..., dn, N] (Shape, Gather, Unsqueeze, Concat per
 *   Linear layer) goes away with both Reshapes: ~290 nodes on GPT-2 small, and fusions then see a
 *   plain MatMul + bias.
 */
import { attrFloat, attrInt } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';
import { tensorTypeOf } from '../lib/query.js';

function single(v: Value | undefined, user: Node): boolean {
  return !!v && v.uses.length === 1 && v.uses[0]!.node === user && !v.isReturned;
}

export const unflattenGemm: Pass = {
  name: 'unflatten-gemm',
  description: 'Reshape to 2-D, Gemm, Reshape back -> MatMul + Add on the original rank',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    let changes = 0;
    const info = ctx.shapesOrExplain();
    if (!info) return 0;
    for (const gemm of graph.nodes) {
      if (gemm.removed || gemm.opType !== 'Gemm' || gemm.domain !== '') continue;
      const [f, w, c] = gemm.inputs;
      const flat = f?.producer;
      const g = gemm.outputs[0];
      const back = g?.uses.length === 1 ? g.uses[0]!.node : undefined;
      if (!f || !flat || flat.opType !== 'Reshape' || !back || back.opType !== 'Reshape' || back.inputs[0] !== g) continue;
      if (!single(f, gemm) || !single(g, back)) { ctx.explain(`${gemm}: the flattened or the Gemm output has other uses`); continue; }
      if (attrInt(gemm.attr('transA'), 0) !== 0) continue;
      const x = flat.inputs[0]!;
      const y = back.outputs[0]!;
      const xt = tensorTypeOf(info, x), yt = tensorTypeOf(info, y);
      if (!xt?.shape || !yt?.shape || xt.elemType !== DataType.FLOAT) continue;
      if (xt.shape.length < 3 || yt.shape.length !== xt.shape.length) continue;
      // y must be x's leading dims followed by N: the flatten/unflatten is the identity on them
      if (!xt.shape.slice(0, -1).every((d, i) => d.equals(yt.shape![i]!))) {
        ctx.explain(`${gemm}: the Reshape back gives [${yt.shape.join(',')}], not [${xt.shape.slice(0, -1).join(',')},N]`);
        continue;
      }
      const wt = constantValue(w);
      if (!wt || wt.dataType !== DataType.FLOAT || wt.dims.length !== 2) { ctx.explain(`${gemm}: the weight is not a float32 2-D constant`); continue; }
      const transB = attrInt(gemm.attr('transB'), 0) === 1;
      const [k, n] = transB ? [wt.dims[1]!, wt.dims[0]!] : [wt.dims[0]!, wt.dims[1]!];
      const ct = c ? constantValue(c) : undefined;
      if (c && (!ct || ct.dataType !== DataType.FLOAT || (ct.elementCount !== n && ct.elementCount !== 1) || (ct.dims.length === 2 && ct.dims[0] !== 1))) {
        ctx.explain(`${gemm}: the bias does not broadcast over the last axis only`);
        continue;
      }
      if (!ctx.allowRewrite(`unflatten-gemm at ${gemm}`)) return changes;
      const alpha = attrFloat(gemm.attr('alpha'), 1)!;
      const beta = attrFloat(gemm.attr('beta'), 1)!;
      const src = wt.toTypedArray() as Float32Array;
      let wv = src;
      if (transB || alpha !== 1) {
        wv = new Float32Array(k * n);
        for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) wv[i * n + j] = alpha * (transB ? src[j * k + i]! : src[i * n + j]!);
      }
      const p = ctx.patch(graph);
      const name = gemm.name || 'Gemm';
      const weight = wv === src ? w! : p.constant(Tensor.float32(wv, [k, n]), `${w!.name}_kn`);
      let out = p.add('MatMul', [x, weight], {}, { name: `${name}/MatMul` });
      if (ct) {
        const cv = ct.toTypedArray() as Float32Array;
        const bias = beta === 1 && ct.dims.length <= 1 ? c! : p.constant(Tensor.float32(Array.from(cv, (v) => v * beta), [cv.length]), `${c!.name}_bias`);
        out = p.add('Add', [out, bias], {}, { name: `${name}/Add` });
      }
      p.replace(y, out);
      changes += p.commit();
    }
    return changes;
  },
};
