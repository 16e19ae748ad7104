/**
 * fuse-matmul-add-into-gemm
 *
 * Before:  y = MatMul(A, B); z = Add(y, C)      (or Add(C, y))
 * After:   z = Gemm(A, B, C)
 * Conditions:
 *   - A and B have rank 2 (inferred shapes): A [M, K], B [K, N]; for rank > 2 MatMul is batched
 *     and Gemm cannot express it;
 *   - y has one use (the Add) and is not a graph output;
 *   - C broadcasts to [M, N] without changing the Add's output shape, as Gemm's unidirectional
 *     broadcast allows: scalar, [N], [1], [1, N], [M, N], [M, 1], [1, 1] (dims compared symbolically);
 *   - element type float32 or float64 (Gemm types every runtime has; float16 Gemm is not
 *     everywhere), opset >= 7 (unidirectional broadcast of C).
 *   C need not be constant.
 * Formula:  Gemm(A, B, C) = 1.0 * A @ B + 1.0 * C
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import type { Sym } from '../../src/analysis/symbolic.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';
import { alt, op, v } from '../../src/pass/pattern.js';
import { tensorTypeOf } from '../lib/query.js';

type Caps = { a: Value; b: Value; c: Value; mm: Node; node: Node };

const mm = () => op('MatMul', v('a'), v('b')).as('mm').oneUse();
const pattern = alt(op('Add', mm(), v('c')).as('node'), op('Add', v('c'), mm()).as('node'));

const TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE]);

/** The inferred type of `val` when its shape is known. */
function shaped(val: Value, ctx: PassContext): { elemType: number; shape: Sym[] } | undefined {
  const t = tensorTypeOf(ctx.shapesOrExplain(), val);
  return t?.shape ? { elemType: t.elemType, shape: t.shape } : undefined;
}

const isOne = (d: Sym): boolean => d.value === 1;

const rule: Rule<Caps> = {
  name: 'matmul-add',
  ops: ['Add'],
  match: (node, ctx) => {
    const out = node.outputs[0];
    if (!out || ctx.opset() < 7) return null;
    const caps: Record<string, unknown> = {};
    if (!pattern.matchValue(out, caps) || caps.node !== node) return null;
    const c = caps as Caps;
    const a = shaped(c.a, ctx), b = shaped(c.b, ctx), cs = shaped(c.c, ctx), y = shaped(c.mm.outputs[0]!, ctx);
    if (!a || !b || !cs || !y) return null;
    if (a.shape.length !== 2 || b.shape.length !== 2 || y.shape.length !== 2) {
      ctx.explain(`${c.mm}: MatMul of ranks ${a.shape.length} and ${b.shape.length}: not a Gemm`);
      return null;
    }
    if (!TYPES.has(a.elemType) || a.elemType !== b.elemType || a.elemType !== cs.elemType) return null;
    const [m, n] = y.shape as [Sym, Sym];
    const dims = cs.shape;
    if (dims.length > 2) return null;
    const last = dims[dims.length - 1];
    if (last && !isOne(last) && !last.equals(n)) return null;
    if (dims.length === 2 && !isOne(dims[0]!) && !dims[0]!.equals(m)) return null;
    return c;
  },
  rewrite: ({ a, b, c, mm: matmul, node }, patch) => {
    const y = patch.add('Gemm', [a, b, c], {}, { name: matmul.name || 'Gemm' });
    patch.replace(node.outputs[0]!, y);
  },
};

export const fuseMatmulAddIntoGemm = rulePass({
  name: 'fuse-matmul-add-into-gemm',
  description: 'turn MatMul of two rank-2 tensors followed by an Add of a bias that Gemm can broadcast into one Gemm',
  level: 1,
  rules: [rule as Rule],
});
