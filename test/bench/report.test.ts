/** `retarget report`: cost math on hand-computed numbers, savings, Markdown, the HTML page, the CLI. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { barChartSvg, renderReportHtml } from '../../src/bench/html.js';
import { buildReport, costPerMillion, formatReportMarkdown, joulesPerInference, parsePrices, ReportUsageError, reportCells, type Prices } from '../../src/bench/report.js';
import { BENCH_SCHEMA, type BenchEnvironment, type BenchResult, type ModelBenchResult } from '../../src/bench/types.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');

function env(machine: string, arch: string, target?: string): BenchEnvironment {
  return {
    machine, cpuModel: arch === 'arm64' ? 'Neoverse-V1' : 'Intel Xeon 8375C', cpuFlags: [], cores: 4, threads: 4,
    platform: 'linux', arch, node: 'v20.11.0', onnxruntime: '1.30.0', retarget: '0.1.0', ...(target ? { target } : {}),
  };
}

/** A model result with a fixed p50 (ms) and throughput at batch 1 (1000 / p50). */
function model(name: string, p50Ms: number): ModelBenchResult {
  return {
    name, path: `${name}.onnx`, sizeBytes: 1000, dims: {}, batch: 1, sessionCreateMs: [1], latencyMs: [p50Ms, p50Ms, p50Ms],
    stats: { minMs: p50Ms, p50Ms, p90Ms: p50Ms, p99Ms: p50Ms, meanMs: p50Ms, stdevMs: 0 }, throughputPerSec: 1000 / p50Ms,
  };
}

function result(environment: BenchEnvironment, models: ModelBenchResult[]): BenchResult {
  return { schema: BENCH_SCHEMA, createdAt: '2025-01-01T00:00:00Z', environment, options: { warmup: 1, runs: 3, seed: 1 }, models };
}

const PRICES: Prices = { 'c6i.xlarge': { usdPerHour: 0.34, watts: 60 }, 'c7g.xlarge': { usdPerHour: 0.145, watts: 30 } };
const X86 = result(env('c6i.xlarge', 'x64', 'portable'), [model('resnet', 10), model('bert', 40)]);
const ARM = result(env('c7g.xlarge', 'arm64', 'portable'), [model('resnet', 8), model('bert', 50)]);

describe('cost math', () => {
  test('hand-computed: $0.34/h at 100 inferences/s is $0.944 per million', () => {
    expect(costPerMillion(0.34, 100)).toBeCloseTo(0.9444444, 6);
    expect(joulesPerInference(60, 100)).toBeCloseTo(0.6, 12); // 60 W * 10 ms
  });

  test('rows per (machine, target, model) with cost, energy and savings vs the baseline machine', () => {
    const r = buildReport([{ file: 'x86.json', result: X86 }, { file: 'arm.json', result: ARM }], PRICES, { baseline: 'c6i.xlarge' });
    expect(r.baselineMachine).toBe('c6i.xlarge');
    const row = (machine: string, m: string) => r.rows.find((x) => x.machine === machine && x.model === m)!;
    // x86 resnet: 10 ms -> 100/s; 0.34 / 3600 / 100 * 1e6 = 0.94444
    expect(row('c6i.xlarge', 'resnet').costPerMillionUsd).toBeCloseTo(0.944444, 5);
    expect(row('c6i.xlarge', 'resnet').joulesPerInference).toBeCloseTo(0.6, 12);
    expect(row('c6i.xlarge', 'resnet').vsBaseline).toBeUndefined();
    // arm resnet: 8 ms -> 125/s; 0.145 / 3600 / 125 * 1e6 = 0.32222; 30 W * 8 ms = 0.24 J
    const arm = row('c7g.xlarge', 'resnet');
    expect(arm.throughputPerSec).toBeCloseTo(125, 9);
    expect(arm.costPerMillionUsd).toBeCloseTo(0.322222, 5);
    expect(arm.joulesPerInference).toBeCloseTo(0.24, 12);
    expect(arm.vsBaseline!.speedup).toBeCloseTo(1.25, 12);
    expect(arm.vsBaseline!.savingsUsdPerMillion).toBeCloseTo(0.944444 - 0.322222, 5);
    expect(arm.vsBaseline!.savingsPercent).toBeCloseTo(65.882, 2); // 1 - 0.145*8 / (0.34*10)
    // arm bert is slower (50 vs 40 ms) yet cheaper: 0.145*50 / (0.34*40) = 0.5331 of the cost
    const bert = row('c7g.xlarge', 'bert');
    expect(bert.vsBaseline!.speedup).toBeCloseTo(0.8, 12);
    expect(bert.vsBaseline!.savingsPercent).toBeCloseTo(46.691, 2);
  });

  test('generation results (bench --generate) are per decoded token: the unit in the row and in the cells', () => {
    const gen: BenchResult = { ...result(env('c6i.xlarge', 'x64', 'x86-avx2'), [model('llama', 20)]), options: { warmup: 1, runs: 3, seed: 1, generate: { prompt: 64, newTokens: 16, past: 128 } as never } };
    const r = buildReport([{ file: 'gen.json', result: gen }, { file: 'x86.json', result: X86 }], PRICES, {});
    const row = r.rows.find((x) => x.model === 'llama')!;
    expect(row.unit).toBe('token');
    expect(r.rows.find((x) => x.model === 'resnet')!.unit).toBe('inference');
    // 20 ms per token -> 50 tokens/s; 0.34 / 3600 / 50 * 1e6 = $1.889 per million tokens
    expect(row.costPerMillionUsd).toBeCloseTo(1.888889, 5);
    const cells = reportCells(row, undefined);
    expect(cells[3]).toMatch(/\/ token$/);
    expect(cells[5]).toMatch(/\/ 1M tokens$/);
    expect(formatReportMarkdown(r)).toMatch(/per decoded token/);
  });

  test('no prices: no cost, still speedup; the baseline defaults to the first file; unknown --baseline is a usage error', () => {
    const r = buildReport([{ file: 'arm.json', result: ARM }, { file: 'x86.json', result: X86 }]);
    expect(r.baselineMachine).toBe('c7g.xlarge');
    const x = r.rows.find((row) => row.machine === 'c6i.xlarge' && row.model === 'resnet')!;
    expect(x.costPerMillionUsd).toBeUndefined();
    expect(x.vsBaseline).toEqual({ speedup: 0.8 });
    expect(() => buildReport([{ file: 'x86.json', result: X86 }], {}, { baseline: 'm7g.large' })).toThrow(ReportUsageError);
  });

  test('a machine without a price is warned about', () => {
    const r = buildReport([{ file: 'x86.json', result: X86 }, { file: 'arm.json', result: ARM }], { 'c6i.xlarge': { usdPerHour: 0.34 } });
    expect(r.warnings.join()).toMatch(/no price for c7g.xlarge/);
    expect(r.rows.find((row) => row.machine === 'c6i.xlarge')!.joulesPerInference).toBeUndefined();
  });

  test('prices.json is checked', () => {
    expect(parsePrices('{"a": {"usdPerHour": 1, "watts": 5}}', 'p.json')).toEqual({ a: { usdPerHour: 1, watts: 5 } });
    expect(() => parsePrices('{"a": {"usd": 1}}', 'p.json')).toThrow(/^p.json: "a": usdPerHour/);
    expect(() => parsePrices('[]', 'p.json')).toThrow(/^p.json: expected an object/);
  });
});

