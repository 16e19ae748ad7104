/**
 * Quantized models for a target that lacks their kernels (issue 19): dequantize-integer-ops turns ONNX
 * Runtime's dynamic-quantizer chains (DynamicQuantizeLinear + ConvInteger / MatMulInteger + Cast + Mul
 * by the scales) into float Conv / MatMul on weights dequantized once, for webgpu (and cuda); the CPU
 * targets keep them. Judged against the fixture's stored outputs (ORT on the model as given) within
 * the int8 tolerance.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { outputMetrics } from '../src/bench/metrics.js';
import { judge, TOLERANCES } from '../src/bench/validate.js';
import { compile, type CompileReport } from '../src/compile.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { cloneModel } from '../src/ir/clone.js';
import { DataType } from '../src/ir/dtype.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { verifyModel } from '../src/ir/verify.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { PassManager } from '../src/pass/manager.js';
import { dequantizeIntegerOps } from '../passes/precision/dequantize-integer-ops.js';
import { checkPlacement } from '../targets/capabilities/check.js';
import { TARGETS } from '../targets/index.js';
import { cpuStandIn } from '../src/bench/stand-in.js';
import { ops, runModel } from './passes/harness.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');
const INTEGER = ['ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear'];
const target = (name: string) => TARGETS.find((t) => t.name === name)!;
const load = (name: string): Model => readModel(path.join(FIXTURES, name, 'model.onnx')).model;

/** Worst cosine over every output of every test set, vs the fixture's stored outputs (ORT on the model as given). */
async function worstAgainstStored(compiled: Model, dir: string): Promise<{ cosine: number; problems: string[] }> {
  let cosine = 1;
  const problems: string[] = [];
  const names = compiled.graph.outputs.map((v) => v.name);
  for (const set of testDataSets(dir)) {
    const data = readTestDataSet(set);
    const feeds = Object.fromEntries(data.inputs.map((i) => [i.name, i.tensor]));
    const got = await runModel(cpuStandIn(compiled).model, feeds);
    data.outputs.forEach((o, i) => {
      const name = o.name || names[i]!;
      const verdict = judge(outputMetrics(name, o.tensor, got[name]!), TOLERANCES.int8!);
      cosine = Math.min(cosine, verdict.cosine);
      if (!verdict.ok) problems.push(`${path.basename(set)}/${name}: ${verdict.problem}`);
    });
  }
  return { cosine, problems };
}

const integerOps = (m: Model) => Object.fromEntries(Object.entries(ops(m)).filter(([op]) => INTEGER.includes(op)));

