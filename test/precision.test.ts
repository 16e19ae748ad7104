/**
 * Models that arrive in another precision (issue 19): widen-to-float32 on float16 / bfloat16 models
 * for targets without fast float16 kernels (structure, and numbers in onnxruntime-node), which targets
 * keep float16, --io-type, the refused compile's report, and --quantize on a quantized model.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { validate } from '../src/bench/validate.js';
import { compareTensors } from '../src/compare.js';
import { compile } from '../src/compile.js';
import { RetargetError } from '../src/errors.js';
import { attr, attrInt } from '../src/ir/attribute.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { cloneModel } from '../src/ir/clone.js';
import { DataType } from '../src/ir/dtype.js';
import { toBfloat16Bits, toFloat16Bits } from '../src/ir/half.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { readModel, writeModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { halfFloatTypes, quantizedOps } from '../passes/lib/model-precision.js';
import { widenToFloat32 } from '../passes/precision/widen-to-float32.js';
import { withInterfaceOf } from '../src/bench/interface.js';
import { TARGETS } from '../targets/index.js';
import { PassManager } from '../src/pass/manager.js';
import { Graph } from '../src/ir/graph.js';
import { checkPass, ops, runModel } from './passes/harness.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIXTURES = path.join(ROOT, 'fixtures/models');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const F32 = DataType.FLOAT, F16 = DataType.FLOAT16, BF16 = DataType.BFLOAT16;
let tmp: string;

beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-precision-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

const fixture = (name: string): Model => readModel(path.join(FIXTURES, name, 'model.onnx')).model;
const target = (name: string) => TARGETS.find((t) => t.name === name)!;

function half(values: number[], dims: number[], type = F16): Tensor {
  const bits = Uint16Array.from(values, (v) => (type === F16 ? toFloat16Bits(v) : toBfloat16Bits(v)));
  return Tensor.fromTypedArray(type, dims, bits);
}

/** Element types of every typed value (inputs, initializers, node outputs) and dtype attributes, over all graphs. */
function elemTypes(model: { allGraphs(): Iterable<Graph> }): Set<number> {
  const out = new Set<number>();
  for (const g of model.allGraphs()) {
    for (const v of g.definedValues()) {
      if (v.initializer) out.add(v.initializer.dataType);
      else if (v.type?.kind === 'tensor') out.add(v.type.elemType);
    }
    for (const n of g.nodes) {
      if (n.opType === 'Cast') out.add(attrInt(n.attr('to'))!);
      const a = n.attr('value');
      if (a?.type === 'tensor') out.add(a.value.dataType);
    }
  }
  return out;
}

/** x (float16) -> Conv(w, b fp16) -> Mul by a Constant -> Add a ConstantOfShape -> Cast(to float16) of Cast(to float) -> y (float16) */
function fp16Conv(): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float16', ['batch', 2, 5, 5]);
  const w = b.constant(half(Array.from({ length: 3 * 2 * 3 * 3 }, (_, i) => Math.sin(i) * 0.3), [3, 2, 3, 3]), 'w');
  const bias = b.constant(half([0.1, -0.2, 0.3], [3]), 'b');
  const conv = b.node('Conv', [x, w, bias], { pads: [1, 1, 1, 1] });
  const k = b.node('Constant', [], { value: attr.tensor('value', half([1.5], [1])) });
  const shape = b.node('Shape', [conv]);
  const filled = b.node('ConstantOfShape', [shape], { value: attr.tensor('value', half([0.25], [1])) });
  const sum = b.node('Add', [b.node('Mul', [conv, k]), filled]);
  const wide = b.node('Cast', [sum], { to: attr.int('to', F32) });
  const relu = b.node('Relu', [wide]);
  b.output(b.node('Cast', [relu], { to: attr.int('to', F16) }), 'y', { kind: 'tensor', elemType: F16, shape: ['batch', 3, 5, 5] });
  return b.build();
}

