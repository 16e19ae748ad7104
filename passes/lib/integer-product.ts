/**
 * An integer product (ConvInteger / MatMulInteger after DynamicQuantizeLinear, or ORT's
 * DynamicQuantizeMatMul) written as the float op a target without integer kernels runs, as the
 * model computes it: the weight W = (Wq - zp) * scale dequantized once, and the activation rounded to
 * DynamicQuantizeLinear's uint8 grid at run time in float ops, so that the product is the model's up
 * to the order of float sums. Shared by dequantize-integer-ops and lower-contrib-ops.
 *
 * The weight: int8 behind a DequantizeLinear (TensorRT's weight-only form) on a standard-ops target
 * (level 1) that runs it, where Wq - zp fits int8 exactly; float32 otherwise (quantizing an
 * asymmetric uint8 weight again, symmetric per channel, measured mobilenet_v2 at cosine 0.9727
 * against the model as given, vs 0.9970 float).
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Attribute } from '../../src/ir/attribute.js';
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { PassContext } from '../../src/pass/pass.js';
import type { Patch } from '../../src/pass/patch.js';
import { Emitter } from './emit.js';

/** A quantized weight: its dequantized values, and its codes where they fit int8. */
export interface IntegerWeight {
  /** (Wq - zp) * scale, in W's layout */
  weight: Float32Array;
  dims: number[];
  /** Wq - zp, where every code fits int8 */
  codes?: Int8Array;
  /** one element or one per output channel */
  scales: Float32Array;
  /** the output-channel axis of W (Conv: 0; MatMul: 1) */
  axis: number;
}

/** Codes minus zero points as int8 when every one fits, else undefined. */
export function asInt8(codes: ArrayLike<number>): Int8Array | undefined {
  const out = new Int8Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c < -128 || c > 127) return undefined;
    out[i] = c;
  }
  return out;
}

/** activation -> its value on the uint8 grid, made once per activation */
const ROUNDED = new WeakMap<Value, Value>();

const FAKE_QUANT_OPS = ['ReduceMin', 'ReduceMax', 'Sub', 'Div', 'Neg', 'Clip', 'Add', 'Mul'];

/**
 * DynamicQuantizeLinear followed by its dequantization, in float ops: x rounded to the uint8 grid
 * the original computes on, at run time, exactly as the op defines it:
 *   scale = (max(x, 0) - min(x, 0)) / 255; zp = clip(round(-min(x, 0) / scale), 0, 255)
 *   x' = (clip(round(x / scale) + zp, 0, 255) - zp) * scale
 * Round is half to even, as the op's; a target without Round gets Floor(v + 0.5) (ties, measure
 * zero, round up).
 */
function fakeQuantUint8(e: Emitter, x: Value, round: 'Round' | 'Floor'): Value {
  const r = (v: Value): Value => (round === 'Round' ? e.op('Round', [v]) : e.op('Floor', [e.add(v, e.f32([0.5], []))]));
  const zero = e.f32([0], []), top = e.f32([255], []);
  // min(v, 0) and max(v, 0) as Clip (the WebGPU EP has no elementwise Min / Max)
  const lo = e.op('Clip', [e.op('ReduceMin', [x], { keepdims: 0 }), undefined, zero]);
  const hi = e.op('Clip', [e.op('ReduceMax', [x], { keepdims: 0 }), zero]);
  const scale = e.div(e.sub(hi, lo), top);
  // an all-zero x has scale 0: any positive divisor gives x' = 0, as the op's result
  const safe = e.op('Clip', [scale, e.f32([1e-30], [])]);
  const zp = e.op('Clip', [r(e.op('Neg', [e.div(lo, safe)])), zero, top]);
  const q = e.op('Clip', [e.add(r(e.div(x, safe)), zp), zero, top]);
  return e.mul(e.sub(q, zp), scale);
}

/**
 * x on the uint8 grid where the target has the ops (x itself otherwise); one per activation, so the
 * products that read one DynamicQuantizeLinear (Q, K and V) still read one value (the attention
 * fusion needs that).
 */
function rounded(patch: Patch, ctx: PassContext, x: Value): Value {
  const cached = ROUNDED.get(x);
  if (cached && cached.producer && !cached.producer.removed) return cached;
  const round = ctx.supports('', 'Round') ? 'Round' : 'Floor';
  if (!FAKE_QUANT_OPS.every((op) => ctx.supports('', op)) || !ctx.supports('', round)) return x;
  const xq = fakeQuantUint8(new Emitter(patch, ctx.opset(''), `${x.name}_uint8_grid`), x, round);
  ROUNDED.set(x, xq);
  return xq;
}

/** The weight as the target takes it: int8 behind DequantizeLinear (exact, level-1 targets) or float32. */
function weightValue(patch: Patch, ctx: PassContext, w: IntegerWeight, base: string): Value {
  // weight-only int8 for a standard-ops target that runs int8 DequantizeLinear (TensorRT); per-axis needs opset 13
  const weightOnly = ctx.options.target?.maxLevel === 1 && ctx.supports('', 'DequantizeLinear') && ctx.opset('') >= 13;
  if (!weightOnly || !w.codes) return patch.constant(Tensor.float32(w.weight, w.dims), `${base}_dequantized`);
  const perChannel = w.scales.length !== 1;
  return patch.add('DequantizeLinear', [
    patch.constant(Tensor.fromTypedArray(DataType.INT8, w.dims, w.codes), `${base}_int8`),
    patch.constant(perChannel ? Tensor.float32(w.scales, [w.scales.length]) : Tensor.float32([w.scales[0]!], []), `${base}_scale`),
  ], perChannel ? { axis: w.axis } : {}, { name: `${base}_DequantizeLinear` });
}

/** Conv(x', W) with `conv`'s attributes, or MatMul(x', W): the integer product in float. */
export function floatProduct(patch: Patch, ctx: PassContext, x: Value, w: IntegerWeight, base: string, conv?: { attributes: Attribute[]; name?: string }, name?: string): Value {
  const xq = rounded(patch, ctx, x);
  const wv = weightValue(patch, ctx, w, base);
  return conv
    ? patch.add('Conv', [xq, wv], conv.attributes, conv.name ? { name: conv.name } : {})
    : patch.add('MatMul', [xq, wv], {}, name ? { name } : {});
}
