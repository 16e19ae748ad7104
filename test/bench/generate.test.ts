/**
 * `retarget bench --generate` on the tiny decoder fixtures (2 layers, 32 positions): the KV loop
 * with preallocated buffers gives the tokens of a plain generation loop, the JSON carries the
 * generation fields, `compare` gates on tokens/s, and the CLI's exit codes. Timings are only
 * checked for sanity: machines are noisy.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { measureBandwidth } from '../../src/bench/bandwidth.js';
import { runGenerateBench, weightBytesPerToken } from '../../src/bench/generate.js';
import { decoderSignature, greedyGenerate, syntheticPrompt } from '../../src/bench/generation.js';
import { compareResults, formatCompareMarkdown } from '../../src/bench/gate.js';
import { formatBenchMarkdown, formatBenchTable } from '../../src/bench/format.js';
import { BENCH_SCHEMA, type BenchResult } from '../../src/bench/types.js';
import { serializeModel } from '../../src/io.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const GPT2 = path.join(ROOT, 'fixtures/models/decoder-past-tiny-op14/model.onnx');
const LLAMA = path.join(ROOT, 'fixtures/models/llama-past-tiny-op14/model.onnx');
const CNN = path.join(ROOT, 'fixtures/models/cnn-tiny-op13/model.onnx');
let tmp: string;

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const positive = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;
// small and quick: 2 generations of 6 decode steps; the bandwidth is given (measured in its own test)
const quick = { threads: 1, runs: 2, warmup: 1, settleMs: 1, bandwidthGBs: 10 };

/** The tokens of a plain loop (ORT allocates every output, present fed back as returned). */
async function plainTokens(file: string, prompt: number[], steps: number): Promise<number[]> {
  const model = readModel(file).model;
  const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(model).chunks));
  try {
    return (await greedyGenerate(model, session, decoderSignature(model)!, prompt, steps)).tokens;
  } finally {
    await session.release();
  }
}

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build' (npm test does it first)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-generate-'));
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('bench --generate', () => {
  let same: BenchResult;

  test('the same model twice: fields, agreement, and the tokens of a plain generation loop', async () => {
    same = await runGenerateBench([GPT2, GPT2], { ...quick, prompt: 6, newTokens: 6, names: ['a', 'b'] });
    expect(same.schema).toBe(BENCH_SCHEMA);
    expect(same.options.generate).toMatchObject({ prompt: 6, newTokens: 6, past: 6, bandwidth: { gbPerSec: 10 } });
    expect(same.options).toMatchObject({ runs: 2, block: 1, warmup: 1 });
    const model = readModel(GPT2).model;
    const { bytesPerToken, lookupTableBytes } = weightBytesPerToken(model);
    for (const [i, m] of same.models.entries()) {
      const g = m.generate!;
      expect(g.generations).toBe(2);
      expect(g.prefillMs).toHaveLength(2);
      expect(m.latencyMs).toHaveLength(12); // 2 generations x 6 decode steps
      expect(m.latencyMs.every(positive)).toBe(true);
      expect(m.stats.p50Ms).toBe(g.decodeMsPerToken.p50Ms);
      expect(g.tokensPerSecond).toBeCloseTo(1000 / g.decodeMsPerToken.p50Ms, 9);
      expect(m.throughputPerSec).toBe(g.tokensPerSecond);
      expect(positive(g.prefillStats.p50Ms) && positive(g.prefillTokensPerSecond)).toBe(true);
      expect(g.bytesPerToken).toBe(bytesPerToken);
      expect(g.lookupTableBytes).toBe(lookupTableBytes);
      expect(g.bandwidthGBs).toBe(10);
      expect(g.rooflineTokensPerSecond).toBeCloseTo(10e9 / bytesPerToken, 6);
      expect(g.rooflinePct).toBeCloseTo((100 * g.tokensPerSecond) / g.rooflineTokensPerSecond, 9);
      // 2 layers x key/value x [1, 2, P, 16] float32 = 512 bytes a position; 6 steps read past 6..11
      expect(g.kvCacheBytesPerToken).toBe(512 * 8.5);
      expect(g.outputBytesPerToken).toBe(64 * 4 + 512 * 9.5);
      expect(g.tokens).toHaveLength(7); // the prefill's, then one per decode step
      expect(g.consistent).toBe(true);
      expect(m.sessionCreateMs.length).toBe(1);
      if (i === 1) {
        expect(g.agreesWithFirst).toBe(true);
        expect(g.firstMismatch).toBeUndefined();
        expect(m.ratioVsFirst!.ci95[0]).toBeLessThanOrEqual(m.ratioVsFirst!.ci95[1]);
        expect(g.tokensPerSecondRatioVsFirst!.ratio).toBeCloseTo(1 / m.ratioVsFirst!.p50, 9);
        expect(g.prefillRatioVsFirst).toBeDefined();
      }
    }
    expect(same.models[1]!.generate!.tokens).toEqual(same.models[0]!.generate!.tokens);
    // preallocated buffers, double-buffered cache: the same tokens as the plain loop
    const prompt = syntheticPrompt(6, 64, 0);
    expect(same.models[0]!.generate!.tokens).toEqual(await plainTokens(GPT2, prompt, 7));
    expect(formatBenchTable(same)).toMatch(/^b .* same\s*$/m);
    expect(formatBenchMarkdown(same)).toMatch(/bench --generate/);
  });

  test('--past beyond the prompt (filled in chunks) on llama: the tokens of one plain run over the whole context', async () => {
    const r = await runGenerateBench([LLAMA], { ...quick, runs: 1, prompt: 4, past: 14, newTokens: 5 });
    const g = r.models[0]!.generate!;
    expect(g.past).toBe(14);
    expect(r.models[0]!.latencyMs).toHaveLength(5);
    const context = [...syntheticPrompt(4, 64, 0), ...syntheticPrompt(10, 64, 1)];
    expect(g.tokens).toEqual(await plainTokens(LLAMA, context, 6));
  });

  test('a different model is flagged: agreesWithFirst false, the first mismatch, DIFFER in the table', async () => {
    const r = await runGenerateBench([GPT2, LLAMA], { ...quick, runs: 1, prompt: 4, newTokens: 4 });
    const g = r.models[1]!.generate!;
    expect(g.agreesWithFirst).toBe(false);
    expect(g.firstMismatch).toBe(g.tokens.findIndex((t, i) => t !== r.models[0]!.generate!.tokens[i]));
    expect(formatBenchTable(r)).toMatch(/DIFFER at \d+/);
    expect(formatBenchTable(r)).toMatch(/warning: .*generated different tokens/);
  });

  test('compare gates on tokens/s: a synthetic drop is a regression, the same result is not', () => {
    expect(compareResults(same, same).failures).toEqual([]);
    // synthetic per-token samples (the measured ones are as noisy as the machine): 10 ms +- 2%, then 1.5x
    const base = structuredClone(same);
    for (const m of base.models) m.latencyMs = m.latencyMs.map((_x, i) => 10 * (1 + 0.02 * Math.sin(i)));
    const slower = structuredClone(base);
    for (const m of slower.models) {
      m.latencyMs = m.latencyMs.map((x) => x * 1.5);
      m.generate!.tokensPerSecond /= 1.5;
    }
    expect(compareResults(base, base).failures).toEqual([]);
    const c = compareResults(base, slower);
    expect(c.models.every((m) => m.tokensPerSecond!.verdict === 'regression')).toBe(true);
    expect(c.models[0]!.tokensPerSecond!.ratio).toBeCloseTo(1 / 1.5, 9);
    expect(c.failures).toHaveLength(2); // one per model: tokens/s, not latency as well
    expect(c.failures[0]).toMatch(/^a: tokens\/s x0\.667 .*slower beyond 5\.0%/);
    expect(formatCompareMarkdown(c)).toMatch(/\| a \| .* ❌ regression \| – \|/);
    // faster is an improvement; tokens that stop agreeing with the first model are a regression
    expect(compareResults(slower, base).models[0]!.tokensPerSecond!.verdict).toBe('improvement');
    const differ = structuredClone(same);
    differ.models[1]!.generate!.agreesWithFirst = false;
    differ.models[1]!.generate!.firstMismatch = 3;
    expect(compareResults(same, differ).failures).toEqual(["b: greedy tokens now differ from the first model's (from token 3)"]);
  });

  test('bandwidth: measured by reader threads (WebAssembly SIMD, or the JavaScript loop), best of the runs', async () => {
    for (const method of ['wasm', 'js'] as const) {
      const bw = await measureBandwidth({ bytes: 32 * 2 ** 20, threads: 2, runs: 2, method });
      expect(bw.samplesGBs).toHaveLength(2);
      expect(bw.gbPerSec).toBe(Math.max(...bw.samplesGBs));
      expect(positive(bw.gbPerSec)).toBe(true);
      expect(bw.threads).toBe(2);
      expect(bw.bytes).toBe(32 * 2 ** 20);
      expect(bw.method).toMatch(method === 'wasm' ? /^WebAssembly SIMD sum/ : /^JavaScript sum/);
    }
  });

  test('CLI: table, JSON and Markdown; exit 2 for bad options, 1 for a model that is not a decoder', () => {
    const r = run('bench', GPT2, GPT2, '--generate', '--prompt', '4', '--new-tokens', '3', '--runs', '2', '--threads', '1', '--bandwidth', '12.5', '--name', 'x,y', '--json', 'g.json', '--markdown', 'g.md');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/decode ms\/tok p50/);
    expect(r.stdout).toMatch(/12\.5 GB\/s \(given/);
    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'g.json'), 'utf8')) as BenchResult;
    expect(json.options).toMatchObject({ runs: 2, block: 1, warmup: 1, generate: { prompt: 4, newTokens: 3, past: 4 } });
    expect(json.models.map((m) => m.latencyMs.length)).toEqual([6, 6]);
    expect(json.models[1]!.generate!.agreesWithFirst).toBe(true);
    expect(fs.readFileSync(path.join(tmp, 'g.md'), 'utf8')).toMatch(/^\| y \|/m);

    for (const bad of [['--new-tokens', '0'], ['--new-tokens', 'x'], ['--prompt', '-3'], ['--prompt', '8', '--past', '4'], ['--bandwidth', '0'], ['--dim', 'batch=1'], ['--tolerance', 'int8']]) {
      const b = run('bench', GPT2, '--generate', ...bad);
      expect(b.code, bad.join(' ')).toBe(2);
      expect(b.stderr.trim().split('\n')).toHaveLength(1);
    }
    const noFlag = run('bench', GPT2, '--new-tokens', '4');
    expect(noFlag.code).toBe(2);
    expect(noFlag.stderr).toMatch(/--new-tokens needs --generate/);
    const cnn = run('bench', CNN, '--generate', '--bandwidth', '10');
    expect(cnn.code).toBe(1);
    expect(cnn.stderr).toMatch(/not a decoder with a KV cache/);
    expect(cnn.stderr.trim().split('\n')).toHaveLength(1);
  });
});
