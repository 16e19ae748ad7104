/**
 * qoperator-to-qdq (level 1; precision family; first in tensorrt's pipeline, before qdq-to-int8-symmetric)
 *
 * Before:  ONNX Runtime's QOperator form (quantize_static(..., QOperator), or a model built that way):
 *            yq = QLinearConv(xq, xs, xzp, Wq, ws, wzp, ys, yzp, Bq?)
 *            yq = QLinearMatMul(aq, as, azp, Bq, bs, bzp, ys, yzp)
 * After:   the same computation in the QDQ form (the op's definition written out):
 *            yq = QuantizeLinear(Conv(DequantizeLinear(xq, xs, xzp),
 *                                     DequantizeLinear(Wq, ws, wzp, axis=0), B), ys, yzp)
 *            yq = QuantizeLinear(MatMul(DequantizeLinear(aq, as, azp),
 *                                       DequantizeLinear(Bq, bs, bzp[, axis=1])), ys, yzp)
 *          the Conv keeps the QLinearConv's attributes; yq keeps its type, so what reads it (the next
 *          QLinear op's DequantizeLinear, the model's DequantizeLinear) is unchanged. Activation pairs
 *          Q -> DQ appear where two QLinear ops met: qdq-to-int8-symmetric, after this pass, makes
 *          them (and uint8 weights) symmetric int8 for TensorRT.
 * Formula: QLinearConv's definition: y = saturate(round((sum (xq - xzp)(Wq - wzp) + Bq) * xs * ws[m] / ys) + yzp);
 *          with x = (xq - xzp) xs and W = (Wq - wzp) ws[m], (sum x W + Bq xs ws[m]) / ys is the same real
 *          number, so the bias becomes the float constant B[m] = Bq[m] * xs * ws[m] (float64, stored
 *          float32: TensorRT keeps biases in float, and ORT's CUDA EP has no int32 DequantizeLinear).
 *          The result equals the op up to float rounding (an accumulator sum in float, not int32: a
 *          value within an ulp of a rounding boundary may round to the neighbouring step).
 * Why:     TensorRT's table (targets/capabilities/tensorrt.ts) has no QLinearConv / QLinearMatMul
 *          (its ONNX parser has no such importer): a QOperator model was refused by `compile -t tensorrt`.
 *          Its explicit quantization reads the QDQ form. Targets that run the QLinear ops (the ORT CPU
 *          targets, wasm, portable) keep them; targets whose int8 form is not QDQ (cuda, webgpu) get
 *          the float form instead (qoperator-to-float, which shares this file's matcher).
 * Conditions (each failure explained):
 *   - the target lacks the op (ctx.supports) and has QuantizeLinear and DequantizeLinear;
 *   - scales and zero points of x and y: constants of one element (per-row activation scales: left);
 *     xs, ys float32; zero points uint8 or int8 (y's present: it gives yq its type);
 *   - W a constant int8/uint8 tensor, its scale float32 and zero point of W's type: one element, or one
 *     per output channel (QLinearConv: W's dim 0; QLinearMatMul: a 2-D W's dim 1, per column);
 *   - Bq (QLinearConv) absent or a constant int32 tensor of one value per output channel;
 *   - a per-channel weight needs DequantizeLinear's axis (opset >= 13): below, explained and left.
 */
import { DataType, dataTypeName } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';

export const QOPERATOR_OPS = ['QLinearConv', 'QLinearMatMul'] as const;

const count = (t: Tensor): number => t.dims.reduce((p, d) => p * d, 1);
const isQuantType = (t: number): boolean => t === DataType.UINT8 || t === DataType.INT8;

/** One scale / zero point pair of an activation: the values, and their numbers. */
export interface QParams { scale: Value; zeroPoint: Value | undefined; s: number; zp: number; type: number }

/** A matched QLinearConv / QLinearMatMul, with what both re-expressions need. */
export interface QLinearMatch {
  node: Node;
  conv: boolean;
  /** the quantized activation input, and how it is dequantized */
  x: Value;
  xq: QParams;
  /** the output's quantization */
  yq: QParams;
  /** the weight as given: Wq, its scale and zero point values, and the DequantizeLinear axis (undefined: per tensor) */
  w: Value;
  ws: Value;
  wzp: Value | undefined;
  axis: number | undefined;
  /** W dequantized once, (Wq - wzp) * ws, in float64 */
  weight: Float64Array;
  weightDims: number[];
  /** Bq * xs * ws[m] (QLinearConv with a bias), in float64 */
  bias: Float64Array | undefined;
}

