/** Latency statistics on synthetic samples (no timing here: the samples are generated). */
import { describe, expect, test } from 'vitest';
import { parseCpuinfo } from '../../src/bench/environment.js';
import { bootstrapRatioCI, latencyStats, mean, median, percentile, stdev } from '../../src/bench/stats.js';
import { seededRandom } from '../../src/inputs.js';

/** n samples from a log-normal-ish latency distribution around `center` ms, seeded */
function samples(n: number, center: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    // Box-Muller normal, 5% relative noise, plus an occasional slow outlier
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    out.push(center * Math.exp(0.05 * z) * (rand() < 0.02 ? 3 : 1));
  }
  return out;
}

describe('percentiles', () => {
  test('known data, linear interpolation between ranks', () => {
    const xs = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5]; // 1..10, shuffled
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile(xs, 100)).toBe(10);
    expect(percentile(xs, 50)).toBe(5.5);
    expect(median(xs)).toBe(5.5);
    expect(percentile(xs, 90)).toBeCloseTo(9.1, 12);
    expect(percentile(xs, 99)).toBeCloseTo(9.91, 12);
    expect(median([3, 1, 2])).toBe(2);
    expect(percentile([42], 99)).toBe(42);
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  test('0..100 gives the percentile itself', () => {
    const xs = Array.from({ length: 101 }, (_, i) => 100 - i);
    for (const q of [0, 1, 25, 50, 90, 99, 100]) expect(percentile(xs, q)).toBeCloseTo(q, 12);
  });

  test('mean and sample standard deviation', () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9];
    expect(mean(xs)).toBe(5);
    expect(stdev(xs)).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(stdev([3])).toBe(0);
  });

  test('latencyStats', () => {
    const s = latencyStats([5, 1, 4, 2, 3]);
    expect(s).toEqual({ minMs: 1, p50Ms: 3, p90Ms: 4.6, p99Ms: expect.closeTo(4.96, 12), meanMs: 3, stdevMs: expect.closeTo(Math.sqrt(2.5), 12) });
    expect(() => latencyStats([])).toThrow(RangeError);
  });
});

describe('bootstrap CI of the ratio of medians', () => {
  test('two samples of the same distribution: contains 1, narrow with many samples', () => {
    const a = samples(2000, 10, 1), b = samples(2000, 10, 2);
    const r = bootstrapRatioCI(a, b, { seed: 7 });
    expect(r.ci95[0]).toBeLessThanOrEqual(1);
    expect(r.ci95[1]).toBeGreaterThanOrEqual(1);
    expect(r.ci95[0]).toBeLessThanOrEqual(r.ratio);
    expect(r.ci95[1]).toBeGreaterThanOrEqual(r.ratio);
    expect(r.ci95[1] - r.ci95[0]).toBeLessThan(0.02);
  });

  test('fewer samples give a wider interval', () => {
    const wide = bootstrapRatioCI(samples(30, 10, 1), samples(30, 10, 2), { seed: 7 });
    const narrow = bootstrapRatioCI(samples(2000, 10, 1), samples(2000, 10, 2), { seed: 7 });
    expect(wide.ci95[1] - wide.ci95[0]).toBeGreaterThan(narrow.ci95[1] - narrow.ci95[0]);
  });

  test('a 20% slowdown: ratio ~1.2, the CI entirely above 1.1', () => {
    const a = samples(200, 10, 3), b = samples(200, 12, 4);
    const r = bootstrapRatioCI(a, b, { seed: 1 });
    expect(r.ratio).toBeGreaterThan(1.15);
    expect(r.ratio).toBeLessThan(1.25);
    expect(r.ci95[0]).toBeGreaterThan(1.1);
    // and the other way round: a speed-up, CI entirely below 1
    const back = bootstrapRatioCI(b, a, { seed: 1 });
    expect(back.ci95[1]).toBeLessThan(1 / 1.1);
  });

  test('deterministic with a seed; the ratio is the plain ratio of medians', () => {
    const a = samples(50, 10, 5), b = samples(70, 11, 6);
    const r1 = bootstrapRatioCI(a, b, { seed: 42, iterations: 500 });
    const r2 = bootstrapRatioCI(a, b, { seed: 42, iterations: 500 });
    expect(r2).toEqual(r1);
    expect(r1.ratio).toBe(median(b) / median(a));
    const r3 = bootstrapRatioCI(a, b, { seed: 43, iterations: 500 });
    expect(r3.ratio).toBe(r1.ratio);
    expect(r3.ci95).not.toEqual(r1.ci95);
  });

  test('odd and even sample counts, a single sample, empty sets refused', () => {
    expect(bootstrapRatioCI([2], [3])).toEqual({ ratio: 1.5, ci95: [1.5, 1.5] });
    const r = bootstrapRatioCI([1, 2, 3, 4], [2, 4, 6, 8, 10], { seed: 3 });
    expect(r.ratio).toBe(6 / 2.5);
    expect(() => bootstrapRatioCI([], [1])).toThrow(RangeError);
  });
});

describe('environment', () => {
  test('x86 /proc/cpuinfo: model name, kernel flags only', () => {
    const info = parseCpuinfo('processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse sse2 sse4_1 sse4_2 avx avx2 fma smep avx512f avx512_vnni avx512_bf16\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu\n');
    expect(info.model).toBe('AMD EPYC 9R14');
    expect(info.flags).toEqual(['avx', 'avx2', 'avx512_bf16', 'avx512_vnni', 'avx512f', 'fma', 'sse4_1', 'sse4_2']);
  });

  test('arm /proc/cpuinfo: Features', () => {
    const info = parseCpuinfo('processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull asimddp sve sve2 svei8mm i8mm bf16 sme\nCPU implementer\t: 0x41\n');
    expect(info.model).toBe('');
    expect(info.flags).toEqual(['asimd', 'asimddp', 'bf16', 'i8mm', 'sme', 'sve', 'sve2']);
  });
});