describe.each([
  // chains, the float op, how many weights' codes (Wq - zp) fit int8 (tensorrt keeps those integer)
  ['cnn-tiny-convinteger-op13', 4, 'Conv', 1],
  ['bert-tiny-convinteger-op14', 12, 'MatMul', 0],
])('%s', (name, chains, floatOp, exactInt8) => {
  test.each(['webgpu', 'cuda'])('for %s: no integer op left, none CPU-placed, outputs within int8 of the stored ones', async (t) => {
    const original = load(name);
    const compiled = cloneModel(original);
    const report: CompileReport = await compile(compiled, target(t), { runtime: onnxruntimeNode, verifyEach: true });
    expect(report.pipeline.slice(0, 2)).toEqual(['lower-contrib-ops', 'dequantize-integer-ops']); // first after legalization
    expect(report.passes.find((p) => p.name === 'dequantize-integer-ops')!.changes).toBe(chains);
    expect(integerOps(compiled)).toEqual({});
    expect(verifyModel(compiled)).toEqual([]);
    expect(report.violations).toEqual([]);
    const placement = checkPlacement(compiled, target(t).capabilities!);
    expect(placement.violations).toEqual([]);
    expect(placement.cpuPlaced.filter((c) => INTEGER.includes(c.op) || c.op === floatOp)).toEqual([]);
    const { cosine, problems } = await worstAgainstStored(compiled, path.join(FIXTURES, name));
    expect(problems).toEqual([]);
    expect(cosine).toBeGreaterThanOrEqual(0.99);
    console.log(`${name} -> ${t}: nodes ${report.before.nodes} -> ${report.after.nodes}; worst cosine vs stored outputs ${cosine.toFixed(6)}; ${JSON.stringify(report.after.opHistogram)}`);
  });

  test('for tensorrt: the activations rounded in float ops, weights whose codes fit int8 behind DequantizeLinear (the rest float), legal, within int8', async () => {
    const original = load(name);
    const compiled = cloneModel(original);
    const report: CompileReport = await compile(compiled, target('tensorrt'), { runtime: onnxruntimeNode, verifyEach: true });
    expect(report.passes.find((p) => p.name === 'dequantize-integer-ops')!.changes).toBe(chains);
    expect(integerOps(compiled)).toEqual({});
    expect(checkPlacement(compiled, target('tensorrt').capabilities!).violations).toEqual([]);
    // exact codes stay int8, read by a DequantizeLinear (quantizing asymmetric uint8 weights again costs accuracy)
    const int8 = compiled.graph.initializers.filter((v) => v.initializer!.dataType === DataType.INT8);
    expect(int8).toHaveLength(exactInt8);
    expect(int8.every((v) => v.uses.every((u) => u.node.opType === 'DequantizeLinear'))).toBe(true);
    const { cosine, problems } = await worstAgainstStored(compiled, path.join(FIXTURES, name));
    expect(problems).toEqual([]);
    console.log(`${name} -> tensorrt: nodes ${report.before.nodes} -> ${report.after.nodes}; worst cosine vs stored outputs ${cosine.toFixed(6)}`);
  });

  test('for x86-avx2: kept as it is (the target runs the integer ops)', async () => {
    const original = load(name);
    const compiled = cloneModel(original);
    const report = await compile(compiled, target('x86-avx2'), { runtime: onnxruntimeNode });
    expect(report.pipeline).not.toContain('dequantize-integer-ops');
    // the integer ops stay (CSE may merge the DynamicQuantizeLinear of one activation read by Q, K and V)
    const kept = integerOps(compiled), was = integerOps(original);
    expect([kept.ConvInteger, kept.MatMulInteger]).toEqual([was.ConvInteger, was.MatMulInteger]);
    expect(kept.DynamicQuantizeLinear).toBeGreaterThan(0);
    // the pass itself, asked for x86-avx2, does nothing and says why
    const explained: string[] = [];
    const m = cloneModel(original);
    const run = await new PassManager([dequantizeIntegerOps], { target: target('x86-avx2'), onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(run.passes[0]!.changes).toBe(0);
    expect(explained.join('\n')).toMatch(/target 'x86-avx2' runs .*Integer.* and DynamicQuantizeLinear: the model keeps its integer ops/);
  });
});

describe('pipelines', () => {
  test('webgpu and cuda list it first after legalization (before the folds and fusions), tensorrt among its int8 forms; the CPU targets, wasm and portable do not', () => {
    for (const t of ['webgpu', 'cuda']) expect(target(t).pipeline[1]).toBe('dequantize-integer-ops'); // [0]: lower-contrib-ops
    expect(target('tensorrt').pipeline.slice(0, 4)).toContain('dequantize-integer-ops');
    for (const t of ['x86-avx2', 'x86-avx512', 'x86-vnni', 'arm64', 'wasm', 'portable']) {
      expect(JSON.stringify(target(t).pipeline)).not.toContain('dequantize-integer-ops');
    }
  });
});

/**
 * x [1, 4] -> DynamicQuantizeLinear -> MatMulInteger(Wq [4, 3] uint8, zp 128) -> Cast(float) -> Mul(scale) -> y,
 * where `scale` is Mul(xs, ws) (good), or something else (bad).
 */
function chain(scale: 'product' | 'weight-scale-only' | 'other-activation-scale'): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', [1, 4]);
  const [xq, xs, xzp] = b.nodeN('DynamicQuantizeLinear', [x], {}, { outputs: 3, name: 'quant' });
  const wq = b.constant(Tensor.fromTypedArray(DataType.UINT8, [4, 3], Uint8Array.from({ length: 12 }, (_, i) => 100 + i * 5)), 'w_q');
  const wzp = b.constant(Tensor.fromTypedArray(DataType.UINT8, [], Uint8Array.of(128)), 'w_zp');
  const ws = b.constant(Tensor.float32([0.02], []), 'w_scale');
  const yi = b.node('MatMulInteger', [xq!, wq, xzp!, wzp], {}, { name: 'mm_int' });
  const yf = b.node('Cast', [yi], { to: DataType.FLOAT }, { name: 'mm_cast' });
  let s;
  if (scale === 'product') s = b.node('Mul', [xs!, ws], {}, { name: 'scale_mul' });
  else if (scale === 'weight-scale-only') s = ws;
  else {
    const [, other] = b.nodeN('DynamicQuantizeLinear', [b.node('Relu', [x])], {}, { outputs: 3, name: 'quant_other' });
    s = b.node('Mul', [other!, ws], {}, { name: 'scale_mul' });
  }
  b.output(b.node('Mul', [yf, s], {}, { name: 'out_mul' }), 'y');
  return b.build();
}

describe('dequantize-integer-ops on a hand-built chain', () => {
  test('the scale product chain becomes MatMul on W = (Wq - zp) * ws; y within int8 of the original', async () => {
    const m = chain('product');
    const run = await new PassManager([dequantizeIntegerOps], { target: target('webgpu'), verifyEach: true }).run(m);
    expect(run.passes[0]!.changes).toBe(1);
    // x keeps its run-time uint8 rounding, in float ops (webgpu: Floor for Round, Clip for Min / Max)
    expect(Object.keys(ops(m)).filter((op) => /Integer|Quantize/.test(op))).toEqual([]);
    expect(ops(m)).toMatchObject({ MatMul: 1, ReduceMin: 1, ReduceMax: 1, Floor: 2 });
    const mm = m.graph.nodes.find((n) => n.opType === 'MatMul')!;
    const w = mm.inputs[1]!.initializer!.toTypedArray() as Float32Array;
    expect(Array.from(w)).toEqual(Array.from({ length: 12 }, (_, i) => Math.fround((100 + i * 5 - 128) * Math.fround(0.02))));
    const feeds = { x: Tensor.float32([0.3, -1.2, 2.5, 0.7], [1, 4]) };
    const want = await runModel(chain('product'), feeds);
    const got = await runModel(m, feeds);
    // the model as given, up to float rounding: the activation is on the same uint8 grid
    expect(judge(outputMetrics('y', want.y!, got.y!), TOLERANCES.fp32!).ok, `${want.y!.toTypedArray()} vs ${got.y!.toTypedArray()}`).toBe(true);
  });

  test.each([
    ['weight-scale-only', /other operand 'w_scale' is not a Mul of the activation scale and the weight scale/],
    ['other-activation-scale', /scale product .*scale_mul.* does not read .*quant.*'s scale \(output 1\)/],
  ] as const)('a Mul that is not the scale product (%s) is left alone, with an explanation', async (kind, why) => {
    const m = chain(kind);
    const before = ops(m);
    const explained: string[] = [];
    const run = await new PassManager([dequantizeIntegerOps], { target: target('webgpu'), onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(run.passes[0]!.changes).toBe(0);
    expect(ops(m)).toEqual(before);
    expect(explained.join('\n')).toMatch(why);
  });
});

describe('compile CLI: the tolerance follows what the compile did', () => {
  const BIN = path.resolve(import.meta.dirname, '../dist/src/cli/main.js');
  const CNN_INT = path.resolve(import.meta.dirname, '../fixtures/models/cnn-tiny-convinteger-op13/model.onnx');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-int-'));
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

  test('a model that quantizes at run time is judged within int8 (taken out for webgpu, or left in for x86-avx2); --tolerance fp32 still holds where nothing upstream changed', () => {
    const gpu = run('compile', CNN_INT, '-t', 'webgpu', '-o', path.join(tmp, 'gpu.onnx'));
    expect(gpu.status, gpu.stderr).toBe(0);
    expect(gpu.stderr).toMatch(/validated \(int8\)/);
    // DynamicQuantizeLinear rounds as it runs: a one-ulp change before it is a whole step after it (runtimeQuantization)
    const cpu = run('compile', CNN_INT, '-t', 'x86-avx2', '-o', path.join(tmp, 'cpu.onnx'));
    expect(cpu.status, cpu.stderr).toBe(0);
    expect(cpu.stderr).toMatch(/validated \(int8\)/);
    const cpuStrict = run('compile', CNN_INT, '-t', 'x86-avx2', '--tolerance', 'fp32', '-o', path.join(tmp, 'cpu-strict.onnx'));
    expect(cpuStrict.status, cpuStrict.stderr).toBe(0);
    expect(cpuStrict.stderr).toMatch(/validated \(fp32\)/);
    // the activations keep their uint8 rounding (in float ops): even --tolerance fp32 holds on this model
    const strict = run('compile', CNN_INT, '-t', 'webgpu', '--tolerance', 'fp32', '-o', path.join(tmp, 'strict.onnx'));
    expect(strict.status, strict.stderr).toBe(0);
    expect(strict.stderr).toMatch(/validated \(fp32\)/);
  });
});
