/**
 * fix-dims
 *
 * Before:  input_ids: int64[batch, sequence]          (ctx.options.dims = { batch: 1, sequence: 64 })
 *          logits (output): float[batch, sequence, 64];  value_info h: float[batch, 2*sequence]
 * After:   input_ids: int64[1, 64]; logits: float[1, 64, 64]; h: float[1, 128]
 * Conditions: ctx.options.dims names the symbols to pin. Every dim_param of a graph input, graph
 *   output or typed value (value_info) that mentions a pinned symbol is rewritten: the expression
 *   with the symbol replaced, a number when that makes it static. One rewrite (and one change) per
 *   graph input changed; outputs and value_info follow the inputs (one extra change only when no
 *   input changed). Fixing the model's input types changes its interface: that is what the user
 *   asked for with --dim; later folding then makes the shape arithmetic constant.
 * Formula: d := subst(d, dims).
 */
import { Sym } from '../../src/analysis/symbolic.js';
import type { Value } from '../../src/ir/graph.js';
import type { Dim, ValueType } from '../../src/ir/types.js';
import type { Pass } from '../../src/pass/pass.js';

function fixDim(d: Dim, subst: ReadonlyMap<string, Sym>): Dim {
  if (typeof d !== 'string') return d;
  let s: Sym;
  try {
    s = Sym.from(d);
  } catch {
    return subst.has(d) ? subst.get(d)!.toDim() : d;
  }
  if (![...s.symbols()].some((name) => subst.has(name))) return d;
  return s.subst(subst).toDim();
}

/** The type with pinned dims replaced, or undefined when nothing changes. */
function fixType(t: ValueType | undefined, subst: ReadonlyMap<string, Sym>): ValueType | undefined {
  if (!t) return undefined;
  switch (t.kind) {
    case 'tensor':
    case 'sparse_tensor': {
      if (!t.shape) return undefined;
      const shape = t.shape.map((d) => fixDim(d, subst));
      return shape.some((d, i) => d !== t.shape![i]) ? { ...t, shape } : undefined;
    }
    case 'sequence':
    case 'optional': {
      const elem = fixType(t.elem, subst);
      return elem ? { ...t, elem } : undefined;
    }
    case 'map': {
      const value = fixType(t.value, subst);
      return value ? { ...t, value } : undefined;
    }
    default:
      return undefined;
  }
}

export const fixDims: Pass = {
  name: 'fix-dims',
  description: 'pin symbolic dims (--dim batch=1) in the types of graph inputs, outputs and value_info',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    const dims = ctx.options.dims ?? {};
    const subst = new Map<string, Sym>();
    for (const [k, n] of Object.entries(dims)) {
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`fix-dims: --dim ${k}=${n}: a dim must be a non-negative integer`);
      subst.set(k, Sym.const(n));
    }
    if (subst.size === 0) return 0;
    let changes = 0;
    for (const v of graph.inputs) {
      const t = fixType(v.type, subst);
      if (!t) continue;
      if (!ctx.allowRewrite(`fix-dims: input '${v.name}' ${JSON.stringify(v.type)} -> ${JSON.stringify(t)}`)) return changes;
      v.type = t;
      changes++;
    }
    // outputs and value_info follow the inputs
    const rest: [Value, ValueType][] = [];
    const seen = new Set<Value>(graph.inputs);
    for (const v of [...graph.outputs, ...graph.definedValues()]) {
      if (seen.has(v)) continue;
      seen.add(v);
      const t = fixType(v.type, subst);
      if (t) rest.push([v, t]);
    }
    if (rest.length) {
      if (changes === 0 && !ctx.allowRewrite(`fix-dims: types of ${rest.length} outputs/value_info of graph '${graph.name}'`)) return 0;
      for (const [v, t] of rest) v.type = t;
      if (changes === 0) changes = 1;
    }
    if (changes) ctx.invalidate();
    return changes;
  },
};
