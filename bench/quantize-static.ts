/**
 * npm run bench:quantize-static -- [MODEL_DIR ...] [--runs N] [--samples N] [--calibration N] [--method minmax|percentile|entropy]
 *
 * Static int8 QDQ as users get it (`compile --target T --quantize static`, minmax, N seeded
 * calibration sets) against the untouched fp32 original. Defaults: /work/large/resnet50 and
 * /work/shared/models/mobilenet_v2. ONNX Runtime CPU, optimization level 'all', 2 intra-op threads,
 * batch 1; latency interleaved in settled blocks (src/bench/interleave.ts) with the ratio of medians and a bootstrap 95% CI; top-1
 * agreement and cosine of the logits on seeded inputs. The bar: >= 1.5x faster, top-1 >= 95%.
 * A model folder with calibration/ and eval/ (test_data_set_* of input_0.pb) and labels.json brings
 * its own inputs (bench/make-trained-cnn.py makes one with trained weights); the accuracy against
 * the labels is printed for fp32 and int8.
 * A second table shows how fragile the model's top-1 is: the agreement with only the Conv weights
 * rounded to 8 and 12 bits (activations float), a bound on what weight rounding alone allows.
 * The quantization preset is the host's: x86-vnni when the CPU has VNNI, else x86-avx2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { timeInterleaved } from '../src/bench/interleave.js';
import { bootstrapRatioCI, median } from '../src/bench/stats.js';
import { compile } from '../src/compile.js';
import { syntheticInputs } from '../src/inputs.js';
import { serializeModel } from '../src/io.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { readModel } from '../src/node/files.js';
import { readInputSets } from '../src/node/inputs.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { concatChunks } from '../src/onnx/codec.js';
import type { QuantizeOptions } from '../src/pass/pass.js';
import type { Session } from '../src/runtime.js';
import { portable } from '../targets/portable.js';
import { x86Avx2 } from '../targets/x86-avx2.js';
import { x86Vnni } from '../targets/x86-vnni.js';

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

function hasVnni(): boolean {
  try {
    return /\b(avx512_vnni|avx_vnni)\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

const bytesOf = (m: Model): Uint8Array => concatChunks(serializeModel(m).chunks);

/**
 * The float model with every Conv weight rounded to `bits` (symmetric, per output channel, as the
 * quantizer stores them) and every activation left float: the best any int8 scheme with
 * round-to-nearest weights can do. When even this misses the top-1 bar, the model's decisions are
 * more fragile than int8 weights allow, whatever the activation calibration.
 */
function weightOnly(fp32: Model, bits: number): Model {
  const m = cloneModel(fp32);
  const qmax = 2 ** (bits - 1) - 1;
  for (const n of m.graph.nodes) {
    const w = n.opType === 'Conv' ? n.inputs[1] : undefined;
    const t = w?.initializer;
    if (!w || !t || t.dataType !== 1) continue;
    const d = t.toTypedArray() as Float32Array;
    const per = d.length / t.dims[0]!;
    for (let c = 0; c < t.dims[0]!; c++) {
      let amax = 0;
      for (let i = c * per; i < (c + 1) * per; i++) amax = Math.max(amax, Math.abs(d[i]!));
      const scale = amax / qmax || 1;
      for (let i = c * per; i < (c + 1) * per; i++) d[i] = Math.round(d[i]! / scale) * scale;
    }
    w.initializer = Tensor.float32(d, t.dims);
  }
  return m;
}

interface Agreement { top1: number; cosMean: number; cosMin: number; centeredCos: number; accuracy?: number; refAccuracy?: number }

/**
 * Top-1 agreement and cosine of `cand` against `ref` on `samples` seeded inputs; also the cosine of
 * the input-dependent part (logits minus their mean over the samples), which is what top-1 decides on.
 */
