/**
 * fold-shape-ops
 *
 * Before:  s = Shape(x)            (x: float[2,batch,8], ctx.options.dims = { batch: 3 })
 *          d = Gather(s, 2)        c = Concat(Unsqueeze(d, 0), [-1])
 * After:   c = initializer [8, -1]  (the Shape/Gather/Unsqueeze chain becomes dead and is dropped)
 * Conditions: shape inference (ctx.shapes().symValues) knows every element of the node's output
 *   statically (Shape/Size of a tensor with static dims, or arithmetic on the static parts of a
 *   shape: Gather(Shape(x), i) where dim i is static while others are symbolic); the output is an
 *   int64/int32 tensor of rank <= 1 and not a graph output; not a Constant node (fold-constants
 *   turns those into initializers). Symbolic dims fold only when pinned (--dim batch=1): shape
 *   inference keeps them symbolic, and what an If/Loop body implies about them (a branch taken only
 *   when n = 4) holds inside that body only, so a fold there is right for the body it is in. The
 *   fold size rule of fold-constants (foldTooLarge) applies too; results here are at most 64
 *   integers (what shape inference tracks), so it never refuses one today.
 * Formula: y := symValues(y) (all values static). Nodes are visited last to first, so a chain
 *   folds with one rewrite at its end.
 */
import type { InferResult } from '../../src/analysis/infer.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import type { Pass } from '../../src/pass/pass.js';
import { typesConflict } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';
import { foldTooLarge, tensorBytes } from './fold-constants.js';

/** The static contents of `v`, or undefined. */
function staticValue(v: Value, shapes: InferResult): Tensor | undefined {
  const sym = shapes.symValues.get(v);
  if (!sym || sym.dims.length > 1) return undefined;
  const t = shapes.types.get(v);
  const elemType = t?.kind === 'tensor' ? t.elemType : DataType.INT64;
  if (elemType !== DataType.INT64 && elemType !== DataType.INT32) return undefined;
  const values: number[] = [];
  for (const s of sym.values) {
    const x = s.value;
    if (x === undefined || !Number.isSafeInteger(x)) return undefined;
    values.push(x);
  }
  if (sym.dims.length === 1 && sym.dims[0] !== values.length) return undefined;
  if (sym.dims.length === 0 && values.length !== 1) return undefined;
  if (elemType === DataType.INT32 && values.some((x) => x !== (x | 0))) return undefined;
  return elemType === DataType.INT64 ? Tensor.int64(values, sym.dims) : Tensor.int32(values, sym.dims);
}

function tensorBytesOf(t: Tensor | undefined): number {
  return t ? tensorBytes(t) : 0;
}

function foldable(node: Node): boolean {
  if (node.removed || node.subgraphs().length) return false;
  if (node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx')) return false;
  return true;
}

export const foldShapeOps: Pass = {
  name: 'fold-shape-ops',
  description: 'replace Shape, Size and shape arithmetic whose values shape inference knows statically by constants',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    const shapes = ctx.shapesOrExplain();
    if (!shapes) return 0;
    // the types and values stay right for the values that remain: folding only removes nodes
    let changes = 0;
    const nodes = graph.nodes;
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      if (!foldable(node)) continue;
      const folds: [Value, Tensor][] = [];
      for (const v of node.outputs) {
        if (!v || v.uses.length === 0) continue;
        if (v.isGraphOutput) {
          if (shapes.symValues.has(v)) ctx.explain(`${node}: '${v.name}' is a graph output; not replaced by a constant`);
          continue;
        }
        const t = staticValue(v, shapes);
        if (!t) continue;
        if (typesConflict(v.type, tensorType(t.dataType, [...t.dims]))) continue;
        folds.push([v, t]);
      }
      if (folds.length === 0) continue;
      const outBytes = folds.reduce((n, [, t]) => n + tensorBytes(t), 0);
      const inBytes = node.inputs.reduce((n, v) => n + (v ? tensorBytesOf(constantValue(v)) : 0), 0);
      if (foldTooLarge(outBytes, inBytes, ctx.options.foldSizeLimit)) {
        ctx.explain(`${node}: not folded: result of ${outBytes} bytes exceeds the fold size limit and its constant inputs (${inBytes})`);
        continue;
      }
      if (!ctx.allowRewrite(`fold-shape-ops: ${node} -> ${folds.map(([v, t]) => `'${v.name}' = [${t.toTypedArray().join(',')}]`).join(', ')}`)) break;
      const patch = ctx.patch(graph);
      for (const [v, t] of folds) patch.replaceInPlace(v, patch.constant(t, v.name));
      const n = patch.commit();
      if (n > 0) {
        changes += n;
        ctx.invalidate();
      }
    }
    return changes;
  },
};
