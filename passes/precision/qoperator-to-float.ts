/**
 * qoperator-to-float (level 3; precision family; in the pipelines of cuda and webgpu, beside dequantize-integer-ops)
 *
 * Before:  a QOperator region (ONNX Runtime's quantize_static(..., QOperator) form):
 *            xq = QuantizeLinear(x, xs, xzp)
 *            yq = QLinearConv(xq, xs, xzp, Wq, ws, wzp, ys, yzp, Bq)  |  QLinearMatMul(xq, xs, xzp, Wq, ws, wzp, ys, yzp)
 *            ... more QLinear ops reading yq ...
 *            y  = DequantizeLinear(yq, ys, yzp)
 * After:   the region in float, with each quantized tensor's clamp kept and its rounding dropped:
 *            xf = Clip(x, lo(xs, xzp), hi(xs, xzp))
 *            yf = Clip(Conv(xf, W, B) | MatMul(xf, W), lo(ys, yzp), hi(ys, yzp))
 *            y  = yf
 *          [lo, hi] = [(qmin - zp) s, (qmax - zp) s] is what the quantized tensor represents (uint8:
 *          qmin 0, qmax 255; so a zero point of 0, a ReLU the quantizer folded into the range, stays a
 *          clamp at 0). W = (Wq - wzp) ws and B = Bq xs ws[m] are computed once here (float64, stored
 *          float32), as qoperator-to-qdq computes them (its matcher is shared). A quantized value read
 *          otherwise (a graph input, an op this pass does not rewrite) is dequantized where it is read
 *          (DequantizeLinear); one that is read quantized elsewhere (a graph output, another op) gets a
 *          QuantizeLinear of the float value, where the target has it.
 * Why:     cuda's and webgpu's tables have no QLinearConv / QLinearMatMul: every such node ran on the
 *          CPU fallback, with copies both ways. WebGPU has no QuantizeLinear either, so the QDQ form
 *          (qoperator-to-qdq, TensorRT's) would still run on the CPU there; ORT's CUDA EP runs QDQ but
 *          only as float ops between Q/DQ nodes (no int8 convolution): float is its fast form. Same
 *          choice as dequantize-integer-ops makes for ConvInteger / MatMulInteger.
 * Accuracy: the activations are no longer rounded to their 8-bit grids (the clamps are kept), so the
 *          result is not the model as given, bit for bit: it is judged against it within the int8
 *          tolerance (cosine >= 0.99, TOLERANCES.int8 in src/bench/validate.ts; measured in
 *          test/precision-qoperator.test.ts). It is at least as close to the float model the
 *          quantizer started from (the weight rounding is kept).
 * Conditions (each failure explained):
 *   - the target lacks the op (ctx.supports); targets that run it keep the model as it is;
 *   - the node matches qoperator-to-qdq's matcher (constant one-element activation scales and zero
 *     points, constant int8/uint8 weights per tensor or per output channel, an int32 bias);
 *   - an input not made by a QuantizeLinear or a rewritten QLinear op with the same scale and zero
 *     point needs DequantizeLinear; an output read quantized needs QuantizeLinear (the patch refuses
 *     an op the target lacks: explained, the node left).
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import { floatOp, lackedQLinear, matchQLinear, readQParams, representedRange, sameParams, type QLinearMatch, type QParams } from './qoperator-to-qdq.js';

const NAME = 'qoperator-to-float';

/** A quantized value's float form, and the parameters it was made with. */
interface FloatForm { value: Value; params: QParams }

/** The QuantizeLinear producing `v` (one-element scale and zero point), its input and parameters, or undefined. */
function quantizeOf(v: Value): { x: Value; params: QParams } | undefined {
  const q = v.producer;
  if (!q || q.domain !== '' || q.opType !== 'QuantizeLinear' || !q.inputs[0]) return undefined;
  // no zero point: uint8, zero point 0 (the op's default)
  const params = readQParams(q.inputs[1], q.inputs[2], 'QuantizeLinear', DataType.UINT8);
  return typeof params === 'string' ? undefined : { x: q.inputs[0], params };
}

const isDq = (n: Node): boolean => !n.removed && n.domain === '' && n.opType === 'DequantizeLinear';

