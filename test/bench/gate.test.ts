/**
 * `retarget compare`: the CI gate on synthetic timing samples (seeded noise), its JUnit XML, and the
 * built CLI's exit codes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compareResults, DEFAULT_THRESHOLDS, formatCompareMarkdown, parseBenchResult, parseThreshold, ThresholdError } from '../../src/bench/gate.js';
import { formatJUnit } from '../../src/bench/junit.js';
import { latencyStats } from '../../src/bench/stats.js';
import { BENCH_SCHEMA, type BenchEnvironment, type BenchResult, type ModelBenchResult } from '../../src/bench/types.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');

/** mulberry32 */
function rng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Latency samples that look measured: log-normal jitter (sigma 5%) around `medianMs`, and about one
 * sample in twenty a slow outlier (a page fault, a context switch) up to 60% slower.
 */
function samples(medianMs: number, n: number, seed: number): number[] {
  const rand = rng(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    let x = medianMs * Math.exp(0.05 * z);
    if (rand() < 0.05) x *= 1 + 0.6 * rand();
    out.push(x);
  }
  return out;
}

const ENV: BenchEnvironment = {
  machine: 'c7i.xlarge', cpuModel: 'Intel(R) Xeon(R) Platinum 8488C', cpuFlags: ['avx2', 'avx512f'], cores: 4, threads: 4,
  platform: 'linux', arch: 'x64', node: 'v20.11.0', onnxruntime: '1.30.0', retarget: '0.1.0', target: 'portable',
};

function model(name: string, latencyMs: number[], extra: Partial<ModelBenchResult> = {}): ModelBenchResult {
  const stats = latencyStats(latencyMs);
  return {
    name, path: `${name}.onnx`, sizeBytes: 1_000_000, dims: { batch: 1 }, batch: 1, sessionCreateMs: [12],
    latencyMs, stats, throughputPerSec: 1000 / stats.p50Ms, ...extra,
  };
}

function result(models: ModelBenchResult[], env: Partial<BenchEnvironment> = {}): BenchResult {
  return { schema: BENCH_SCHEMA, createdAt: '2025-01-01T00:00:00Z', environment: { ...ENV, ...env }, options: { warmup: 5, runs: 40, seed: 1 }, models };
}

describe('parseThreshold', () => {
  test("accepts '5%' and '0.05'", () => {
    expect(parseThreshold('5%', '--x')).toBeCloseTo(0.05, 12);
    expect(parseThreshold('0.05', '--x')).toBe(0.05);
    expect(parseThreshold('12.5%', '--x')).toBeCloseTo(0.125, 12);
    expect(parseThreshold('0', '--x')).toBe(0);
  });
  test('refuses what is not a threshold, and bare numbers above 1', () => {
    for (const bad of ['x', '-5%', '5%%', '', '5', '1e-2']) expect(() => parseThreshold(bad, '--max-regression'), bad).toThrow(ThresholdError);
    expect(() => parseThreshold('5', '--max-regression')).toThrow(/ambiguous: write 5% or 0.05/);
  });
});

