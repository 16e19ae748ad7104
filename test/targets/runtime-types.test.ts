/**
 * The CPU capability tables' type rows against the runtimes themselves (issue 19): one-node models, one
 * per op and element type, built here and loaded and run in onnxruntime-node's CPU EP (ortCpu) and in
 * onnxruntime-web's wasm EP in Node (ortWasm). The table's verdict (checkPlacement: runs, or runs with
 * casts, or a violation) must agree with what the runtime does (runs, or refuses to load or run).
 *
 * PROBE_REPORT=1 prints the whole table of measurements.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { syntheticInputs } from '../../src/inputs.js';
import { serializeModel } from '../../src/io.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { toBfloat16Bits, toFloat16Bits } from '../../src/ir/half.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { toOrtTensor } from '../../src/node/ort.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { parseModel } from '../../src/io.js';
import type { Capabilities } from '../../src/target.js';
import { checkPlacement } from '../../targets/capabilities/check.js';
import { ortCpu } from '../../targets/capabilities/ort-cpu.js';
import { ortWasm } from '../../targets/capabilities/ort-wasm.js';

type TypeName = 'float32' | 'float16' | 'float64' | 'int32' | 'bfloat16';
const CODE: Record<TypeName, number> = { float32: DataType.FLOAT, float16: DataType.FLOAT16, float64: DataType.DOUBLE, int32: DataType.INT32, bfloat16: DataType.BFLOAT16 };

interface Probe {
  op: string;
  domain?: string;
  types: TypeName[];
  opset?: number;
  build: (b: ModelBuilder, t: number) => void;
}

/** A constant of element type `t`: small values (integers for int32). */
function constOf(t: number, dims: number[], seed = 1): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
  switch (t) {
    case DataType.FLOAT: return Tensor.float32(vals, dims);
    case DataType.FLOAT16: return Tensor.fromTypedArray(DataType.FLOAT16, dims, Uint16Array.from(vals, toFloat16Bits));
    case DataType.BFLOAT16: return Tensor.fromTypedArray(DataType.BFLOAT16, dims, Uint16Array.from(vals, toBfloat16Bits));
    case DataType.DOUBLE: return Tensor.fromTypedArray(DataType.DOUBLE, dims, Float64Array.from(vals));
    case DataType.INT32: return Tensor.int32(vals.map((v) => Math.round(v * 4)), dims);
    default: throw new Error(`constOf: type ${t}`);
  }
}

const MS = { domain: 'com.microsoft' };
const FLOATS: TypeName[] = ['float32', 'float16', 'float64', 'bfloat16'];
const NUMERIC: TypeName[] = [...FLOATS, 'int32'];

