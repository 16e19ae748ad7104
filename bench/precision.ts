/**
 * npm run bench:precision [MODEL_DIR ...] [--runs N] [--block N] [--threads N]
 *
 * A float16 model (as a GPU export leaves it) on the CPU: the original run by ONNX Runtime's CPU EP
 * (which inserts Casts around every node it has no float16 kernel for) against the model compiled for
 * x86-avx2 (widen-to-float32: float32 compute, weights converted once, float16 inputs/outputs kept).
 * Per model: node counts, compile time, validation against the original (fp16 tolerance: worst
 * output's max abs error and cosine), then latency with ONNX Runtime (CPU, optimization level all,
 * --threads intra-op threads, default 2), runs interleaved in blocks (src/bench/interleave.ts), p50 of
 * each and the ratio compiled/original with a bootstrap 95% CI (< 1: the compiled model is faster).
 *
 * Default models: fixtures/models/cnn-tiny-fp16-op13, and mobilenet_v2 in fp16 at
 * /tmp/precision/mobilenet_v2/fp16 when it exists, made by
 *   /usr/bin/python3 fixtures/precision.py ../shared/models/mobilenet_v2/model.onnx /tmp/precision/mobilenet_v2 --kinds fp16
 * Inputs: the folder's test_data_set_0, else seeded synthetic ones (dims pinned to 1).
 */
import fs from 'node:fs';
import path from 'node:path';
import { validate } from '../src/bench/validate.js';
import { timeInterleaved } from '../src/bench/interleave.js';
import { bootstrapRatioCI, median } from '../src/bench/stats.js';
import { compile } from '../src/compile.js';
import { intInputRanges, syntheticInputs } from '../src/inputs.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Tensor } from '../src/ir/tensor.js';
import { serializeModel } from '../src/io.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { concatChunks } from '../src/onnx/codec.js';
import { x86Avx2 } from '../targets/x86-avx2.js';

const args = process.argv.slice(2);
const VALUED = ['--runs', '--block', '--threads'];
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const RUNS = flag('--runs', 60);
const BLOCK = flag('--block', 5);
const THREADS = flag('--threads', 2);
const dirs = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && VALUED.includes(args[i - 1]!)));
const ROOT = path.resolve(import.meta.dirname, '../..');
const MOBILENET = '/tmp/precision/mobilenet_v2/fp16';
const models = dirs.length ? dirs : [path.join(ROOT, 'fixtures/models/cnn-tiny-fp16-op13'), ...(fs.existsSync(MOBILENET) ? [MOBILENET] : [])];

async function bench(dir: string): Promise<void> {
  const file = path.join(dir, 'model.onnx');
  const original = readModel(file).model;
  const compiled = cloneModel(original);
  const t0 = performance.now();
  const report = await compile(compiled, x86Avx2, { runtime: onnxruntimeNode });
  const compileMs = performance.now() - t0;
  if (report.violations.length) throw new Error(`${file}: ${report.violations.length} node(s) x86-avx2 cannot run`);

  const sets = testDataSets(dir);
  const names = original.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
  const feeds: Record<string, Tensor> = sets.length
    ? Object.fromEntries(readTestDataSet(sets[0]!).inputs.map((x, i) => [names[i]!, x.tensor]))
    : syntheticInputs(original, { seed: 0, defaultDim: 1, intRanges: intInputRanges(original) });
  const validation = await validate(original, compiled, onnxruntimeNode, { tolerance: 'fp16', inputs: [{ source: sets[0] ?? 'synthetic', feeds }], generate: 0 });

  const opts = { graphOptimizationLevel: 'all' as const, intraOpNumThreads: THREADS };
  const a = await onnxruntimeNode.createSession(concatChunks(serializeModel(original).chunks), opts);
  const b = await onnxruntimeNode.createSession(concatChunks(serializeModel(compiled).chunks), opts);
  try {
    for (let i = 0; i < 5; i++) { await a.run(feeds); await b.run(feeds); }
    const { timed } = await timeInterleaved([() => a.run(feeds), () => b.run(feeds)], { runs: RUNS, block: BLOCK });
    const { ratio, ci95 } = bootstrapRatioCI(timed[0]!, timed[1]!);
    const w = validation.worst;
    process.stdout.write([
      `${path.relative(process.cwd(), dir) || dir}`,
      `  nodes: original ${report.before.nodes}, compiled for x86-avx2 ${report.after.nodes} (${Object.entries(report.after.opHistogram).slice(0, 6).map(([op, n]) => `${n} ${op.replace('ai.onnx::', '')}`).join(', ')}); compile ${compileMs.toFixed(0)} ms`,
      `  validation (fp16): ${validation.ok ? 'ok' : 'FAILED'}, worst '${w?.output}' max abs error ${w?.maxAbsError.toExponential(2)}, cosine ${w?.cosine.toFixed(6)}`,
      `  p50 ms (ORT CPU, level all, ${THREADS} threads, ${timed[0]!.length} runs each, interleaved): original fp16 ${median(timed[0]!).toFixed(3)}, compiled ${median(timed[1]!).toFixed(3)}`,
      `  ratio compiled/original ${ratio.toFixed(3)} (95% CI ${ci95[0].toFixed(3)}-${ci95[1].toFixed(3)}): ${ratio < 1 ? `${(1 / ratio).toFixed(2)}x faster` : `${ratio.toFixed(2)}x slower`}`,
      '',
    ].join('\n'));
  } finally {
    await a.release();
    await b.release();
  }
}

for (const dir of models) await bench(dir);