describe('widen-to-float32', () => {
  test('a float16 Conv model computes in float32; its inputs and outputs stay float16, names kept; numbers within fp16 rounding', async () => {
    const m = fp16Conv();
    const { after, changes } = await checkPass(m, widenToFloat32, { inputDims: { batch: 2 }, rtol: 2e-3, atol: 2e-3 });
    expect(changes).toBeGreaterThan(0);
    const g = after.graph;
    expect(g.inputs.map((v) => [v.name, v.type?.kind === 'tensor' && v.type.elemType])).toEqual([['x', F16]]);
    expect(g.outputs.map((v) => [v.name, v.type?.kind === 'tensor' && v.type.elemType])).toEqual([['y', F16]]);
    // inside: float32 only, but for the input and the output's Cast
    const casts = g.nodes.filter((n) => n.opType === 'Cast');
    expect(casts.filter((n) => attrInt(n.attr('to')) === F16)).toHaveLength(1);
    expect(casts.find((n) => n.outputs[0] === g.outputs[0])).toBeDefined();
    for (const v of g.initializers) expect(v.initializer!.dataType).toBe(F32);
    // the weights are the float16 numbers exactly
    const w = g.initializers.find((v) => v.name === 'w')!.initializer!.toTypedArray() as Float32Array;
    const source = m.graph.initializers.find((v) => v.name === 'w')!.initializer!.toTypedArray() as Uint16Array;
    expect(Array.from(w).map((x) => toFloat16Bits(x))).toEqual(Array.from(source));
    const cos = g.nodes.find((n) => n.opType === 'ConstantOfShape')!.attr('value');
    expect(cos?.type === 'tensor' && cos.value.dataType).toBe(F32);
  });

  test('--io-type float32: inputs and outputs become float32 too, no Cast at the interface', async () => {
    const m = fp16Conv();
    await new PassManager([widenToFloat32], { ioType: 'float32', verifyEach: true }).run(m);
    expect(elemTypes(m).has(F16)).toBe(false);
    expect(ops(m).Cast).toBe(2); // the model's own Cast pair, now float32 -> float32 (eliminate-noop-cast's job)
    const xs = Array.from({ length: 50 }, (_, i) => Math.cos(i));
    const want = await runModel(fp16Conv(), { x: half(xs, [1, 2, 5, 5]) });
    const got = await runModel(m, { x: Tensor.float32(xs, [1, 2, 5, 5]) });
    expect(got.y!.dataType).toBe(F32);
    // run on the original's float16 inputs: behind Casts to its interface (what compile's validation does)
    const wrapped = withInterfaceOf(m, fp16Conv(), cloneModel)!;
    expect(wrapped.graph.inputs[0]!.type).toMatchObject({ elemType: F16 });
    const again = await runModel(wrapped, { x: half(xs, [1, 2, 5, 5]) });
    const c = compareTensors(again.y!, want.y!, { rtol: 2e-3, atol: 2e-3 });
    expect(c.ok, c.problem).toBe(true);
    expect(withInterfaceOf(fp16Conv(), fp16Conv(), cloneModel)).toBeUndefined();
  });

  test('bfloat16 weights and Casts widen exactly', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [4]);
    const w = b.constant(half([1.5, -2.25, 3.015625, 0.1], [4], BF16), 'w');
    const xb = b.node('Cast', [x], { to: attr.int('to', BF16) });
    b.output(b.node('Cast', [b.node('Mul', [xb, w]), ], { to: attr.int('to', F32) }), 'y');
    const m = b.build();
    expect(halfFloatTypes(m)).toEqual(['bfloat16']);
    const after = cloneModel(m);
    await new PassManager([widenToFloat32], { verifyEach: true }).run(after);
    expect(elemTypes(after).has(BF16)).toBe(false);
    const got = await runModel(after, { x: Tensor.float32([1, 2, 3, 4]) });
    const wf = after.graph.initializers[0]!.initializer!.toTypedArray() as Float32Array;
    expect(Array.from(wf)).toEqual([1.5, -2.25, 3.015625, 0.10009765625]);
    expect(Array.from(got.y!.toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4].map((v, i) => Math.fround(v * wf[i]!)));
  });

  test('a float32 model: nothing to do, and the report says why', async () => {
    const m = fixture('cnn-tiny-op13');
    const explained: string[] = [];
    const r = await new PassManager([widenToFloat32], { onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(r.passes[0]!.changes).toBe(0);
    expect(explained.join('\n')).toMatch(/no float16 or bfloat16/);
  });

  test('an If whose branches compute in float16 is converted inside its branches', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float16', [3]);
    const c = b.input('c', 'bool', []);
    const iff = b.graph.addNode({ opType: 'If', name: 'if', inputs: [c], outputs: ['branch'] });
    for (const [slot, k] of [['then_branch', 2], ['else_branch', 3]] as const) {
      const sub = new Graph(slot, iff);
      const kc = sub.addNode({ opType: 'Constant', name: `k${k}`, outputs: [`k${k}`], attributes: [attr.tensor('value', half([k, k, k], [3]))] }).outputs[0]!;
      const out = sub.addNode({ opType: 'Mul', name: `mul${k}`, inputs: [x, kc], outputs: [`out${k}`] }).outputs[0]!;
      out.type = { kind: 'tensor', elemType: F16, shape: [3] };
      sub.addOutput(out);
      iff.attributes.set(slot, attr.graph(slot, sub));
    }
    b.output(b.node('Relu', [iff.outputs[0]!]), 'y');
    const m = b.build();
    const before = cloneModel(m);
    await new PassManager([widenToFloat32], { verifyEach: true }).run(m);
    for (const g of [...m.allGraphs()].slice(1)) expect(elemTypes(g)).not.toContain(F16);
    for (const cond of [true, false]) {
      const feeds = { x: half([1, -2, 0.5], [3]), c: Tensor.fromTypedArray(DataType.BOOL, [], Uint8Array.from([cond ? 1 : 0])) };
      const want = await runModel(before, feeds), got = await runModel(m, feeds);
      expect(got.y!.dataType).toBe(F16);
      expect(Array.from(got.y!.toTypedArray())).toEqual(Array.from(want.y!.toTypedArray()));
    }
  });
});

