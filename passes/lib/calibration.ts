/**
 * Calibration statistics for static quantization: running min/max, and a fixed-size histogram per
 * tensor that grows its range as batches arrive (bin width doubles, pairs of bins merge exactly), so
 * that calibration needs one pass over the data and memory independent of the number of samples.
 *
 * Ranges from the statistics:
 *  - minmax: the observed [min, max];
 *  - percentile: the p-th percentile of |x| (symmetric) or the (100-p)/p percentiles (asymmetric);
 *  - entropy: TensorRT's KL-divergence calibration (2048 bins of |x| merged into 128 levels, the
 *    threshold that minimizes KL(P || Q)); the range is the observed one clipped to [-t, t].
 *
 * Pure TypeScript, no Node built-ins: runs wherever the compiler core runs.
 */

import type { TensorStatistics, ValueHistogram } from '../../src/pass/pass.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export const DEFAULT_HISTOGRAM_BINS = 2048;

/** A histogram over the real line with bins [k*w, (k+1)*w) for k in [start, start + bins). */
export class RunningHistogram implements ValueHistogram {
  /** bin width (0 until the first non-constant data arrives) */
  width = 0;
  start = 0;
  counts: Float64Array;
  min = Infinity;
  max = -Infinity;
  total = 0;

  constructor(readonly bins = DEFAULT_HISTOGRAM_BINS) {
    this.counts = new Float64Array(bins);
  }

  /** Add values (NaN and infinities are ignored). */
  add(values: ArrayLike<number>): void {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      if (!Number.isFinite(x)) continue;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    if (lo > hi) return;
    const newMin = Math.min(this.min, lo);
    const newMax = Math.max(this.max, hi);
    if (this.width === 0) {
      // first data: bins span the observed range (at least a tiny width so constants have one bin)
      const span = Math.max(newMax - newMin, Math.max(Math.abs(newMax), Math.abs(newMin)) * 1e-6, 1e-12);
      this.width = (span / (this.bins - 2)) * (1 + 1e-9);
      this.start = Math.floor(newMin / this.width);
    }
    this.fit(newMin, newMax);
    this.min = newMin;
    this.max = newMax;
    const w = this.width, s = this.start, c = this.counts, last = this.bins - 1;
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      if (!Number.isFinite(x)) continue;
      let k = Math.floor(x / w) - s;
      if (k < 0) k = 0; else if (k > last) k = last;
      c[k]!++;
      this.total++;
    }
  }

  /** Make the bins cover [lo, hi]: double the width (merging bin pairs) until they do, then shift. */
  private fit(lo: number, hi: number): void {
    for (;;) {
      const kLo = Math.min(Math.floor(lo / this.width), this.firstUsed());
      const kHi = Math.max(Math.floor(hi / this.width), this.lastUsed());
      if (kHi - kLo + 1 <= this.bins) {
        if (kLo < this.start || kHi >= this.start + this.bins) this.relayout(this.width, kLo);
        return;
      }
      this.relayout(this.width * 2, Math.floor(kLo / 2));
    }
  }

  private firstUsed(): number {
    for (let i = 0; i < this.bins; i++) if (this.counts[i]) return this.start + i;
    return Infinity;
  }

  private lastUsed(): number {
    for (let i = this.bins - 1; i >= 0; i--) if (this.counts[i]) return this.start + i;
    return -Infinity;
  }

  private relayout(width: number, start: number): void {
    const factor = Math.round(width / this.width);
    const next = new Float64Array(this.bins);
    for (let i = 0; i < this.bins; i++) {
      const n = this.counts[i]!;
      if (!n) continue;
      const k = Math.floor((this.start + i) / factor) - start;
      next[Math.min(Math.max(k, 0), this.bins - 1)]! += n;
    }
    this.counts = next;
    this.width = width;
    this.start = start;
  }

  /** Lower edge of bin i. */
  edge(i: number): number {
    return (this.start + i) * this.width;
  }

  /** The value below which `q` (0..1) of the samples lie (linear within a bin, clamped to [min, max]). */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const target = q * this.total;
    let acc = 0;
    for (let i = 0; i < this.bins; i++) {
      const n = this.counts[i]!;
      if (acc + n >= target && n > 0) {
        const frac = (target - acc) / n;
        return Math.min(Math.max(this.edge(i) + frac * this.width, this.min), this.max);
      }
      acc += n;
    }
    return this.max;
  }

  /** A histogram of |x| with `bins` bins over [0, max|x|] (each signed bin's count goes to the bin of its center). */
  absHistogram(bins = this.bins): { counts: Float64Array; width: number } {
    const absMax = Math.max(Math.abs(this.min), Math.abs(this.max));
    const counts = new Float64Array(bins);
    if (this.total === 0 || absMax === 0) {
      counts[0] = this.total;
      return { counts, width: absMax / bins || 1e-12 };
    }
    const width = absMax / bins;
    for (let i = 0; i < this.bins; i++) {
      const n = this.counts[i]!;
      if (!n) continue;
      const lo = Math.max(this.edge(i), this.min);
      const hi = Math.min(this.edge(i) + this.width, this.max);
      const center = Math.abs((lo + hi) / 2);
      counts[Math.min(Math.floor(center / width), bins - 1)]! += n;
    }
    return { counts, width };
  }
}

