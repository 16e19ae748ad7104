/**
 * npm run bench:fusions -- [MODEL_DIR ...] [--runs N] [--block N] [--warmup N]
 *
 * The transformer fusions against the model as exported. For each model folder (default
 * /work/large/gpt2-small-op17 and /work/large/bert-base-op17): compile for the x86-avx2 target
 * (what users get: the portable passes, then the fusions into com.microsoft ops). Then time original vs fused in ONNX Runtime (CPU, optimization level all,
 * 2 intra-op threads), interleaved in settled blocks (src/bench/interleave.ts), at gpt2: batch 1 seq 8 and seq 64; bert: batch 1
 * seq 128. Prints the speedup (median original / median fused) with a bootstrap 95% CI, the max
 * abs error of every output against the original, the fused op counts, and achieved GFLOP/s
 * (the original's cost-model FLOPs over each latency: the same work for both). A third model,
 * timed in the same rounds, holds only the weight GEMMs (see gemmFloor): the floor under any fp32
 * rewrite, so original / floor is the largest speedup fusion could give on this machine.
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { evaluateNode } from '../src/analysis/evaluator.js';
import { inferShapes } from '../src/analysis/infer.js';
import { modelCost } from '../src/analysis/cost.js';
import { RULES } from '../src/analysis/ops/index.js';
import { timeInterleaved } from '../src/bench/interleave.js';
import { bootstrapRatioCI, median } from '../src/bench/stats.js';
import { compile } from '../src/compile.js';
import { intInputRanges, seededRandom } from '../src/inputs.js';
import { serializeModel } from '../src/io.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Model } from '../src/ir/model.js';
import { verifyModel } from '../src/ir/verify.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { DataType } from '../src/ir/dtype.js';
import type { Value } from '../src/ir/graph.js';
import { Tensor } from '../src/ir/tensor.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { concatChunks } from '../src/onnx/codec.js';
import { x86Avx2 } from '../targets/x86-avx2.js';

/** The x86-avx2 target's recommended ORT session config entries ('session.config:KEY'), used for every session alike. */
const CONFIG: Record<string, string> = Object.fromEntries(Object.entries(x86Avx2.sessionOptions ?? {})
  .filter(([k]) => k.startsWith('session.config:')).map(([k, v]) => [k.slice('session.config:'.length), String(v)]));

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
 * The floor no fp32 graph rewrite can go below: a model of nothing but the fused model's weight
 * GEMMs (every 2-D float initializer a MatMul, Gemm or Attention reads, as [tokens, K] x [K, N]),
 * on the same number of tokens; each output is cut to its first row (a Slice), but for the GEMM
 * that computes a graph output (the LM head's logits), handed out whole as the models do. Streaming those weights through their multiply-adds is work every
 * fp32 form of the model does: original / floor bounds the speedup any fusion can give.
 */
function gemmFloor(fused: Model, tokens: number): Model {
  const b = new ModelBuilder({ opset: 17 });
  const inputs = new Map<number, Value>();
  const [starts, ends, axes] = [b.constant(Tensor.int64([0], [1]), 'starts'), b.constant(Tensor.int64([1], [1]), 'ends'), b.constant(Tensor.int64([0], [1]), 'axes')];
  let i = 0;
  for (const n of fused.graph.nodes) {
    if (!['MatMul', 'Gemm', 'Attention'].includes(n.opType)) continue;
    const t = n.inputs[1]?.initializer;
    if (!t || t.dataType !== DataType.FLOAT || t.dims.length !== 2) continue;
    const tb = n.attr('transB');
    const transB = n.opType === 'Gemm' && tb?.type === 'int' && Number(tb.value) === 1;
    const k = transB ? t.dims[1]! : t.dims[0]!;
    let x = inputs.get(k);
    if (!x) { x = b.input(`x${k}`, 'float32', [tokens, k]); inputs.set(k, x); }
    const y = transB ? b.node('Gemm', [x, b.constant(t, `w${i}`)], { transB: 1 }) : b.node('MatMul', [x, b.constant(t, `w${i}`)]);
    // a GEMM that computes a graph output (the LM head) hands all of it out, as the models do
    b.output(n.outputs[0]?.isGraphOutput ? y : b.node('Slice', [y, starts, ends, axes]), `y${i++}`);
  }
  return b.build();
}

function floorFeeds(floor: Model): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of floor.graph.inputs) {
    const t = v.type;
    const dims = t?.kind === 'tensor' ? (t.shape ?? []).map(Number) : [];
    feeds[v.name] = new ort.Tensor('float32', Float32Array.from({ length: dims[0]! * dims[1]! }, (_, j) => Math.sin(j) * 0.5), dims);
  }
  return feeds;
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
  const runs = opt('--runs', 40), warmup = opt('--warmup', 3), blockSize = opt('--block', 5);
  const dirs = argv.filter((a, i) => !a.startsWith('--') && !['--runs', '--warmup', '--block'].includes(argv[i - 1] ?? ''));
  console.log(`pipeline: the x86-avx2 target's (${x86Avx2.pipeline.length} steps, fusions into com.microsoft ops included)`);
  console.log(`ORT ${ort.env.versions?.common ?? '?'}, graph optimization all, 2 intra-op threads, the target's session config ${JSON.stringify(CONFIG)} for every model, ${runs} timed runs per model in settled blocks of ${blockSize}, after ${warmup} warmups\n`);

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
    const sessOpts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: 2, interOpNumThreads: 1, logSeverityLevel: 3, extra: CONFIG };
    const sa = await ort.InferenceSession.create(bytesA, sessOpts);
    const sb = await ort.InferenceSession.create(bytesB, sessOpts);
    const info = inferShapes(original, RULES, { evaluate: evaluateNode });
    const [batchSym, seqSym] = seqDims(original);
    const cases = name.startsWith('gpt2') ? [[1, 8], [1, 64]] : name.startsWith('bert') ? [[1, 128]] : [[1, 32]];
    for (const [batch, seq] of cases as [number, number][]) {
      const feeds = feedsFor(original, batch, seq, 11);
      const flops = modelCost(original, info, { dims: { [batchSym]: batch, [seqSym]: seq } }).numbers?.flops;
      // accuracy on these inputs
      const outA = await sa.run(feeds), outB = await sb.run(feeds);
      let maxErr = 0;
      for (const k of Object.keys(outA)) {
        const a = outA[k]!.data as Float32Array, b = outB[k]!.data as Float32Array;
        for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!));
      }
      const floor = gemmFloor(fused, batch * seq);
      const sf = await ort.InferenceSession.create(bytesOf(floor), sessOpts);
      const ff = floorFeeds(floor);
      for (let i = 0; i < warmup; i++) { await sa.run(feeds); await sb.run(feeds); await sf.run(ff); }
      const { timed: [ta, tb, tf], transition: [ca, cb, cf] } = await timeInterleaved([() => sa.run(feeds), () => sb.run(feeds), () => sf.run(ff)], { runs, block: blockSize });
      await sf.release();
      const { ratio, ci95 } = bootstrapRatioCI(ta!, tb!, { seed: 1 });
      const gf = (ms: number): string => (flops ? (flops / (ms / 1000) / 1e9).toFixed(1) : '?');
      const [ma, mb, mf] = [median(ta!), median(tb!), median(tf!)];
      console.log(`  batch ${batch} seq ${seq} (warm): original ${ma.toFixed(2)} ms, fused ${mb.toFixed(2)} ms; ` +
        `speedup ${(1 / ratio).toFixed(3)}x (95% CI ${(1 / ci95[1]).toFixed(3)}-${(1 / ci95[0]).toFixed(3)}); ` +
        `max abs error ${maxErr.toExponential(2)}; ${flops ? (flops / 1e9).toFixed(2) : '?'} GFLOP: ${gf(ma)} -> ${gf(mb)} GFLOP/s`);
      const floorMB = floor.graph.nodes.reduce((sum, n) => sum + (n.inputs[1]?.initializer?.byteLength ?? 0), 0) / 1e6;
      console.log(`    floor: the ${floor.graph.outputs.length} weight GEMMs alone (${floorMB.toFixed(0)} MB) ${mf.toFixed(2)} ms: no fp32 rewrite can beat ${(ma / mf).toFixed(3)}x here; ` +
        `just after a switch (caches cold, the other session's threads spinning): original ${median(ca!).toFixed(2)} ms, fused ${median(cb!).toFixed(2)} ms (${(median(ca!) / median(cb!)).toFixed(3)}x), floor ${median(cf!).toFixed(2)} ms`);
    }
    await sa.release();
    await sb.release();
    console.log('');
  }
}

await main(process.argv.slice(2));
