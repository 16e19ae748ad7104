/**
 * fuse-bn-into-conv
 *
 * Before:  y = Conv(x, W, b);            z = BatchNormalization(y, scale, bias, mean, var)
 *          y = ConvTranspose(x, W, b);   z = BatchNormalization(y, ...)
 *          y = Gemm(a, B, C);            z = BatchNormalization(y, ...)     (2-D Gemm output, channel = last dim)
 *          y = MatMul(a, W);             z = BatchNormalization(y, ...)     (a of rank 2, W constant 2-D)
 * After:   z = Conv(x, W', b') / ConvTranspose(x, W', b') / Gemm(a, B', C', beta=1) / Add(MatMul(a, W'), b')
 * Conditions:
 *   - the BatchNormalization is in inference form: opset < 14 no optional outputs at all (their
 *     presence means training mode), opset < 7 is_test=1, opset 7-8 spatial=1, opset >= 14
 *     training_mode=0 and its running_mean/var outputs unused;
 *   - y has one use (the BatchNormalization) and is not a graph output;
 *   - W (and b, C) and the four BatchNormalization inputs are float32 constants, the latter of shape [channels];
 *   - Gemm: opset >= 7 (unidirectional broadcast of C); MatMul: a has rank 2, so that the
 *     BatchNormalization channel axis 1 is the output's last dim (for rank > 2 it is not: no fold).
 * Formula:  s = scale / sqrt(var + epsilon)
 *           W' = W * s per output channel (Conv: W[m, ...]; ConvTranspose: W[c, j, ...] is output
 *                channel group(c) * (M / group) + j; Gemm/MatMul: column n of the [K, N] weight)
 *           b' = (b - mean) * s + bias      (Gemm: C' = (beta * C - mean) * s + bias, broadcast with [N])
 * New weights are new initializers; the old ones stay while something else uses them.
 */
import { attrFloat, attrInt, attr, type Attribute } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';
import type { Patch } from '../../src/pass/patch.js';
import { constant, constantValue, matchNode, op, opt, v } from '../../src/pass/pattern.js';
import { rankOf } from '../lib/query.js';

const pattern = op(
  'BatchNormalization',
  op('Conv|ConvTranspose|Gemm|MatMul', v('x'), constant('w'), opt(constant('b'))).as('prod').oneUse(),
  constant('scale'),
  constant('bias'),
  constant('mean'),
  constant('var'),
).as('bn');

type Caps = {
  x: Value; w: Value; b?: Value; prod: Node;
  scale: Value; bias: Value; mean: Value; var: Value; bn: Node;
};

/** The values of a float32 constant, or undefined. */
function floats(val: Value | undefined): Float32Array | undefined {
  const t = constantValue(val);
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  return t.toTypedArray() as Float32Array;
}

function inferenceForm(bn: Node, ctx: PassContext): boolean {
  const opset = ctx.opset();
  const extra = bn.outputs.slice(1);
  if (opset >= 14) {
    if (attrInt(bn.attr('training_mode'), 0) !== 0) return false;
    return extra.every((o) => !o || (o.uses.length === 0 && !o.isGraphOutput));
  }
  // before opset 14 the optional outputs being there is what selects training mode
  if (extra.some((o) => o !== undefined)) return false;
  if (opset < 7 && attrInt(bn.attr('is_test'), 0) !== 1) return false;
  if (opset < 9 && attrInt(bn.attr('spatial'), 1) !== 1) return false;
  return true;
}

/** Attributes of `n`, with some replaced or added. */
function withAttrs(n: Node, changes: Attribute[]): Attribute[] {
  const out = new Map(n.attributes);
  for (const a of changes) out.set(a.name, a);
  return [...out.values()];
}

interface Folded {
  /** per channel: W multiplier */
  s: Float64Array;
  /** per channel: additive term once the producer's bias is zero: bias - mean * s */
  shift: Float64Array;
}

