/**
 * Convolution and MatMul contrib ops in standard ONNX:
 *
 *   com.microsoft::FusedConv(x, W, [B], [Z], activation=a, activation_params=p)
 *       = a(Conv(x, W, B) + Z)        a: Relu, Tanh, Sigmoid, LeakyRelu(p0), Clip(p0, p1), HardSigmoid(p0, p1)
 *   com.microsoft::NhwcConv(x, W, [B])     (x, y NHWC; W [M, kH, kW, C/group], ORT's CUDA contrib op)
 *       = Transpose(Conv(Transpose(x, [0,3,1,2]), Transpose(W, [0,3,1,2]), B), [0,2,3,1])
 *   com.microsoft::FusedMatMul(A, B, alpha, transA, transB)   (transBatchA/B 0)
 *       = alpha * (A or A^T) @ (B or B^T), ^T swapping the last two axes
 *
 * The Conv keeps the contrib op's convolution attributes; the weight's Transpose folds into an
 * initializer, and activation Transposes between two NhwcConvs cancel in the portable pipeline's
 * propagate-transposes / merge-transposes.
 */
import { attrFloat, attrInt, attrString } from '../../../src/ir/attribute.js';
import type { Node, Value } from '../../../src/ir/graph.js';
import type { Emitter } from '../emit.js';
import { elemTypeOf, rankOf } from '../query.js';
import type { Lowering } from './lowering.js';

const MS = 'com.microsoft';

/** FusedConv's activation applied to y (elem: y's element type, for Clip's bounds). */
function activate(e: Emitter, y: Value, name: string, params: number[], elem: number | undefined): Value | string {
  switch (name) {
    case 'Relu': case 'Tanh': case 'Sigmoid': return e.op(name, [y]);
    case 'LeakyRelu': return e.op('LeakyRelu', [y], { alpha: params[0] ?? 0.01 });
    case 'HardSigmoid': return e.op('HardSigmoid', [y], { alpha: params[0] ?? 0.2, beta: params[1] ?? 0.5 });
    case 'Clip': {
      if (elem === undefined) return 'Clip activation on an input of unknown element type';
      return e.op('Clip', [y, e.scalarLike(params[0] ?? -3.4028234663852886e38, elem), e.scalarLike(params[1] ?? 3.4028234663852886e38, elem)]);
    }
    default: return `activation '${name}' has no standard form here`;
  }
}

/** Conv attributes of a contrib convolution (its own activation attributes left out). */
function convAttributes(n: Node) {
  return [...n.attributes.values()].filter((a) => a.name !== 'activation' && a.name !== 'activation_params');
}

/** NhwcConv as Transpose + Conv + Transpose, written through `e`. */
export function nhwcConvAsConv(e: Emitter, n: Node): Value {
  const [x, w, b] = n.inputs;
  const xc = e.transpose(x!, [0, 3, 1, 2]);
  const wc = e.transpose(w!, [0, 3, 1, 2]);
  const y = e.patch.add('Conv', b ? [xc, wc, b] : [xc, wc], convAttributes(n), { name: `${e.prefix}/Conv` });
  return e.transpose(y, [0, 2, 3, 1]);
}

function swapLast(e: Emitter, v: Value, rank: number): Value {
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return e.transpose(v, perm);
}

export const CONV_LOWERINGS: Lowering[] = [
  {
    domain: MS, op: 'FusedConv',
    lower(node, e, ctx) {
      const [x, w, b, z] = node.inputs;
      let y = e.patch.add('Conv', b ? [x, w, b] : [x, w], convAttributes(node), { name: `${e.prefix}/Conv` });
      if (z) y = e.add(y, z);
      const act = attrString(node.attr('activation'));
      if (!act) return [y];
      const p = node.attr('activation_params');
      const out = activate(e, y, act, p?.type === 'floats' ? [...p.value] : [], elemTypeOf(ctx.shapesOrExplain(), x));
      return typeof out === 'string' ? out : [out];
    },
  },
  {
    domain: MS, op: 'NhwcConv',
    lower(node, e, ctx) {
      const rank = rankOf(ctx.shapesOrExplain(), node.inputs[0]);
      if (rank !== undefined && rank !== 4) return `input of rank ${rank}: only 2-D (NHWC) convolutions are lowered`;
      return [nhwcConvAsConv(e, node)];
    },
  },
  {
    domain: MS, op: 'FusedMatMul',
    lower(node, e, ctx) {
      if (attrInt(node.attr('transBatchA'), 0) || attrInt(node.attr('transBatchB'), 0)) return 'transBatchA/transBatchB are not lowered';
      let [a, b] = node.inputs as [Value, Value];
      const ra = rankOf(ctx.shapesOrExplain(), a), rb = rankOf(ctx.shapesOrExplain(), b);
      if (attrInt(node.attr('transA'), 0)) { if (ra === undefined || ra < 2) return 'transA on an input of unknown rank'; a = swapLast(e, a, ra); }
      if (attrInt(node.attr('transB'), 0)) { if (rb === undefined || rb < 2) return 'transB on an input of unknown rank'; b = swapLast(e, b, rb); }
      let y = e.matmul(a, b);
      const alpha = attrFloat(node.attr('alpha'), 1)!;
      if (alpha !== 1) {
        const elem = elemTypeOf(ctx.shapesOrExplain(), node.inputs[0]);
        if (elem === undefined) return 'alpha on an input of unknown element type';
        y = e.mul(y, e.scalarLike(alpha, elem));
      }
      return [y];
    },
  },
];
