/**
 * fold-constants
 *
 * Before:  c = Constant(value=t);            y = f(c, w)        (w an initializer, f any standard op)
 * After:   c = initializer t (same name);    y = initializer f(t, w) (same name as y)
 * Conditions: every input of f is a constant (an initializer that is not a graph input, or a
 *   Constant node's output); f is in the default domain, has no subgraphs and is deterministic
 *   (no RandomUniform/RandomNormal/*Like/Bernoulli/Multinomial, no Dropout in training mode);
 *   the evaluator (TypeScript, then ctx.options.runtime when given) can compute it; no output of f
 *   is a graph output (an initializer cannot carry the output's name without an extra Identity);
 *   f is not DequantizeLinear (a quantized model's weights stay integer: folding them back to float
 *   undoes the quantization, and ONNX Runtime's QDQ fusion into QLinearConv/QLinearMatMul needs the
 *   DequantizeLinear nodes; ORT's own constant folding leaves them for the same reason; found by the
 *   target-pair matrix: a static model recompiled lost its int32 biases and small int8 weights);
 *   the size rule (foldTooLarge below): not when the result is larger than FOLD_SIZE_LIMIT bytes
 *   (4 KiB; ctx.options.foldSizeLimit overrides it) AND larger than f's constant inputs together.
 * Formula: y := evaluate(f, inputs). A Constant node is already a constant: it becomes an
 *   initializer (one change, no size rule).
 *
 * Why the size rule: folding trades run-time work for bytes in the file. For shape arithmetic,
 * scalars and weight rewrites (Transpose, Reshape, Concat, Slice, Gather of a weight) the result
 * is no larger than what it is computed from, and folding is a plain win. Ops that make a big
 * tensor from a small description (ConstantOfShape, Expand, Tile, Range, a Where/Less mask, a
 * DequantizeLinear or a Cast to a wider type) would write that tensor into the model (an If/LSTM
 * model went from 2.08 to 3.09 MiB of parameters under the old 1 MiB cap), for data that costs
 * little to make at run time. Those stay as ops once their result passes 4 KiB. The absolute part
 * keeps small folds (a [2,1,64] zero state, a short position table) that are cheaper as constants
 * than as nodes. onnx-simplifier's --no-large-tensor (Tile and ConstantOfShape; 1 KiB when given
 * without a size) and OpenVINO's 1 KiB constant-folding threshold draw the same kind of line.
 */
import { attrInt } from '../../src/ir/attribute.js';
import type { InferResult } from '../../src/analysis/infer.js';
import { DataType, rawByteLength } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { typesConflict } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';
import { tensorScalar } from '../lib/query.js';

/**
 * The fold size rule of every folding pass (this one, fold-shape-ops): a fold whose result is larger
 * than this many bytes and larger than its constant inputs together is not made. See the header.
 */
export const FOLD_SIZE_LIMIT = 4096;

/** The size rule: would a fold writing `resultBytes` computed from `inputBytes` of constants grow the model too much? */
export function foldTooLarge(resultBytes: number, inputBytes: number, limit: number = FOLD_SIZE_LIMIT): boolean {
  return resultBytes > limit && resultBytes > inputBytes;
}

const RANDOM_OPS = new Set(['RandomUniform', 'RandomNormal', 'RandomUniformLike', 'RandomNormalLike', 'Bernoulli', 'Multinomial']);

/** Why `node` must not be folded because its result is random, or undefined. */
function randomness(node: Node, inputs: (Tensor | undefined)[], opset: number): string | undefined {
  if (RANDOM_OPS.has(node.opType)) return 'its outputs are random';
  if (node.opType === 'Dropout') {
    // opset < 7: is_test=0 means training; opset 12+: training_mode input (random unless ratio is 0)
    if (opset < 7 && attrInt(node.attr('is_test'), 0) === 0) return 'Dropout in training mode (is_test=0) is random';
    if (opset >= 12 && node.inputs[2]) {
      const training = tensorScalar(inputs[2]);
      if (training === undefined) return 'Dropout training_mode is not a known scalar';
      if (training !== 0) {
        const ratio = node.inputs[1] ? tensorScalar(inputs[1]) : 0.5;
        if (ratio !== 0) return 'Dropout in training mode is random';
      }
    }
  }
  return undefined;
}

/** Bytes a tensor takes (strings: their UTF-8 lengths). */
export function tensorBytes(t: Tensor): number {
  if (t.dataType === DataType.STRING) return t.data.kind === 'stringData' ? t.data.values.reduce((n, s) => n + s.length, 0) : 0;
  return t.byteLength ?? 0;
}

/** Bytes of a value from its inferred type, when its shape is static and its element size known. */
function staticBytes(v: Value, shapes: InferResult | undefined): number | undefined {
  const t = shapes?.types.get(v);
  if (!t || t.kind !== 'tensor' || !t.shape) return undefined;
  let n = 1;
  for (const d of t.shape) {
    const x = d.value;
    if (x === undefined) return undefined;
    n *= x;
  }
  return rawByteLength(t.elemType, n);
}

function isDefaultDomain(node: Node): boolean {
  return node.domain === '' || node.domain === 'ai.onnx';
}

