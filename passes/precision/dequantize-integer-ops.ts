/**
 * dequantize-integer-ops (level 1: it writes standard ops; precision family; in the pipelines of targets without integer kernels)
 *
 * Before:  ONNX Runtime's dynamic-quantizer form (quantize_dynamic, ConvInteger / MatMulInteger):
 *            (xq, xs, xzp) = DynamicQuantizeLinear(x)
 *            yi = ConvInteger(xq, Wq, xzp, wzp)  |  MatMulInteger(xq, Wq, xzp, wzp)
 *            y  = Mul(Cast(yi, to=float), Mul(xs, ws))            (a bias Add may follow)
 * After:   y = Conv(x', W) | MatMul(x', W) (x' = x on the uint8 grid, below), the ConvInteger's attributes kept, the bias Add kept (the
 *          fusions after this pass take it), with the weight dequantized once, here:
 *            W = (Wq - wzp) * ws          (float64, stored float32; wzp per output channel or scalar)
 * Why:     ONNX Runtime's WebGPU EP has no DynamicQuantizeLinear, ConvInteger or MatMulInteger kernel
 *          (measured: onnxruntime-node 1.30's WebGPU EP, CPU fallback disabled, the session fails), nor
 *          has its CUDA EP (MatMulInteger int8 only; no DynamicQuantizeLinear, no ConvInteger): every
 *          such node runs on the CPU fallback with copies both ways. The float op runs on the device.
 * Accuracy: the activation's run-time rounding to uint8 is kept in float ops (below), so the result
 *          is the model as given up to the order of float sums; a one-ulp difference before a rounding
 *          is a whole step after it, so it is judged within the int8 tolerance (cosine >= 0.99,
 *          TOLERANCES.int8 in src/bench/validate.ts).
 * Conditions (each failure explained):
 *   - The target cannot run DynamicQuantizeLinear or the integer op (ctx.supports); targets that run
 *     them (the CPU targets) keep the model as it is.
 *   - Strict structure: Cast to float32 of the integer op, whose result and the Cast's have one use and
 *     are not graph outputs; the integer op's inputs 0 and 2 are outputs 0 and 2 of one
 *     DynamicQuantizeLinear (a missing x zero point is refused: it would not be that zero point);
 *     the Mul's other operand is Mul(xs, ws) (either order) with xs that DynamicQuantizeLinear's
 *     output 1 and ws a float32 constant.
 *   - Wq a constant (u)int8 tensor; wzp absent (0) or a constant of its type with one element or one
 *     per output channel (ConvInteger: W's dim 0; MatMulInteger: W's dim 1, W 2-D).
 *   - ws one element; or, for MatMulInteger, one per column ([N]: it broadcasts on the output's last
 *     axis, as the column's scale). A per-channel ws on a ConvInteger output [N, M, ...] would not
 *     broadcast per channel: refused.
 * TensorRT (a level-1 target: standard ops, no CPU fallback, int8 as symmetric s8 DequantizeLinear):
 *   where Wq - wzp fits int8 the weight stays integer: W = DequantizeLinear(Wq - wzp as int8, ws,
 *   axis = the output channel), TensorRT's weight-only int8 form, exact; otherwise float32 (quantizing
 *   an asymmetric uint8 weight again, symmetric per channel, cost mobilenet_v2 cosine 0.9727 vs 0.9970).
 * The activation keeps its run-time rounding: x' = DynamicQuantizeLinear then dequantized, written in
 *   float ops (fakeQuantUint8: ReduceMin/ReduceMax, Clip, Round or Floor), so the result is the model
 *   as given up to float sum order (cnn-tiny: max abs error 6e-8; mobilenet_v2, 52 layers, 0.997
 *   cosine where dropping the rounding gave 0.977 and was refused). Without those ops: x as it is.
 * Level 1: what it writes is standard ONNX (Conv, MatMul, DequantizeLinear).
 * QOperator models (QLinearConv / QLinearMatMul): qoperator-to-qdq / qoperator-to-float.
 */
import { attrInt } from '../../src/ir/attribute.js';
import { DataType, dataTypeName } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { rulePass, type Pass, type PassContext, type Rule } from '../../src/pass/pass.js';
import { constantValue } from '../../src/pass/pattern.js';
import { asInt8, floatProduct } from '../lib/integer-product.js';

