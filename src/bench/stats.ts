/**
 * Statistics for latency samples: percentiles, mean and standard deviation, and a seeded bootstrap
 * confidence interval for the ratio of the medians of two sample sets.
 */
import { seededRandom } from '../inputs.js';
import type { LatencyStats } from './types.js';

/**
 * The q-th percentile (q in [0, 100]) of samples, by linear interpolation between the closest
 * ranks of the sorted samples (NumPy's default, "type 7"). `sorted` must be sorted ascending.
 */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('percentile of no samples');
  if (!(q >= 0 && q <= 100)) throw new RangeError(`percentile ${q} is not in [0, 100]`);
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const frac = pos - lo;
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * frac;
}

/** The q-th percentile of unsorted samples (see percentileSorted). */
export function percentile(samples: readonly number[], q: number): number {
  return percentileSorted([...samples].sort((a, b) => a - b), q);
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('mean of no samples');
  let s = 0;
  for (const x of samples) s += x;
  return s / samples.length;
}

/** Sample standard deviation (n - 1 in the denominator); 0 for a single sample. */
export function stdev(samples: readonly number[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const m = mean(samples);
  let s = 0;
  for (const x of samples) s += (x - m) * (x - m);
  return Math.sqrt(s / (n - 1));
}

/** min, p50, p90, p99, mean and stdev of latency samples in milliseconds. */
export function latencyStats(samples: readonly number[]): LatencyStats {
  if (samples.length === 0) throw new RangeError('latency statistics of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    minMs: sorted[0]!,
    p50Ms: percentileSorted(sorted, 50),
    p90Ms: percentileSorted(sorted, 90),
    p99Ms: percentileSorted(sorted, 99),
    meanMs: mean(samples),
    stdevMs: stdev(samples),
  };
}

/** k-th smallest element (0-based) of buf[0..n), reordering buf (Hoare's quickselect). */
function select(buf: Float64Array, n: number, k: number): number {
  let lo = 0, hi = n - 1;
  while (lo < hi) {
    const pivot = buf[(lo + hi) >>> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (buf[i]! < pivot) i++;
      while (buf[j]! > pivot) j--;
      if (i <= j) {
        const t = buf[i]!; buf[i] = buf[j]!; buf[j] = t;
        i++; j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return buf[k]!;
  }
  return buf[k]!;
}

/** The median of buf[0..n) (same definition as `median`), reordering buf. */
function medianInPlace(buf: Float64Array, n: number): number {
  const pos = (n - 1) / 2;
  const lo = Math.floor(pos);
  const a = select(buf, n, lo);
  if (pos === lo) return a;
  // the next order statistic is the smallest element above position lo
  let b = Infinity;
  for (let i = lo + 1; i < n; i++) if (buf[i]! < b) b = buf[i]!;
  return (a + b) / 2;
}

export interface BootstrapOptions {
  /** resamples (default 2000) */
  iterations?: number;
  /** seed of the resampling RNG (default 1): the same samples and seed give the same interval */
  seed?: number;
}

/**
 * The ratio of medians median(b) / median(a) (so b 20% slower than a gives 1.2) and its 95%
 * confidence interval by the percentile bootstrap: both sample sets are resampled with replacement,
 * independently, `iterations` times; the interval is the 2.5th and 97.5th percentiles of the
 * resampled ratios. Deterministic for a given seed.
 */
export function bootstrapRatioCI(a: number[], b: number[], opts: { iterations?: number; seed?: number } = {}): { ratio: number; ci95: [number, number] } {
  if (a.length === 0 || b.length === 0) throw new RangeError('bootstrap of an empty sample set');
  const iterations = Math.max(1, Math.floor(opts.iterations ?? 2000));
  const rand = seededRandom(opts.seed ?? 1);
  const ratio = median(b) / median(a);
  const bufA = new Float64Array(a.length), bufB = new Float64Array(b.length);
  const ratios = new Float64Array(iterations);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < a.length; i++) bufA[i] = a[Math.floor(rand() * a.length)]!;
    for (let i = 0; i < b.length; i++) bufB[i] = b[Math.floor(rand() * b.length)]!;
    ratios[it] = medianInPlace(bufB, b.length) / medianInPlace(bufA, a.length);
  }
  ratios.sort();
  return { ratio, ci95: [percentileSorted(ratios, 2.5), percentileSorted(ratios, 97.5)] };
}