/** The one-element scale and zero point (absent: 0 of `fallbackType`) as numbers, or why not. */
export function readQParams(scale: Value | undefined, zeroPoint: Value | undefined, what: string, fallbackType?: number): QParams | string {
  const s = constantValue(scale);
  if (!s || s.dataType !== DataType.FLOAT) return `the ${what} scale '${scale?.name ?? ''}' is not a float32 constant`;
  if (count(s) !== 1) return `the ${what} scale has ${count(s)} elements (per-row / per-axis activation quantization is left as it is)`;
  let zp = 0, type = fallbackType;
  if (zeroPoint) {
    const z = constantValue(zeroPoint);
    if (!z || !isQuantType(z.dataType)) return `the ${what} zero point '${zeroPoint.name}' is not a uint8/int8 constant`;
    if (count(z) !== 1) return `the ${what} zero point has ${count(z)} elements`;
    zp = Number((z.toTypedArray() as Uint8Array | Int8Array)[0]);
    type = z.dataType;
  }
  if (type === undefined || !isQuantType(type)) return `no ${what} zero point, and no uint8/int8 type to take its 0 from`;
  const sv = (s.toTypedArray() as Float32Array)[0]!;
  if (!(sv > 0) || !Number.isFinite(sv)) return `the ${what} scale ${sv} is not a positive number`;
  return { scale: scale!, zeroPoint, s: sv, zp, type };
}

/** [lo, hi]: the real values a quantized tensor with these parameters represents (the clamp its QuantizeLinear applies). */
export function representedRange(p: QParams): [number, number] {
  const [qmin, qmax] = p.type === DataType.UINT8 ? [0, 255] : [-128, 127];
  return [(qmin - p.zp) * p.s, (qmax - p.zp) * p.s];
}

/** Same numbers (the QParams of a producer and of a consumer describe one quantized tensor alike). */
export function sameParams(a: QParams, b: QParams): boolean {
  return a.type === b.type && a.zp === b.zp && Math.fround(a.s) === Math.fround(b.s);
}

const elemType = (v: Value | undefined): number | undefined => (v?.type?.kind === 'tensor' ? v.type.elemType : undefined);

/** The QLinearConv / QLinearMatMul `node` with constant weights and parameters, or why it is not one. */
export function matchQLinear(node: Node): QLinearMatch | string {
  const conv = node.opType === 'QLinearConv';
  const [x, xs, xzp, w, ws, wzp, ys, yzp, b] = node.inputs;
  if (!x || !w) return `${node}: missing input`;
  const xq = readQParams(xs, xzp, 'input', elemType(x));
  if (typeof xq === 'string') return `${node}: ${xq}`;
  if (!yzp) return `${node}: no output zero point (it gives the output its type)`;
  const yq = readQParams(ys, yzp, 'output');
  if (typeof yq === 'string') return `${node}: ${yq}`;
  const wt = constantValue(w);
  if (!wt || !isQuantType(wt.dataType)) return `${node}: the weight '${w.name}' is not a constant int8/uint8 tensor`;
  const st = constantValue(ws);
  if (!st || st.dataType !== DataType.FLOAT) return `${node}: the weight scale '${ws?.name ?? ''}' is not a float32 constant`;
  const zt = wzp ? constantValue(wzp) : undefined;
  if (wzp && (!zt || zt.dataType !== wt.dataType)) return `${node}: the weight zero point '${wzp.name}' is not a constant of the weight's type (${dataTypeName(wt.dataType)})`;
  if (conv ? wt.dims.length < 3 : wt.dims.length < 2) return `${node}: weight of rank ${wt.dims.length}`;
  const channels = conv ? wt.dims[0]! : wt.dims[wt.dims.length - 1]!;
  const n = count(st);
  if (n !== 1 && (st.dims.length !== 1 || n !== channels || (!conv && wt.dims.length !== 2))) {
    return `${node}: weight scale of shape [${st.dims.join(', ')}], neither one element nor one per output channel (${channels}${conv ? '' : ', of a 2-D weight'})`;
  }
  if (zt && count(zt) !== n) return `${node}: the weight zero point has ${count(zt)} elements, its scale ${n}`;
  const axis = n === 1 ? undefined : conv ? 0 : 1;
  const q = wt.toTypedArray() as Uint8Array | Int8Array;
  const sa = st.toTypedArray() as Float32Array;
  const za = zt ? (zt.toTypedArray() as Uint8Array | Int8Array) : undefined;
  const inner = conv ? q.length / channels : 1;
  const chan = (i: number): number => (n === 1 ? 0 : conv ? Math.floor(i / inner) : i % channels);
  const weight = new Float64Array(q.length);
  for (let i = 0; i < q.length; i++) weight[i] = (q[i]! - (za ? za[chan(i)]! : 0)) * sa[chan(i)]!;
  let bias: Float64Array | undefined;
  if (conv && b) {
    const bt = constantValue(b);
    if (!bt || bt.dataType !== DataType.INT32) return `${node}: the bias '${b.name}' is not a constant int32 tensor`;
    if (count(bt) !== channels) return `${node}: bias of ${count(bt)} elements for ${channels} output channels`;
    const ba = bt.toTypedArray() as Int32Array;
    bias = new Float64Array(channels);
    // the op adds Bq to the int32 accumulator of (xq - xzp)(Wq - wzp), whose real scale is xs * ws[m]
    for (let m = 0; m < channels; m++) bias[m] = ba[m]! * xq.s * sa[n === 1 ? 0 : m]!;
  }
  return { node, conv, x, xq, yq, w, ws: ws!, wzp, axis, weight, weightDims: [...wt.dims], bias };
}

