/**
 * npm run bench:quantize [MODEL_DIR ...] [--runs N] [--warmup N] [--threads N] [--seeds N] [--conv]
 *
 * Dynamic int8 and int4 against fp32 on exported transformers (default: gpt2-small-op17 at seq 64
 * and bert-base-op17 at seq 128 under /work/large, made by shared/corpus/export.py). Each model is
 * compiled fp32 for x86-avx2, then quantize-dynamic and
 * quantize-int4 run on the compiled model. Reported: file sizes, accuracy of the main output against
 * fp32 (cosine, top-1 over the last axis, worst over several seeded inputs), and latency with ONNX
 * Runtime (CPU, optimization level all, 2 intra-op threads), runs interleaved fp32 / int8 / int4 so
 * drift hits all alike (in settled blocks: src/bench/interleave.ts), as p50 ratios fp32/variant (speedup) with a bootstrap 95% CI.
 *
 * Bars (issue "Quantization and precision"): int8 >= 1.6x faster than fp32 with cosine >= 0.99;
 * int4 file <= 1/5 of fp32 with cosine >= 0.98.
 *
 * --conv: also time one Conv (64 -> 64, 3x3, 56x56) fp32 against its dynamic int8 form
 * (DynamicQuantizeLinear + ConvInteger + Cast + Mul): the measurement behind quantize-dynamic
 * leaving Conv float.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { quantizeDynamic } from '../passes/quantize/quantize-dynamic.js';
import { quantizeInt4 } from '../passes/quantize/quantize-int4.js';
import { outputMetrics } from '../src/bench/metrics.js';
import { timeInterleaved } from '../src/bench/interleave.js';
import { bootstrapRatioCI, median } from '../src/bench/stats.js';
import { compile } from '../src/compile.js';
import { intInputRanges, syntheticInputs } from '../src/inputs.js';
import { DataType } from '../src/ir/dtype.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { serializeModel } from '../src/io.js';
import { readModel, writeModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { concatChunks } from '../src/onnx/codec.js';
import { PassManager } from '../src/pass/manager.js';
import type { Pass, QuantizeOptions } from '../src/pass/pass.js';
import type { Session } from '../src/runtime.js';
import type { Target } from '../src/target.js';
import { x86Avx2 } from '../targets/x86-avx2.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const RUNS = flag('--runs', 20);
const WARMUP = flag('--warmup', 3);
const THREADS = flag('--threads', 2);
const SEEDS = flag('--seeds', 3);
const dirs = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && ['--runs', '--warmup', '--threads', '--seeds'].includes(args[i - 1]!)));
const models = dirs.length ? dirs : ['/work/large/gpt2-small-op17', '/work/large/bert-base-op17'];

/**
 * Fusions that swallow weights into ops the quantization passes cannot rewrite (Attention holds the
 * QKV weight, EmbedLayerNormalization the embedding tables): the quantized variants are compiled
 * without them, so that those weights are quantized too.
 */
const WEIGHT_FUSIONS = ['fuse-attention', 'fuse-embed-layernorm'];

async function compileFp32(file: string, disablePasses: string[] = []): Promise<{ model: Model; target: string; ranges: Record<string, number> }> {
  const { model } = readModel(file);
  // valid token id ranges come from the original: fusions (EmbedLayerNormalization) hide the Gathers
  const ranges = intInputRanges(model);
  await compile(model, x86Avx2, { disablePasses });
  return { model, target: 'x86-avx2', ranges };
}

async function quantized(model: Model, pass: Pass, quantize: QuantizeOptions, target: Target): Promise<{ model: Model; ms: number }> {
  const out = cloneModel(model);
  const t0 = performance.now();
  await new PassManager([pass], { quantize, target }).run(out);
  return { model: out, ms: performance.now() - t0 };
}

async function session(model: Model): Promise<Session> {
  return onnxruntimeNode.createSession(concatChunks(serializeModel(model).chunks), { graphOptimizationLevel: 'all', intraOpNumThreads: THREADS });
}

function dimsFor(model: Model, seq: number): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const v of model.graph.inputs) {
    if (v.type?.kind !== 'tensor') continue;
    for (const d of v.type.shape ?? []) if (typeof d === 'string') dims[d] = /batch/i.test(d) ? 1 : seq;
  }
  return dims;
}

const fmt = (x: number, d = 2): string => x.toFixed(d);
const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;