async function agreement(ref: Session, cands: Session[], model: Model, sets: Record<string, Tensor>[], labels?: number[]): Promise<Agreement[]> {
  const out = model.graph.outputs[0]!.name;
  const samples = sets.length;
  const refs: Float32Array[] = [];
  const got: Float32Array[][] = cands.map(() => []);
  for (const feeds of sets) {
    refs.push((await ref.run(feeds))[out]!.toTypedArray() as Float32Array);
    for (const [k, c] of cands.entries()) got[k]!.push((await c.run(feeds))[out]!.toTypedArray() as Float32Array);
  }
  const width = refs[0]!.length;
  const mean = new Float64Array(width);
  for (const x of refs) for (let j = 0; j < width; j++) mean[j] = mean[j]! + x[j]! / samples;
  const argmax = (v: Float32Array): number => { let m = 0; for (let j = 1; j < v.length; j++) if (v[j]! > v[m]!) m = j; return m; };
  const cos = (x: Float32Array, y: Float32Array, c?: Float64Array): number => {
    let dot = 0, nx = 0, ny = 0;
    for (let j = 0; j < x.length; j++) {
      const p = x[j]! - (c?.[j] ?? 0), q = y[j]! - (c?.[j] ?? 0);
      dot += p * q; nx += p * p; ny += q * q;
    }
    return dot / Math.sqrt(nx * ny);
  };
  const correct = (vs: Float32Array[]): number | undefined => (labels ? vs.filter((v, i) => argmax(v) === labels[i]).length / samples : undefined);
  const refAccuracy = correct(refs);
  return got.map((ys) => {
    let agree = 0, cosSum = 0, cosMin = 1, centered = 0;
    ys.forEach((y, i) => {
      const x = refs[i]!;
      if (argmax(x) === argmax(y)) agree++;
      const c = cos(x, y);
      cosSum += c; cosMin = Math.min(cosMin, c); centered += cos(x, y, mean) / samples;
    });
    const accuracy = correct(ys);
    return { top1: agree / samples, cosMean: cosSum / samples, cosMin, centeredCos: centered, ...(accuracy !== undefined ? { accuracy, refAccuracy: refAccuracy! } : {}) };
  });
}