const INTEGER_OPS = ['ConvInteger', 'MatMulInteger'] as const;

interface Chain {
  mul: Node;
  intOp: Node;
  x: Value;
  weight: Float32Array;
  dims: number[];
  /** Wq - wzp, where every code fits int8 (for the weight-only DequantizeLinear form) */
  codes?: Int8Array;
  /** ws, one element or one per output channel */
  scales: Float32Array;
  /** the weight's output-channel axis */
  axis: number;
}

/** The target lacks what the chain needs: the integer op or DynamicQuantizeLinear. */
function lacks(ctx: PassContext, opType: string): boolean {
  return !ctx.supports('', opType) || !ctx.supports('', 'DynamicQuantizeLinear');
}

function oneUse(v: Value | undefined): boolean {
  return v !== undefined && v.uses.length === 1 && !v.isGraphOutput && !v.isReturned;
}

/** The integer op behind `m`'s operand `v` (through a Cast), or undefined when `v` is not such a Cast. */
function castOfInteger(v: Value | undefined): { cast: Node; intOp: Node } | undefined {
  const cast = v?.producer;
  if (!cast || cast.domain !== '' || cast.opType !== 'Cast') return undefined;
  const intOp = cast.inputs[0]?.producer;
  if (!intOp || intOp.domain !== '' || !(INTEGER_OPS as readonly string[]).includes(intOp.opType)) return undefined;
  return { cast, intOp };
}

/** The chain ending at Mul `mul`, or a reason it is not one; undefined when `mul` is no such chain's end. */
function matchChain(mul: Node, ctx: PassContext): Chain | string | undefined {
  const operands = mul.inputs;
  if (operands.length !== 2) return undefined;
  const side = castOfInteger(operands[0]) ? 0 : castOfInteger(operands[1]) ? 1 : -1;
  if (side < 0) return undefined;
  const { cast, intOp } = castOfInteger(operands[side])!;
  const scaleProduct = operands[1 - side]!;
  if (!lacks(ctx, intOp.opType)) return `target runs ${intOp.opType} and DynamicQuantizeLinear: kept`;
  if (attrInt(cast.attr('to')) !== DataType.FLOAT) return `${cast} casts to ${dataTypeName(attrInt(cast.attr('to')) ?? 0)}, not float32`;
  if (!oneUse(intOp.outputs[0]) || !oneUse(cast.outputs[0])) return `${intOp} or ${cast} has another use (or is a graph output)`;
  const [xq, wq, xzp, wzp] = intOp.inputs;
  const dql = xq?.producer;
  if (!dql || dql.domain !== '' || dql.opType !== 'DynamicQuantizeLinear' || xq!.producerSlot !== 0) {
    return `${intOp}'s input is not a DynamicQuantizeLinear's quantized output`;
  }
  if (!xzp) return `${intOp} has no x zero point: not ${dql}'s, so it does not compute the dequantized product`;
  if (xzp !== dql.outputs[2]) return `${intOp}'s x zero point is not ${dql}'s (output 2)`;
  const x = dql.inputs[0]!;
  // the Mul's other operand: Mul(xs, ws), xs the same DynamicQuantizeLinear's scale
  const sm = scaleProduct.producer;
  if (!sm || sm.domain !== '' || sm.opType !== 'Mul' || sm.inputs.length !== 2) {
    return `${mul}'s other operand '${scaleProduct.name}' is not a Mul of the activation scale and the weight scale`;
  }
  const xsSide = sm.inputs.indexOf(dql.outputs[1]!);
  if (xsSide < 0) return `${mul}'s scale product ${sm} does not read ${dql}'s scale (output 1)`;
  const ws = constantValue(sm.inputs[1 - xsSide]);
  if (!ws || ws.dataType !== DataType.FLOAT) return `${sm}: the weight scale '${sm.inputs[1 - xsSide]?.name}' is not a float32 constant`;
  const wt = constantValue(wq);
  if (!wt || (wt.dataType !== DataType.UINT8 && wt.dataType !== DataType.INT8)) return `${intOp}: the weight '${wq?.name}' is not a constant int8/uint8 tensor`;
  const zt = wzp ? constantValue(wzp) : undefined;
  if (wzp && (!zt || zt.dataType !== wt.dataType)) return `${intOp}: the weight zero point '${wzp.name}' is not a constant of the weight's type`;
  const conv = intOp.opType === 'ConvInteger';
  if (conv ? wt.dims.length < 3 : wt.dims.length !== 2) return `${intOp}: weight of rank ${wt.dims.length} (${conv ? 'ConvInteger needs >= 3' : 'MatMulInteger handled for 2-D weights only'})`;
  const channels = conv ? wt.dims[0]! : wt.dims[1]!;
  const zpCount = zt ? zt.dims.reduce((p, d) => p * d, 1) : 1;
  if (zpCount !== 1 && (zt!.dims.length !== 1 || zpCount !== channels)) return `${intOp}: weight zero point of shape [${zt!.dims.join(', ')}], neither one element nor one per output channel (${channels})`;
  const scaleCount = ws.dims.reduce((p, d) => p * d, 1);
  if (scaleCount !== 1 && (conv || ws.dims.length !== 1 || scaleCount !== channels)) {
    return `${sm}: weight scale of shape [${ws.dims.join(', ')}] (${conv ? 'a per-channel scale does not broadcast per channel on a ConvInteger output' : `not one element, nor [${channels}]`})`;
  }
  // W = (Wq - wzp) * ws
  const q = wt.toTypedArray() as Uint8Array | Int8Array;
  const zp = zt ? (zt.toTypedArray() as Uint8Array | Int8Array) : undefined;
  const s = ws.toTypedArray() as Float32Array;
  const inner = q.length / channels;
  const channelOf = conv ? (i: number) => Math.floor(i / inner) : (i: number) => i % channels;
  const weight = new Float32Array(q.length);
  const all = new Int16Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const c = channelOf(i);
    all[i] = q[i]! - (zp ? zp[zpCount === 1 ? 0 : c]! : 0);
    weight[i] = all[i]! * s[scaleCount === 1 ? 0 : c]!;
  }
  const codes = asInt8(all);
  return { mul, intOp, x, weight, dims: [...wt.dims], ...(codes ? { codes } : {}), scales: s, axis: conv ? 0 : 1 };
}

