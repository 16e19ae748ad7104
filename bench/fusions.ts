/**
 * npm run bench:fusions -- [MODEL_DIR ...] [--runs N] [--warmup N]
 *
 * The transformer fusions against the model as exported. For each model folder (default
 * /work/large/gpt2-small-op17 and /work/large/bert-base-op17): compile for the x86-avx2 target
 * (what users get: the portable passes, then the fusions into com.microsoft ops). Then time original vs fused in ONNX Runtime (CPU, optimization level all,
 * 2 intra-op threads), interleaved A B A B, at gpt2: batch 1 seq 8 and seq 64; bert: batch 1
 * seq 128. Prints the speedup (median original / median fused) with a bootstrap 95% CI, the max
 * abs error of every output against the original, the fused op counts, and achieved GFLOP/s
 * (the original's cost-model FLOPs over each latency: the same work for both). A third model, timed
 * in the same interleaved rounds, holds only the weight GEMMs (see gemmFloor): the floor under
 * any fp32 rewrite, so original / floor is the largest speedup fusion could give on this machine.
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { evaluateNode } from '../src/analysis/evaluator.js';
import { inferShapes } from '../src/analysis/infer.js';
import { modelCost } from '../src/analysis/cost.js';
import { RULES } from '../src/analysis/ops/index.js';
import { bootstrapRatioCI, median } from '../src/bench/stats.js';
import { compile } from '../src/compile.js';
import { intInputRanges, seededRandom } from '../src/inputs.js';
import { serializeModel } from '../src/io.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Model } from '../src/ir/model.js';
import { verifyModel } from '../src/ir/verify.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { concatChunks } from '../src/onnx/codec.js';
import { x86Avx2 } from '../targets/x86-avx2.js';

const DEFAULT_DIRS = ['/work/large/gpt2-small-op17', '/work/large/bert-base-op17'];

function opCounts(model: Model): Record<string, number> {
  const h: Record<string, number> = {};
  for (const g of model.allGraphs()) for (const n of g.nodes) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

function bytesOf(model: Model): Uint8Array {
  return concatChunks(serializeModel(model).chunks);
}

/** Feeds for batch x seq: ids in range, attention_mask all ones, token types 0. */
function feedsFor(model: Model, batch: number, seq: number, seed: number): Record<string, ort.Tensor> {
  const ranges = intInputRanges(model);
  const r = seededRandom(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of model.graph.inputs) {
    if (v.initializer) continue;
    const n = batch * seq;
    let vals: number[];
    if (/mask/i.test(v.name)) vals = new Array<number>(n).fill(1);
    else if (/token_type/i.test(v.name)) vals = new Array<number>(n).fill(0);
    else vals = Array.from({ length: n }, () => Math.floor(r() * (ranges[v.name] ?? 2)));
    feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from(vals.map(BigInt)), [batch, seq]);
  }
  return feeds;
}

/**
 * The floor no graph rewrite can go below: a model of nothing but the compiled model's weight GEMMs
 * (every 2-D float initializer read by a MatMul, Gemm or Attention, as [tokens, K] x [K, N]), on
 * the same number of tokens. Streaming those weights and their multiply-adds is work every fp32
 * graph of this model does; original / floor bounds the speedup any fusion can give.
 */
function gemmFloor(fused: Model, tokens: number): Model {
  const b = new ModelBuilder({ opset: 17 });
  const inputs = new Map<number, ReturnType<ModelBuilder['input']>>();
  let i = 0;
  for (const n of fused.graph.nodes) {
    if (!['MatMul', 'Gemm', 'Attention'].includes(n.opType)) continue;
    const w = n.inputs[1];
    const t = w?.initializer;
    if (!t || t.dataType !== 1 || t.dims.length !== 2) continue;
    const tb = n.attr('transB');
    const transB = n.opType === 'Gemm' && tb?.type === 'int' && Number(tb.value) === 1;
    const k = transB ? t.dims[1]! : t.dims[0]!;
    let x = inputs.get(k);
    if (!x) { x = b.input(`x${k}`, 'float32', [tokens, k]); inputs.set(k, x); }
    const wv = b.constant(t, `w${i}`);
    b.output(transB ? b.node('Gemm', [x, wv], { transB: 1 }) : b.node('MatMul', [x, wv]), `y${i++}`);
  }
  return b.build();
}

