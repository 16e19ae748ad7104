/**
 * dedupe-initializers
 *
 * Before:  initializers a and b with the same element type, dims and bytes; f(a), g(b)
 * After:   f(a), g(a); b is gone
 * Conditions: dense initializers of one graph, equal element type, dims and contents (hashed, then
 *   compared byte for byte); neither is a graph input (it could be overridden) or a graph output,
 *   nor returned by a subgraph. The first in initializer order stays.
 */
import type { Value } from '../src/ir/graph.js';
import type { Tensor } from '../src/ir/tensor.js';
import type { Pass } from '../src/pass/pass.js';
import { typesConflict } from '../src/pass/patch.js';

function fnv(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function parts(t: Tensor): Uint8Array[] {
  return t.data.kind === 'stringData' ? t.data.values : [t.rawBytes()];
}

function key(t: Tensor): string {
  let h = 0x811c9dc5;
  const ps = parts(t);
  for (const p of ps) h = fnv(fnv(h, p), new Uint8Array([0xff]));
  return `${t.dataType}[${t.dims.join(',')}]#${ps.length}:${h.toString(16)}`;
}

function equal(a: Tensor, b: Tensor): boolean {
  if (a.dataType !== b.dataType || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  const x = parts(a), y = parts(b);
  if (x.length !== y.length) return false;
  for (let k = 0; k < x.length; k++) {
    const p = x[k]!, q = y[k]!;
    if (p.length !== q.length) return false;
    for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return false;
  }
  return true;
}

export const dedupeInitializers: Pass = {
  name: 'dedupe-initializers',
  description: 'merge initializers with identical type, dims and contents',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    const seen = new Map<string, Value[]>();
    let changes = 0;
    for (const v of graph.initializers) {
      const t = v.initializer;
      if (!t || v.isGraphInput || v.isReturned) continue;
      let k: string;
      try {
        k = key(t);
      } catch (e) {
        ctx.explain(`initializer '${v.name}': ${(e as Error).message}`);
        continue;
      }
      const bucket = seen.get(k);
      const keep = bucket?.find((u) => equal(u.initializer!, t));
      if (!keep) {
        if (bucket) bucket.push(v);
        else seen.set(k, [v]);
        continue;
      }
      if (typesConflict(v.type, keep.type)) continue;
      if (!ctx.allowRewrite(`dedupe-initializers: '${v.name}' -> '${keep.name}'`)) return changes;
      graph.replaceAllUsesWith(v, keep);
      graph.removeInitializer(v);
      changes++;
    }
    return changes;
  },
};
