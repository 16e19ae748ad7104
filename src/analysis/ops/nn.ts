/**
 * Rules for the neural-network ops of the default domain: convolutions and pools (with symbolic
 * spatial dims: `floor((h-1)/2)+1`), normalizations, recurrent layers, Resize/Upsample, Pad,
 * DepthToSpace/SpaceToDepth, GridSample, quantization, and the signal ops (DFT, STFT, windows).
 */
import { DataType } from '../../ir/dtype.js';
import type { Tensor } from '../../ir/tensor.js';
import type { InferContext, Rule, RuleTable } from '../infer.js';
import { Sym } from '../symbolic.js';
import { tensorInfo, type OutputInfo } from '../types.js';
import { INT64, constShape, normAxis, sameAs } from './common.js';
import { divide } from './shape-ops.js';

const FLOAT = DataType.FLOAT;
const INT32 = DataType.INT32;
const UINT8 = DataType.UINT8;

// ---------------------------------------------------------------- helpers (shared with contrib.ts)

/** Float contents of a constant input (any numeric type). */
export function floatsOf(ctx: InferContext, i: number): number[] | undefined {
  const c: Tensor | undefined = ctx.constant(i);
  if (!c) return undefined;
  try {
    return Array.from(c.toTypedArray() as ArrayLike<number | bigint>, (x) => Number(x));
  } catch {
    return undefined;
  }
}

/** A float-list attribute. */
export function attrFloats(ctx: InferContext, name: string): number[] | undefined {
  const a = ctx.attr(name);
  if (a?.type === 'floats') return Array.from(a.value);
  if (a?.type === 'ints') return a.value.map(Number); // builders write integral lists as ints
  return undefined;
}

/** An input that is absent, or present but empty ([0] elements): optional inputs given as ''. */
function isEmpty(ctx: InferContext, i: number): boolean {
  if (!ctx.has(i)) return true;
  const s = ctx.shape(i);
  return !!s && s.some((d) => d.value === 0);
}

/** Symbolic contents of a 1-D int input, or fresh dims when only its length is known. */
function dimsFromInput(ctx: InferContext, i: number): Sym[] | undefined {
  const s = ctx.sym(i);
  if (s && s.dims.length === 1) return s.values;
  const ints = ctx.ints(i);
  if (ints) return constShape(ints);
  const len = ctx.shape(i)?.[0]?.value;
  if (len !== undefined) return Array.from({ length: len }, () => ctx.fresh());
  return undefined;
}

/** A scalar (or 1-element) int input as a Sym, when known. */
function scalarSym(ctx: InferContext, i: number): Sym | undefined {
  if (!ctx.has(i)) return undefined;
  const s = ctx.sym(i);
  if (s && s.values.length === 1) return s.values[0];
  const v = ctx.ints(i);
  return v && v.length === 1 ? Sym.const(v[0]!) : undefined;
}

/** Conv/pool output size of one spatial dim. */
function windowOut(input: Sym, k: number, s: number, d: number, padBegin: number, padEnd: number, ceil: boolean): Sym {
  const num = input.add(padBegin + padEnd - d * (k - 1) - 1);
  let out = (ceil ? num.ceilDiv(s) : num.floorDiv(s)).add(1);
  // ceil mode: a window that would start in the right padding is dropped (constant dims only)
  const o = out.value, iv = input.value;
  if (ceil && o !== undefined && iv !== undefined && (o - 1) * s >= iv + padBegin) out = Sym.const(o - 1);
  return out;
}

/** The spatial output dims of Conv and the pools: explicit pads, or auto_pad SAME_UPPER, SAME_LOWER or VALID. */
export function windowShape(ctx: InferContext, spatial: Sym[], kernel: number[], ceil = false): Sym[] {
  const n = spatial.length;
  const strides = ctx.attrInts('strides') ?? Array(n).fill(1);
  const dilations = ctx.attrInts('dilations') ?? Array(n).fill(1);
  const pads = ctx.attrInts('pads') ?? Array(2 * n).fill(0);
  const autoPad = ctx.attrString('auto_pad', 'NOTSET') ?? 'NOTSET';
  return spatial.map((h, i) => {
    const s = strides[i] ?? 1, d = dilations[i] ?? 1, k = kernel[i] ?? 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return h.ceilDiv(s);
    if (autoPad === 'VALID') return windowOut(h, k, s, d, 0, 0, ceil);
    return windowOut(h, k, s, d, pads[i] ?? 0, pads[i + n] ?? 0, ceil);
  });
}

