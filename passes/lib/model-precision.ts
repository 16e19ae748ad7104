/**
 * What precision a model arrives in (not a pass): the half-precision float types it stores or
 * computes in, and the quantized ops it already has. compile reads them to choose the validation
 * tolerance and to refuse quantizing a model twice.
 */
import { attrInt } from '../../src/ir/attribute.js';
import { dataTypeName, isHalfFloat } from '../../src/ir/dtype.js';
import type { Model } from '../../src/ir/model.js';

/** 'float16' / 'bfloat16' where the model has such inputs, outputs, initializers, Constants or Casts; [] for none. */
export function halfFloatTypes(model: Model): string[] {
  const found = new Set<number>();
  const see = (t: number | undefined): void => { if (isHalfFloat(t)) found.add(t!); };
  for (const g of model.allGraphs()) {
    for (const v of [...g.inputs, ...g.outputs]) see(v.type?.kind === 'tensor' ? v.type.elemType : undefined);
    for (const v of g.initializers) see(v.initializer?.dataType);
    for (const n of g.nodes) {
      if (n.domain !== '') continue;
      if (n.opType === 'Cast') see(attrInt(n.attr('to')));
      const a = n.opType === 'Constant' || n.opType === 'ConstantOfShape' ? n.attr('value') : undefined;
      if (a?.type === 'tensor') see(a.value.dataType);
    }
  }
  return [...found].sort().map((t) => dataTypeName(t));
}

/**
 * Ops that compute on quantized data, as other tools (ONNX Runtime's quantizers, QDQ exporters,
 * MatMulNBits builders) and our own quantization passes leave them.
 */
const QUANTIZED_OP = /^(ConvInteger|MatMulInteger|DynamicQuantizeLinear|QuantizeLinear|DequantizeLinear|DynamicQuantizeMatMul|DynamicQuantizeLSTM|MatMulIntegerToFloat|MatMulNBits|MatMulBnb4|GatherBlockQuantized|QMoE|QLinear\w+|Q(Attention|Gemm|EmbedLayerNormalization|Ordered\w+))$/;

/** The model's quantized ops: `domain::Op` -> count (empty when it has none). */
export function quantizedOps(model: Model): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of model.allGraphs()) {
    for (const n of g.nodes) {
      if (!QUANTIZED_OP.test(n.opType)) continue;
      out[n.qualifiedOp] = (out[n.qualifiedOp] ?? 0) + 1;
    }
  }
  return out;
}

/**
 * The integer products (ConvInteger, MatMulInteger, and ORT's DynamicQuantizeMatMul / MatMulIntegerToFloat) of a
 * model: what dequantize-integer-ops and lower-contrib-ops turn into float ops for targets without them.
 */
export function integerProducts(model: Model): number {
  return Object.entries(quantizedOps(model)).filter(([op]) => /::(ConvInteger|MatMulInteger|DynamicQuantizeMatMul|MatMulIntegerToFloat)$/.test(op)).reduce((n, [, c]) => n + c, 0);
}

/**
 * The budget a model's own run-time quantization sets, or undefined when it has none: a model that
 * rounds activations to integers as it runs (DynamicQuantizeLinear, QuantizeLinear, QLinear ops,
 * DynamicQuantizeMatMul; MatMulNBits with accuracy_level >= 2, which quantizes each input block)
 * turns a float difference of one ulp before such a rounding into a whole quantization step after
 * it. Any faithful recompilation (a fusion reordering a float sum, a contrib op written as standard
 * ops) is then judged within that precision, not bit for bit: 'int4' where 4-bit weights meet
 * quantized activations, else 'int8'.
 */
export function runtimeQuantization(model: Model): 'int4' | 'int8' | undefined {
  let found: 'int4' | 'int8' | undefined;
  for (const g of model.allGraphs()) {
    for (const n of g.nodes) {
      if (n.opType === 'MatMulNBits' && n.domain === 'com.microsoft') {
        if (attrInt(n.attr('accuracy_level'), 0) >= 2) found = attrInt(n.attr('bits'), 4) <= 4 ? 'int4' : (found ?? 'int8');
      } else if (/^(DynamicQuantizeLinear|QuantizeLinear|DynamicQuantizeMatMul|DynamicQuantizeLSTM|QLinear\w+)$/.test(n.opType)) {
        found ??= 'int8';
      }
    }
  }
  return found;
}
