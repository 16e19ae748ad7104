/**
 * Normalization ops in standard ONNX primitives: LayerNormalization (standard from opset 17; ORT's
 * own before; TensorRT 8.5's parser lacks it), and ORT's SimplifiedLayerNormalization (RMSNorm),
 * SkipLayerNormalization, SkipSimplifiedLayerNormalization and EmbedLayerNormalization.
 *
 *   LayerNormalization(x, g, [b], axis=a, epsilon=e):
 *       m = ReduceMean(x, axes a..-1); d = x - m; y = d / Sqrt(ReduceMean(d*d) + e) * g + b
 *   SimplifiedLayerNormalization(x, g):          y = x / Sqrt(ReduceMean(x*x) + e) * g
 *   Skip[Simplified]LayerNormalization(x, skip, g, [b], [bias]):
 *       s = x + skip + bias; y = [Simplified]LayerNorm(s); outputs (y, -, -, s)
 *   EmbedLayerNormalization(ids, [seg], Wword, Wpos, [Wseg], g, b, [mask], [pos_ids]):
 *       s = Gather(Wword, ids) + Gather(Wpos, pos_ids or 0..S-1) + Gather(Wseg, seg); y = LN(s); outputs (y, -, s)
 *
 * The statistics are computed in float32 whatever x's float type (stash_type 1, as the ops'
 * function bodies do), so epsilon is a float32 constant next to float32 values. Mean / InvStdDev
 * outputs (training only) must be unused.
 */
import { attrFloat, attrInt } from '../../../src/ir/attribute.js';
import { DataType } from '../../../src/ir/dtype.js';
import type { Node, Value } from '../../../src/ir/graph.js';
import type { PassContext } from '../../../src/pass/pass.js';
import type { Emitter } from '../emit.js';
import { elemTypeOf, rankOf } from '../query.js';
import { used, type Lowering } from './lowering.js';

const MS = 'com.microsoft';

interface Norm { x: Value; gamma: Value; beta?: Value | undefined; epsilon: number; rms: boolean; axes: number[] }

/** y = normalize(x) * gamma + beta, statistics in float32. */
function normalize(e: Emitter, n: Norm, elem: number): Value {
  const wide = elem !== DataType.FLOAT;
  const xs = wide ? e.cast(n.x, DataType.FLOAT) : n.x;
  const centred = n.rms ? xs : e.sub(xs, e.reduceMean(xs, n.axes));
  const variance = e.reduceMean(e.mul(centred, centred), n.axes);
  let y = e.div(centred, e.op('Sqrt', [e.add(variance, e.f32([n.epsilon], []))]));
  if (wide) y = e.cast(y, elem);
  y = e.mul(y, n.gamma);
  return n.beta ? e.add(y, n.beta) : y;
}

/** Training-only outputs (Mean, InvStdDev) in use: the op cannot be written without them. */
function statsUsed(node: Node, indices: number[]): string | undefined {
  return indices.some((i) => used(node.outputs[i])) ? 'its mean / inverse std outputs are used' : undefined;
}

/** The normalized axes: `axis` to the last (axis -1 needs no rank). */
function axesFrom(node: Node, x: Value, ctx: PassContext): number[] | string {
  const axis = attrInt(node.attr('axis'), -1);
  if (axis === -1) return [-1];
  const r = rankOf(ctx.shapesOrExplain(), x);
  if (r === undefined) return `axis ${axis} on an input of unknown rank`;
  const a = axis < 0 ? axis + r : axis;
  return Array.from({ length: r - a }, (_, i) => a + i);
}

function lowerNorm(rms: boolean): Lowering['lower'] {
  return (node, e, ctx) => {
    const [x, gamma, beta] = node.inputs;
    const elem = elemTypeOf(ctx.shapesOrExplain(), x);
    if (elem === undefined) return 'element type of the input unknown';
    const why = statsUsed(node, [1, 2]);
    if (why) return why;
    const axes = axesFrom(node, x!, ctx);
    if (typeof axes === 'string') return axes;
    return [normalize(e, { x: x!, gamma: gamma!, beta: rms ? undefined : beta, epsilon: attrFloat(node.attr('epsilon'), 1e-5)!, rms, axes }, elem)];
  };
}

function lowerSkipNorm(rms: boolean): Lowering['lower'] {
  return (node, e, ctx) => {
    const [x, skip, gamma] = node.inputs;
    const beta = rms ? undefined : node.inputs[3];
    const bias = rms ? node.inputs[3] : node.inputs[4];
    const elem = elemTypeOf(ctx.shapesOrExplain(), x);
    if (elem === undefined) return 'element type of the input unknown';
    const why = statsUsed(node, [1, 2]);
    if (why) return why;
    let s = e.add(x!, skip!);
    if (bias) s = e.add(s, bias);
    const y = normalize(e, { x: s, gamma: gamma!, beta, epsilon: attrFloat(node.attr('epsilon'), 1e-12)!, rms, axes: [-1] }, elem);
    return [y, undefined, undefined, s];
  };
}

/** Gather(Wpos, 0..S-1) with S the second dim of ids, or Gather(Wpos, position_ids). */
function positions(e: Emitter, ids: Value, wpos: Value, posIds: Value | undefined): Value {
  if (posIds) return e.op('Gather', [wpos, posIds], { axis: 0 });
  const s = e.op('Gather', [e.op('Shape', [ids]), e.i64([1], [])], { axis: 0 });
  const range = e.op('Range', [e.i64([0], []), s, e.i64([1], [])]);
  return e.op('Gather', [wpos, range], { axis: 0 });
}

export const NORM_LOWERINGS: Lowering[] = [
  { domain: '', op: 'LayerNormalization', lower: lowerNorm(false) },
  { domain: '', op: 'SimplifiedLayerNormalization', lower: lowerNorm(true) },
  { domain: MS, op: 'SkipLayerNormalization', lower: lowerSkipNorm(false) },
  { domain: MS, op: 'SkipSimplifiedLayerNormalization', lower: lowerSkipNorm(true) },
  {
    domain: MS, op: 'EmbedLayerNormalization',
    lower(node, e, ctx) {
      const [ids, seg, wword, wpos, wseg, gamma, beta, , posIds] = node.inputs;
      if (used(node.outputs[1])) return 'its mask_index output is used';
      const elem = elemTypeOf(ctx.shapesOrExplain(), wword);
      if (elem === undefined) return 'element type of the embeddings unknown';
      let s = e.add(e.op('Gather', [wword!, ids!], { axis: 0 }), positions(e, ids!, wpos!, posIds));
      if (seg && wseg) s = e.add(s, e.op('Gather', [wseg, seg], { axis: 0 }));
      const y = normalize(e, { x: s, gamma: gamma!, beta, epsilon: attrFloat(node.attr('epsilon'), 1e-12)!, rms: false, axes: [-1] }, elem);
      return [y, undefined, s];
    },
  },
];
