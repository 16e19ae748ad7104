/**
 * npm run bench:quantize-static -- [MODEL_DIR ...] [--runs N] [--samples N] [--calibration N] [--method minmax|percentile|entropy]
 *
 * Static int8 QDQ (quantize-static, minmax, N seeded calibration sets) against the fp32 model, both
 * compiled with the portable pipeline first. Defaults: /work/large/resnet50 and
 * /work/shared/models/mobilenet_v2. ONNX Runtime CPU, optimization level 'all', 2 intra-op threads,
 * batch 1; latency interleaved A B A B with the ratio of medians and a bootstrap 95% CI; top-1
 * agreement and cosine of the logits on seeded inputs. The bar: >= 1.5x faster, top-1 >= 95%.
 * The quantization preset is the host's: x86-vnni when the CPU has VNNI, else x86-avx2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { quantizeStatic } from '../passes/quantize-static.js';
import { bootstrapRatioCI, median } from '../src/bench/stats.js';
import { compile } from '../src/compile.js';
import { syntheticInputs } from '../src/inputs.js';
import { serializeModel } from '../src/io.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Model } from '../src/ir/model.js';
import type { Tensor } from '../src/ir/tensor.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { concatChunks } from '../src/onnx/codec.js';
import { PassManager } from '../src/pass/manager.js';
import type { QuantizeOptions } from '../src/pass/pass.js';
import { portable } from '../targets/portable.js';
import { x86Avx2 } from '../targets/x86-avx2.js';
import { x86Vnni } from '../targets/x86-vnni.js';

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

/** The portable pipeline: cleanup and folding, no fusions (the quantizer sees standard ops). */
async function portableCompile(model: Model): Promise<void> {
  await compile(model, portable, {});
}

function hasVnni(): boolean {
  try {
    return /\b(avx512_vnni|avx_vnni)\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

const bytesOf = (m: Model): Uint8Array => concatChunks(serializeModel(m).chunks);

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
  console.log(`quantize-static bench: ${os.cpus()[0]?.model ?? 'cpu'}, ${onnxruntimeNode.name}, level all, ${threads} threads, preset ${target.name}, ${method}, ${calibrationCount} calibration sets`);
  const rows: string[] = [];
  for (const dir of dirs) {
    const name = path.basename(dir);
    const { model } = readModel(path.join(dir, 'model.onnx'));
    await portableCompile(model);
    const q = cloneModel(model);
    const calibration: Record<string, Tensor>[] = Array.from({ length: calibrationCount }, (_, i) => syntheticInputs(model, { seed: 10000 + i, dims: { batch: 1 } }));
    const quantize: QuantizeOptions = { mode: 'static', method, calibration };
    const t0 = performance.now();
    await new PassManager([quantizeStatic], { quantize, runtime: onnxruntimeNode, target }).run(q);
    const quantMs = performance.now() - t0;
    const fpBytes = bytesOf(model), qBytes = bytesOf(q);
    const r = quantize.report ?? {};
    console.log(`${name}: quantized ${String(r.quantizedNodes)} nodes, ${String(r.quantizedTensors)} tensors, kept float ${JSON.stringify(r.keptFloat)} in ${(quantMs / 1000).toFixed(1)} s; ${(fpBytes.length / 1e6).toFixed(1)} MB -> ${(qBytes.length / 1e6).toFixed(1)} MB`);

    const a = await onnxruntimeNode.createSession(fpBytes, { graphOptimizationLevel: 'all', intraOpNumThreads: threads });
    const b = await onnxruntimeNode.createSession(qBytes, { graphOptimizationLevel: 'all', intraOpNumThreads: threads });
    const out = model.graph.outputs[0]!.name;
    // accuracy
    let agree = 0, cosSum = 0, minCos = 1;
    for (let i = 0; i < samples; i++) {
      const feeds = syntheticInputs(model, { seed: 20000 + i, dims: { batch: 1 } });
      const x = (await a.run(feeds))[out]!.toTypedArray() as Float32Array;
      const y = (await b.run(feeds))[out]!.toTypedArray() as Float32Array;
      let ax = 0, ay = 0, dot = 0, nx = 0, ny = 0;
      for (let j = 0; j < x.length; j++) {
        if (x[j]! > x[ax]!) ax = j;
        if (y[j]! > y[ay]!) ay = j;
        dot += x[j]! * y[j]!; nx += x[j]! ** 2; ny += y[j]! ** 2;
      }
      if (ax === ay) agree++;
      const c = dot / Math.sqrt(nx * ny);
      cosSum += c; minCos = Math.min(minCos, c);
    }
    // latency, interleaved
    const feeds = syntheticInputs(model, { seed: 1, dims: { batch: 1 } });
    for (let i = 0; i < 5; i++) { await a.run(feeds); await b.run(feeds); }
    const ta: number[] = [], tb: number[] = [];
    for (let i = 0; i < runs; i++) {
      let t = performance.now(); await a.run(feeds); ta.push(performance.now() - t);
      t = performance.now(); await b.run(feeds); tb.push(performance.now() - t);
    }
    await a.release(); await b.release();
    const { ratio, ci95 } = bootstrapRatioCI(tb, ta); // median(fp32) / median(int8): the speedup
    const top1 = agree / samples;
    const pass = ratio >= 1.5 && top1 >= 0.95;
    rows.push(`| ${name} | ${median(ta).toFixed(2)} | ${median(tb).toFixed(2)} | ${ratio.toFixed(2)}x [${ci95[0].toFixed(2)}, ${ci95[1].toFixed(2)}] | ${(top1 * 100).toFixed(1)}% | ${(cosSum / samples).toFixed(4)} / ${minCos.toFixed(4)} | ${(fpBytes.length / 1e6).toFixed(1)} -> ${(qBytes.length / 1e6).toFixed(1)} | ${pass ? 'meets' : 'misses'} the bar |`);
  }
  console.log(`\n| model | fp32 p50 ms | int8 p50 ms | speedup [95% CI] | top-1 agreement (${samples}) | cosine mean / min | MB | >= 1.5x and >= 95% |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