describe('latency gate', () => {
  test('pure noise (same distribution, 30-50 samples) is never flagged at 5%', () => {
    for (let seed = 0; seed < 40; seed++) {
      const n1 = 30 + (seed % 21), n2 = 50 - (seed % 21);
      const c = compareResults(
        result([model('m', samples(10, n1, 1000 + seed))]),
        result([model('m', samples(10, n2, 2000 + seed))]),
      );
      const l = c.models[0]!.latency;
      expect(l.verdict, `seed ${seed}: ratio ${l.ratio} CI ${l.ci95}`).toBe('unchanged');
      expect(l.ci95[0]).toBeLessThanOrEqual(l.ratio);
      expect(l.ci95[1]).toBeGreaterThanOrEqual(l.ratio);
      expect(c.failures).toEqual([]);
    }
  });

  test('a 15% slowdown is a regression', () => {
    for (let seed = 0; seed < 10; seed++) {
      const c = compareResults(result([model('m', samples(10, 40, 10 + seed))]), result([model('m', samples(11.5, 40, 50 + seed))]));
      const l = c.models[0]!.latency;
      expect(l.verdict, `seed ${seed}: CI ${l.ci95}`).toBe('regression');
      expect(l.ratio).toBeGreaterThan(1.1);
      expect(l.ci95[0]).toBeGreaterThan(1.05);
      expect(c.failures).toHaveLength(1);
      expect(c.failures[0]).toMatch(/^m: latency x1\.1\d\d \(95% CI/);
    }
  });

  test('a 10% speedup is an improvement, and does not fail', () => {
    const c = compareResults(result([model('m', samples(10, 40, 3))]), result([model('m', samples(9, 40, 4))]));
    expect(c.models[0]!.latency.verdict).toBe('improvement');
    expect(c.models[0]!.latency.ci95[1]).toBeLessThan(0.95);
    expect(c.failures).toEqual([]);
  });

  test('a 15% slowdown passes a 20% threshold (the CI must clear 1 + threshold)', () => {
    const c = compareResults(result([model('m', samples(10, 40, 5))]), result([model('m', samples(11.5, 40, 6))]), { ...DEFAULT_THRESHOLDS, maxRegression: 0.2 });
    expect(c.models[0]!.latency.verdict).toBe('unchanged');
  });

  test('the same inputs give the same interval (seeded bootstrap)', () => {
    const a = result([model('m', samples(10, 40, 7))]), b = result([model('m', samples(10.3, 40, 8))]);
    expect(compareResults(a, b).models[0]!.latency.ci95).toEqual(compareResults(a, b).models[0]!.latency.ci95);
  });

  test('without samples, the p50 point estimate is used', () => {
    const base = model('m', [10]), cur = model('m', [12]);
    const c = compareResults(result([base]), result([cur]));
    expect(c.models[0]!.latency).toMatchObject({ bootstrapped: false, verdict: 'regression' });
    expect(c.models[0]!.latency.ratio).toBeCloseTo(1.2, 12);
  });
});

describe('size and accuracy', () => {
  test('size growth beyond the threshold is a regression', () => {
    const lat = samples(10, 40, 9);
    const c = compareResults(result([model('m', lat)]), result([model('m', lat, { sizeBytes: 1_100_000 })]));
    expect(c.models[0]!.size).toMatchObject({ verdict: 'regression' });
    expect(c.models[0]!.size.growth).toBeCloseTo(0.1, 12);
    expect(c.failures.join()).toMatch(/m: size .* \(\+10\.0%, limit \+5\.0%\)/);
    const ok = compareResults(result([model('m', lat)]), result([model('m', lat, { sizeBytes: 1_040_000 })]));
    expect(ok.models[0]!.size.verdict).toBe('unchanged');
  });

  test('an accuracy drop is a regression: ok -> not ok, or cosine dropping past the threshold', () => {
    const lat = samples(10, 40, 11);
    const good = { maxAbsError: 1e-6, cosine: 0.99999, ok: true };
    const broke = compareResults(
      result([model('m', lat, { accuracy: good })]),
      result([model('m', lat, { accuracy: { maxAbsError: 0.3, cosine: 0.99998, ok: false } })]),
    );
    expect(broke.models[0]!.accuracy).toMatchObject({ verdict: 'regression' });
    expect(broke.models[0]!.accuracy!.reason).toMatch(/no longer within tolerance/);
    const drop = compareResults(
      result([model('m', lat, { accuracy: good })]),
      result([model('m', lat, { accuracy: { maxAbsError: 1e-3, cosine: 0.99, ok: true } })]),
    );
    expect(drop.models[0]!.accuracy!.verdict).toBe('regression');
    expect(drop.failures).toHaveLength(1);
    const same = compareResults(result([model('m', lat, { accuracy: good })]), result([model('m', lat, { accuracy: { ...good, cosine: 0.99995 } })]));
    expect(same.models[0]!.accuracy!.verdict).toBe('unchanged');
    // accuracy measured only on one side: no accuracy check
    expect(compareResults(result([model('m', lat)]), result([model('m', lat, { accuracy: good })])).models[0]!.accuracy).toBeUndefined();
  });

  test('models in only one file are listed, and environment differences reported', () => {
    const c = compareResults(
      result([model('a', samples(5, 30, 1)), model('gone', samples(5, 30, 2))]),
      result([model('a', samples(5, 30, 3)), model('new', samples(5, 30, 4))], { machine: 'c7g.xlarge', arch: 'arm64', cpuModel: 'Neoverse-V1', threads: 2 }),
    );
    expect(c.models.map((m) => m.name)).toEqual(['a']);
    expect(c.onlyInBaseline).toEqual(['gone']);
    expect(c.onlyInCurrent).toEqual(['new']);
    expect(c.environmentDifferences.join('\n')).toMatch(/machine: "c7i.xlarge" vs "c7g.xlarge"/);
    expect(c.environmentDifferences.join('\n')).toMatch(/threads: 4 vs 2/);
    const md = formatCompareMarkdown(c);
    expect(md).toMatch(/Only in the baseline \(not compared\): gone/);
    expect(md).toMatch(/environments differ/);
  });

  test('Markdown: a table row per model and a verdict line', () => {
    const c = compareResults(
      result([model('fast', samples(10, 40, 21)), model('slow', samples(10, 40, 22))]),
      result([model('fast', samples(10, 40, 23)), model('slow', samples(12, 40, 24))]),
    );
    const md = formatCompareMarkdown(c, { baseline: 'base.json', current: 'cur.json' });
    expect(md).toMatch(/^\| model \| baseline p50 \(ms\) \| current p50 \(ms\) \| ratio \| 95% CI \|/m);
    expect(md).toMatch(/^\| slow \| .* \| ❌ regression \|/m);
    expect(md).toMatch(/^\| fast \| .* \| unchanged \|/m);
    expect(md).toMatch(/\*\*1 regression\*\* in 1 of 2 models/);
  });
});

describe('JUnit XML', () => {
  test('one testcase per model and check, a failure per regression, well-formed', () => {
    const lat = samples(10, 40, 31);
    const acc = { maxAbsError: 1e-6, cosine: 0.99999, ok: true };
    const c = compareResults(
      result([model('a<&>"', lat, { accuracy: acc }), model('b', samples(10, 40, 32)), model('old', lat)]),
      result([model('a<&>"', samples(12, 40, 33), { accuracy: acc }), model('b', samples(10, 40, 34), { sizeBytes: 2_000_000 }), model('new', lat)]),
    );
    const xml = formatJUnit(c);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
    // a: latency, size, accuracy; b: latency, size; old and new: one skipped 'present' each
    expect(xml.match(/<testcase /g)).toHaveLength(7);
    expect(xml.match(/<failure /g)).toHaveLength(2);
    expect(xml.match(/<skipped /g)).toHaveLength(2);
    expect(xml).toMatch(/<testsuite name="retarget compare" tests="7" failures="2" errors="0" skipped="2">/);
    expect(xml).toContain('classname="retarget.compare.a&lt;&amp;&gt;&quot;"');
    // rough well-formedness: no raw '&' outside entities, tags balanced
    expect(xml).not.toMatch(/&(?!(amp|lt|gt|quot|apos);)/);
    const body = xml.replace(/^<\?xml[^>]*\?>/, '').replace(/<(\w[\w-]*)[^>]*\/>/g, '');
    const stack: string[] = [];
    for (const m of body.matchAll(/<(\/?)(\w[\w-]*)[^>]*>/g)) {
      if (m[1]) expect(stack.pop()).toBe(m[2]);
      else stack.push(m[2]!);
    }
    expect(stack).toEqual([]);
    // attribute values never hold a raw '<' or '"'
    for (const m of xml.matchAll(/<[^>]*>/g)) expect(m[0].slice(1)).not.toContain('<');
  });
});

describe('parseBenchResult', () => {
  test('refuses files that are not bench results, naming the file', () => {
    expect(() => parseBenchResult('{', 'x.json')).toThrow(/^x.json: not JSON/);
    expect(() => parseBenchResult('{"schema":"other"}', 'x.json')).toThrow(/^x.json: not a retarget bench result/);
    const r = result([model('m', [1, 2, 3])]);
    (r.models[0] as { latencyMs: unknown }).latencyMs = 'fast';
    expect(() => parseBenchResult(JSON.stringify(r), 'x.json')).toThrow(/models\[0\] \(m\): latencyMs/);
  });
});

describe('retarget compare (built CLI)', () => {
  let tmp: string;
  const run = (...args: string[]): { code: number; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const write = (name: string, r: BenchResult): string => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, JSON.stringify(r, null, 2));
    return file;
  };
  beforeAll(() => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build' (npm test does it first)`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-compare-'));
  });
  afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  test('exit 0 on noise, with Markdown on stdout and in --markdown, and JUnit', () => {
    const base = write('base.json', result([model('m', samples(10, 40, 41))]));
    const cur = write('cur.json', result([model('m', samples(10, 40, 42))]));
    const r = run('compare', base, cur, '--markdown', 'summary.md', '--junit', 'junit.xml');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\*\*No regressions\*\* in 1 model/);
    expect(fs.readFileSync(path.join(tmp, 'summary.md'), 'utf8')).toBe(r.stdout);
    const xml = fs.readFileSync(path.join(tmp, 'junit.xml'), 'utf8');
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml).not.toContain('<failure');
  });

  test('exit 1 on a regression, one line on stderr naming it', () => {
    const base = write('base.json', result([model('m', samples(10, 40, 43))]));
    const cur = write('slow.json', result([model('m', samples(11.5, 40, 44))]));
    const r = run('compare', base, cur, '--max-regression', '0.05', '--junit', 'junit.xml');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/❌ regression/);
    expect(r.stderr).toMatch(/^retarget: 1 regression: m: latency x1\.1\d\d/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.readFileSync(path.join(tmp, 'junit.xml'), 'utf8').match(/<failure /g)).toHaveLength(1);
    // a looser threshold passes it
    expect(run('compare', base, cur, '--max-regression', '30%').code).toBe(0);
  });

  test('exit 2 on a bad threshold; exit 1 on a missing file; a warning when environments differ', () => {
    const base = write('base.json', result([model('m', samples(10, 40, 45))]));
    const r = run('compare', base, base, '--max-regression', 'lots');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^retarget: --max-regression: 'lots' is not a threshold/);
    expect(run('compare', base, base, '--max-size-growth', '5').code).toBe(2);
    const missing = run('compare', base, 'nope.json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^retarget: nope.json: cannot read: no such file/);
    const arm = write('arm.json', result([model('m', samples(10, 40, 46))], { machine: 'c7g.xlarge', arch: 'arm64' }));
    const w = run('compare', base, arm);
    expect(w.code).toBe(0);
    expect(w.stderr).toMatch(/^warning: the environments differ \(machine: "c7i.xlarge" vs "c7g.xlarge"; arch: "x64" vs "arm64"\)/);
  });
});
