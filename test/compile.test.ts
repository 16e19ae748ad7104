/**
 * `compile --target portable` on real exported models: outputs equal the original's (rtol 1e-4,
 * atol 1e-5) on their test data; and the pipeline controls (report, verify-each, dump-after,
 * stop-after-rewrites, disable-pass) through the CLI.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compile } from '../src/compile.js';
import { compareTensors } from '../src/compare.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { portable } from '../targets/portable.js';
import { runModel } from './passes/harness.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIXTURES = path.join(ROOT, 'fixtures/models');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
let tmp: string;

beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-compile-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe.each(['gpt2-tiny-op14', 'bert-tiny-op17', 'cnn-tiny-op13', 'control-flow-op13', 'external-data'])('%s', (name) => {
  test('compiled outputs equal the original outputs on the test data', async () => {
    const dir = path.join(FIXTURES, name);
    const original = readModel(path.join(dir, 'model.onnx')).model;
    const compiled = readModel(path.join(dir, 'model.onnx')).model;
    const report = await compile(compiled, portable, { runtime: onnxruntimeNode, verifyEach: true });
    expect(report.after.nodes).toBeLessThanOrEqual(report.before.nodes);
    for (const setDir of testDataSets(dir)) {
      const set = readTestDataSet(setDir);
      const feeds = Object.fromEntries(set.inputs.map((x, i) => [original.graph.inputs[i]!.name, x.tensor]));
      const want = await runModel(original, feeds);
      const got = await runModel(compiled, feeds);
      for (const [k, t] of Object.entries(want)) {
        const c = compareTensors(got[k]!, t, { rtol: 1e-4, atol: 1e-5 });
        expect(c.ok, `${path.basename(setDir)} ${k}: ${c.problem}`).toBe(true);
      }
    }
  });
});

describe('compile CLI', () => {
  const GPT2 = path.join(FIXTURES, 'gpt2-tiny-op14/model.onnx');
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

  test('--report lists every pass with time and changes, and before/after stats', () => {
    const out = path.join(tmp, 'gpt2.onnx');
    const report = path.join(tmp, 'report.json');
    const r = run('compile', GPT2, '--target', 'portable', '-o', out, '--report', report, '--dim', 'batch=1,sequence=7');
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.target).toBe('portable');
    expect(rep.passes.length).toBeGreaterThan(5);
    for (const p of rep.passes) {
      expect(typeof p.timeMs).toBe('number');
      expect(p.runs).toBeGreaterThan(0);
    }
    expect(rep.after.nodes).toBeLessThan(rep.before.nodes / 2);
    expect(rep.before.opHistogram['ai.onnx::Shape']).toBeGreaterThan(0);
    expect(rep.after.opHistogram['ai.onnx::Shape']).toBeUndefined();
    expect(rep.before.parameterBytes).toBeGreaterThan(0);
    expect(readModel(out).model.graph.inputs[0]!.type).toEqual({ kind: 'tensor', elemType: 7, shape: [1, 7] });
  });

  test('--stop-after-rewrites N stops after N rewrites and names the last', () => {
    const report = path.join(tmp, 'stop.json');
    const r = run('compile', GPT2, '-o', path.join(tmp, 'stop.onnx'), '--stop-after-rewrites', '3', '--report', report);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.rewrites).toBe(3);
    expect(rep.stoppedAt).toMatch(/.+/);
    expect(r.stderr).toMatch(/stopped after 3 rewrites; the last one: /);
  });

  test('--disable-pass leaves it out; --dump-after prints the IR; --verify-each runs', () => {
    const report = path.join(tmp, 'dis.json');
    const r = run('compile', GPT2, '-o', path.join(tmp, 'dis.onnx'), '--disable-pass', 'eliminate-common-subexpressions', '--dump-after', 'fold-constants', '--verify-each', '--report', report);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.passes.map((p: { name: string }) => p.name)).not.toContain('eliminate-common-subexpressions');
    expect(r.stderr).toMatch(/--- IR after fold-constants\n# ir_version 7/);
  });

  test('targets lists every target and what host picks', () => {
    const r = run('targets', '--json');
    expect(r.status).toBe(0);
    const listed = JSON.parse(r.stdout);
    expect(listed.targets.map((t: { name: string }) => t.name)).toEqual(['portable', 'x86-avx2', 'x86-avx512', 'x86-vnni', 'arm64', 'cuda', 'tensorrt', 'webgpu', 'wasm']);
    expect(['x86-avx2', 'x86-avx512', 'x86-vnni', 'arm64', 'portable']).toContain(listed.host.chosen);
  });
});

describe('compile --explain-fusions', () => {
  test('says which passes a target skipped and why a fusion did not fire', () => {
    const BERT = path.join(FIXTURES, 'bert-tiny-op17/model.onnx');
    const r = spawnSync(process.execPath, [BIN, 'compile', BERT, '-o', path.join(tmp, 'e.onnx'), '--target', 'webgpu', '--explain-fusions'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    // WebGPU has no BiasGelu kernel: the fusion is refused for this target, and the report says so
    expect(r.stderr).toMatch(/\[fuse-bias-gelu\] .*target 'webgpu' cannot run com\.microsoft::BiasGelu|skipped fuse-bias-gelu: target 'webgpu' cannot run/);
    expect(r.stderr).toMatch(/\[fuse-matmul-add-into-gemm\] node '.+' \(MatMul\): MatMul of ranks 3 and 2: not a Gemm/);
  });
});
