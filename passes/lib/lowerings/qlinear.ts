/**
 * ONNX Runtime's QOperator contrib ops (what its QOperator-format quantizer leaves around
 * QLinearConv in a real CNN) in standard ONNX, as the QDQ form they stand for:
 *
 *   QLinearAdd / QLinearMul(a, as, azp, b, bs, bzp, ys, yzp)
 *       = QuantizeLinear(DequantizeLinear(a, as, azp) (+|*) DequantizeLinear(b, bs, bzp), ys, yzp)
 *   QLinearSigmoid / QLinearLeakyRelu(x, xs, xzp, ys, yzp[; alpha])
 *       = QuantizeLinear(Sigmoid | LeakyRelu(DequantizeLinear(x, xs, xzp)), ys, yzp)
 *   QLinearGlobalAveragePool / QLinearAveragePool(x, xs, xzp, ys, yzp; channels_last 0, pool attributes)
 *       = QuantizeLinear(GlobalAveragePool | AveragePool(DequantizeLinear(x, xs, xzp)), ys, yzp)
 *   QLinearConcat(ys, yzp, x1, s1, zp1, x2, s2, zp2, ...; axis)
 *       = QuantizeLinear(Concat(DequantizeLinear(x1, s1, zp1), ...), ys, yzp)
 *
 * The kernels compute in float between the dequantize and the requantize too (ORT's CPU kernels use
 * lookup tables or fixed-point for some, which round differently by at most one step): judged within
 * int8 like every run-time quantization (runtimeQuantization). A target that takes only symmetric int8
 * QDQ (tensorrt) gets these pairs from qdq-to-int8-symmetric, which runs after this lowering.
 * Conditions: channels_last 0 (NCHW) for the pools.
 */
import { attrInt, type Attribute } from '../../../src/ir/attribute.js';
import type { Node, Value } from '../../../src/ir/graph.js';
import type { Emitter } from '../emit.js';
import type { Lowering } from './lowering.js';

const MS = 'com.microsoft';

const dq = (e: Emitter, x: Value, s: Value, zp: Value | undefined): Value => e.op('DequantizeLinear', zp ? [x, s, zp] : [x, s]);
const q = (e: Emitter, y: Value, s: Value, zp: Value | undefined): Value => e.op('QuantizeLinear', zp ? [y, s, zp] : [y, s]);

function binary(op: 'Add' | 'Mul'): Lowering['lower'] {
  return (n, e) => {
    const [a, as, azp, b, bs, bzp, ys, yzp] = n.inputs;
    return [q(e, e.op(op, [dq(e, a!, as!, azp), dq(e, b!, bs!, bzp)]), ys!, yzp)];
  };
}

/** The node's attributes but `drop` (channels_last, the contrib op's own). */
const attrsBut = (n: Node, ...drop: string[]): Attribute[] => [...n.attributes.values()].filter((a) => !drop.includes(a.name));

function unary(op: string, keep: (n: Node) => Attribute[] = () => []): Lowering['lower'] {
  return (n, e) => {
    if (attrInt(n.attr('channels_last'), 0) !== 0) return 'channels_last pooling is not lowered';
    const [x, xs, xzp, ys, yzp] = n.inputs;
    const y = e.patch.add(op, [dq(e, x!, xs!, xzp)], keep(n), { name: `${e.prefix}/${op}` });
    return [q(e, y, ys!, yzp)];
  };
}

export const QLINEAR_LOWERINGS: Lowering[] = [
  { domain: MS, op: 'QLinearAdd', lower: binary('Add') },
  { domain: MS, op: 'QLinearMul', lower: binary('Mul') },
  { domain: MS, op: 'QLinearSigmoid', lower: unary('Sigmoid') },
  { domain: MS, op: 'QLinearLeakyRelu', lower: unary('LeakyRelu', (n) => attrsBut(n)) },
  { domain: MS, op: 'QLinearGlobalAveragePool', lower: unary('GlobalAveragePool') },
  { domain: MS, op: 'QLinearAveragePool', lower: unary('AveragePool', (n) => attrsBut(n, 'channels_last')) },
  {
    domain: MS, op: 'QLinearConcat',
    lower(n, e) {
      const [ys, yzp, ...rest] = n.inputs;
      const parts: Value[] = [];
      for (let i = 0; i < rest.length; i += 3) parts.push(dq(e, rest[i]!, rest[i + 1]!, rest[i + 2]));
      return [q(e, e.op('Concat', parts, { axis: attrInt(n.attr('axis'), 0) }), ys!, yzp)];
    },
  },
];
