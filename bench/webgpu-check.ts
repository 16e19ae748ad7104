/**
 * npm run bench:webgpu -- [--json FILE] [--runs N] [--modes none,fp16,int4] [--disable-pass a,b] [--no-kernels] [MODEL_DIR ...]
 *
 * The webgpu target checked on a real WebGPU runtime: onnxruntime-node's WebGPU EP (Dawn; Vulkan on
 * Linux). Needs a GPU with a Vulkan driver; this sandbox has none, so it runs on a lent GPU machine.
 *
 * 1. Kernels: one-node models of the ops the webgpu target emits or refuses (float32 and float16;
 *    the integer forms of quantized models), each in a session with CPU fallback disabled: a node
 *    without a WebGPU kernel fails the session. What `check -t webgpu` should claim, measured.
 * 2. Models: each folder's model (default: the fixtures with test data) compiled for webgpu, fp32
 *    and with --quantize fp16 and int4; the original runs on the CPU EP (the reference), the original
 *    and the compiled model on the WebGPU EP (CPU fallback allowed: nodes without a kernel are
 *    counted from the session's failure with fallback disabled). Outputs are compared with the
 *    mode's tolerance, and the two WebGPU runs are timed interleaved (p50 of --runs, default 30).
 * Prints a table; --json writes every figure.
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { compile } from '../src/compile.js';
import { outputMetrics } from '../src/bench/metrics.js';
import { judge, TOLERANCES } from '../src/bench/validate.js';
import { toFloat16Bits } from '../src/ir/half.js';
import { syntheticInputs, intInputRanges } from '../src/inputs.js';
import { serializeModel } from '../src/io.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { cloneModel } from '../src/ir/clone.js';
import { DataType } from '../src/ir/dtype.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { readModel } from '../src/node/files.js';
import { fromOrtTensor, toOrtTensor } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { concatChunks } from '../src/onnx/codec.js';
import type { QuantizeMode } from '../src/pass/pass.js';
import { findTarget } from '../targets/index.js';

type Feeds = Record<string, Tensor>;

/** The EP under test; WEBGPU_CHECK_EP=cpu dry-runs the script on a machine without a GPU. */
const GPU = (process.env.WEBGPU_CHECK_EP ?? 'webgpu') as 'webgpu' | 'cpu';

function bytes(m: Model): Uint8Array {
  return concatChunks(serializeModel(m).chunks);
}

async function session(model: Uint8Array, ep: 'cpu' | 'gpu', noFallback = false, logSeverityLevel: 0 | 4 = 4): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: [ep === 'gpu' ? GPU : 'cpu'],
    logSeverityLevel,
    graphOptimizationLevel: 'all',
    ...(noFallback ? { extra: { session: { disable_cpu_ep_fallback: '1' } } } : {}),
  });
}

async function run(s: ort.InferenceSession, feeds: Feeds): Promise<Record<string, Tensor>> {
  const inputs = Object.fromEntries(s.inputNames.map((n) => [n, toOrtTensor(feeds[n]!)]));
  const out = await s.run(inputs);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, fromOrtTensor(v as ort.Tensor)]));
}

function firstLine(e: unknown): string {
  return String((e as Error).message ?? e).split('\n')[0]!.slice(0, 240);
}

// ---------------------------------------------------------------------------------------------
// 1. one-node kernels
// ---------------------------------------------------------------------------------------------

interface Probe { op: string; domain?: string; type: 'float32' | 'float16' | 'int8'; build: (b: ModelBuilder, t: number) => void }

const F = (t: 'float32' | 'float16'): number => (t === 'float32' ? DataType.FLOAT : DataType.FLOAT16);

function floatTensor(type: number, dims: number[], seed = 1): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
  return type === DataType.FLOAT ? Tensor.float32(data, dims) : Tensor.fromTypedArray(DataType.FLOAT16, dims, Uint16Array.from(data, toFloat16Bits));
}