/** Conv output shape: [N, M, spatial...] from X (input x) and W (input w). */
export function convShape(ctx: InferContext, x: number, w: number): Sym[] | undefined {
  const xs = ctx.shape(x);
  const ws = ctx.shape(w);
  if (!xs) return undefined;
  const kernel = ctx.attrInts('kernel_shape') ?? ws?.slice(2).map((d) => d.value ?? NaN);
  if (!kernel || kernel.length !== xs.length - 2) return undefined;
  const m = ws?.[0] ?? ctx.fresh();
  const spatial = xs.slice(2);
  if (kernel.some((k) => Number.isNaN(k))) return [xs[0]!, m, ...spatial.map(() => ctx.fresh())];
  return [xs[0]!, m, ...windowShape(ctx, spatial, kernel)];
}

/** Numpy matmul shape of two inputs' shapes. */
export function matmulShape(ctx: InferContext, a: Sym[] | undefined, b: Sym[] | undefined): Sym[] | undefined {
  if (!a || !b) return undefined;
  if (a.length === 0 || b.length === 0) ctx.error('MatMul of a scalar');
  const a2 = a.length === 1 ? [Sym.ONE, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, Sym.ONE] : b;
  ctx.unify(a2[a2.length - 1]!, b2[b2.length - 2]!);
  const batch = ctx.broadcast(a2.slice(0, -2), b2.slice(0, -2))!;
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return out;
}

export function t(elemType: number | undefined, shape?: Sym[]): OutputInfo | undefined {
  return elemType === undefined ? undefined : { type: tensorInfo(elemType, shape) };
}

// ---------------------------------------------------------------- convolution and pooling

const conv: Rule = (ctx) => [t(ctx.elemType(0), convShape(ctx, 0, 1))];
const convInteger: Rule = (ctx) => [t(INT32, convShape(ctx, 0, 1))];
const qlinearConv: Rule = (ctx) => [t(ctx.elemType(7) ?? ctx.elemType(0), convShape(ctx, 0, 3))];

const convTranspose: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape, ws = ctx.shape(1);
  if (!xs) return [t(x.elemType)];
  const n = xs.length - 2;
  const group = ctx.attrInt('group', 1);
  const c = ws?.[1] ? ws[1].mul(group) : ctx.fresh();
  const kernel = ctx.attrInts('kernel_shape') ?? ws?.slice(2).map((d) => d.value ?? NaN);
  const spatial = xs.slice(2);
  const outputShape = ctx.attrInts('output_shape');
  if (outputShape) {
    // spatial dims (some exporters give the full [N, C, ...] shape)
    const sp = outputShape.length === n + 2 ? outputShape.slice(2) : outputShape;
    return [t(x.elemType, [xs[0]!, c, ...constShape(sp)])];
  }
  if (!kernel || kernel.length !== n || kernel.some((k) => Number.isNaN(k))) return [t(x.elemType, [xs[0]!, c, ...spatial.map(() => ctx.fresh())])];
  const strides = ctx.attrInts('strides') ?? Array(n).fill(1);
  const dilations = ctx.attrInts('dilations') ?? Array(n).fill(1);
  const outPad = ctx.attrInts('output_padding') ?? Array(n).fill(0);
  const pads = ctx.attrInts('pads') ?? Array(2 * n).fill(0);
  const autoPad = ctx.attrString('auto_pad', 'NOTSET') ?? 'NOTSET';
  const out = spatial.map((h, i) => {
    const s = strides[i] ?? 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return h.mul(s);
    const p = autoPad === 'VALID' ? 0 : (pads[i] ?? 0) + (pads[i + n] ?? 0);
    return h.sub(1).mul(s).add((outPad[i] ?? 0) + ((kernel[i]! - 1) * (dilations[i] ?? 1) + 1) - p);
  });
  return [t(x.elemType, [xs[0]!, c, ...out])];
};

