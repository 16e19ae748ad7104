/**
 * `retarget bench` through the built CLI on two small fixture models. Timings are only checked for
 * sanity (positive, finite): machines are noisy.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { BENCH_SCHEMA, type BenchResult, type LatencyStats } from '../../src/bench/types.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const CNN_DIR = path.join(ROOT, 'fixtures/models/cnn-tiny-op13');
const CNN = path.join(CNN_DIR, 'model.onnx');
const GPT2 = path.join(ROOT, 'fixtures/models/gpt2-tiny-op14/model.onnx');
let tmp: string;

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const positive = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;

function checkStats(s: LatencyStats): void {
  for (const k of ['minMs', 'p50Ms', 'p90Ms', 'p99Ms', 'meanMs'] as const) expect(positive(s[k]), k).toBe(true);
  expect(s.stdevMs).toBeGreaterThanOrEqual(0);
  expect(s.minMs).toBeLessThanOrEqual(s.p50Ms);
  expect(s.p50Ms).toBeLessThanOrEqual(s.p90Ms);
  expect(s.p90Ms).toBeLessThanOrEqual(s.p99Ms);
}

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build' (npm test does it first)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-bench-'));
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('retarget bench', () => {
  test('two models: table on stdout, JSON per the contract, Markdown table', () => {
    const r = run('bench', CNN, GPT2, '--dim', 'batch=1,sequence=8', '--runs', '10', '--warmup', '1', '--json', 'out.json', '--markdown', 'out.md', '--machine', 'test-box', '--target', 'portable');
    expect(r.stderr).toBe(''); // not a TTY: quiet
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/p50 ms/);
    expect(r.stdout).toMatch(/cnn-tiny-op13\/model .*baseline/);
    expect(r.stdout).toMatch(/gpt2-tiny-op14\/model .*x \[/);

    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'out.json'), 'utf8')) as BenchResult;
    expect(json.schema).toBe(BENCH_SCHEMA);
    expect(Number.isNaN(Date.parse(json.createdAt))).toBe(false);
    const e = json.environment;
    expect(e.machine).toBe('test-box');
    expect(e.target).toBe('portable');
    expect(typeof e.cpuModel).toBe('string');
    expect(e.cpuModel.length).toBeGreaterThan(0);
    expect(Array.isArray(e.cpuFlags)).toBe(true);
    expect(positive(e.cores)).toBe(true);
    expect(e.threads).toBe(os.cpus().length);
    expect(e.platform).toBe(process.platform);
    expect(e.arch).toBe(process.arch);
    expect(e.node).toBe(process.version);
    expect(e.onnxruntime).toMatch(/^\d+\.\d+/);
    expect(e.retarget).toBe((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    expect(json.options).toEqual({ warmup: 1, runs: 10, block: 5, seed: 0 });

    expect(json.models.map((m) => m.path)).toEqual([CNN, GPT2]);
    expect(json.models.map((m) => m.name)).toEqual(['cnn-tiny-op13/model', 'gpt2-tiny-op14/model']);
    expect(json.models[0]!.dims).toEqual({ batch: 1 });
    expect(json.models[1]!.dims).toEqual({ batch: 1, sequence: 8 });
    for (const m of json.models) {
      expect(m.sizeBytes).toBe(fs.statSync(m.path).size);
      expect(m.batch).toBe(1);
      expect(m.sessionCreateMs).toHaveLength(3);
      expect(m.sessionCreateMs.every(positive)).toBe(true);
      expect(m.latencyMs).toHaveLength(10);
      expect(m.latencyMs.every(positive)).toBe(true);
      checkStats(m.stats);
      expect(m.throughputPerSec).toBeCloseTo(1000 / m.stats.p50Ms, 6);
      expect(positive(m.gflops)).toBe(true);
      expect(m.achievedGflopsPerSec).toBeCloseTo(m.gflops! / (m.stats.p50Ms / 1000), 6);
      expect(m.peakRssBytes).toBeGreaterThanOrEqual(0);
    }
    expect(json.models[0]!.ratioVsFirst).toBeUndefined();
    const ratio = json.models[1]!.ratioVsFirst!;
    expect(ratio.p50).toBeCloseTo(json.models[1]!.stats.p50Ms / json.models[0]!.stats.p50Ms, 9);
    expect(ratio.ci95[0]).toBeLessThanOrEqual(ratio.p50);
    expect(ratio.ci95[1]).toBeGreaterThanOrEqual(ratio.p50);
    expect(positive(ratio.ci95[0])).toBe(true);

    const md = fs.readFileSync(path.join(tmp, 'out.md'), 'utf8');
    expect(md).toMatch(/^\| model \| size \|.*\|$/m);
    expect(md).toMatch(/^\|---\|---:\|/m);
    expect(md).toMatch(/^\| cnn-tiny-op13\/model \|.*\| baseline \|$/m);
    expect(md).toMatch(/^\| gpt2-tiny-op14\/model \|/m);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('the same model twice, labelled; inputs from a test-data folder; a time budget; one session creation', () => {
    const r = run('bench', CNN, CNN, '--name', 'a,b', '--inputs', CNN_DIR, '--runs', '1000', '--time-budget', '0.001', '--warmup', '0', '--session-runs', '1', '--threads', '1', '--json', 'same.json');
    expect(r.code).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'same.json'), 'utf8')) as BenchResult;
    expect(json.models.map((m) => m.name)).toEqual(['a', 'b']);
    expect(json.environment.threads).toBe(1);
    expect(json.options.timeBudgetMs).toBe(1);
    const n = json.models[0]!.latencyMs.length;
    expect(n).toBeGreaterThanOrEqual(5); // at least 5 rounds, whatever the budget
    expect(n).toBeLessThan(1000); // 1000 rounds cannot fit in 1 ms
    expect(json.models[1]!.latencyMs).toHaveLength(n);
    const batch = readTestDataSet(testDataSets(CNN_DIR)[0]!).inputs[0]!.tensor.dims[0];
    expect(json.models[0]!.batch).toBe(batch); // the test data's batch
    expect(json.models[0]!.dims).toEqual({ batch });
    expect(json.models[1]!.sessionCreateMs).toHaveLength(1);
    expect(json.models[1]!.ratioVsFirst).toBeDefined();
  });

  test('a compiled BERT (EmbedLayerNormalization hides the id lookups) gets the same in-range synthetic ids as its original', () => {
    const bert = path.join(ROOT, 'fixtures/models/bert-tiny-op17/model.onnx');
    const c = run('compile', bert, '--target', 'x86-avx2', '-o', 'bert.x86.onnx');
    expect(c.code, c.stderr).toBe(0);
    const r = run('bench', bert, 'bert.x86.onnx', '--runs', '5', '--warmup', '0', '--session-runs', '1', '--dim', 'batch=2,sequence=9', '--json', 'bert.json');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'bert.json'), 'utf8')) as BenchResult;
    expect(json.models[1]!.accuracy?.ok).toBe(true);
  });

  test('--session-config entries reach every session and the JSON; one that makes ORT read the file as ORT format fails to load (exit 1): the entries do reach ORT', () => {
    const r = run('bench', CNN, CNN, '--runs', '5', '--warmup', '0', '--session-runs', '1', '--block', '2',
      '--session-config', 'optimization.disable_specified_optimizers=SkipLayerNormFusion', '--json', 'cfg.json');
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'cfg.json'), 'utf8')) as BenchResult;
    expect(json.options.sessionConfig).toEqual({ 'optimization.disable_specified_optimizers': 'SkipLayerNormFusion' });
    expect(json.options.block).toBe(2);
    const bad = run('bench', CNN, '--runs', '5', '--session-config', 'session.load_model_format=ORT');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^retarget: .*cnn-tiny-op13\/model\.onnx: bench: onnxruntime cannot load the model/);
  });

  test('--runtime web: onnxruntime-web\'s wasm EP times the models, named in the JSON; outputs agree with the first model; --runtime bad and with --generate exit 2', () => {
    const json = path.join(tmp, 'web.json');
    const r = run('bench', CNN, CNN, '--name', 'a,b', '--runtime', 'web', '--threads', '1', '--runs', '5', '--warmup', '1', '--session-runs', '1', '--json', json);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/onnxruntime-web 1\.\d+\.\d+ \(wasm EP\)/);
    const res = JSON.parse(fs.readFileSync(json, 'utf8')) as BenchResult;
    expect(res.environment.runtime).toMatch(/^onnxruntime-web /);
    for (const m of res.models) checkStats(m.stats);
    expect(res.models[1]!.accuracy?.ok).toBe(true);
    // the node runtime names itself too
    const node = path.join(tmp, 'node.json');
    expect(run('bench', CNN, '--runs', '5', '--warmup', '1', '--session-runs', '1', '--json', node).code).toBe(0);
    expect((JSON.parse(fs.readFileSync(node, 'utf8')) as BenchResult).environment.runtime).toMatch(/^onnxruntime-node /);
    const bad = run('bench', CNN, '--runtime', 'tvm');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--runtime: 'tvm' is not node or web/);
    expect(run('bench', CNN, '--runtime', 'web', '--generate').code).toBe(2);
  });

  test('bad options exit 2, bad inputs exit 1, with one-line errors', () => {
    const usage = [
      ['--runs', '0'],
      ['--runs', 'many'],
      ['--warmup', '-1'],
      ['--threads', '0'],
      ['--time-budget', 'soon'],
      ['--dim', 'batch'],
      ['--name', 'only-one,two,three'],
      ['--session-config', 'no-equals-sign'],
      ['--block', '0'],
    ];
    for (const args of usage) {
      const r = run('bench', CNN, GPT2, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^retarget: /);
    }
    const missing = run('bench', CNN, path.join(tmp, 'nope.onnx'), '--runs', '5');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toEqual([expect.stringMatching(/nope\.onnx: cannot read: no such file/)]);
    expect(missing.stdout).toBe('');

    fs.writeFileSync(path.join(tmp, 'junk.onnx'), 'not a model');
    const junk = run('bench', path.join(tmp, 'junk.onnx'), '--runs', '5');
    expect(junk.code).toBe(1);
    expect(junk.stderr.trim().split('\n')).toHaveLength(1);

    const noInputs = run('bench', CNN, '--inputs', path.join(tmp, 'no-such-dir'), '--runs', '5');
    expect(noInputs.code).toBe(1);
    expect(noInputs.stderr.trim().split('\n')).toEqual([expect.stringMatching(/no-such-dir/)]);
  });
});