/** Running statistics of one tensor. The histogram is only kept when the method needs it. */
export class TensorStats implements TensorStatistics {
  min = Infinity;
  max = -Infinity;
  count = 0;
  readonly histogram: RunningHistogram | undefined;

  constructor(method: CalibrationMethod, bins = DEFAULT_HISTOGRAM_BINS) {
    this.histogram = method === 'minmax' ? undefined : new RunningHistogram(bins);
  }

  add(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      if (!Number.isFinite(x)) continue;
      if (x < this.min) this.min = x;
      if (x > this.max) this.max = x;
    }
    this.count += values.length;
    this.histogram?.add(values);
  }
}

export interface RangeOptions {
  method: CalibrationMethod;
  /** percentile kept (default 99.99) */
  percentile?: number;
  /** symmetric quantization: the range is [-t, t] */
  symmetric?: boolean;
  /** entropy: number of quantized levels (default 128: int8 magnitudes) */
  levels?: number;
}

/** The [min, max] range to quantize a tensor to, from its statistics. */
export function rangeFromStats(s: TensorStatistics, opts: RangeOptions): [number, number] {
  if (s.min > s.max) return [0, 0];
  let lo = s.min, hi = s.max;
  const h = s.histogram;
  if (opts.method === 'percentile' && h) {
    const p = Math.min(Math.max(opts.percentile ?? 99.99, 0), 100) / 100;
    if (opts.symmetric) {
      const abs = h.absHistogram();
      const t = histogramQuantile(abs.counts, abs.width, p);
      lo = Math.max(lo, -t);
      hi = Math.min(hi, t);
    } else {
      lo = h.quantile(1 - p);
      hi = h.quantile(p);
    }
  } else if (opts.method === 'entropy' && h) {
    const abs = h.absHistogram();
    const t = entropyThreshold(abs.counts, abs.width, opts.levels ?? 128);
    lo = Math.max(lo, -t);
    hi = Math.min(hi, t);
  }
  return [lo, hi];
}

/** Quantile `q` of a histogram of |x| over [0, bins*width) (upper edge of the bin that reaches q). */
export function histogramQuantile(counts: ArrayLike<number>, width: number, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return 0;
  const target = q * total;
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    acc += counts[i]!;
    if (acc >= target) return (i + 1) * width;
  }
  return counts.length * width;
}

/** KL(P || Q) of two unnormalized distributions over the same bins (bins where P is 0 contribute 0). */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let sp = 0, sq = 0;
  for (let i = 0; i < p.length; i++) { sp += p[i]!; sq += q[i]!; }
  if (sp === 0) return 0;
  if (sq === 0) return Infinity;
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]! / sp;
    if (a === 0) continue;
    const b = q[i]! / sq;
    if (b === 0) return Infinity;
    kl += a * Math.log(a / b);
  }
  return kl;
}

/**
 * TensorRT's entropy calibration ("8-bit Inference with TensorRT", Migacz 2017) on a histogram of
 * |x| (counts[i] covers [i*width, (i+1)*width)): for each candidate threshold i (levels..bins), the
 * reference P is counts[0..i) with the outliers beyond folded into its last bin, Q is counts[0..i)
 * merged into `levels` bins and expanded back over P's nonzero bins; the threshold minimizing
 * KL(P || Q) wins. Returns the threshold value ((i + 0.5) * width, as TensorRT does).
 */