/** Pools: [N, C, window dims]; MaxPool's second output (Indices) is int64. */
const pool = (indices: boolean): Rule => (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  const kernel = ctx.attrInts('kernel_shape');
  if (!xs || !kernel) return [t(x.elemType), ...(indices ? [t(INT64)] : [])];
  const shape = [xs[0]!, xs[1]!, ...windowShape(ctx, xs.slice(2), kernel, ctx.attrInt('ceil_mode', 0) === 1)];
  return indices ? [t(x.elemType, shape), t(INT64, shape)] : [t(x.elemType, shape)];
};

const globalPool: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  return [t(x.elemType, x.shape ? [...x.shape.slice(0, 2), ...x.shape.slice(2).map(() => Sym.ONE)] : undefined)];
};

const maxUnpool: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  if (ctx.has(2)) return [t(x.elemType, dimsFromInput(ctx, 2))];
  const xs = x.shape, kernel = ctx.attrInts('kernel_shape');
  if (!xs || !kernel) return [t(x.elemType)];
  const n = xs.length - 2;
  const strides = ctx.attrInts('strides') ?? Array(n).fill(1);
  const pads = ctx.attrInts('pads') ?? Array(2 * n).fill(0);
  const out = xs.slice(2).map((h, i) => h.sub(1).mul(strides[i] ?? 1).add(kernel[i]! - (pads[i] ?? 0) - (pads[i + n] ?? 0)));
  return [t(x.elemType, [xs[0]!, xs[1]!, ...out])];
};

const maxRoiPool: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const pooled = ctx.attrInts('pooled_shape');
  const xs = x.shape, rois = ctx.shape(1);
  if (!xs || !pooled) return [t(x.elemType)];
  return [t(x.elemType, [rois?.[0] ?? ctx.fresh(), xs[1]!, ...constShape(pooled)])];
};

const roiAlign: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  const rois = ctx.shape(1);
  const n = rois?.[0] ?? ctx.shape(2)?.[0] ?? ctx.fresh();
  return [t(x.elemType, [n, xs?.[1] ?? ctx.fresh(), Sym.const(ctx.attrInt('output_height', 1)), Sym.const(ctx.attrInt('output_width', 1))])];
};

const col2Im: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const image = dimsFromInput(ctx, 1);
  const block = ctx.ints(2);
  const xs = x.shape;
  if (!xs || !image) return [t(x.elemType)];
  const c = block ? divide(xs[1]!, Sym.const(block.reduce((a, b) => a * b, 1))) ?? ctx.fresh() : ctx.fresh();
  return [t(x.elemType, [xs[0]!, c, ...image])];
};

// ---------------------------------------------------------------- normalization

const batchNorm: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const c = x.shape?.[1] ?? ctx.shape(1)?.[0];
  const statType = ctx.elemType(3) ?? x.elemType;
  const stat = t(statType, c ? [c] : undefined);
  const outs: (OutputInfo | undefined)[] = [{ type: x }];
  for (let i = 1; i < ctx.outputCount; i++) outs.push(stat);
  return outs;
};

/** Mean/InvStdDev shape: [d0..d_{axis-1}, 1, ..., 1]. */
function statShape(shape: Sym[] | undefined, axis: number, ctx: InferContext): Sym[] | undefined {
  if (!shape) return undefined;
  const a = normAxis(ctx, axis, shape.length);
  return shape.map((d, k) => (k < a ? d : Sym.ONE));
}

export const layerNorm: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const stash = ctx.attrInt('stash_type', 1);
  const st = statShape(x.shape, ctx.attrInt('axis', -1), ctx);
  return [{ type: x }, t(stash, st), t(stash, st)];
};

const groupNorm: Rule = sameAs(0);

// ---------------------------------------------------------------- recurrent