describe('float16 fixtures compiled for each target', () => {
  const FP16 = ['cnn-tiny-fp16-op13', 'gpt2-tiny-fp16-op14'];
  const WIDENING = ['x86-avx2', 'x86-avx512', 'x86-vnni', 'arm64', 'wasm'];

  test.each(FP16.flatMap((f) => WIDENING.map((t) => [f, t] as const)))('%s for %s: legal, float32 inside, float16 interface, within fp16 of the original and its stored outputs', async (name, t) => {
    const original = fixture(name);
    const compiled = fixture(name);
    const report = await compile(compiled, target(t), { runtime: onnxruntimeNode });
    expect(report.violations).toEqual([]);
    expect(report.passes.find((p) => p.name === 'widen-to-float32')!.changes).toBeGreaterThan(0);
    // float16 only at the interface: the input (its Cast) and the output (a Cast to float16)
    for (const n of compiled.graph.nodes) {
      if (n.opType === 'Cast' && attrInt(n.attr('to')) === F16) expect(compiled.graph.outputs).toContain(n.outputs[0]);
    }
    for (const v of compiled.graph.initializers) expect(v.initializer!.dataType).not.toBe(F16);
    expect(compiled.graph.outputs.map((v) => v.type)).toEqual(original.graph.outputs.map((v) => v.type));
    const result = await validate(original, compiled, onnxruntimeNode, { tolerance: 'fp16', generate: 0 });
    expect(result.ok, JSON.stringify(result.worst)).toBe(true);
    for (const dir of testDataSets(path.join(FIXTURES, name))) {
      const set = readTestDataSet(dir);
      const feeds = Object.fromEntries(set.inputs.map((x, i) => [original.graph.inputs[i]!.name, x.tensor]));
      const got = await runModel(compiled, feeds);
      set.outputs.forEach((o, i) => {
        const out = got[original.graph.outputs[i]!.name]!;
        expect(out.dataType).toBe(F16);
        const c = compareTensors(out, o.tensor, { rtol: 1e-2, atol: 1e-2 });
        expect(c.ok, `${path.basename(dir)}: ${c.problem}`).toBe(true);
      });
    }
  });

  test.each(['cuda', 'tensorrt', 'webgpu', 'portable'])('%s keeps float16 compute (not in its pipeline)', async (t) => {
    expect(JSON.stringify(target(t).pipeline)).not.toContain('widen-to-float32');
    const compiled = fixture('cnn-tiny-fp16-op13');
    const report = await compile(compiled, target(t), { runtime: onnxruntimeNode });
    expect(report.pipeline).not.toContain('widen-to-float32');
    expect(compiled.graph.initializers.some((v) => v.initializer!.dataType === F16)).toBe(true);
  });

  test.each(['cuda', 'webgpu'])('%s: a float16 transformer keeps float16 and still gets its LayerNorm and GELU fusions, within fp16', async (t) => {
    const original = fixture('gpt2-tiny-fp16-op14');
    const compiled = fixture('gpt2-tiny-fp16-op14');
    const report = await compile(compiled, target(t), { runtime: onnxruntimeNode });
    expect(report.violations).toEqual([]);
    const ops = report.after.opHistogram;
    expect((ops['com.microsoft::SkipLayerNormalization'] ?? 0) + (ops['ai.onnx::LayerNormalization'] ?? 0)).toBe(5);
    expect(ops['com.microsoft::FastGelu']).toBe(2);
    expect(ops['ai.onnx::Pow']).toBeUndefined();
    expect(compiled.graph.initializers.some((v) => v.initializer!.dataType === F16)).toBe(true);
    const result = await validate(original, compiled, onnxruntimeNode, { tolerance: 'fp16', generate: 0 });
    expect(result.ok, JSON.stringify(result.worst)).toBe(true);
  });

  test('every CPU and wasm target lists it first after legalization', () => {
    for (const t of WIDENING) expect(target(t).pipeline.slice(0, 2)).toEqual(['lower-contrib-ops', 'widen-to-float32']); // first after legalization
  });
});