/** Convert `c = Constant(...)` into an initializer named `c`. */
async function foldConstantNode(graph: Graph, node: Node, ctx: PassContext): Promise<number> {
  const out = node.outputs[0];
  if (!out || out.uses.length === 0) return 0; // dead: not ours to clean up
  if (out.isGraphOutput) {
    ctx.explain(`${node}: its output '${out.name}' is a graph output; left as a Constant node`);
    return 0;
  }
  if (node.attr('sparse_value')) {
    ctx.explain(`${node}: a sparse constant stays sparse`);
    return 0;
  }
  let t = constantValue(out);
  if (!t) {
    // value_float(s), value_int(s), value_string(s): the evaluator builds the tensor
    const r = await ctx.evaluate(node, []);
    t = r?.[0];
  }
  if (!(t instanceof Tensor)) {
    ctx.explain(`${node}: cannot turn this Constant into a tensor (sparse_value?)`);
    return 0;
  }
  if (typesConflict(out.type, tensorType(t.dataType, [...t.dims]))) {
    ctx.explain(`${node}: declared type of '${out.name}' does not match its value`);
    return 0;
  }
  if (!ctx.allowRewrite(`fold-constants: Constant ${node} -> initializer '${out.name}'`)) return -1;
  const patch = ctx.patch(graph);
  patch.replaceInPlace(out, patch.constant(t, out.name));
  return patch.commit();
}

/** Fold a node whose inputs are all constants. -1: rewrites are used up. */
async function foldNode(graph: Graph, node: Node, ctx: PassContext, shapes: () => InferResult | undefined): Promise<number> {
  const opset = ctx.opset(node.domain);
  const inputs: (Tensor | undefined)[] = [];
  for (const v of node.inputs) {
    if (!v) { inputs.push(undefined); continue; }
    const t = constantValue(v);
    if (!t) return 0; // not a constant node
    inputs.push(t);
  }
  const outs = node.outputs.filter((v): v is Value => v !== undefined);
  if (outs.length === 0) return 0;
  if (outs.every((v) => v.uses.length === 0)) return 0; // dead: not ours to clean up
  const random = randomness(node, inputs, opset);
  if (random) {
    ctx.explain(`${node}: not folded: ${random}`);
    return 0;
  }
  if (node.opType === 'DequantizeLinear') {
    ctx.explain(`${node}: not folded: DequantizeLinear keeps a quantized weight integer (the QDQ form the runtime fuses)`);
    return 0;
  }
  const graphOut = outs.find((v) => v.isGraphOutput);
  if (graphOut) {
    ctx.explain(`${node}: not folded: its output '${graphOut.name}' is a graph output`);
    return 0;
  }
  const limit = ctx.options.foldSizeLimit ?? FOLD_SIZE_LIMIT;
  const inBytes = inputs.reduce((n, t) => n + (t ? tensorBytes(t) : 0), 0);
  // skip evaluating what is known (from inference) to come out too big
  const predicted = outs.map((v) => staticBytes(v, shapes()));
  if (predicted.every((b) => b !== undefined)) {
    const total = predicted.reduce((a: number, b) => a + b!, 0);
    if (foldTooLarge(total, inBytes, limit)) {
      ctx.explain(`${node}: not folded: result of ${total} bytes exceeds the fold size limit (${limit}) and its inputs (${inBytes})`);
      return 0;
    }
  }
  const result = await ctx.evaluate(node, inputs);
  if (!result) {
    ctx.explain(`${node}: not folded: the evaluator cannot compute ${node.opType}${ctx.options.runtime ? '' : ' (no runtime given)'}`);
    return 0;
  }
  const tensors: [Value, Tensor][] = [];
  for (let i = 0; i < node.outputs.length; i++) {
    const v = node.outputs[i];
    if (!v) continue;
    const t = result[i];
    if (!(t instanceof Tensor)) {
      ctx.explain(`${node}: not folded: output ${i} was not computed as a tensor`);
      return 0;
    }
    if (typesConflict(v.type, tensorType(t.dataType, [...t.dims]))) {
      ctx.explain(`${node}: not folded: computed ${t.dataType}[${t.dims.join(',')}] for '${v.name}', which conflicts with its type`);
      return 0;
    }
    tensors.push([v, t]);
  }
  const outBytes = tensors.reduce((n, [, t]) => n + tensorBytes(t), 0);
  if (foldTooLarge(outBytes, inBytes, limit)) {
    ctx.explain(`${node}: not folded: result of ${outBytes} bytes exceeds the fold size limit (${limit}) and its inputs (${inBytes})`);
    return 0;
  }
  if (!ctx.allowRewrite(`fold-constants: ${node}`)) return -1;
  const patch = ctx.patch(graph);
  for (const [v, t] of tensors) if (v.uses.length > 0) patch.replaceInPlace(v, patch.constant(t, v.name));
  patch.remove(node);
  return patch.commit();
}

export const foldConstants: Pass = {
  name: 'fold-constants',
  description: 'evaluate nodes whose inputs are all constants and replace them by initializers; Constant nodes become initializers',
  level: 1,
  subgraphs: 'recurse',
  async run(graph, ctx) {
    let changes = 0;
    // types computed once per run: folding keeps every remaining value's type, so they stay right
    let shapes: InferResult | undefined;
    let tried = false;
    const getShapes = (): InferResult | undefined => {
      if (!tried) {
        tried = true;
        shapes = ctx.shapesOrExplain(); // without them: folding without size predictions
      }
      return shapes;
    };
    for (const node of graph.nodes) {
      if (node.removed || !isDefaultDomain(node)) continue;
      if (node.subgraphs().length) continue;
      // in a function body an attribute may refer to the caller's: its value is not known here
      if ([...node.attributes.values()].some((a) => a.refAttrName !== undefined || a.type === 'undefined')) continue;
      const n = node.opType === 'Constant' ? await foldConstantNode(graph, node, ctx) : await foldNode(graph, node, ctx, getShapes);
      if (n < 0) break;
      if (n > 0) {
        changes += n;
        ctx.invalidate();
      }
    }
    return changes;
  },
};