const recurrent = (gates: number): Rule => (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  const layout = ctx.attrInt('layout', 0);
  const dir = ctx.attrString('direction', 'forward');
  const numDir = dir === 'bidirectional' ? Sym.const(2) : Sym.ONE;
  const hs = ctx.attrInt('hidden_size');
  const r = ctx.shape(2);
  const hidden = hs !== undefined ? Sym.const(hs) : r?.[2] ?? (r?.[1] ? r[1].floorDiv(gates) : ctx.fresh());
  const seq = xs ? xs[layout === 0 ? 0 : 1]! : ctx.fresh();
  const batch = xs ? xs[layout === 0 ? 1 : 0]! : ctx.fresh();
  const y = layout === 0 ? [seq, numDir, batch, hidden] : [batch, seq, numDir, hidden];
  const yh = layout === 0 ? [numDir, batch, hidden] : [batch, numDir, hidden];
  const outs = [t(x.elemType, y), t(x.elemType, yh)];
  if (gates === 4) outs.push(t(x.elemType, yh));
  return outs;
};

// ---------------------------------------------------------------- resize

/** floor(d * scale) for a symbolic d: exact for integer scales and 1/k. */
function scaleDim(ctx: InferContext, d: Sym, scale: number): Sym {
  const v = d.value;
  if (v !== undefined) return Sym.const(Math.floor(Math.fround(v * Math.fround(scale))));
  if (scale === 1) return d;
  if (Number.isInteger(scale) && scale > 0) return d.mul(scale);
  const inv = 1 / scale;
  if (Math.abs(inv - Math.round(inv)) < 1e-6 && Math.round(inv) > 0) return d.floorDiv(Math.round(inv));
  return ctx.fresh();
}

const resize: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  if (!xs) return [t(x.elemType)];
  const rank = xs.length;
  const opset = ctx.opset;
  // input positions: opset 10: X, scales; 11+: X, roi, scales, sizes
  const scalesIdx = opset < 11 ? 1 : 2;
  const sizesIdx = opset < 11 ? -1 : 3;
  const axesAttr = opset >= 18 ? ctx.attrInts('axes') : undefined;
  const axes = axesAttr ? axesAttr.map((a) => normAxis(ctx, a, rank)) : xs.map((_, k) => k);
  const out = [...xs];
  if (sizesIdx >= 0 && !isEmpty(ctx, sizesIdx)) {
    const sizes = dimsFromInput(ctx, sizesIdx);
    if (!sizes) return [t(x.elemType, xs.map(() => ctx.fresh()))];
    const policy = ctx.attrString('keep_aspect_ratio_policy', 'stretch');
    if (opset >= 18 && policy !== 'stretch') {
      const sv = sizes.map((d) => d.value), iv = axes.map((a) => xs[a]!.value);
      if (sv.some((v) => v === undefined) || iv.some((v) => v === undefined)) return [t(x.elemType, xs.map((d, k) => (axes.includes(k) ? ctx.fresh() : d)))];
      const ratios = axes.map((_, j) => sv[j]! / iv[j]!);
      const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a) => { out[a] = Sym.const(Math.round(scale * iv[axes.indexOf(a)]!)); });
      return [t(x.elemType, out)];
    }
    axes.forEach((a, j) => { out[a] = sizes[j] ?? ctx.fresh(); });
    return [t(x.elemType, out)];
  }
  if (isEmpty(ctx, scalesIdx)) return [t(x.elemType, xs.map(() => ctx.fresh()))];
  const scales = floatsOf(ctx, scalesIdx);
  if (!scales) return [t(x.elemType, xs.map((d, k) => (axes.includes(k) ? ctx.fresh() : d)))];
  const mode = ctx.attrString('coordinate_transformation_mode', 'half_pixel');
  const roi = mode === 'tf_crop_and_resize' && ctx.has(1) ? floatsOf(ctx, 1) : undefined;
  axes.forEach((a, j) => {
    const s = scales[j] ?? 1;
    const d = xs[a]!;
    if (roi && roi.length === 2 * axes.length) {
      const v = d.value;
      out[a] = v !== undefined ? Sym.const(Math.floor(v * (roi[j + axes.length]! - roi[j]!) * s)) : ctx.fresh();
    } else {
      out[a] = scaleDim(ctx, d, s);
    }
  });
  return [t(x.elemType, out)];
};

