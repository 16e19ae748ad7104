/**
 * `retarget check` and `retarget compile` on GPU/browser targets: nodes the target's EP lacks but its
 * runtime's CPU fallback runs are a warning (exit 0); what no EP of the runtime runs is refused (exit 1).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { writeModel } from '../../src/node/files.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
let tmp: string;

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A float Conv plus ConstantOfShape(Shape(conv)) and a Range ramp: WebGPU has no ConstantOfShape kernel. */
function shapeChain(file: string, h: number | string, w: number | string): string {
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float32', [1, 1, h, w]);
  const conv = b.node('Conv', [x, b.constant(Tensor.float32(new Array(9).fill(0.1), [1, 1, 3, 3]), 'w')], { pads: [1, 1, 1, 1] }, { name: 'conv' });
  const shape = b.node('Shape', [conv], {}, { name: 'shape' });
  const ones = b.node('ConstantOfShape', [shape], { value: Tensor.float32([1], [1]) }, { name: 'cos' });
  const width = b.node('Gather', [shape, b.constant(Tensor.int64([3], []), 'i3')], { axis: 0 }, { name: 'width' });
  const range = b.node('Range', [b.constant(Tensor.int64([0], []), 'zero'), width, b.constant(Tensor.int64([1], []), 'one')], {}, { name: 'range' });
  const ramp = b.node('Cast', [range], { to: DataType.FLOAT }, { name: 'ramp' });
  b.output(b.node('Add', [b.node('Add', [conv, ones], {}, { name: 'add1' }), ramp], {}, { name: 'add2' }), 'y');
  const out = path.join(tmp, file);
  writeModel(b.build(), out);
  return out;
}

let staticModel: string, symbolicModel: string, f64Model: string;

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build' (npm test does it first)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-check-'));
  staticModel = shapeChain('static.onnx', 4, 4);
  symbolicModel = shapeChain('symbolic.onnx', 'h', 'w');
  const b = new ModelBuilder({ opset: 17 });
  const x = b.input('x', 'float64', [1, 1, 4, 4]);
  b.output(b.node('Conv', [x, b.constant(Tensor.fromTypedArray(DataType.DOUBLE, [1, 1, 3, 3], new Float64Array(9).fill(1)), 'w')], {}, { name: 'conv64' }), 'y');
  f64Model = path.join(tmp, 'f64.onnx');
  writeModel(b.build(), f64Model);
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('retarget check', () => {
  test('webgpu: CPU-placed nodes are a warning section, exit 0', () => {
    const r = run('check', staticModel, '-t', 'webgpu');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('warning: 1 node(s) run on the CPU EP: ConstantOfShape x1; ~64 B cross');
    expect(r.stdout).toMatch(/cpu {2}cos {2}ai\.onnx::ConstantOfShape {2}op not implemented; crosses 64 B/);
    expect(r.stdout).toMatch(/ok: webgpu can run every node, 1 of them on the CPU EP/);
  });

  test('--json has cpuPlaced next to the unchanged violations', () => {
    const r = run('check', symbolicModel, '-t', 'webgpu', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(true);
    expect(j.violations).toEqual([]);
    expect(j.cpuPlaced).toEqual([{ node: 'cos', op: 'ConstantOfShape', domain: 'ai.onnx', reason: 'op not implemented', crossBytes: 'unknown' }]);
  });

  test('what no EP of the runtime runs: exit 1', () => {
    const r = run('check', f64Model, '-t', 'webgpu');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('conv64  ai.onnx::Conv  type float64 not supported (float32, float16); CPU EP: type float64 not supported (float32)');
    expect(r.stdout).toContain('1 node(s) webgpu cannot run');
    const j = JSON.parse(run('check', f64Model, '-t', 'webgpu', '--json').stdout);
    expect(j.ok).toBe(false);
    expect(j.cpuPlaced).toEqual([]);
  });

  test('a float16 model on x86-avx2 and wasm: runs, with casts (a warning section, exit 0); --json lists them', () => {
    const fp16 = path.join(ROOT, 'fixtures/models/cnn-tiny-fp16-op13/model.onnx');
    for (const t of ['x86-avx2', 'wasm']) {
      const r = run('check', fp16, '-t', t);
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/^warning: 11 node\(s\) run with casts: Conv x4, Relu x2, .* \(float16 -> float32\)/);
      expect(r.stdout).toMatch(/cast {2}\/stem\/stem\.0\/Conv {2}ai\.onnx::Conv {2}float16 -> float32/);
      expect(r.stdout).toContain(`ok: ${t} can run every node, 11 with casts`);
      expect(r.stdout).not.toContain('not supported');
    }
    const j = JSON.parse(run('check', fp16, '-t', 'x86-avx2', '--json').stdout);
    expect(j.ok).toBe(true);
    expect(j.violations).toEqual([]);
    expect(j.withCasts).toHaveLength(11);
    expect(j.withCasts[0]).toEqual({ node: '/stem/stem.0/Conv', op: 'Conv', domain: 'ai.onnx', from: 'float16', to: 'float32' });
  });

  test('cuda runs the shape chain on CUDA; wasm is the CPU EP; portable has no table', () => {
    for (const t of ['cuda', 'wasm', 'portable']) {
      const r = run('check', staticModel, '-t', t);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain('warning');
    }
  });
});