export function entropyThreshold(counts: ArrayLike<number>, width: number, levels = 128): number {
  const bins = counts.length;
  if (bins <= levels) return bins * width;
  // skip a trailing run of empty bins: thresholds past the last value are all equivalent
  let lastNonZero = bins - 1;
  while (lastNonZero > 0 && counts[lastNonZero] === 0) lastNonZero--;
  if (lastNonZero < levels) return (lastNonZero + 1) * width;
  // suffix sums for the outliers
  const suffix = new Float64Array(bins + 1);
  for (let i = bins - 1; i >= 0; i--) suffix[i] = suffix[i + 1]! + counts[i]!;
  let best = Infinity, bestI = lastNonZero + 1;
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  for (let i = levels; i <= lastNonZero + 1; i++) {
    for (let j = 0; j < i; j++) p[j] = counts[j]!;
    p[i - 1]! += suffix[i]!;
    // quantize counts[0..i) into `levels` bins, then spread each level's mass over its nonzero bins
    const per = i / levels;
    for (let l = 0; l < levels; l++) {
      const a = Math.floor(l * per);
      const b = l === levels - 1 ? i : Math.floor((l + 1) * per);
      let sum = 0, nonzero = 0;
      for (let j = a; j < b; j++) { sum += counts[j]!; if (counts[j] !== 0) nonzero++; }
      const v = nonzero ? sum / nonzero : 0;
      for (let j = a; j < b; j++) q[j] = counts[j] !== 0 ? v : 0;
    }
    const kl = klDivergence(p.subarray(0, i), q.subarray(0, i));
    if (kl < best) { best = kl; bestI = i; }
  }
  return (bestI + 0.5) * width;
}

export type QuantType = 'uint8' | 'int8' | 'int32';

export interface QuantParams {
  type: QuantType;
  /** one per channel when per-channel */
  scale: number[];
  zeroPoint: number[];
}

/** [qmin, qmax] of a type; reduceRange uses 7 bits (ORT: [0, 127] for uint8, [-64, 63] for int8). */
export function qRange(type: QuantType, reduceRange = false): [number, number] {
  if (type === 'int32') return [-2147483648, 2147483647];
  if (type === 'uint8') return reduceRange ? [0, 127] : [0, 255];
  return reduceRange ? [-64, 63] : [-128, 127];
}

/**
 * Scale and zero point for a real range (ORT's compute_scale_zp): the range is widened to include 0;
 * symmetric ranges are [-m, m] with the zero point in the middle of the type (0 for int8, 128 for
 * uint8). A zero range gets scale 1.
 */
export function scaleZeroPoint(rmin: number, rmax: number, type: QuantType, symmetric: boolean, reduceRange = false): { scale: number; zeroPoint: number } {
  const [qmin, qmax] = qRange(type, reduceRange);
  let lo = Math.min(rmin, 0), hi = Math.max(rmax, 0);
  if (symmetric) {
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -m; hi = m;
  }
  const symZero = type === 'uint8' ? Math.round((qmin + qmax + 1) / 2) : 0;
  if (!(hi > lo) || !Number.isFinite(hi - lo)) return { scale: 1, zeroPoint: symmetric ? symZero : qmin };
  if (symmetric) {
    // int8: [-m, m] -> [-127, 127] (never -128, so negation stays exact); uint8: zero point 128
    const half = type === 'uint8' ? Math.floor((qmax - qmin) / 2) : Math.min(-qmin, qmax);
    return { scale: hi / half, zeroPoint: symZero };
  }
  const scale = (hi - lo) / (qmax - qmin);
  const zeroPoint = Math.min(Math.max(Math.round(qmin - lo / scale), qmin), qmax);
  return { scale, zeroPoint };
}

/** q = clamp(round_half_even(x / scale) + zp). */
export function quantizeValue(x: number, scale: number, zeroPoint: number, qmin: number, qmax: number): number {
  const v = x / scale;
  let r = Math.round(v);
  if (Math.abs(v - Math.trunc(v)) === 0.5) r = 2 * Math.round(v / 2); // ties to even, as QuantizeLinear
  return Math.min(Math.max(r + zeroPoint, qmin), qmax);
}