function probes(): Probe[] {
  const unary = (op: string, types: TypeName[], attrs: Record<string, unknown> = {}, domain?: string, shape = [1, 4, 6, 6]): Probe => ({
    op, types, ...(domain ? { domain } : {}),
    build: (b, t) => { b.output(b.node(op, [b.input('x', t, shape)], attrs, domain ? { domain } : {}), 'y'); },
  });
  const binary = (op: string, types: TypeName[]): Probe => ({
    op, types, build: (b, t) => { b.output(b.node(op, [b.input('x', t, [2, 3, 4]), b.input('z', t, [2, 3, 4])]), 'y'); },
  });
  return [
    { op: 'Conv', types: FLOATS, build: (b, t) => { b.output(b.node('Conv', [b.input('x', t, [1, 4, 6, 6]), b.constant(constOf(t, [4, 4, 3, 3]), 'w'), b.constant(constOf(t, [4]), 'bias')], { pads: [1, 1, 1, 1] }), 'y'); } },
    { op: 'MatMul', types: NUMERIC, build: (b, t) => { b.output(b.node('MatMul', [b.input('x', t, [2, 8, 16]), b.input('w', t, [16, 8])]), 'y'); } },
    { op: 'Gemm', types: NUMERIC, build: (b, t) => { b.output(b.node('Gemm', [b.input('x', t, [4, 16]), b.constant(constOf(t, [8, 16]), 'w'), b.constant(constOf(t, [8]), 'c')], { transB: 1 }), 'y'); } },
    binary('Add', NUMERIC),
    binary('Mul', NUMERIC),
    binary('Pow', NUMERIC),
    unary('Relu', NUMERIC),
    unary('Sigmoid', FLOATS),
    unary('Tanh', FLOATS),
    unary('Erf', FLOATS),
    unary('Sqrt', FLOATS),
    unary('Softmax', FLOATS, { axis: -1 }),
    unary('MaxPool', FLOATS, { kernel_shape: [2, 2] }),
    unary('AveragePool', FLOATS, { kernel_shape: [2, 2] }),
    unary('GlobalAveragePool', FLOATS),
    unary('ReduceMean', NUMERIC, { keepdims: 1 }),
    unary('Transpose', NUMERIC, { perm: [0, 2, 3, 1] }),
    { op: 'LayerNormalization', types: FLOATS, build: (b, t) => { b.output(b.node('LayerNormalization', [b.input('x', t, [2, 5, 16]), b.constant(constOf(t, [16]), 'g'), b.constant(constOf(t, [16]), 'bb')], { axis: -1 }), 'y'); } },
    { op: 'Reshape', types: NUMERIC, build: (b, t) => { b.output(b.node('Reshape', [b.input('x', t, [2, 8]), b.constant(Tensor.int64([4, 4], [2]), 'shape')]), 'y'); } },
    { op: 'Concat', types: NUMERIC, build: (b, t) => { b.output(b.node('Concat', [b.input('x', t, [2, 3]), b.input('z', t, [1, 3])], { axis: 0 }), 'y'); } },
    { op: 'Gather', types: NUMERIC, build: (b, t) => { b.output(b.node('Gather', [b.input('x', t, [5, 4]), b.constant(Tensor.int64([0, 3], [2]), 'i')], { axis: 0 }), 'y'); } },
    { op: 'Cast', types: NUMERIC, build: (b, t) => { b.output(b.node('Cast', [b.input('x', t, [2, 8])], { to: t === DataType.FLOAT ? DataType.FLOAT16 : DataType.FLOAT }), 'y'); } },
    // com.microsoft: what the CPU targets' passes emit
    { op: 'FusedConv', ...MS, types: FLOATS, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 4, 6, 6]), b.constant(constOf(t, [4, 4, 3, 3]), 'w'), b.constant(constOf(t, [4]), 'bias')], { activation: 'Relu', pads: [1, 1, 1, 1] }, MS), 'y'); } },
    unary('Gelu', FLOATS, {}, 'com.microsoft'),
    unary('FastGelu', FLOATS, {}, 'com.microsoft'),
    { op: 'SkipLayerNormalization', ...MS, types: FLOATS, build: (b, t) => { b.output(b.node('SkipLayerNormalization', [b.input('x', t, [2, 5, 16]), b.input('s', t, [2, 5, 16]), b.constant(constOf(t, [16]), 'g'), b.constant(constOf(t, [16]), 'bb')], { epsilon: 1e-5 }, MS), 'y'); } },
    { op: 'SkipSimplifiedLayerNormalization', ...MS, types: FLOATS, build: (b, t) => { b.output(b.node('SkipSimplifiedLayerNormalization', [b.input('x', t, [2, 5, 16]), b.input('s', t, [2, 5, 16]), b.constant(constOf(t, [16]), 'g')], { epsilon: 1e-5 }, MS), 'y'); } },
    { op: 'Attention', ...MS, types: FLOATS, build: (b, t) => { b.output(b.node('Attention', [b.input('x', t, [1, 3, 16]), b.constant(constOf(t, [16, 48]), 'w'), b.constant(constOf(t, [48]), 'bias')], { num_heads: 2 }, MS), 'y'); } },
    { op: 'MultiHeadAttention', ...MS, types: FLOATS, build: (b, t) => { b.output(b.node('MultiHeadAttention', [b.input('q', t, [1, 3, 16]), b.input('k', t, [1, 3, 16]), b.input('v', t, [1, 3, 16])], { num_heads: 2 }, MS), 'y'); } },
    { op: 'MatMulNBits', ...MS, types: FLOATS, build: (b, t) => {
      b.output(b.node('MatMulNBits', [b.input('x', t, [2, 32]), b.constant(Tensor.fromTypedArray(DataType.UINT8, [8, 1, 16], new Uint8Array(128).fill(0x98)), 'wq'), b.constant(constOf(t, [8]), 's')], { K: 32, N: 8, bits: 4, block_size: 32 }, MS), 'y');
    } },
    { op: 'DynamicQuantizeMatMul', ...MS, types: FLOATS, build: (b, t) => {
      b.output(b.node('DynamicQuantizeMatMul', [b.input('x', t, [2, 16]), b.constant(Tensor.fromTypedArray(DataType.INT8, [16, 8], new Int8Array(128).fill(3)), 'wq'), b.constant(constOf(t, [1]), 's')], {}, MS), 'y');
    } },
  ];
}