describe('retarget compile', () => {
  test('webgpu: warns with a one-line summary of the CPU-placed nodes and goes on', () => {
    const out = path.join(tmp, 'symbolic.webgpu.onnx');
    const r = run('compile', symbolicModel, '-t', 'webgpu', '-o', out, '--report', path.join(tmp, 'report.json'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("warning: 1 node(s) run on the CPU EP: ConstantOfShape x1; ~0 B cross (+ copies of symbolic size at 1 node(s)) ('retarget check' lists them)");
    expect(fs.existsSync(out)).toBe(true);
    const report = JSON.parse(fs.readFileSync(path.join(tmp, 'report.json'), 'utf8'));
    expect(report.violations).toEqual([]);
    expect(report.cpuPlaced.map((c: { op: string }) => c.op)).toEqual(['ConstantOfShape']);
    // stderr is not a TTY here: no progress line
    expect(r.stderr).not.toMatch(/pass \d+\/\d+/);
    expect(r.stderr).not.toContain('\r');
  });

  test('a float16 model kept float16 for x86-avx2 (widening disabled): one warning line, the report lists withCasts', () => {
    const out = path.join(tmp, 'fp16.x86.onnx');
    const report = path.join(tmp, 'fp16.report.json');
    const r = run('compile', path.join(ROOT, 'fixtures/models/cnn-tiny-fp16-op13/model.onnx'), '-t', 'x86-avx2', '--disable-pass', 'widen-to-float32', '-o', out, '--report', report, '--no-validate');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: 11 node\(s\) run with casts: .* \(float16 -> float32\), inserted by the runtime on every run/);
    expect(JSON.parse(fs.readFileSync(report, 'utf8')).withCasts).toHaveLength(11);
    // widened (the default), nothing is left to cast
    const widened = run('compile', path.join(ROOT, 'fixtures/models/cnn-tiny-fp16-op13/model.onnx'), '-t', 'x86-avx2', '-o', path.join(tmp, 'fp16.w.onnx'), '--no-validate');
    expect(widened.code, widened.stderr).toBe(0);
    expect(widened.stderr).not.toContain('with casts');
  });

  test('what no EP runs still refuses the compile', () => {
    const out = path.join(tmp, 'f64.webgpu.onnx');
    const r = run('compile', f64Model, '-t', 'webgpu', '-o', out, '--no-validate');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1 node\(s\) target 'webgpu' cannot run: conv64 ai\.onnx::Conv/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