describe('compile CLI', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  const CNN16 = path.join(FIXTURES, 'cnn-tiny-fp16-op13/model.onnx');
  const CNN_INT = path.join(FIXTURES, 'cnn-tiny-convinteger-op13/model.onnx');
  const BERT_INT = path.join(FIXTURES, 'bert-tiny-convinteger-op14/model.onnx');

  test('an fp16 model for x86-avx2: written, validated within fp16 (chosen because the model is fp16), float16 interface', () => {
    const out = path.join(tmp, 'cnn16.onnx');
    const report = path.join(tmp, 'cnn16.json');
    const r = run('compile', CNN16, '-t', 'x86-avx2', '-o', out, '--report', report);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/validated \(fp16\)/);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep).toMatchObject({ status: 'written', output: out, validation: { ok: true, tolerance: { name: 'fp16' } } });
    const m = readModel(out).model;
    expect(m.graph.inputs[0]!.type).toMatchObject({ elemType: F16 });
    expect(m.graph.outputs[0]!.type).toMatchObject({ elemType: F16 });
  });

  test('--io-type float32: float32 interface, validated on the original float16 inputs', () => {
    const out = path.join(tmp, 'cnn32.onnx');
    const r = run('compile', CNN16, '-t', 'x86-avx2', '-o', out, '--io-type', 'float32');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/validated \(fp16\)/);
    const m = readModel(out).model;
    expect(m.graph.inputs[0]!.type).toMatchObject({ elemType: F32 });
    expect(m.graph.outputs[0]!.type).toMatchObject({ elemType: F32 });
    expect(ops(m).Cast).toBeUndefined();
    const bad = run('compile', CNN16, '-t', 'x86-avx2', '-o', out, '--io-type', 'half');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--io-type: 'half' is not keep or float32/);
  });

  test('a refused compile (capability violations): no model, and the report says refused with the reasons and output null', () => {
    // Unique: no TensorRT kernel and nothing to write it as (a ConvInteger model compiles for tensorrt now: weight-only int8)
    const b = new ModelBuilder({ opset: 13 });
    const [y] = b.nodeN('Unique', [b.input('x', 'float32', [8])], { sorted: 1 }, { outputs: 1 });
    b.output(b.node('Relu', [y!]), 'y');
    const unique = path.join(tmp, 'unique.onnx');
    writeModel(b.build(), unique);
    const out = path.join(tmp, 'trt.onnx');
    const report = path.join(tmp, 'trt.json');
    const r = run('compile', unique, '-t', 'tensorrt', '-o', out, '--report', report);
    expect(r.status).toBe(1);
    expect(fs.existsSync(out)).toBe(false);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.status).toBe('refused');
    expect(rep.output).toBeNull();
    expect(rep.reasons).toHaveLength(1);
    expect(rep.reasons[0]).toMatch(/node\(s\) target 'tensorrt' cannot run: .*Unique/);
    expect(rep.violations.length).toBeGreaterThan(0);
    // the contract's other fields are all there
    for (const k of ['input', 'target', 'pipeline', 'passes', 'before', 'after', 'timeMs']) expect(rep).toHaveProperty(k);
  });

  test('a refused compile (validation fails): no model, report refused with the reason, the validation kept', () => {
    const plugin = path.join(tmp, 'break.mjs');
    // a "pass" that changes what the model computes: Relu becomes Sigmoid
    fs.writeFileSync(plugin, `export const passes = [{ name: 'break-relu', description: 'test', level: 1, subgraphs: 'skip',
      run(graph) { let n = 0; for (const node of graph.nodes) if (node.opType === 'Relu') { node.opType = 'Sigmoid'; n++; } return n; } }];\n`);
    const model = path.join(tmp, 'relu.onnx');
    const b = new ModelBuilder({ opset: 13 });
    b.output(b.node('Relu', [b.input('x', 'float32', [4])]), 'y');
    writeModel(b.build(), model);
    const out = path.join(tmp, 'broken.onnx');
    const report = path.join(tmp, 'broken.json');
    const r = run('compile', model, '-o', out, '--plugin', plugin, '--report', report);
    expect(r.status).toBe(1);
    expect(fs.existsSync(out)).toBe(false);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep).toMatchObject({ status: 'refused', output: null, validation: { ok: false } });
    expect(rep.reasons[0]).toMatch(/differs from the original/);
  });

  test('--quantize on a model ConvInteger-quantized by another tool: refused in one line naming the file and what was found', () => {
    const out = path.join(tmp, 'q.onnx');
    for (const mode of ['dynamic', 'static', 'int4']) {
      const r = run('compile', CNN_INT, '-t', 'x86-avx2', '-o', out, '--quantize', mode, '--no-validate');
      expect(r.status, r.stderr).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(CNN_INT);
      expect(lines[0]).toMatch(/already quantized \(4 ai\.onnx::DynamicQuantizeLinear, 4 ai\.onnx::ConvInteger\)/);
      expect(fs.existsSync(out)).toBe(false);
    }
    const bert = run('compile', BERT_INT, '-t', 'x86-vnni', '-o', out, '--quantize', 'dynamic', '--no-validate');
    expect(bert.status).toBe(1);
    expect(bert.stderr).toMatch(/ai\.onnx::MatMulInteger/);
    // without --quantize it compiles, as it is
    const plain = run('compile', CNN_INT, '-t', 'x86-avx2', '-o', out);
    expect(plain.status, plain.stderr).toBe(0);
  });

  test('--quantize on our own QDQ (static) output: refused too', async () => {
    const once = fixture('cnn-tiny-op13');
    await compile(once, target('x86-avx2'), { runtime: onnxruntimeNode, quantize: { mode: 'static', report: {} } });
    expect(Object.keys(quantizedOps(once))).toContain('ai.onnx::QuantizeLinear');
    const err = await compile(once, target('x86-avx2'), { runtime: onnxruntimeNode, quantize: { mode: 'dynamic', report: {} } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetargetError);
    expect((err as RetargetError).format()).toMatch(/^pass quantize-dynamic: the model is already quantized \(\d+ ai\.onnx::QuantizeLinear/);
  });
});