interface Case { op: string; domain: string; type: TypeName; model: Model; bytes: Uint8Array; casts: number }

/**
 * The model the runtimes get for a bfloat16 probe: onnxruntime's JavaScript API has no bfloat16 tensors
 * (a session with a bfloat16 graph input fails: "Unsupported data type: 16"), so its bfloat16 inputs
 * come in as float32 through a Cast, and its outputs leave through a Cast to float32. The probed node
 * is the same; the table judges the one-node model.
 */
class Bf16InterfaceBuilder extends ModelBuilder {
  override input(name: string, elemType: number | string, shape?: (number | string)[]): ReturnType<ModelBuilder['input']> {
    if (elemType !== DataType.BFLOAT16) return super.input(name, elemType, shape);
    return this.node('Cast', [super.input(name, DataType.FLOAT, shape)], { to: DataType.BFLOAT16 });
  }
  override output(v: ReturnType<ModelBuilder['input']>, name?: string): ReturnType<ModelBuilder['input']> {
    return super.output(this.node('Cast', [v], { to: DataType.FLOAT }), name);
  }
}

/** the one-node model the table judges, by case (a bfloat16 case runs behind Casts) */
const judged = new Map<Case, Model>();

function cases(): Case[] {
  const out: Case[] = [];
  for (const p of probes()) {
    for (const type of p.types) {
      const opts = { opset: p.opset ?? 17, opsets: { 'com.microsoft': 1 } };
      const b = new ModelBuilder(opts);
      p.build(b, CODE[type]);
      const model = b.build();
      let run = model;
      if (type === 'bfloat16') {
        const w = new Bf16InterfaceBuilder(opts);
        p.build(w, CODE[type]);
        run = w.build();
      }
      const casts = run.graph.nodes.filter((n) => n.opType === 'Cast').length;
      out.push({ op: p.op, domain: p.domain ?? 'ai.onnx', type, model: run, bytes: concatChunks(serializeModel(run).chunks), casts });
      judged.set(out[out.length - 1]!, model);
    }
  }
  return out;
}

interface Outcome { runs: boolean; error?: string; casts?: number }

interface OrtLike {
  InferenceSession: { create(model: Uint8Array, opts?: Record<string, unknown>): Promise<{ run(feeds: Record<string, unknown>): Promise<unknown>; release(): Promise<void> }> };
  Tensor: new (type: string, data: unknown, dims: number[]) => unknown;
}

/** Load and run `c` in a runtime; for onnxruntime-node, also count the Casts in the optimized graph. */
async function measure(rt: OrtLike, c: Case, optimizedPath?: string): Promise<Outcome> {
  const firstLine = (e: unknown): string => String((e as Error).message ?? e).split('\n')[0]!.slice(0, 200);
  let session;
  try {
    session = await rt.InferenceSession.create(c.bytes, {
      executionProviders: [rt === (ort as unknown) ? 'cpu' : 'wasm'],
      logSeverityLevel: 4,
      graphOptimizationLevel: 'all',
      ...(optimizedPath ? { optimizedModelFilePath: optimizedPath } : {}),
    });
  } catch (e) {
    return { runs: false, error: `load: ${firstLine(e)}` };
  }
  let casts: number | undefined;
  if (optimizedPath && fs.existsSync(optimizedPath)) {
    casts = parseModel(fs.readFileSync(optimizedPath)).model.graph.nodes.filter((n) => n.opType === 'Cast').length - c.casts;
  }
  try {
    const feeds = syntheticInputs(c.model, { seed: 1, intHigh: 3 });
    const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => {
      const o = toOrtTensor(v);
      return [k, new rt.Tensor(o.type, o.data, [...o.dims])];
    }));
    await session.run(inputs);
  } catch (e) {
    return { runs: false, error: `run: ${firstLine(e)}`, ...(casts !== undefined ? { casts } : {}) };
  } finally {
    await session.release();
  }
  return { runs: true, ...(casts !== undefined ? { casts } : {}) };
}

function verdict(c: Case, caps: Capabilities): { ok: boolean; withCasts: boolean; reason?: string } {
  const r = checkPlacement(judged.get(c)!, caps);
  return { ok: r.violations.length === 0, withCasts: r.withCasts.length > 0, ...(r.violations[0] ? { reason: r.violations[0].reason } : {}) };
}