const upsample: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  if (!xs) return [t(x.elemType)];
  const scales = ctx.opset < 9 ? attrFloats(ctx, 'scales') : floatsOf(ctx, 1);
  if (!scales) return [t(x.elemType, xs.map(() => ctx.fresh()))];
  return [t(x.elemType, xs.map((d, k) => scaleDim(ctx, d, scales[k] ?? 1)))];
};

// ---------------------------------------------------------------- layout

const pad: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  if (!xs) return [t(x.elemType)];
  const rank = xs.length;
  let pads: Sym[] | undefined;
  if (ctx.opset < 11) {
    const p = ctx.attrInts('pads') ?? ctx.attrInts('paddings');
    pads = p ? constShape(p) : undefined;
  } else {
    const s = ctx.sym(1);
    pads = s && s.dims.length === 1 ? s.values : ctx.ints(1) ? constShape(ctx.ints(1)!) : undefined;
  }
  if (!pads) return [t(x.elemType, xs.map(() => ctx.fresh()))];
  let axes = xs.map((_, k) => k);
  if (ctx.opset >= 18 && ctx.has(3)) {
    const a = ctx.ints(3);
    if (!a) return [t(x.elemType, xs.map(() => ctx.fresh()))];
    axes = a.map((v) => normAxis(ctx, v, rank));
  }
  const n = axes.length;
  if (pads.length !== 2 * n) ctx.error(`pads has ${pads.length} entries, expected ${2 * n}`);
  const out = [...xs];
  axes.forEach((a, j) => { out[a] = out[a]!.add(pads![j]!).add(pads![j + n]!); });
  return [t(x.elemType, out)];
};

const depthToSpace: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const b = ctx.attrInt('blocksize', 1);
  const xs = x.shape;
  if (!xs || xs.length !== 4) return [t(x.elemType)];
  return [t(x.elemType, [xs[0]!, divide(xs[1]!, Sym.const(b * b)) ?? xs[1]!.floorDiv(b * b), xs[2]!.mul(b), xs[3]!.mul(b)])];
};

const spaceToDepth: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const b = ctx.attrInt('blocksize', 1);
  const xs = x.shape;
  if (!xs || xs.length !== 4) return [t(x.elemType)];
  return [t(x.elemType, [xs[0]!, xs[1]!.mul(b * b), xs[2]!.floorDiv(b), xs[3]!.floorDiv(b)])];
};

const gridSample: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape, g = ctx.shape(1);
  if (!xs || !g) return [t(x.elemType)];
  return [t(x.elemType, [ctx.unify(xs[0]!, g[0]!), xs[1]!, ...g.slice(1, -1)])];
};

const affineGrid: Rule = (ctx) => {
  const theta = ctx.tensor(0);
  if (!theta) return [];
  const size = dimsFromInput(ctx, 1);
  if (!size) return [t(theta.elemType)];
  const sp = size.slice(2);
  return [t(theta.elemType, [size[0]!, ...sp, Sym.const(sp.length)])];
};

const nonMaxSuppression: Rule = (ctx) => [t(INT64, [ctx.fresh(), Sym.const(3)])];

// ---------------------------------------------------------------- quantization

const quantizeLinear: Rule = (ctx) => {
  const x = ctx.tensor(0);
  const outDtype = ctx.attrInt('output_dtype', 0);
  const elem = ctx.has(2) ? ctx.elemType(2) : outDtype || UINT8;
  return [t(elem ?? (outDtype || UINT8), x?.shape)];
};

const dequantizeLinear: Rule = (ctx) => {
  const x = ctx.tensor(0);
  const outDtype = ctx.attrInt('output_dtype', 0);
  const elem = outDtype || (ctx.opset >= 19 ? ctx.elemType(1) ?? FLOAT : FLOAT);
  return [t(elem, x?.shape)];
};

const dynamicQuantizeLinear: Rule = (ctx) => [t(UINT8, ctx.shape(0)), t(FLOAT, []), t(UINT8, [])];

const qlinearMatMul: Rule = (ctx) => [t(ctx.elemType(7) ?? ctx.elemType(0), matmulShape(ctx, ctx.shape(0), ctx.shape(3)))];

// ---------------------------------------------------------------- signal processing

