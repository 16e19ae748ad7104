/**
 * How far a candidate's output is from the reference's: max abs/rel error, mean abs error, cosine
 * similarity, signal-to-noise ratio, and top-1/top-5 agreement over the last axis for outputs that
 * look like scores (float, last dim of 5 or more).
 */
import { DataType } from '../ir/dtype.js';
import type { Tensor } from '../ir/tensor.js';
import { tensorValues } from '../compare.js';

export interface OutputMetrics {
  name: string;
  shape: number[];
  maxAbsError: number;
  maxRelError: number;
  /** max |ref-cand| / max |ref|: the largest error relative to the output's own scale */
  maxScaledError?: number;
  meanAbsError: number;
  cosine: number;
  /** 10*log10(signal power / error power); Infinity when identical */
  snrDb: number;
  /** share of rows (over the last axis) whose argmax agrees */
  top1?: number;
  /** share of rows whose reference argmax is in the candidate's top 5 */
  top5?: number;
  /** integer / bool outputs: share of elements that are equal */
  exactMatch?: number;
  /** with a tolerance: elements where |ref-cand| > atol + rtol*|ref| */
  violations?: number;
  /**
   * the element furthest from its tolerance (largest |ref-cand| / (atol + rtol*|ref|)), or with the
   * largest error when no tolerance is given: where it is, both values, its abs and rel error
   */
  worstElement?: { index: number[]; ref: number; got: number; absError: number; relError: number };
}

/** The multi-index of flat position `i` in `shape`. */
function unflatten(i: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length).fill(0);
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k]!;
    out[k] = d ? i % d : 0;
    i = d ? Math.floor(i / d) : 0;
  }
  return out;
}

const FLOATS = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

function topK(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => (row[b]! - row[a]!) || a - b);
  return idx.slice(0, k);
}

export class MetricsError extends Error {}

export function outputMetrics(name: string, ref: Tensor, cand: Tensor, tol?: { atol: number; rtol: number }): OutputMetrics {
  if (ref.dims.join(',') !== cand.dims.join(',')) throw new MetricsError(`output '${name}': shape [${cand.dims.join(',')}], expected [${ref.dims.join(',')}]`);
  if (ref.dataType !== cand.dataType && !(FLOATS.has(ref.dataType) && FLOATS.has(cand.dataType))) {
    throw new MetricsError(`output '${name}': element type ${cand.dataType}, expected ${ref.dataType}`);
  }
  const shape = [...ref.dims];
  const a = tensorValues(ref);
  const b = tensorValues(cand);
  if (!FLOATS.has(ref.dataType)) {
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    const exact = a.length ? same / a.length : 1;
    const err = exact === 1 ? 0 : Infinity;
    return { name, shape, maxAbsError: err, maxRelError: err, meanAbsError: err, cosine: exact === 1 ? 1 : 0, snrDb: exact === 1 ? Infinity : 0, exactMatch: exact };
  }
  const x = a as ArrayLike<number>, y = b as ArrayLike<number>;
  let maxAbs = 0, maxRel = 0, sumAbs = 0, dot = 0, nx = 0, ny = 0, noise = 0, violations = 0, refMax = 0;
  let worstAt = -1, worstScore = -1;
  for (let i = 0; i < x.length; i++) {
    const p = x[i]!, q = y[i]!;
    if (Number.isNaN(p) && Number.isNaN(q)) continue;
    const d = p === q ? 0 : Math.abs(p - q);
    const dd = Number.isNaN(d) ? Infinity : d;
    maxAbs = Math.max(maxAbs, dd);
    if (Number.isFinite(p)) refMax = Math.max(refMax, Math.abs(p));
    maxRel = Math.max(maxRel, dd === 0 ? 0 : dd / Math.max(Math.abs(p), 1e-12));
    sumAbs += dd;
    const allowed = tol ? tol.atol + tol.rtol * Math.abs(p) : 1;
    if (tol && !(dd <= allowed)) violations++;
    const score = allowed > 0 ? dd / allowed : dd;
    if (score > worstScore) { worstScore = score; worstAt = i; }
    dot += p * q; nx += p * p; ny += q * q; noise += dd * dd;
  }
  const cosine = nx === 0 && ny === 0 ? 1 : nx === 0 || ny === 0 ? 0 : dot / Math.sqrt(nx * ny);
  const snrDb = noise === 0 ? Infinity : nx === 0 ? -Infinity : 10 * Math.log10(nx / noise);
  const maxScaledError = maxAbs === 0 ? 0 : refMax === 0 ? Infinity : maxAbs / refMax;
  const m: OutputMetrics = { name, shape, maxAbsError: maxAbs, maxRelError: maxRel, maxScaledError, meanAbsError: x.length ? sumAbs / x.length : 0, cosine, snrDb, ...(tol ? { violations } : {}) };
  if (worstAt >= 0 && worstScore > 0) {
    const p = x[worstAt]!, q = y[worstAt]!;
    const d = Math.abs(p - q);
    m.worstElement = { index: unflatten(worstAt, shape), ref: p, got: q, absError: Number.isNaN(d) ? Infinity : d, relError: d === 0 ? 0 : d / Math.max(Math.abs(p), 1e-12) };
  }
  const last = shape[shape.length - 1] ?? 0;
  if (shape.length >= 1 && last >= 5) {
    const rows = x.length / last;
    let t1 = 0, t5 = 0;
    for (let r = 0; r < rows; r++) {
      const rowA = Array.prototype.slice.call(x, r * last, (r + 1) * last) as number[];
      const rowB = Array.prototype.slice.call(y, r * last, (r + 1) * last) as number[];
      const refTop = topK(rowA, 1)[0]!;
      const candTop5 = topK(rowB, 5);
      if (candTop5[0] === refTop) t1++;
      if (candTop5.includes(refTop)) t5++;
    }
    m.top1 = rows ? t1 / rows : 1;
    m.top5 = rows ? t5 / rows : 1;
  }
  return m;
}