function seqDims(model: Model): [string, string] {
  const t = model.graph.inputs[0]!.type;
  const shape = t?.kind === 'tensor' ? t.shape ?? [] : [];
  return [String(shape[0] ?? 'batch'), String(shape[1] ?? 'sequence')];
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string, dflt: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const runs = opt('--runs', 30), warmup = opt('--warmup', 5);
  const dirs = argv.filter((a, i) => !a.startsWith('--') && !['--runs', '--warmup'].includes(argv[i - 1] ?? ''));
  console.log(`pipeline: the x86-avx2 target's (${x86Avx2.pipeline.length} steps, fusions into com.microsoft ops included)`);
  console.log(`ORT ${ort.env.versions?.common ?? '?'}, graph optimization all, 2 intra-op threads, ${runs} interleaved runs after ${warmup} warmups\n`);

  for (const dir of dirs.length ? dirs : DEFAULT_DIRS) {
    const name = path.basename(dir);
    const file = path.join(dir, 'model.onnx');
    if (!fs.existsSync(file)) {
      console.log(`${name}: no ${file}, skipped\n`);
      continue;
    }
    const original = readModel(file).model;
    const fused = cloneModel(original);
    // exactly what users get: the x86-avx2 target's pipeline (portable passes, then the fusions)
    const t0 = performance.now();
    const report = await compile(fused, x86Avx2, { runtime: onnxruntimeNode });
    const compileMs = performance.now() - t0;
    const applied = report.passes.filter((p) => p.name.startsWith('fuse-')).map((p) => `${p.name} ${p.changes}`);
    const problems = verifyModel(fused);
    const h = opCounts(fused);
    const count = (...ops: string[]): number => ops.reduce((s, o) => s + (h[o] ?? 0), 0);
    console.log(`${name}: compile --target x86-avx2 ${compileMs.toFixed(0)} ms (fusion changes: ${applied.join(', ')})${problems.length ? `; VERIFY: ${problems.length} problems` : ''}`);
    console.log(`  fused: Attention ${count('Attention')}, SkipLayerNormalization ${count('SkipLayerNormalization', 'SkipSimplifiedLayerNormalization')}, ` +
      `Gelu ${count('Gelu', 'FastGelu', 'BiasGelu')} (Gelu ${count('Gelu')}, FastGelu ${count('FastGelu')}, BiasGelu ${count('BiasGelu')}), ` +
      `LayerNormalization ${count('LayerNormalization')}, Softmax left ${count('Softmax')}; nodes ${original.graph.nodes.length} -> ${fused.graph.nodes.length}`);

    const bytesA = new Uint8Array(fs.readFileSync(file));
    const bytesB = bytesOf(fused);
    const sessOpts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: 2, interOpNumThreads: 1, logSeverityLevel: 3 };
    const sa = await ort.InferenceSession.create(bytesA, sessOpts);
    const sb = await ort.InferenceSession.create(bytesB, sessOpts);
    const info = inferShapes(original, RULES, { evaluate: evaluateNode });
    const [batchSym, seqSym] = seqDims(original);
    const cases = name.startsWith('gpt2') ? [[1, 8], [1, 64]] : name.startsWith('bert') ? [[1, 128]] : [[1, 32]];
    for (const [batch, seq] of cases as [number, number][]) {
      const feeds = feedsFor(original, batch, seq, 11);
      const floor = gemmFloor(fused, batch * seq);
      const sf = await ort.InferenceSession.create(bytesOf(floor), sessOpts);
      const floorFeeds: Record<string, ort.Tensor> = {};
      for (const v of floor.graph.inputs) {
        const t = v.type;
        const dims = t?.kind === 'tensor' ? (t.shape ?? []).map(Number) : [];
        floorFeeds[v.name] = new ort.Tensor('float32', Float32Array.from({ length: dims[0]! * dims[1]! }, (_, j) => Math.sin(j)), dims);
      }
      const flops = modelCost(original, info, { dims: { [batchSym]: batch, [seqSym]: seq } }).numbers?.flops;
      // accuracy on these inputs
      const outA = await sa.run(feeds), outB = await sb.run(feeds);
      let maxErr = 0;
      for (const k of Object.keys(outA)) {
        const a = outA[k]!.data as Float32Array, b = outB[k]!.data as Float32Array;
        for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!));
      }
      for (let i = 0; i < warmup; i++) { await sa.run(feeds); await sb.run(feeds); await sf.run(floorFeeds); }
      const la: number[] = [], lb: number[] = [], lf: number[] = [];
      for (let i = 0; i < runs; i++) {
        // alternate which goes first, so that neither always runs on a warmer cache
        const order = i % 2 === 0 ? [[sa, la, feeds], [sb, lb, feeds], [sf, lf, floorFeeds]] as const : [[sf, lf, floorFeeds], [sb, lb, feeds], [sa, la, feeds]] as const;
        for (const [s, into, f] of order) {
          const t = performance.now();
          await s.run(f);
          into.push(performance.now() - t);
        }
      }
      await sf.release();
      const { ratio, ci95 } = bootstrapRatioCI(la, lb, { seed: 1 });
      const gf = (ms: number): string => (flops ? (flops / (ms / 1000) / 1e9).toFixed(1) : '?');
      console.log(`  batch ${batch} seq ${seq}: original ${median(la).toFixed(2)} ms, fused ${median(lb).toFixed(2)} ms; ` +
        `speedup ${(1 / ratio).toFixed(3)}x (95% CI ${(1 / ci95[1]).toFixed(3)}-${(1 / ci95[0]).toFixed(3)}; fused/original ${ratio.toFixed(3)}); ` +
        `max abs error ${maxErr.toExponential(2)}; ${flops ? (flops / 1e9).toFixed(2) : '?'} GFLOP: ${gf(median(la))} -> ${gf(median(lb))} GFLOP/s`);
      const floorMB = floor.graph.nodes.reduce((sum, n) => sum + (n.inputs[1]?.initializer?.byteLength ?? 0), 0) / 1e6;
      console.log(`    floor (the ${floor.graph.nodes.length} weight GEMMs alone, ${floorMB.toFixed(0)} MB of weights): ${median(lf).toFixed(2)} ms = ` +
        `${(floorMB / 1000 / (median(lf) / 1000)).toFixed(1)} GB/s; the most any fusion could give: ${(median(la) / median(lf)).toFixed(3)}x, the fused model reaches ${(median(la) / median(lb)).toFixed(3)}x`);
    }
    await sa.release();
    await sb.release();
    console.log('');
  }
}

await main(process.argv.slice(2));