describe('Markdown and HTML', () => {
  const report = buildReport([{ file: 'x86.json', result: X86 }, { file: 'arm.json', result: ARM }], PRICES, { baseline: 'c6i.xlarge' });

  test('Markdown tables', () => {
    const md = formatReportMarkdown(report);
    expect(md).toMatch(/^\| machine \| target \| model \| p50 \(ms\) \| throughput \(\/s\) \| \$ \/ 1M inferences \| energy \/ inference \| speedup vs baseline \| savings vs baseline \|$/m);
    expect(md).toMatch(/^\|---\|/m);
    expect(md).toContain('| c6i.xlarge | portable | resnet | 10.000 | 100.0 | $0.9444 | 600.000 mJ | baseline | baseline |');
    expect(md).toContain('| c7g.xlarge | portable | resnet | 8.000 | 125.0 | $0.3222 | 240.000 mJ | 1.25x | $0.6222 (65.9%) |');
    expect(md).toMatch(/c6i.xlarge \(baseline\)/);
  });

  test('HTML: self-contained, with tables and SVG charts', () => {
    const html = renderReportHtml(report);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<script src=|<link |https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).toContain('<table>');
    expect(html).toContain('$0.3222');
    // one bar per row in each chart
    expect(html.match(/<rect /g)).toHaveLength(8);
  });

  test('charts escape labels and scale bars to the largest value', () => {
    const svg = barChartSvg('t <1>', [
      { group: 'g&', label: 'a', value: 10, text: '10', color: '#000' },
      { group: 'g&', label: 'b', value: 5, text: '5', color: '#000' },
    ]);
    expect(svg).toContain('t &lt;1&gt;');
    expect(svg).toContain('g&amp;');
    const widths = [...svg.matchAll(/<rect [^>]*width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths[1]! / widths[0]!).toBeCloseTo(0.5, 3);
  });
});

describe('retarget report (built CLI)', () => {
  let tmp: string;
  const run = (...args: string[]): { code: number; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  beforeAll(() => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build' (npm test does it first)`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-report-'));
    fs.writeFileSync(path.join(tmp, 'x86.json'), JSON.stringify(X86));
    fs.writeFileSync(path.join(tmp, 'arm.json'), JSON.stringify(ARM));
    fs.writeFileSync(path.join(tmp, 'prices.json'), JSON.stringify(PRICES));
  });
  afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  test('Markdown to stdout and --markdown, HTML to --html', () => {
    const r = run('report', 'x86.json', 'arm.json', '--prices', 'prices.json', '--baseline', 'c6i.xlarge', '--markdown', 'report.md', '--html', 'report.html');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('| c7g.xlarge | portable | resnet | 8.000 | 125.0 | $0.3222 |');
    expect(fs.readFileSync(path.join(tmp, 'report.md'), 'utf8')).toBe(r.stdout);
    const html = fs.readFileSync(path.join(tmp, 'report.html'), 'utf8');
    expect(html).toContain('<svg ');
    expect(html).not.toContain('<script');
  });

  test('exit 2 for an unknown --baseline, 1 for a bad prices file', () => {
    const r = run('report', 'x86.json', '--baseline', 'nope');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^retarget: --baseline: no results for machine 'nope'/);
    fs.writeFileSync(path.join(tmp, 'bad.json'), '{"c6i.xlarge": 3}');
    const b = run('report', 'x86.json', '--prices', 'bad.json');
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/^retarget: bad.json: "c6i.xlarge": usdPerHour/);
    expect(run('report').code).toBe(2);
  });
});