/** Clip(x) to what `p` represents (opset >= 11: min/max inputs; before: attributes). */
function clamp(patch: Patch, ctx: PassContext, x: Value, p: QParams, name: string): Value {
  const [lo, hi] = representedRange(p);
  if (ctx.opset('') >= 11) {
    const base = x.name;
    return patch.add('Clip', [x, patch.constant(Tensor.float32([lo], []), `${base}_lo`), patch.constant(Tensor.float32([hi], []), `${base}_hi`)], {}, { name });
  }
  return patch.add('Clip', [x], { min: lo, max: hi }, { name });
}

export const qoperatorToFloat: Pass = {
  name: NAME,
  description: 'QLinearConv / QLinearMatMul regions become float Conv / MatMul on weights dequantized once, each quantized tensor a Clip to the range it represents, for targets without those kernels whose int8 form is not QDQ (cuda, webgpu; judged within int8 tolerance)',
  level: 3,
  subgraphs: 'recurse',
  run(graph: Graph, ctx: PassContext): number {
    const lacked = lackedQLinear(graph, ctx, NAME);
    if (!lacked.length) return 0;
    const matches = new Map<Node, QLinearMatch>();
    for (const n of lacked) {
      const m = matchQLinear(n);
      if (typeof m === 'string') ctx.explain(m);
      else matches.set(n, m);
    }
    // float forms made so far: quantized value -> its float value (the region grows in graph order)
    const floats = new Map<Value, FloatForm>();
    let changes = 0;
    for (const node of graph.nodes) {
      const m = matches.get(node);
      if (!m || node.removed) continue;
      if (!ctx.allowRewrite(`${NAME}/${m.conv ? 'qlinearconv' : 'qlinearmatmul'} at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      const base = node.name || node.outputs[0]!.name;
      const yq = node.outputs[0]!;
      const made: [Value, FloatForm][] = [];
      try {
        // the input in float: from the region, from its QuantizeLinear's input, or dequantized here
        let xf: Value;
        const known = floats.get(m.x);
        const q = known ? undefined : quantizeOf(m.x);
        if (known && sameParams(known.params, m.xq)) xf = known.value;
        else if (q && sameParams(q.params, m.xq)) {
          xf = clamp(patch, ctx, q.x, m.xq, `${base}_input_clip`);
          made.push([m.x, { value: xf, params: m.xq }]);
        } else {
          xf = patch.add('DequantizeLinear', [m.x, node.inputs[1], node.inputs[2]], {}, { name: `${base}_input_DequantizeLinear` });
        }
        const w = patch.constant(Tensor.float32(Float32Array.from(m.weight), m.weightDims), `${m.w.name}_dequantized`);
        const y = floatOp(patch, m, node, xf, w, base);
        const yf = clamp(patch, ctx, y, m.yq, `${base}_clip`);
        // who reads yq: DequantizeLinear with yq's own parameters reads yf; a QLinear op of the region
        // reads it later (from `floats`); anything else (or a graph output) reads it quantized
        let quantizedUse = yq.isGraphOutput || yq.isReturned;
        for (const u of new Set(yq.uses.map((x) => x.node))) {
          if (isDq(u) && u.inputs[0] === yq) {
            const p = readQParams(u.inputs[1], u.inputs[2], 'DequantizeLinear', m.yq.type);
            if (typeof p !== 'string' && sameParams(p, m.yq)) {
              patch.replace(u.outputs[0]!, yf);
              continue;
            }
          }
          const c = matches.get(u);
          if (c && c.x === yq && u.inputs.indexOf(yq) === 0 && sameParams(c.xq, m.yq)) continue;
          quantizedUse = true;
        }
        if (quantizedUse) {
          const nq = patch.add('QuantizeLinear', [yf, m.yq.scale, m.yq.zeroPoint], {}, { name: `${base}_QuantizeLinear` });
          patch.replace(yq, nq);
          made.push([nq, { value: yf, params: m.yq }]);
        } else {
          made.push([yq, { value: yf, params: m.yq }]);
        }
      } catch (e) {
        if (!(e instanceof UnsupportedOpError)) throw e;
        ctx.explain(`${node}: ${e.message}`); // the patch undid itself
        continue;
      }
      changes += patch.commit();
      for (const [v, f] of made) floats.set(v, f);
    }
    if (changes) ctx.invalidate();
    return changes;
  },
};