function bnTerms(c: Caps, channels: number): Folded | undefined {
  const scale = floats(c.scale), bias = floats(c.bias), mean = floats(c.mean), variance = floats(c.var);
  if (!scale || !bias || !mean || !variance) return undefined;
  for (const t of [c.scale, c.bias, c.mean, c.var]) {
    const dims = constantValue(t)!.dims;
    if (dims.length !== 1 || dims[0] !== channels) return undefined;
  }
  const epsAttr = c.bn.attr('epsilon');
  if (epsAttr && epsAttr.type !== 'float') return undefined;
  const eps = attrFloat(epsAttr, 1e-5)!;
  const s = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let i = 0; i < channels; i++) {
    s[i] = scale[i]! / Math.sqrt(variance[i]! + eps);
    shift[i] = bias[i]! - mean[i]! * s[i]!;
  }
  return { s, shift };
}

/** b' = b * s + shift (b absent: zero). */
function foldBias(b: Float32Array | undefined, f: Folded): Float32Array {
  const out = new Float32Array(f.s.length);
  for (let i = 0; i < out.length; i++) out[i] = (b ? b[i]! : 0) * f.s[i]! + f.shift[i]!;
  return out;
}

interface Plan {
  rewrite(patch: Patch): Value;
}

function planConv(c: Caps, transpose: boolean): Plan | undefined {
  const wt = constantValue(c.w)!;
  const w = floats(c.w);
  if (!w || wt.dims.length < 3) return undefined;
  const b = c.b ? floats(c.b) : undefined;
  if (c.b && !b) return undefined;
  const group = attrInt(c.prod.attr('group'), 1);
  const k = wt.dims.slice(2).reduce((p, d) => p * d, 1);
  let channels: number;
  let channelOf: (i: number) => number;
  if (!transpose) {
    channels = wt.dims[0]!;
    channelOf = (i) => Math.floor(i / (wt.dims[1]! * k));
  } else {
    // ConvTranspose W is [C_in, M / group, k...]; input channel ci belongs to group ci / (C_in / group)
    const cin = wt.dims[0]!, mg = wt.dims[1]!;
    if (group < 1 || cin % group !== 0) return undefined;
    channels = mg * group;
    const perGroup = cin / group;
    channelOf = (i) => {
      const ci = Math.floor(i / (mg * k));
      const j = Math.floor(i / k) % mg;
      return Math.floor(ci / perGroup) * mg + j;
    };
  }
  if (b && b.length !== channels) return undefined;
  const f = bnTerms(c, channels);
  if (!f) return undefined;
  return {
    rewrite(patch) {
      const w2 = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) w2[i] = w[i]! * f.s[channelOf(i)]!;
      const wv = patch.constant(Tensor.float32(w2, wt.dims), `${c.w.name}_bn`);
      const bv = patch.constant(Tensor.float32(foldBias(b, f), [channels]), `${c.b?.name ?? `${c.prod.name}_bias`}_bn`);
      return patch.add(c.prod.opType, [c.x, wv, bv], withAttrs(c.prod, []), { name: c.prod.name || c.prod.opType });
    },
  };
}