function probes(): Probe[] {
  const out: Probe[] = [];
  for (const type of ['float32', 'float16'] as const) {
    const unary = (op: string, attrs: Record<string, unknown> = {}, domain?: string): Probe => ({
      op, type, ...(domain ? { domain } : {}),
      build: (b, t) => { b.output(b.node(op, [b.input('x', t, [1, 8, 6, 6])], attrs, domain ? { domain } : {}), 'y'); },
    });
    out.push(unary('Relu'), unary('Sigmoid'), unary('Tanh'), unary('Erf'), unary('Softmax', { axis: -1 }), unary('MaxPool', { kernel_shape: [2, 2] }),
      unary('AveragePool', { kernel_shape: [2, 2] }), unary('GlobalAveragePool'), unary('Gelu', {}, 'com.microsoft'), unary('FastGelu', {}, 'com.microsoft'));
    out.push({ op: 'Add', type, build: (b, t) => { b.output(b.node('Add', [b.input('x', t, [1, 8, 6, 6]), b.input('z', t, [1, 8, 6, 6])]), 'y'); } });
    out.push({ op: 'Conv', type, build: (b, t) => { b.output(b.node('Conv', [b.input('x', t, [1, 8, 6, 6]), b.constant(floatTensor(t, [4, 8, 3, 3]), 'w'), b.constant(floatTensor(t, [4]), 'bias')], { pads: [1, 1, 1, 1] }), 'y'); } });
    out.push({ op: 'FusedConv', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 8, 6, 6]), b.constant(floatTensor(t, [4, 8, 3, 3]), 'w')], { activation: 'Relu', pads: [1, 1, 1, 1] }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'FusedConv+Z', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 8, 6, 6]), b.constant(floatTensor(t, [4, 8, 3, 3]), 'w'), b.constant(floatTensor(t, [4]), 'bias'), b.input('z', t, [1, 4, 6, 6])], { activation: 'Relu', pads: [1, 1, 1, 1] }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'FusedConv group 8', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 8, 6, 6]), b.constant(floatTensor(t, [8, 1, 3, 3]), 'w'), b.constant(floatTensor(t, [8]), 'bias')], { activation: 'Relu', pads: [1, 1, 1, 1], group: 8 }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'FusedConv group 2', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 8, 6, 6]), b.constant(floatTensor(t, [4, 4, 3, 3]), 'w'), b.constant(floatTensor(t, [4]), 'bias')], { activation: 'Relu', pads: [1, 1, 1, 1], group: 2 }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'FusedConv Sigmoid', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 8, 6, 6]), b.constant(floatTensor(t, [4, 8, 3, 3]), 'w'), b.constant(floatTensor(t, [4]), 'bias')], { activation: 'Sigmoid', pads: [1, 1, 1, 1] }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'Conv 1-D', type, build: (b, t) => { b.output(b.node('Conv', [b.input('x', t, [1, 8, 20]), b.constant(floatTensor(t, [4, 8, 3]), 'w'), b.constant(floatTensor(t, [4]), 'bias')], { pads: [1, 1], strides: [2] }), 'y'); } });
    out.push({ op: 'FusedConv 1-D', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 8, 20]), b.constant(floatTensor(t, [4, 8, 3]), 'w'), b.constant(floatTensor(t, [4]), 'bias')], { activation: 'Relu', pads: [1, 1], strides: [2] }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'FusedConv 1-D+Z', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('FusedConv', [b.input('x', t, [1, 8, 20]), b.constant(floatTensor(t, [4, 8, 3]), 'w'), b.constant(floatTensor(t, [4]), 'bias'), b.input('z', t, [1, 4, 10])], { activation: 'Relu', pads: [1, 1], strides: [2] }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'MatMul', type, build: (b, t) => { b.output(b.node('MatMul', [b.input('x', t, [2, 16, 32]), b.constant(floatTensor(t, [32, 24]), 'w')]), 'y'); } });
    out.push({ op: 'Gemm', type, build: (b, t) => { b.output(b.node('Gemm', [b.input('x', t, [4, 32]), b.constant(floatTensor(t, [24, 32]), 'w'), b.constant(floatTensor(t, [24]), 'c')], { transB: 1 }), 'y'); } });
    out.push({ op: 'LayerNormalization', type, build: (b, t) => { b.output(b.node('LayerNormalization', [b.input('x', t, [2, 5, 32]), b.constant(floatTensor(t, [32]), 'g'), b.constant(floatTensor(t, [32]), 'bb')], { axis: -1 }), 'y'); } });
    out.push({ op: 'SimplifiedLayerNormalization', type, build: (b, t) => { b.output(b.node('SimplifiedLayerNormalization', [b.input('x', t, [2, 5, 32]), b.constant(floatTensor(t, [32]), 'g')], { axis: -1, epsilon: 1e-5 }), 'y'); } });
    out.push({ op: 'SkipLayerNormalization', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('SkipLayerNormalization', [b.input('x', t, [2, 5, 32]), b.input('s', t, [2, 5, 32]), b.constant(floatTensor(t, [32]), 'g'), b.constant(floatTensor(t, [32]), 'bb')], { epsilon: 1e-5 }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'SkipSimplifiedLayerNormalization', domain: 'com.microsoft', type, build: (b, t) => { b.output(b.node('SkipSimplifiedLayerNormalization', [b.input('x', t, [2, 5, 32]), b.input('s', t, [2, 5, 32]), b.constant(floatTensor(t, [32]), 'g')], { epsilon: 1e-5 }, { domain: 'com.microsoft' }), 'y'); } });
    out.push({ op: 'MultiHeadAttention', domain: 'com.microsoft', type, build: (b, t) => {
      const [y] = b.nodeN('MultiHeadAttention', [b.input('q', t, [1, 3, 32]), b.input('k', t, [1, 3, 32]), b.input('v', t, [1, 3, 32]), undefined, undefined, b.input('bias', t, [1, 1, 3, 8]), b.input('pk', t, [1, 4, 5, 8]), b.input('pv', t, [1, 4, 5, 8])], { num_heads: 4 }, { domain: 'com.microsoft', outputs: 3 });
      b.output(y!, 'y');
    } });
    out.push({ op: 'RotaryEmbedding', domain: 'com.microsoft', type, build: (b, t) => {
      b.output(b.node('RotaryEmbedding', [b.input('x', t, [1, 3, 32]), b.input('pos', 'int64', [1, 3]), b.constant(floatTensor(t, [16, 4]), 'cos'), b.constant(floatTensor(t, [16, 4], 2), 'sin')], { num_heads: 4 }, { domain: 'com.microsoft' }), 'y');
    } });
    out.push({ op: 'GroupQueryAttention', domain: 'com.microsoft', type, build: (b, t) => {
      const [y] = b.nodeN('GroupQueryAttention', [b.input('q', t, [1, 1, 32]), b.input('k', t, [1, 1, 16]), b.input('v', t, [1, 1, 16]), b.input('pk', t, [1, 2, 8, 8]), b.input('pv', t, [1, 2, 8, 8]), b.input('seqlens_k', 'int32', [1]), b.input('total', 'int32', [])], { num_heads: 4, kv_num_heads: 2 }, { domain: 'com.microsoft', outputs: 3 });
      b.output(y!, 'y');
    } });
    out.push({ op: 'Cast', type, build: (b, t) => { b.output(b.node('Cast', [b.input('x', t, [2, 8])], { to: t === DataType.FLOAT ? DataType.FLOAT16 : DataType.FLOAT }), 'y'); } });
  }
  // weight-only and integer forms: float32 activations
  out.push({ op: 'MatMulNBits', domain: 'com.microsoft', type: 'int8', build: (b) => {
    b.output(b.node('MatMulNBits', [b.input('x', DataType.FLOAT, [2, 64]), b.constant(Tensor.fromTypedArray(DataType.UINT8, [16, 2, 16], new Uint8Array(512).fill(0x98)), 'wq'), b.constant(Tensor.float32(new Array(32).fill(0.01), [32]), 's')], { K: 64, N: 16, bits: 4, block_size: 32, accuracy_level: 4 }, { domain: 'com.microsoft' }), 'y');
  } });
  out.push({ op: 'GatherBlockQuantized', domain: 'com.microsoft', type: 'int8', build: (b) => {
    b.output(b.node('GatherBlockQuantized', [b.constant(Tensor.fromTypedArray(DataType.UINT8, [10, 32], new Uint8Array(320).fill(130)), 'e'), b.input('ids', 'int64', [1, 3]), b.constant(Tensor.float32(new Array(10).fill(0.01), [10, 1]), 's')], { bits: 8, block_size: 32, gather_axis: 0, quantize_axis: 1 }, { domain: 'com.microsoft' }), 'y');
  } });
  out.push({ op: 'DynamicQuantizeLinear', type: 'int8', build: (b) => { const [y] = b.nodeN('DynamicQuantizeLinear', [b.input('x', DataType.FLOAT, [2, 8])], {}, { outputs: 3 }); b.output(y!, 'y'); } });
  out.push({ op: 'MatMulInteger', type: 'int8', build: (b) => { b.output(b.node('MatMulInteger', [b.input('x', DataType.UINT8, [2, 8]), b.constant(Tensor.fromTypedArray(DataType.UINT8, [8, 4], new Uint8Array(32).fill(3)), 'w')]), 'y'); } });
  out.push({ op: 'ConvInteger', type: 'int8', build: (b) => { b.output(b.node('ConvInteger', [b.input('x', DataType.UINT8, [1, 2, 4, 4]), b.constant(Tensor.fromTypedArray(DataType.UINT8, [3, 2, 1, 1], new Uint8Array(6).fill(3)), 'w')]), 'y'); } });
  out.push({ op: 'DequantizeLinear', type: 'int8', build: (b) => { b.output(b.node('DequantizeLinear', [b.input('x', DataType.INT8, [2, 8]), b.constant(Tensor.float32([0.1], []), 's'), b.constant(Tensor.fromTypedArray(DataType.INT8, [], new Int8Array(1)), 'z')]), 'y'); } });
  out.push({ op: 'QuantizeLinear', type: 'int8', build: (b) => { b.output(b.node('QuantizeLinear', [b.input('x', DataType.FLOAT, [2, 8]), b.constant(Tensor.float32([0.1], []), 's'), b.constant(Tensor.fromTypedArray(DataType.INT8, [], new Int8Array(1)), 'z')]), 'y'); } });
  out.push({ op: 'QLinearConv', type: 'int8', build: (b) => {
    const s = (v: number, n: string) => b.constant(Tensor.float32([v], []), n);
    const z = (n: string) => b.constant(Tensor.fromTypedArray(DataType.UINT8, [], new Uint8Array([128])), n);
    b.output(b.node('QLinearConv', [b.input('x', DataType.UINT8, [1, 2, 4, 4]), s(0.1, 'xs'), z('xz'), b.constant(Tensor.fromTypedArray(DataType.UINT8, [3, 2, 1, 1], new Uint8Array(6).fill(130)), 'w'), s(0.1, 'ws'), z('wz'), s(0.2, 'ys'), z('yz')]), 'y');
  } });
  return out;
}