async function benchModel(dir: string): Promise<void> {
  const file = path.join(dir, 'model.onnx');
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as { name: string; config?: { seq?: number } };
  const seq = meta.config?.seq ?? (meta.name.startsWith('bert') ? 128 : 64);
  console.log(`\n## ${meta.name} (seq ${seq}, ${THREADS} threads, ORT level all, ${os.cpus()[0]?.model ?? ''})`);
  const t0 = performance.now();
  const { model: fp32, target, ranges } = await compileFp32(file);
  console.log(`  fp32 compiled for ${target} in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  const q8opts: QuantizeOptions = { mode: 'dynamic' };
  const q4opts: QuantizeOptions = { mode: 'int4' };
  const base = target === 'x86-avx2' ? (await compileFp32(file, WEIGHT_FUSIONS)).model : fp32;
  if (base !== fp32) console.log(`  quantized variants: compiled for x86-avx2 without ${WEIGHT_FUSIONS.join(', ')}, then quantized`);
  const int8 = await quantized(base, quantizeDynamic, q8opts, x86Avx2);
  const int4 = await quantized(base, quantizeInt4, q4opts, x86Avx2);
  const r8 = q8opts.report?.['quantize-dynamic'] as { quantized: number; skipped: Record<string, number>; weightBytesBefore: number; weightBytesAfter: number; form: string };
  const r4 = q4opts.report?.['quantize-int4'] as { quantized: number; embeddings: number; skipped: Record<string, number>; weightBytesBefore: number; weightBytesAfter: number; blockSize: number; accuracyLevel: number };
  console.log(`  int8: ${r8.quantized} MatMul/Gemm -> ${r8.form} in ${fmt(int8.ms / 1000, 1)} s; weights ${mb(r8.weightBytesBefore)} -> ${mb(r8.weightBytesAfter)}; skipped ${JSON.stringify(r8.skipped)}`);
  console.log(`  int4: ${r4.quantized} MatMul/Gemm -> MatMulNBits (block ${r4.blockSize}, accuracy_level ${r4.accuracyLevel}), ${r4.embeddings} embedding Gather -> GatherBlockQuantized in ${fmt(int4.ms / 1000, 1)} s; weights ${mb(r4.weightBytesBefore)} -> ${mb(r4.weightBytesAfter)}; skipped ${JSON.stringify(r4.skipped)}`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-quant-'));
  const size = (m: Model, name: string): number => {
    const w = writeModel(m, path.join(tmp, `${name}.onnx`));
    return w.size + (w.dataSize ?? 0);
  };
  const sizes = { fp32: size(fp32, 'fp32'), int8: size(int8.model, 'int8'), int4: size(int4.model, 'int4') };
  const original = fs.statSync(file).size;
  fs.rmSync(tmp, { recursive: true, force: true });

  const variants = [['fp32', fp32], ['int8', int8.model], ['int4', int4.model]] as const;
  const sessions: Session[] = [];
  for (const [, m] of variants) sessions.push(await session(m));
  const dims = dimsFor(fp32, seq);
  const mainOut = fp32.graph.outputs[0]!.name;
  // accuracy: worst over SEEDS seeded input sets (valid token ids over the whole vocabulary)
  const acc = { int8: { cosine: 1, top1: 1 }, int4: { cosine: 1, top1: 1 } };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const feeds = syntheticInputs(fp32, { seed, dims, intRanges: ranges });
    const ref = (await sessions[0]!.run(feeds, { outputs: [mainOut] }))[mainOut]!;
    for (const [i, key] of [[1, 'int8'], [2, 'int4']] as const) {
      const got = (await sessions[i]!.run(feeds, { outputs: [mainOut] }))[mainOut]!;
      const m = outputMetrics(mainOut, ref, got);
      acc[key].cosine = Math.min(acc[key].cosine, m.cosine);
      if (m.top1 !== undefined) acc[key].top1 = Math.min(acc[key].top1, m.top1);
    }
  }
  // latency, interleaved in settled blocks (src/bench/interleave.ts)
  const feeds = syntheticInputs(fp32, { seed: 1, dims, intRanges: ranges });
  for (let r = 0; r < WARMUP; r++) for (const s of sessions) await s.run(feeds, { outputs: [mainOut] });
  const samples = (await timeInterleaved(sessions.map((s) => () => s.run(feeds, { outputs: [mainOut] })), { runs: RUNS })).timed;
  for (const s of sessions) await s.release();

  console.log('');
  console.log(`| variant | file | vs fp32 | p50 ms | speedup fp32/variant (95% CI) | cosine (worst of ${SEEDS}) | top-1 |`);
  console.log('|---|---|---|---|---|---|---|');
  console.log(`| fp32 (${target}) | ${mb(sizes.fp32)} | 1 | ${fmt(median(samples[0]!), 1)} | 1 | 1 | 1 |`);
  for (const [i, key] of [[1, 'int8'], [2, 'int4']] as const) {
    const ci = bootstrapRatioCI(samples[i]!, samples[0]!, { seed: 7 });
    console.log(`| ${key} | ${mb(sizes[key])} | 1/${fmt(sizes.fp32 / sizes[key], 2)} | ${fmt(median(samples[i]!), 1)} | ${fmt(ci.ratio)}x (${fmt(ci.ci95[0])}-${fmt(ci.ci95[1])}) | ${acc[key].cosine.toFixed(5)} | ${(acc[key].top1 * 100).toFixed(1)}% |`);
  }
  console.log(`(original file ${mb(original)})`);
  const s8 = bootstrapRatioCI(samples[1]!, samples[0]!, { seed: 7 });
  const bar8 = s8.ratio >= 1.6 && acc.int8.cosine >= 0.99;
  const bar4 = sizes.int4 <= sizes.fp32 / 5 && acc.int4.cosine >= 0.98;
  console.log(`bars: int8 >= 1.6x and cosine >= 0.99: ${bar8 ? 'MET' : 'NOT MET'} (${fmt(s8.ratio)}x, ${acc.int8.cosine.toFixed(4)}); int4 file <= 1/5 and cosine >= 0.98: ${bar4 ? 'MET' : 'NOT MET'} (1/${fmt(sizes.fp32 / sizes.int4)}, ${acc.int4.cosine.toFixed(4)})`);
}

/** One Conv fp32 vs DynamicQuantizeLinear + ConvInteger (u8 x s8 per-tensor) + Cast + Mul. */
async function benchConv(): Promise<void> {
  const c = 64, hw = 56;
  const w = Float32Array.from({ length: c * c * 9 }, (_, i) => Math.sin(i * 12.9898) * 0.1);
  const x = Tensor.float32(Float32Array.from({ length: c * hw * hw }, (_, i) => Math.cos(i * 0.37)), [1, c, hw, hw]);
  const f = new ModelBuilder({ opset: 17 });
  f.output(f.node('Conv', [f.input('x', 'float32', [1, c, hw, hw]), f.constant(Tensor.float32(w, [c, c, 3, 3]), 'w')], { pads: [1, 1, 1, 1] }), 'y');
  const q = new ModelBuilder({ opset: 17 });
  const amax = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const scale = amax / 127;
  const wq = Tensor.fromTypedArray(DataType.INT8, [c, c, 3, 3], Int8Array.from(w, (v) => Math.round(v / scale)));
  const [xq, xs, xzp] = q.nodeN('DynamicQuantizeLinear', [q.input('x', 'float32', [1, c, hw, hw])], {}, { outputs: 3 });
  const acc = q.node('ConvInteger', [xq!, q.constant(wq, 'wq'), xzp!], { pads: [1, 1, 1, 1] });
  q.output(q.node('Mul', [q.node('Cast', [acc], { to: DataType.FLOAT }), q.node('Mul', [xs!, q.constant(Tensor.float32([scale], []), 's')])]), 'y');
  const sessions = [await session(f.build()), await session(q.build())];
  for (let r = 0; r < WARMUP; r++) for (const s of sessions) await s.run({ x });
  const samples = (await timeInterleaved(sessions.map((s) => () => s.run({ x })), { runs: RUNS * 2 })).timed;
  for (const s of sessions) await s.release();
  const ci = bootstrapRatioCI(samples[1]!, samples[0]!, { seed: 7 });
  console.log(`\n## Conv 64->64 3x3 on 56x56: fp32 p50 ${fmt(median(samples[0]!))} ms, DynamicQuantizeLinear+ConvInteger p50 ${fmt(median(samples[1]!))} ms: speedup ${fmt(ci.ratio)}x (${fmt(ci.ci95[0])}-${fmt(ci.ci95[1])})`);
}

async function main(): Promise<void> {
  if (args.includes('--conv')) await benchConv();
  for (const dir of models) {
    if (!fs.existsSync(path.join(dir, 'model.onnx'))) {
      console.log(`\n## ${dir}: no model.onnx (export it with shared/corpus/export.py): skipped`);
      continue;
    }
    await benchModel(dir);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
