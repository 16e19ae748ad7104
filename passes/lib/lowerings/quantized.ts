/**
 * ONNX Runtime's quantized contrib ops in standard ONNX, keeping the weights' integer codes where the
 * target runs DequantizeLinear (so a compressed model stays compressed), float weights otherwise.
 *
 *   MatMulNBits(A, B, scales, [zp], , [bias]; K, N, bits, block_size)
 *       W[k, n] = (code[n, k] - zp[n, k / bs]) * scale[n, k / bs];  y = A @ W + bias
 *     -> c = DequantizeLinear(int8 codes - zp [N * nBlocks, bs], scales [N * nBlocks], axis 0)
 *        y = A @ Transpose(Slice(Reshape(c, [N, nBlocks * bs]), K)) + bias
 *   GatherBlockQuantized(data, ids, scales, [zp]; gather_axis 0, quantize_axis last, block_size, bits)
 *       y[..., d] = (code[id, d] - zp[id, d / bs]) * scale[id, d / bs]
 *     -> rows = Cast(Gather(int8 codes - zp, ids)); y = Reshape(Reshape(rows, [..., nb, bs]) * Unsqueeze(Gather(scales, ids)), [..., D])
 *   DynamicQuantizeMatMul(A, B, b_scale, [b_zp], [bias])
 *       = (MatMulInteger(DynamicQuantizeLinear(A), B) as float) * a_scale * b_scale + bias
 *     (the op's definition, where the target runs MatMulInteger; else the float form
 *     dequantize-integer-ops writes (passes/lib/integer-product.ts): A rounded to its uint8 grid in
 *     float ops, times B dequantized once, int8 behind DequantizeLinear on tensorrt where exact)
 *
 * Conditions: the quantized operands are initializers; integer zero points (MatMulNBits and
 * GatherBlockQuantized also take float ones: not lowered); no g_idx.
 */
import { attrInt } from '../../../src/ir/attribute.js';
import { DataType } from '../../../src/ir/dtype.js';
import type { Value } from '../../../src/ir/graph.js';
import { Tensor } from '../../../src/ir/tensor.js';
import type { PassContext } from '../../../src/pass/pass.js';
import { blockCodes } from '../blocks.js';
import { asInt8, floatProduct } from '../integer-product.js';
import type { Emitter } from '../emit.js';
import { rankOf } from '../query.js';
import type { Lowering } from './lowering.js';

const MS = 'com.microsoft';

function bytesOf(v: Value | undefined): Uint8Array | undefined {
  const t = v?.initializer;
  if (!t || t.dataType !== DataType.UINT8) return undefined;
  return t.toTypedArray() as Uint8Array;
}

/** codes [rows, nBlocks * bs] times their block scales, as a float32 array [rows, cols] (cols <= nBlocks * bs). */
function dequantizeRows(codes: Int16Array, scales: ArrayLike<number>, rows: number, nBlocks: number, bs: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = codes[r * nBlocks * bs + c]! * scales[r * nBlocks + Math.floor(c / bs)]!;
  return out;
}

function lowerMatMulNBits(node: Parameters<Lowering['lower']>[0], e: Emitter, ctx: PassContext): (Value | undefined)[] | string {
  const [a, b, scales, zp, gIdx, bias] = node.inputs;
  const k = attrInt(node.attr('K'))!, n = attrInt(node.attr('N'))!, bits = attrInt(node.attr('bits'), 4), bs = attrInt(node.attr('block_size'))!;
  if (bits !== 4 && bits !== 8) return `${bits}-bit codes`;
  if (gIdx) return 'g_idx (act-order) is not lowered';
  const packed = bytesOf(b);
  const scaleT = scales?.initializer;
  if (!packed || !scaleT) return 'the quantized weight or its scales are not initializers';
  if (zp && !bytesOf(zp)) return 'float zero points are not lowered';
  const nBlocks = Math.ceil(k / bs);
  const codes = blockCodes(packed, bytesOf(zp), n, nBlocks, bs, bits);
  const int8 = asInt8(codes);
  let w: Value;
  // DequantizeLinear per axis from opset 13, with float16 scales from 19
  if (int8 && ctx.supports('', 'DequantizeLinear') && e.opset >= (scaleT.dataType === DataType.FLOAT ? 13 : 19)) {
    const q = e.constant(Tensor.fromTypedArray(DataType.INT8, [n * nBlocks, bs], int8), 'codes');
    const sc = e.constant(scaleT.reshaped([n * nBlocks]), 'scales');
    let full = e.reshape(e.op('DequantizeLinear', [q, sc], { axis: 0 }), [n, nBlocks * bs]);
    if (nBlocks * bs !== k) full = e.slice(full, [0], [k], [1]);
    w = e.transpose(full, [1, 0]);
  } else {
    if (scaleT.dataType !== DataType.FLOAT) return 'float16 scales on a target without DequantizeLinear for them';
    const f = dequantizeRows(codes, scaleT.toTypedArray() as ArrayLike<number>, n, nBlocks, bs, k);
    const t = new Float32Array(k * n);
    for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) t[c * n + r] = f[r * k + c]!;
    w = e.constant(Tensor.float32(t, [k, n]), 'weight');
  }
  const y = e.matmul(a!, w);
  return [bias ? e.add(y, bias) : y];
}

