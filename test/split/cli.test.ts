/** `retarget split` as users run it: the built binary, --list, written files, split.json, exit codes. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const CNN = path.join(ROOT, 'fixtures/models/cnn-tiny-op13/model.onnx');
const GPT2 = path.join(ROOT, 'fixtures/models/gpt2-tiny-op14/model.onnx');
let tmp: string;

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build'`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-split-'));
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('retarget split', () => {
  test('--list prints the candidates with a column per bandwidth and writes nothing', () => {
    const r = run('split', CNN, '--list', '--dim', 'batch=1', '--bandwidth', '20Mbit/s,1Gbit/s', '--top', '3', '-o', 'out');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/candidate cuts/);
    expect(r.stdout).toMatch(/ms @20Mbit\/s\s+ms @1Gbit\/s/);
    expect(r.stdout).toMatch(/^1\s+\/gap\/GlobalAveragePool_output_0 float32\[1,24,1,1\]\s+96 B/m);
    expect(r.stdout).toMatch(/all in the cloud \(inputs cross\)/);
    expect(r.stdout.split('\n').filter((l) => /^\d+\s/.test(l))).toHaveLength(3);
    expect(fs.existsSync(path.join(tmp, 'out'))).toBe(false);
  });

  test('writes edge.onnx, cloud.onnx and split.json', () => {
    const out = path.join(tmp, 'cnn');
    const r = run('split', CNN, '--edge-target', 'arm64', '--cloud-target', 'x86-avx2', '-o', out, '--dim', 'batch=1', '--bandwidth', '1Gbit/s', '--rtt', '10');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/split at \/gap\/GlobalAveragePool_output_0: 96 bytes cross/);
    const rec = JSON.parse(fs.readFileSync(path.join(out, 'split.json'), 'utf8'));
    expect(rec.format).toBe('retarget-split/1');
    expect(rec.cut.values).toEqual(['/gap/GlobalAveragePool_output_0']);
    expect(rec.bytes).toBe(96);
    expect(rec.flops.edge + rec.flops.cloud).toBe(rec.flops.total);
    expect(rec.hardware).toEqual({ edgeGflops: 50, cloudGflops: 2000, bandwidth: 1e9, rttMs: 10 });
    expect(rec.estimate.totalMs).toBeCloseTo(rec.estimate.edgeMs + rec.estimate.networkMs + rec.estimate.cloudMs);
    expect(rec.edge.target).toBe('arm64');
    expect(rec.cloud.target).toBe('x86-avx2');
    expect(rec.validation.maxAbsError).toBeLessThanOrEqual(1e-5);
    for (const f of ['edge.onnx', 'cloud.onnx']) expect(fs.statSync(path.join(out, f)).size).toBeGreaterThan(100);
    expect(fs.readdirSync(out).filter((f) => f.includes('tmp'))).toEqual([]);
  });

  test('both halves for cuda (NhwcConv, which the CPU lacks) are validated with the CPU stand-in', () => {
    const out = path.join(tmp, 'cnn-cuda');
    const r = run('split', CNN, '--edge-target', 'cuda', '--cloud-target', 'cuda', '-o', out, '--dim', 'batch=1');
    expect(r.code, r.stderr).toBe(0);
    const rec = JSON.parse(fs.readFileSync(path.join(out, 'split.json'), 'utf8'));
    expect(rec.validation.maxAbsError).toBeLessThanOrEqual(1e-5);
    expect(fs.readFileSync(path.join(out, 'edge.onnx')).includes(Buffer.from('NhwcConv'))).toBe(true);
  });

  test('--at with --wire int8 reports the extra error', () => {
    const out = path.join(tmp, 'gpt2');
    const r = run('split', GPT2, '--edge-target', 'portable', '--cloud-target', 'portable', '-o', out, '--at', '/h.0/Add_1_output_0', '--wire', 'int8');
    expect(r.code, r.stderr).toBe(0);
    const rec = JSON.parse(fs.readFileSync(path.join(out, 'split.json'), 'utf8'));
    expect(rec.cut.chosenBy).toBe('at');
    expect(rec.cut.values).toContain('/h.0/Add_1_output_0');
    expect(rec.wire.format).toBe('int8');
    expect(rec.wire.bytes).toBeLessThan(rec.bytes);
    expect(rec.wire.scales['/h.0/Add_1_output_0']).toBeGreaterThan(0);
    expect(rec.wireError.minCosine).toBeGreaterThan(0.99);
    expect(rec.wireError.maxAbsError).toBeGreaterThan(0);
  });

  test('exit codes: 2 for usage errors, 1 for a bad model', () => {
    expect(run('split', CNN, '-o', 'x').code).toBe(2); // no targets
    expect(run('split', CNN, '--edge-target', 'nope', '--cloud-target', 'portable', '-o', 'x').code).toBe(2);
    const bw = run('split', CNN, '--list', '--bandwidth', 'fast');
    expect(bw.code).toBe(2);
    expect(bw.stderr).toMatch(/--bandwidth/);
    expect(run('split', CNN, '--list', '--wire', 'int3').code).toBe(2);
    const at = run('split', CNN, '--edge-target', 'portable', '--cloud-target', 'portable', '-o', 'x', '--at', '/dw/dw.0/Conv_output_0');
    expect(at.code).toBe(2);
    expect(at.stderr).toMatch(/would cross too/);
    const missing = run('split', path.join(tmp, 'missing.onnx'), '--list');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(path.join(tmp, 'x'))).toBe(false);
  });
});