async function main(argv: string[]): Promise<void> {
  const runs = arg(argv, '--runs', 40);
  const samples = arg(argv, '--samples', 256);
  const calibrationCount = arg(argv, '--calibration', 32);
  const mi = argv.indexOf('--method');
  const method = (mi >= 0 ? argv[mi + 1] : 'minmax') as 'minmax' | 'percentile' | 'entropy';
  const flags = new Set(['--runs', '--samples', '--calibration', '--method']);
  let dirs = argv.filter((a, i) => !a.startsWith('--') && !flags.has(argv[i - 1] ?? ''));
  if (dirs.length === 0) dirs = ['/work/large/resnet50', '/work/shared/models/mobilenet_v2'];
  const target = hasVnni() ? x86Vnni : x86Avx2;
  const threads = 2;
  console.log(`quantize-static bench: ${os.cpus()[0]?.model ?? 'cpu'}, ${onnxruntimeNode.name}, level all, ${threads} threads, target ${target.name}, ${method}, ${calibrationCount} calibration sets`);
  const rows: string[] = [];
  const fragility: string[] = [];
  for (const dir of dirs) {
    const name = path.basename(dir);
    const { model } = readModel(path.join(dir, 'model.onnx'));
    // what a user gets: retarget compile --target T --quantize static
    const q = cloneModel(model);
    // a folder may bring its own data (bench/make-trained-cnn.py): calibration/ and eval/ input sets, labels.json
    const own = (sub: string): Record<string, Tensor>[] | undefined =>
      fs.existsSync(path.join(dir, sub)) ? readInputSets(model, path.join(dir, sub)).map((s) => s.feeds) : undefined;
    const calibration: Record<string, Tensor>[] = own('calibration')?.slice(0, calibrationCount)
      ?? Array.from({ length: calibrationCount }, (_, i) => syntheticInputs(model, { seed: 10000 + i, dims: { batch: 1 } }));
    const evalSets = own('eval')?.slice(0, samples) ?? Array.from({ length: samples }, (_, i) => syntheticInputs(model, { seed: 20000 + i, dims: { batch: 1 } }));
    const labelsFile = path.join(dir, 'labels.json');
    const labels = fs.existsSync(labelsFile) ? (JSON.parse(fs.readFileSync(labelsFile, 'utf8')) as { labels: number[] }).labels : undefined;
    console.log(`${name}: ${own('calibration') ? 'its own calibration and eval inputs' : 'seeded synthetic inputs (uniform -1..1)'}: ${calibration.length} calibration, ${evalSets.length} eval sets${labels ? ', with labels' : ''}`);
    const quantize: QuantizeOptions = { mode: 'static', method, calibration };
    const t0 = performance.now();
    await compile(q, target, { quantize, runtime: onnxruntimeNode });
    const quantMs = performance.now() - t0;
    const fpBytes = bytesOf(model), qBytes = bytesOf(q);
    const r = quantize.report ?? {};
    console.log(`${name}: quantized ${String(r.quantizedNodes)} nodes, ${String(r.quantizedTensors)} tensors, kept float ${JSON.stringify(r.keptFloat)}, compiled in ${(quantMs / 1000).toFixed(1)} s; ${(fpBytes.length / 1e6).toFixed(1)} MB -> ${(qBytes.length / 1e6).toFixed(1)} MB`);

    const folded = cloneModel(model);
    await compile(folded, portable, {}); // BatchNorm folded into the Conv weights, as the quantizer sees them
    const opts = { graphOptimizationLevel: 'all', intraOpNumThreads: threads } as const;
    const a = await onnxruntimeNode.createSession(fpBytes, opts);
    const b = await onnxruntimeNode.createSession(qBytes, opts);
    const w8 = await onnxruntimeNode.createSession(bytesOf(weightOnly(folded, 8)), opts);
    const w12 = await onnxruntimeNode.createSession(bytesOf(weightOnly(folded, 12)), opts);
    const [acc, acc8, acc12] = await agreement(a, [b, w8, w12], model, evalSets, labels);
    await w8.release(); await w12.release();
    // latency, interleaved in settled blocks (src/bench/interleave.ts)
    const feeds = evalSets[0]!;
    for (let i = 0; i < 5; i++) { await a.run(feeds); await b.run(feeds); }
    const [ta, tb] = (await timeInterleaved([() => a.run(feeds), () => b.run(feeds)], { runs })).timed as [number[], number[]];
    await a.release(); await b.release();
    const { ratio, ci95 } = bootstrapRatioCI(tb, ta); // median(fp32) / median(int8): the speedup
    const pass = ratio >= 1.5 && acc!.top1 >= 0.95;
    if (acc!.accuracy !== undefined) console.log(`${name}: accuracy against the labels: fp32 ${(acc!.refAccuracy! * 100).toFixed(1)}%, int8 ${(acc!.accuracy * 100).toFixed(1)}%`);
    rows.push(`| ${name} | ${median(ta).toFixed(2)} | ${median(tb).toFixed(2)} | ${ratio.toFixed(2)}x [${ci95[0].toFixed(2)}, ${ci95[1].toFixed(2)}] | ${(acc!.top1 * 100).toFixed(1)}% | ${acc!.cosMean.toFixed(4)} / ${acc!.cosMin.toFixed(4)} | ${acc!.centeredCos.toFixed(3)} | ${(fpBytes.length / 1e6).toFixed(1)} -> ${(qBytes.length / 1e6).toFixed(1)} | ${pass ? 'meets' : 'misses'} the bar |`);
    const pct = (x: Agreement): string => `${(x.top1 * 100).toFixed(1)}% (centered cosine ${x.centeredCos.toFixed(3)})`;
    fragility.push(`| ${name} | ${pct(acc8!)} | ${pct(acc12!)} | ${pct(acc!)} |`);
  }
  console.log(`\n| model | fp32 p50 ms | int8 p50 ms | speedup [95% CI] | top-1 agreement | cosine mean / min | centered cosine | MB | >= 1.5x and >= 95% |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log('\nHow fragile the fp32 decisions are: top-1 agreement with only the Conv weights rounded (per channel, activations float)');
  console.log('| model | 8-bit weights only | 12-bit weights only | int8 QDQ (weights and activations) |');
  console.log('|---|---|---|---|');
  for (const r of fragility) console.log(r);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