const rule: Rule<{ chain: Chain }> = {
  name: 'integer-chain-to-float',
  ops: ['Mul'],
  match(node, ctx) {
    const m = matchChain(node, ctx);
    if (m === undefined) return null;
    if (typeof m === 'string') {
      ctx.explain(`${node}: ${m}`);
      return null;
    }
    return { chain: m };
  },
  rewrite({ chain }, patch, ctx) {
    const { intOp, mul, x, weight, dims, codes, scales, axis } = chain;
    const name = intOp.name ? intOp.name.replace(/Integer$|_int$/, '') || intOp.name : undefined;
    const w = { weight, dims, ...(codes ? { codes } : {}), scales, axis };
    const y = floatProduct(patch, ctx, x, w, intOp.inputs[1]!.name, intOp.opType === 'ConvInteger' ? { attributes: [...intOp.attributes.values()], ...(name ? { name } : {}) } : undefined, name);
    patch.replace(mul.outputs[0]!, y);
  },
};

const inner = rulePass({
  name: 'dequantize-integer-ops',
  description: '',
  level: 1,
  rules: [rule as Rule],
});

export const dequantizeIntegerOps: Pass = {
  name: 'dequantize-integer-ops',
  description: 'DynamicQuantizeLinear + ConvInteger/MatMulInteger (+ Cast, Mul by the scales) become Conv/MatMul on the weight dequantized once (TensorRT: int8 DequantizeLinear), for targets without those kernels (judged within int8 tolerance)',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    const found = graph.nodes.filter((n) => !n.removed && n.domain === '' && (INTEGER_OPS as readonly string[]).includes(n.opType));
    if (!found.length) {
      if (graph === ctx.model.graph) ctx.explain('no ConvInteger or MatMulInteger: nothing to dequantize');
      return 0;
    }
    const needed = [...new Set(found.map((n) => n.opType))];
    if (!needed.some((op) => lacks(ctx, op))) {
      ctx.explain(`target${ctx.options.target ? ` '${ctx.options.target.name}'` : ''} runs ${needed.join(', ')} and DynamicQuantizeLinear: the model keeps its integer ops`);
      return 0;
    }
    return inner.run(graph, ctx);
  },
};