/** The QLinear ops in `graph` the target lacks (ctx.supports), or [] (with the reason explained once). */
/** The float Conv (QLinearConv's attributes, its int32 bias dequantized) or MatMul on xf and w. */
export function floatOp(patch: Patch, m: QLinearMatch, node: Node, xf: Value, w: Value, base: string): Value {
  if (!m.conv) return patch.add('MatMul', [xf, w], {}, { name: `${base}_MatMul` });
  const inputs = [xf, w];
  if (m.bias) inputs.push(patch.constant(Tensor.float32(Float32Array.from(m.bias), [m.bias.length]), `${node.inputs[8]!.name}_dequantized`));
  return patch.add('Conv', inputs, [...node.attributes.values()], { name: `${base}_Conv` });
}

export function lackedQLinear(graph: Graph, ctx: PassContext, pass: string): Node[] {
  const found = graph.nodes.filter((n) => !n.removed && n.domain === '' && (QOPERATOR_OPS as readonly string[]).includes(n.opType));
  const target = ctx.options.target ? `target '${ctx.options.target.name}'` : 'the target';
  if (!found.length) {
    if (graph === ctx.model.graph) ctx.explain('no QLinearConv or QLinearMatMul: nothing to re-express');
    return [];
  }
  const lacked = found.filter((n) => !ctx.supports('', n.opType));
  if (!lacked.length) ctx.explain(`${target} runs ${[...new Set(found.map((n) => n.opType))].join(', ')}: the model keeps its QOperator ops (${pass})`);
  return lacked;
}

const NAME = 'qoperator-to-qdq';

export const qoperatorToQdq: Pass = {
  name: NAME,
  description: 'QLinearConv / QLinearMatMul become DequantizeLinear -> Conv / MatMul -> QuantizeLinear (the QDQ form, same math up to float rounding; the bias a float constant) for targets that lack them and run Q/DQ (tensorrt)',
  level: 1,
  subgraphs: 'recurse',
  run(graph: Graph, ctx: PassContext): number {
    const lacked = lackedQLinear(graph, ctx, NAME);
    if (!lacked.length) return 0;
    const target = ctx.options.target ? `target '${ctx.options.target.name}'` : 'the target';
    if (!ctx.supports('', 'QuantizeLinear') || !ctx.supports('', 'DequantizeLinear')) {
      ctx.explain(`${target} has no ${ctx.supports('', 'QuantizeLinear') ? 'DequantizeLinear' : 'QuantizeLinear'}: no QDQ form runs there (qoperator-to-float makes such models float)`);
      return 0;
    }
    let changes = 0;
    for (const node of lacked) {
      if (node.removed) continue;
      const m = matchQLinear(node);
      if (typeof m === 'string') {
        ctx.explain(m);
        continue;
      }
      if (m.axis !== undefined && ctx.opset('') < 13) {
        ctx.explain(`${node}: a per-channel weight needs DequantizeLinear's axis (opset 13; the model's is ${ctx.opset('')})`);
        continue;
      }
      if (!ctx.allowRewrite(`${NAME}/${m.conv ? 'qlinearconv' : 'qlinearmatmul'} at ${node}`)) return changes;
      const patch = ctx.patch(graph);
      const base = node.name || node.outputs[0]!.name;
      try {
        const [, xs, xzp] = node.inputs;
        const xf = patch.add('DequantizeLinear', [m.x, xs, xzp], {}, { name: `${base}_input_DequantizeLinear` });
        const wf = patch.add('DequantizeLinear', [m.w, m.ws, m.wzp], m.axis === undefined ? {} : { axis: m.axis }, { name: `${base}_weight_DequantizeLinear` });
        const y = floatOp(patch, m, node, xf, wf, base);
        const yq = patch.add('QuantizeLinear', [y, m.yq.scale, m.yq.zeroPoint], {}, { name: `${base}_QuantizeLinear` });
        patch.replace(node.outputs[0]!, yq);
      } catch (e) {
        if (!(e instanceof UnsupportedOpError)) throw e;
        ctx.explain(`${node}: ${e.message}`); // the patch undid itself
        continue;
      }
      changes += patch.commit();
    }
    if (changes) ctx.invalidate();
    return changes;
  },
};