async function probeKernels(): Promise<{ op: string; type: string; webgpu: boolean; error?: string; cosineVsCpu?: number }[]> {
  const rows = [];
  for (const p of probes()) {
    const b = new ModelBuilder({ opset: 21, opsets: { 'com.microsoft': 1 } });
    let row: { op: string; type: string; webgpu: boolean; error?: string; cosineVsCpu?: number; maxAbsVsCpu?: number; cpu?: string };
    try {
      p.build(b, p.type === 'float16' ? F('float16') : F('float32'));
      const m = b.build();
      const s = await session(bytes(m), 'gpu', true);
      const feeds = syntheticInputs(m, { seed: 1, intHigh: 3 });
      if (feeds.seqlens_k) feeds.seqlens_k = Tensor.fromTypedArray(DataType.INT32, [1], new Int32Array([8]));
      if (feeds.total) feeds.total = Tensor.fromTypedArray(DataType.INT32, [], new Int32Array([9]));
      const got = (await run(s, feeds)).y!;
      await s.release();
      row = { op: `${p.domain ? `${p.domain}::` : ''}${p.op}`, type: p.type, webgpu: true };
      // the same node on the CPU EP: does the WebGPU kernel compute what the CPU computes?
      try {
        const c = await session(bytes(m), 'cpu');
        const want = (await run(c, feeds)).y!;
        await c.release();
        const met = outputMetrics('y', want, got);
        Object.assign(row, { cosineVsCpu: met.cosine, maxAbsVsCpu: met.maxAbsError });
      } catch (e) {
        Object.assign(row, { cpu: firstLine(e) });
      }
    } catch (e) {
      row = { op: `${p.domain ? `${p.domain}::` : ''}${p.op}`, type: p.type, webgpu: false, error: firstLine(e) };
    }
    rows.push(row);
    const vs = row.cosineVsCpu !== undefined ? ` vs CPU: cos ${row.cosineVsCpu.toFixed(6)} max abs ${row.maxAbsVsCpu!.toExponential(2)}` : row.cpu ? ` (CPU: ${row.cpu})` : '';
    console.log(`kernel ${row.op.padEnd(44)} ${row.type.padEnd(8)} ${row.webgpu ? `webgpu${vs}` : `NO: ${row.error}`}`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// 2. models compiled for webgpu
// ---------------------------------------------------------------------------------------------

function inputSets(dir: string, m: Model): Feeds[] {
  const sets = testDataSets(dir).map((d) => {
    const t = readTestDataSet(d);
    return Object.fromEntries(t.inputs.map((x, i) => [x.name || m.graph.inputs[i]!.name, x.tensor]));
  });
  return sets.length ? sets : [syntheticInputs(m, { seed: 0, dims: {}, defaultDim: 4, intRanges: intInputRanges(m) })];
}

async function timeTwo(a: ort.InferenceSession, b: ort.InferenceSession, feeds: Feeds, runs: number): Promise<[number, number]> {
  const ta: number[] = [], tb: number[] = [];
  const ia = Object.fromEntries(a.inputNames.map((n) => [n, toOrtTensor(feeds[n]!)]));
  const ib = Object.fromEntries(b.inputNames.map((n) => [n, toOrtTensor(feeds[n]!)]));
  for (let i = 0; i < 3; i++) { await a.run(ia); await b.run(ib); }
  for (let i = 0; i < runs; i++) {
    for (const [s, inp, t] of (i % 2 ? [[b, ib, tb], [a, ia, ta]] : [[a, ia, ta], [b, ib, tb]]) as [ort.InferenceSession, Record<string, ort.Tensor>, number[]][]) {
      const t0 = performance.now();
      await s.run(inp);
      t.push(performance.now() - t0);
    }
  }
  const p50 = (x: number[]) => x.sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
  return [p50(ta), p50(tb)];
}

async function checkModel(dir: string, mode: QuantizeMode | 'none', runs: number, disablePasses: string[] = []): Promise<Record<string, unknown>> {
  const file = path.join(dir, 'model.onnx');
  const original = readModel(file).model;
  const compiled = cloneModel(original);
  const name = `${path.basename(dir)} ${mode}${disablePasses.length ? ` -${disablePasses.join(' -')}` : ''}`;
  try {
    await compile(compiled, findTarget('webgpu')!, { disablePasses, ...(mode === 'none' ? {} : { quantize: { mode, report: {} } }) });
  } catch (e) {
    return { name, compiled: false, error: firstLine(e) };
  }
  const tol = TOLERANCES[mode === 'none' ? 'fp32' : mode === 'fp16' ? 'fp16' : mode === 'int4' ? 'int4' : 'int8']!;
  const sets = inputSets(dir, original);
  const ref = await session(bytes(original), 'cpu');
  const row: Record<string, unknown> = { name, ops: compiled.graph.nodes.length, opsOriginal: original.graph.nodes.length };
  try {
    // nodes the WebGPU EP cannot take: the session with fallback disabled names the first
    try {
      await (await session(bytes(compiled), 'gpu', true)).release();
      row.allOnWebgpu = true;
    } catch (e) {
      row.allOnWebgpu = false;
      row.fallback = firstLine(e);
      // ORT's verbose log (stderr) lists the nodes placed on the CPU EP: 'Node(s) placed on [CPUExecutionProvider]'
      console.error(`=== placement of ${name} ===`);
      await (await session(bytes(compiled), 'gpu', false, 0)).release();
      console.error(`=== end of placement of ${name} ===`);
    }
    const gpuOrig = await session(bytes(original), 'gpu');
    const gpu = await session(bytes(compiled), 'gpu');
    const worst: { output: string; cosine: number; maxAbs: number; ok: boolean; origOnGpuCosine: number }[] = [];
    for (const feeds of sets) {
      const want = await run(ref, feeds);
      const got = await run(gpu, feeds);
      const base = await run(gpuOrig, feeds);
      for (const [k, w] of Object.entries(want)) {
        const elementwise = tol.atol !== undefined ? { atol: tol.atol, rtol: tol.rtol ?? 0 } : undefined;
        const c = judge(outputMetrics(k, w, got[k]!, elementwise), tol);
        const c0 = outputMetrics(k, w, base[k]!, elementwise);
        worst.push({ output: k, cosine: c.cosine, maxAbs: c.maxAbsError, ok: c.ok, origOnGpuCosine: c0.cosine });
      }
    }
    worst.sort((a, b) => Number(a.ok) - Number(b.ok) || a.cosine - b.cosine);
    row.ok = worst.every((w) => w.ok);
    row.worst = worst[0];
    const [tOrig, tComp] = await timeTwo(gpuOrig, gpu, sets[0]!, runs);
    row.msOriginal = tOrig;
    row.msCompiled = tComp;
    row.speedup = tOrig / tComp;
    await gpuOrig.release();
    await gpu.release();
  } catch (e) {
    row.ok = false;
    row.error = firstLine(e);
  } finally {
    await ref.release();
  }
  const w = row.worst as { output: string; cosine: number; maxAbs: number; origOnGpuCosine: number } | undefined;
  console.log(`model ${name.padEnd(34)} ${row.error ? `ERROR ${row.error}` : `${row.ok ? 'ok  ' : 'FAIL'} worst ${w?.output} cos ${w?.cosine.toFixed(6)} (original on webgpu ${w?.origOnGpuCosine.toFixed(6)}) max abs ${w?.maxAbs.toExponential(2)}; ${row.allOnWebgpu ? 'all on webgpu' : `CPU fallback: ${row.fallback}`}; p50 ${(row.msOriginal as number)?.toFixed(3)} -> ${(row.msCompiled as number)?.toFixed(3)} ms (${(row.speedup as number)?.toFixed(2)}x)`}`);
  return row;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (flag: string): string | undefined => { const i = args.indexOf(flag); return i >= 0 ? args.splice(i, 2)[1] : undefined; };
  const json = opt('--json');
  const runs = Number(opt('--runs') ?? 30);
  const modes = (opt('--modes') ?? 'none,fp16,int4').split(',') as (QuantizeMode | 'none')[];
  const disable = opt('--disable-pass')?.split(',') ?? [];
  const noKernels = args.includes('--no-kernels') ? (args.splice(args.indexOf('--no-kernels'), 1), true) : false;
  const dirs = args.length ? args : fs.readdirSync('fixtures/models').map((d) => path.join('fixtures/models', d)).filter((d) => fs.existsSync(path.join(d, 'model.onnx')));
  console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}, backends: ${JSON.stringify(ort.listSupportedBackends?.() ?? [])}`);
  const kernels = noKernels ? [] : await probeKernels();
  const models = [];
  for (const dir of dirs) for (const mode of modes) models.push(await checkModel(dir, mode, runs, disable));
  if (json) fs.writeFileSync(json, `${JSON.stringify({ kernels, models }, null, 1)}\n`);
}

await main();