function lowerGatherBlockQuantized(node: Parameters<Lowering['lower']>[0], e: Emitter, ctx: PassContext): (Value | undefined)[] | string {
  const [data, ids, scales, zp] = node.inputs;
  const bits = attrInt(node.attr('bits'), 4), bs = attrInt(node.attr('block_size'), 128);
  if (attrInt(node.attr('gather_axis'), 0) !== 0) return 'gather_axis other than 0';
  const t = data?.initializer, scaleT = scales?.initializer;
  if (!t || !scaleT || t.dataType !== DataType.UINT8 || t.dims.length !== 2) return 'data is not a uint8 [V, D * bits / 8] initializer';
  const qa = attrInt(node.attr('quantize_axis'), 1);
  if (qa !== 1 && qa !== -1) return `quantize_axis ${qa} (the last axis only)`;
  if (bits !== 4 && bits !== 8) return `${bits}-bit codes`;
  if (zp && !bytesOf(zp)) return 'float zero points are not lowered';
  const r = rankOf(ctx.shapesOrExplain(), ids);
  if (r === undefined) return 'indices of unknown rank';
  const v = t.dims[0]!, d = (t.dims[1]! * 8) / bits;
  if (d % bs !== 0) return `row length ${d} is not a multiple of block_size ${bs}`;
  const nb = d / bs;
  const int8 = asInt8(blockCodes(t.toTypedArray() as Uint8Array, bytesOf(zp), v, nb, bs, bits));
  if (!int8) return '8-bit codes minus zero points do not fit int8';
  const table = e.constant(Tensor.fromTypedArray(DataType.INT8, [v, d], int8), 'codes');
  const rows = e.cast(e.op('Gather', [table, ids!], { axis: 0 }), scaleT.dataType);
  const blocks = e.reshape(rows, [...Array<number>(r).fill(0), nb, bs]);
  const s = e.unsqueeze(e.op('Gather', [scales!, ids!], { axis: 0 }), [-1]);
  return [e.reshape(e.mul(blocks, s), [...Array<number>(r).fill(0), d])];
}

function lowerDynamicQuantizeMatMul(node: Parameters<Lowering['lower']>[0], e: Emitter, ctx: PassContext): (Value | undefined)[] | string {
  const [a, b, bScale, bZp, bias] = node.inputs;
  let y: Value;
  if (ctx.supports('', 'DynamicQuantizeLinear') && ctx.supports('', 'MatMulInteger')) {
    const [aq, aScale, aZp] = e.opN('DynamicQuantizeLinear', [a!], 3);
    const acc = e.cast(e.op('MatMulInteger', [aq!, b!, aZp!, bZp]), DataType.FLOAT);
    y = e.mul(acc, e.mul(aScale!, bScale!));
  } else {
    const bt = b?.initializer, st = bScale?.initializer, zt = bZp?.initializer;
    if (!bt || !st || (bZp && !zt) || bt.dims.length !== 2 || st.dataType !== DataType.FLOAT) return 'the quantized weight, its scale or zero point is not a 2-D initializer';
    const [k, n] = bt.dims as [number, number];
    const q = bt.toTypedArray() as Int8Array | Uint8Array, s = st.toTypedArray() as Float32Array;
    const z = zt ? (zt.toTypedArray() as Int8Array | Uint8Array) : undefined;
    const codes = new Int16Array(k * n);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) codes[i * n + j] = q[i * n + j]! - (z ? z[z.length === 1 ? 0 : j]! : 0);
    const weight = new Float32Array(k * n);
    for (let i = 0; i < k * n; i++) weight[i] = codes[i]! * s[s.length === 1 ? 0 : i % n]!;
    const int8 = asInt8(codes);
    // A quantized to uint8 at run time, as DynamicQuantizeLinear does: the same float form dequantize-integer-ops writes
    y = floatProduct(e.patch, ctx, a!, { weight, dims: [k, n], ...(int8 ? { codes: int8 } : {}), scales: s, axis: 1 }, `${e.prefix}_B`, undefined, `${e.prefix}/MatMul`);
  }
  return [bias ? e.add(y, bias) : y];
}

export const QUANTIZED_LOWERINGS: Lowering[] = [
  { domain: MS, op: 'MatMulNBits', lower: lowerMatMulNBits },
  { domain: MS, op: 'GatherBlockQuantized', lower: lowerGatherBlockQuantized },
  { domain: MS, op: 'DynamicQuantizeMatMul', lower: lowerDynamicQuantizeMatMul },
];