const dft: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  if (!xs) return [t(x.elemType)];
  const rank = xs.length;
  let axis: number | undefined;
  if (ctx.opset >= 20) {
    if (ctx.has(2)) axis = ctx.ints(2)?.[0];
    else axis = -2;
  } else {
    axis = ctx.attrInt('axis', 1);
  }
  const out = [...xs];
  out[rank - 1] = Sym.const(2);
  if (axis === undefined) return [t(x.elemType, out.map((d, k) => (k === rank - 1 ? d : ctx.fresh())))];
  const a = normAxis(ctx, axis, rank);
  let n: Sym | undefined = xs[a]!;
  if (ctx.has(1)) n = scalarSym(ctx, 1) ?? ctx.fresh();
  if (ctx.attrInt('onesided', 0) === 1 && ctx.attrInt('inverse', 0) === 0) n = n.floorDiv(2).add(1);
  out[a] = n;
  return [t(x.elemType, out)];
};

const stft: Rule = (ctx) => {
  const x = ctx.tensor(0);
  if (!x) return [];
  const xs = x.shape;
  const step = ctx.ints(1)?.[0];
  const frameLen = scalarSym(ctx, 3) ?? (ctx.has(2) ? ctx.shape(2)?.[0] : undefined);
  const onesided = ctx.attrInt('onesided', 1) === 1;
  if (!xs) return [t(x.elemType)];
  const frames = frameLen && step ? xs[1]!.sub(frameLen).floorDiv(step).add(1) : ctx.fresh();
  const bins = frameLen ? (onesided ? frameLen.floorDiv(2).add(1) : frameLen) : ctx.fresh();
  return [t(x.elemType, [xs[0]!, frames, bins, Sym.const(2)])];
};

const windowOp: Rule = (ctx) => {
  const n = scalarSym(ctx, 0) ?? ctx.fresh();
  return [t(ctx.attrInt('output_datatype', FLOAT), [n])];
};

const melWeightMatrix: Rule = (ctx) => {
  const bins = scalarSym(ctx, 0) ?? ctx.fresh();
  const dftLen = scalarSym(ctx, 1);
  return [t(ctx.attrInt('output_datatype', FLOAT), [dftLen ? dftLen.floorDiv(2).add(1) : ctx.fresh(), bins])];
};

// ---------------------------------------------------------------- table

export const nnOps: RuleTable = {
  ':Conv': conv,
  ':ConvInteger': convInteger,
  ':QLinearConv': qlinearConv,
  ':ConvTranspose': convTranspose,
  ':MaxPool': pool(true),
  ':AveragePool': pool(false),
  ':LpPool': pool(false),
  ':GlobalAveragePool': globalPool,
  ':GlobalMaxPool': globalPool,
  ':GlobalLpPool': globalPool,
  ':MaxUnpool': maxUnpool,
  ':MaxRoiPool': maxRoiPool,
  ':RoiAlign': roiAlign,
  ':Col2Im': col2Im,
  ':BatchNormalization': batchNorm,
  ':InstanceNormalization': sameAs(0),
  ':LayerNormalization': layerNorm,
  ':GroupNormalization': groupNorm,
  ':MeanVarianceNormalization': sameAs(0),
  ':LRN': sameAs(0),
  ':RNN': recurrent(1),
  ':GRU': recurrent(3),
  ':LSTM': recurrent(4),
  ':Resize': resize,
  ':Upsample': upsample,
  ':Pad': pad,
  ':DepthToSpace': depthToSpace,
  ':SpaceToDepth': spaceToDepth,
  ':GridSample': gridSample,
  ':AffineGrid': affineGrid,
  ':NonMaxSuppression': nonMaxSuppression,
  ':QuantizeLinear': quantizeLinear,
  ':DequantizeLinear': dequantizeLinear,
  ':DynamicQuantizeLinear': dynamicQuantizeLinear,
  ':QLinearMatMul': qlinearMatMul,
  ':DFT': dft,
  ':STFT': stft,
  ':BlackmanWindow': windowOp,
  ':HammingWindow': windowOp,
  ':HannWindow': windowOp,
  ':MelWeightMatrix': melWeightMatrix,
};
