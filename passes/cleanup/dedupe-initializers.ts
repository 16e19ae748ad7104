/**
 * dedupe-initializers
 *
 * Before:  initializers a and b with the same element type, dims and bytes; f(a), g(b)
 * After:   f(a), g(a); b is gone
 * Conditions: dense initializers of one graph, equal element type, dims and contents (a sampled
 *   hash finds candidates, then they are compared byte for byte); neither is a graph input (it could be overridden) or a graph output,
 *   nor returned by a subgraph. The first in initializer order stays.
 */
import type { Value } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import type { Pass } from '../../src/pass/pass.js';
import { typesConflict } from '../../src/pass/patch.js';

function fnv(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function parts(t: Tensor): Uint8Array[] {
  return t.data.kind === 'stringData' ? t.data.values : [t.rawBytes()];
}

/** At most this many bytes of a tensor are hashed: equal tensors have equal samples, and every
 * candidate pair is compared in full before merging, so sampling only costs the odd extra compare
 * (hashing every byte of a 600 MB model took most of this pass's time). */
const SAMPLE = 1024;

function sample(bytes: Uint8Array): Uint8Array {
  if (bytes.length <= SAMPLE) return bytes;
  const out = new Uint8Array(SAMPLE);
  const step = bytes.length / SAMPLE;
  for (let i = 0; i < SAMPLE; i++) out[i] = bytes[Math.floor(i * step)]!;
  return out;
}

function key(t: Tensor): string {
  let h = 0x811c9dc5;
  const ps = parts(t);
  for (const p of ps) h = fnv(fnv(h, sample(p)), new Uint8Array([0xff]));
  return `${t.dataType}[${t.dims.join(',')}]#${ps.length}:${ps.reduce((n, p) => n + p.length, 0)}:${h.toString(16)}`;
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
      const patch = ctx.patch(graph);
      patch.replace(v, keep);
      patch.removeInitializer(v);
      changes += patch.commit();
    }
    return changes;
  },
};
