/**
 * convert-conv-nhwc: the convolution trunk in channels-last (NHWC), for targets whose preferred
 * layout is NHWC and which run com.microsoft NhwcConv (ONNX Runtime's CUDA EP: cuDNN's tensor-core
 * convolutions want channels-last). Level 2 (a contrib op).
 *
 * Before:  y = Conv(x, W, B)                                   x, y NCHW; W [M, C/group, kH, kW]
 * After:   xt = Transpose(x, [0,2,3,1]); yt = NhwcConv(xt, W', B); y = Transpose(yt, [0,3,1,2])
 *          W' = W as [M, kH, kW, C/group] (a new initializer: the layout ORT's own
 *          transformers/fusion_nhwc_conv.py gives NhwcConv); attributes unchanged.
 *
 * Before:  p = GlobalAveragePool(Transpose(t, [0,3,1,2]))     (t NHWC: the trunk's end, once the
 *          Transposes above were sunk to it); GlobalMaxPool alike
 * After:   p = Transpose(ReduceMean(t, axes [1,2], keepdims 1), [0,3,1,2])   (ReduceMax)
 *
 * Run in a fixed point with propagate-transposes and merge-transposes: each [0,3,1,2] sinks through
 * the elementwise ops between convolutions (Relu, Clip, the Add of a residual) and cancels with the
 * next NhwcConv's [0,2,3,1]. Left: one Transpose where the trunk starts (none with
 * `--input-layout NHWC`: the input's own Transpose cancels with it), one where it ends (on [N,1,1,C]
 * after a global pool), and a pair around ops with no NHWC form in the runtime (MaxPool, Resize...).
 *
 * Conditions: the target's layout is NHWC (other targets: nothing happens); a 2-D convolution
 * (W of rank 4) of float32 or float16 with a constant W (and B, when given); main graph only.
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor, transposeTensor } from '../../src/ir/tensor.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';

const MS = 'com.microsoft';
const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

function nhwcTarget(ctx: PassContext): boolean {
  return ctx.options.target?.layout === 'NHWC';
}

/** [M, C, kH, kW] -> [M, kH, kW, C] */
export function oihwToOhwi(t: Tensor): Tensor {
  return transposeTensor(t, TO_NHWC)!;
}

function permOf(v: Value | undefined): number[] | undefined {
  const p = v?.producer;
  if (!p || p.opType !== 'Transpose' || p.domain !== '') return undefined;
  const a = p.attr('perm');
  return a?.type === 'ints' ? [...a.value].map(Number) : undefined;
}

/** The OHWI initializer made for an OIHW weight (checked to still be in the graph before reuse). */
const ohwiOf = new WeakMap<Tensor, Value>();

const conv: Rule<{ node: Node }> = {
  name: 'conv-to-nhwc',
  ops: ['Conv'],
  match: (node, ctx) => {
    if (!nhwcTarget(ctx)) return null;
    const [x, w, b] = node.inputs;
    const wt = w?.initializer;
    if (!x || !wt || wt.dims.length !== 4) return null;
    if (wt.dataType !== DataType.FLOAT && wt.dataType !== DataType.FLOAT16) {
      ctx.explain(`${node}: weights are not float32/float16, left NCHW`);
      return null;
    }
    if (b && !b.initializer) {
      ctx.explain(`${node}: its bias '${b.name}' is not a constant, left NCHW`);
      return null;
    }
    if (node.inputs.length > 3 || node.outputs.length !== 1) return null;
    return { node };
  },
  rewrite: ({ node }, patch, ctx) => {
    ctx.requireOpset(MS, 1);
    const [x, w, b] = node.inputs as [Value, Value, Value | undefined];
    const xt = patch.add('Transpose', [x], { perm: TO_NHWC }, { name: `${node.name || 'Conv'}_to_nhwc` });
    // a weight shared by several Convs is transposed once
    let wn = ohwiOf.get(w.initializer!);
    if (!wn || patch.graph.local(wn.name) !== wn || !wn.initializer) {
      wn = patch.constant(oihwToOhwi(w.initializer!), `${w.name}_ohwi`);
      ohwiOf.set(w.initializer!, wn);
    }
    const yt = patch.add('NhwcConv', b ? [xt, wn, b] : [xt, wn], [...node.attributes.values()], { domain: MS, name: node.name || 'NhwcConv' });
    const y = patch.add('Transpose', [yt], { perm: TO_NCHW }, { name: `${node.name || 'Conv'}_to_nchw` });
    patch.replace(node.outputs[0]!, y);
  },
};

const globalPool: Rule<{ node: Node; t: Value }> = {
  name: 'global-pool-to-nhwc',
  ops: ['GlobalAveragePool', 'GlobalMaxPool'],
  match: (node, ctx) => {
    if (!nhwcTarget(ctx)) return null;
    const perm = permOf(node.inputs[0]);
    if (!perm || perm.join() !== TO_NCHW.join()) return null;
    return { node, t: node.inputs[0]!.producer!.inputs[0]! };
  },
  rewrite: ({ node, t }, patch, ctx) => {
    const op = node.opType === 'GlobalAveragePool' ? 'ReduceMean' : 'ReduceMax';
    // axes became an input in opset 18
    const axesAsInput = ctx.opset() >= 18;
    const r = axesAsInput
      ? patch.add(op, [t, patch.constant(Tensor.int64([1, 2], [2]), 'nhwc_pool_axes')], { keepdims: 1 }, { name: `${node.name || op}_nhwc` })
      : patch.add(op, [t], { axes: [1, 2], keepdims: 1 }, { name: `${node.name || op}_nhwc` });
    const y = patch.add('Transpose', [r], { perm: TO_NCHW }, { name: `${node.name || op}_to_nchw` });
    patch.replace(node.outputs[0]!, y);
  },
};

export const convertConvNhwc = rulePass({
  name: 'convert-conv-nhwc',
  description: 'Conv -> com.microsoft NhwcConv between Transposes (for NHWC targets); global pools over NHWC -> ReduceMean/ReduceMax',
  level: 2,
  rules: [conv, globalPool],
  subgraphs: 'skip',
  emits: ['com.microsoft::NhwcConv'],
});