const ALL = cases();
const REPORT = !!process.env.PROBE_REPORT;

/**
 * Types the op's schema rejects, where the table (which has kernel rows, not schemas) says the node runs
 * with casts: the runtime refuses the model as invalid ONNX. checkPlacement does not model schemas.
 */
const SCHEMA_REJECTS = new Set(['com.microsoft::DynamicQuantizeMatMul float16']);

const nameOf = (c: Case): string => `${c.domain === 'ai.onnx' ? '' : `${c.domain}::`}${c.op} ${c.type}`;

describe('CPU tables against onnxruntime-node (CPU EP) and onnxruntime-web (wasm EP)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runtime-types-'));
  const results = new Map<Case, { cpu: Outcome; wasm: Outcome }>();
  beforeAll(async () => {
    const w = await import('onnxruntime-web');
    w.env.wasm.numThreads = 1;
    const web = w as unknown as OrtLike;
    for (const [i, c] of ALL.entries()) {
      results.set(c, { cpu: await measure(ort as unknown as OrtLike, c, path.join(tmp, `${i}.onnx`)), wasm: await measure(web, c) });
    }
    if (REPORT) {
      const fmt = (o: Outcome, v: ReturnType<typeof verdict>): string =>
        `${o.runs ? 'runs' : 'NO'}${o.casts ? `+${o.casts}casts` : ''} table:${v.ok ? (v.withCasts ? 'casts' : 'ok') : 'NO'}${o.error ? ` (${o.error})` : ''}`;
      console.log(ALL.map((c) => `${nameOf(c).padEnd(44)} cpu ${fmt(results.get(c)!.cpu, verdict(c, ortCpu)).padEnd(40)} wasm ${fmt(results.get(c)!.wasm, verdict(c, ortWasm))}`).join('\n'));
    }
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test.each([['ortCpu', ortCpu, 'cpu'], ['ortWasm', ortWasm, 'wasm']] as const)('%s: the table runs a probe (plainly or with casts) exactly when the runtime does', (_, caps, rt) => {
    const wrong: string[] = [];
    for (const c of ALL) {
      if (SCHEMA_REJECTS.has(nameOf(c))) continue;
      const o = results.get(c)![rt];
      const v = verdict(c, caps);
      if (o.runs !== v.ok) wrong.push(`${nameOf(c)}: runtime ${o.runs ? 'runs' : `refuses: ${o.error}`}; table ${v.ok ? 'runs' : v.reason}`);
    }
    expect(wrong).toEqual([]);
  });

  test('the probes cover each verdict on both runtimes: plain, with casts (float16), refused (float64, bfloat16)', () => {
    for (const [caps, rt] of [[ortCpu, 'cpu'], [ortWasm, 'wasm']] as const) {
      const pick = (op: string, type: TypeName) => ALL.find((c) => c.op === op && c.type === type)!;
      expect([results.get(pick('Conv', 'float32'))![rt].runs, verdict(pick('Conv', 'float32'), caps)]).toEqual([true, { ok: true, withCasts: false }]);
      expect([results.get(pick('Conv', 'float16'))![rt].runs, verdict(pick('Conv', 'float16'), caps)]).toEqual([true, { ok: true, withCasts: true }]);
      expect(results.get(pick('Conv', 'float64'))![rt].runs).toBe(false);
      expect(results.get(pick('Add', 'bfloat16'))![rt].runs).toBe(false);
    }
  });

  test('onnxruntime-node: a probe the table runs with casts has Casts inserted in the optimized graph, and one it runs plainly has none', () => {
    const wrong: string[] = [];
    for (const c of ALL) {
      const o = results.get(c)!.cpu;
      if (!o.runs || c.type === 'bfloat16') continue; // the bfloat16 interface Casts are the runtime's to merge
      const v = verdict(c, ortCpu);
      if (v.withCasts !== (o.casts ?? 0) > 0) wrong.push(`${nameOf(c)}: ${o.casts ?? 0} Cast(s) inserted; table ${v.withCasts ? 'with casts' : 'plain'}`);
    }
    expect(wrong).toEqual([]);
  });

  test('a type the schema rejects: the runtime refuses the model as invalid (not a kernel question)', () => {
    for (const c of ALL.filter((x) => SCHEMA_REJECTS.has(nameOf(x)))) {
      expect(results.get(c)!.cpu.error).toMatch(/invalid model/);
      expect(results.get(c)!.wasm.error).toMatch(/invalid model/);
    }
  });
});