function planGemm(c: Caps, ctx: PassContext): Plan | undefined {
  if (ctx.opset() < 7) return undefined;
  const bt = constantValue(c.w)!;
  const w = floats(c.w);
  if (!w || bt.dims.length !== 2) return undefined;
  const transB = attrInt(c.prod.attr('transB'), 0) !== 0;
  const [r, cdim] = bt.dims as [number, number];
  const channels = transB ? r : cdim;
  const f = bnTerms(c, channels);
  if (!f) return undefined;
  const beta = attrFloat(c.prod.attr('beta'), 1)!;
  let cvals: Float32Array | undefined;
  let cdims: number[] = [];
  if (c.b) {
    cvals = floats(c.b);
    if (!cvals) return undefined;
    cdims = [...constantValue(c.b)!.dims];
    if (cdims.length > 2) return undefined;
    const last = cdims.length ? cdims[cdims.length - 1]! : 1;
    if (last !== 1 && last !== channels) return undefined;
  }
  // C' has the broadcast shape of C and [N]
  const rows = cdims.length === 2 ? cdims[0]! : 0;
  const outDims = rows ? [rows, channels] : [channels];
  return {
    rewrite(patch) {
      const w2 = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) w2[i] = w[i]! * f.s[transB ? Math.floor(i / cdim) : i % cdim]!;
      const c2 = new Float32Array((rows || 1) * channels);
      const clast = cdims.length ? cdims[cdims.length - 1]! : 1;
      for (let i = 0; i < c2.length; i++) {
        const row = Math.floor(i / channels), n = i % channels;
        const cv = cvals ? cvals[(cdims.length === 2 ? row * clast : 0) + (clast === 1 ? 0 : n)]! : 0;
        c2[i] = beta * cv * f.s[n]! + f.shift[n]!;
      }
      const wv = patch.constant(Tensor.float32(w2, bt.dims), `${c.w.name}_bn`);
      const cv = patch.constant(Tensor.float32(c2, outDims), `${c.b?.name ?? `${c.prod.name}_bias`}_bn`);
      return patch.add('Gemm', [c.x, wv, cv], withAttrs(c.prod, [attr.float('beta', 1)]), { name: c.prod.name || 'Gemm' });
    },
  };
}

function planMatMul(c: Caps, ctx: PassContext): Plan | undefined {
  const wt = constantValue(c.w)!;
  const w = floats(c.w);
  if (!w || wt.dims.length !== 2) return undefined;
  const rank = rankOf(ctx.shapesOrExplain(), c.x);
  if (rank !== 2) {
    ctx.explain(`${c.bn}: MatMul input '${c.x.name}' has rank ${rank ?? '?'}, not 2: the BatchNormalization channel axis is not the MatMul's last dim`);
    return undefined;
  }
  const n = wt.dims[1]!;
  const f = bnTerms(c, n);
  if (!f) return undefined;
  return {
    rewrite(patch) {
      const w2 = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) w2[i] = w[i]! * f.s[i % n]!;
      const wv = patch.constant(Tensor.float32(w2, wt.dims), `${c.w.name}_bn`);
      const bv = patch.constant(Tensor.float32(foldBias(undefined, f), [n]), `${c.prod.name || 'MatMul'}_bias_bn`);
      const mm = patch.add('MatMul', [c.x, wv], withAttrs(c.prod, []), { name: c.prod.name || 'MatMul' });
      return patch.add('Add', [mm, bv], {}, { name: `${c.bn.name || 'BatchNormalization'}_bias` });
    },
  };
}

const rule: Rule<Caps & { plan: Plan }> = {
  name: 'bn-into-producer',
  ops: ['BatchNormalization'],
  match: (node, ctx) => {
    const c = matchNode<Caps>(pattern, node);
    if (!c) return null;
    if (!inferenceForm(node, ctx)) {
      ctx.explain(`${node}: not in inference form`);
      return null;
    }
    let plan: Plan | undefined;
    switch (c.prod.opType) {
      case 'Conv': plan = planConv(c, false); break;
      case 'ConvTranspose': plan = planConv(c, true); break;
      case 'Gemm': plan = planGemm(c, ctx); break;
      case 'MatMul': plan = c.b === undefined ? planMatMul(c, ctx) : undefined; break;
    }
    return plan ? { ...c, plan } : null;
  },
  rewrite: (c, patch) => {
    patch.replace(c.bn.outputs[0]!, c.plan.rewrite(patch));
  },
};

export const fuseBnIntoConv = rulePass({
  name: 'fuse-bn-into-conv',
  description: 'fold an inference BatchNormalization into the Conv, ConvTranspose, Gemm or MatMul before it',
  level: 1,
  rules: [rule as Rule],
});
