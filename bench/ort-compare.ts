/**
 * npm run bench:ort -- MODEL_DIR [MODEL_DIR ...] [--runs N] [--dim batch=1,...]
 *
 * Our portable pipeline against what users get without us: ONNX Runtime's own graph optimizer.
 * For each model folder (model.onnx + test_data_set_0): node counts of the original, of ours, and
 * of ORT's optimized dumps (levels basic and all, via optimizedModelFilePath); then session-creation
 * time and latency (ORT level all, 2 threads) of original vs ours, interleaved A B A B, as ratios.
 * Also lists the ops ORT's basic level removes that our pipeline keeps.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { compile } from '../src/compile.js';
import { concatChunks } from '../src/onnx/codec.js';
import { serializeModel } from '../src/io.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode, toOrtTensor } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { parseDims } from '../src/cli/dims.js';
import { portable } from '../targets/portable.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function histogram(file: string): Record<string, number> {
  const h: Record<string, number> = {};
  const { model } = readModel(file);
  for (const g of model.allGraphs()) for (const n of g.nodes) h[`${n.domain || 'ai.onnx'}::${n.opType}`] = (h[`${n.domain || 'ai.onnx'}::${n.opType}`] ?? 0) + 1;
  return h;
}

const count = (h: Record<string, number>): number => Object.values(h).reduce((a, b) => a + b, 0);

async function dump(bytes: Uint8Array, level: 'basic' | 'all', out: string): Promise<void> {
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level, optimizedModelFilePath: out, logSeverityLevel: 3, intraOpNumThreads: 2 });
  await s.release();
}

async function main(argv: string[]): Promise<void> {
  const runsAt = argv.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 30;
  const dimAt = argv.indexOf('--dim');
  const dims = dimAt >= 0 ? parseDims([argv[dimAt + 1]!]) : {};
  const dirs = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--runs' && argv[i - 1] !== '--dim');
  if (dirs.length === 0) {
    process.stderr.write('usage: npm run bench:ort -- MODEL_DIR [MODEL_DIR ...] [--runs N] [--dim batch=1]\n');
    process.exitCode = 2;
    return;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-ort-'));
  const rows: string[] = [];
  try {
    for (const dir of dirs) {
      const name = path.basename(dir);
      const file = path.join(dir, 'model.onnx');
      const originalBytes = new Uint8Array(fs.readFileSync(file));
      const { model } = readModel(file);
      const t0 = performance.now();
      const report = await compile(model, portable, { runtime: onnxruntimeNode, dims });
      const compileMs = performance.now() - t0;
      const ours = concatChunks(serializeModel(model).chunks);
      const oursFile = path.join(tmp, `${name}.ours.onnx`);
      fs.writeFileSync(oursFile, ours);
      await dump(originalBytes, 'basic', path.join(tmp, `${name}.basic.onnx`));
      await dump(originalBytes, 'all', path.join(tmp, `${name}.all.onnx`));
      await dump(ours, 'all', path.join(tmp, `${name}.ours-all.onnx`));
      const hOrig = histogram(file), hOurs = histogram(oursFile);
      const hBasic = histogram(path.join(tmp, `${name}.basic.onnx`)), hAll = histogram(path.join(tmp, `${name}.all.onnx`));
      const hOursAll = histogram(path.join(tmp, `${name}.ours-all.onnx`));

      // interleaved timing: session creation, then latency
      const set = readTestDataSet(testDataSets(dir)[0]!);
      const feeds = Object.fromEntries(set.inputs.map((x, i) => [model.graph.inputs[i]!.name, toOrtTensor(x.tensor)]));
      const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: 2, logSeverityLevel: 3 };
      const createA: number[] = [], createB: number[] = [];
      for (let i = 0; i < 5; i++) {
        for (const [bytes, into] of [[originalBytes, createA], [ours, createB]] as const) {
          const t = performance.now();
          const s = await ort.InferenceSession.create(bytes, opts);
          into.push(performance.now() - t);
          await s.release();
        }
      }
      const sa = await ort.InferenceSession.create(originalBytes, opts);
      const sb = await ort.InferenceSession.create(ours, opts);
      for (let i = 0; i < 3; i++) { await sa.run(feeds); await sb.run(feeds); }
      const la: number[] = [], lb: number[] = [], ratios: number[] = [];
      for (let i = 0; i < runs; i++) {
        let t = performance.now(); await sa.run(feeds); const a = performance.now() - t;
        t = performance.now(); await sb.run(feeds); const b = performance.now() - t;
        la.push(a); lb.push(b); ratios.push(b / a);
      }
      await sa.release(); await sb.release();

      const basicOnly = Object.keys(hOrig).filter((op) => (hBasic[op] ?? 0) < hOrig[op]! && (hOurs[op] ?? 0) > (hBasic[op] ?? 0))
        .map((op) => `${op} ${hOrig[op]}->${hBasic[op] ?? 0} (ours ${hOurs[op] ?? 0})`);
      const newInBasic = Object.keys(hBasic).filter((op) => !(op in hOrig)).map((op) => `${op} +${hBasic[op]}`);
      rows.push([
        `${name}: nodes original ${count(hOrig)}, ours ${count(hOurs)} (compile ${compileMs.toFixed(0)} ms, ${report.rewrites} rewrites), ORT basic ${count(hBasic)}, ORT all ${count(hAll)}, ours+ORT all ${count(hOursAll)}`,
        `  session create (ms, median of 5): original ${median(createA).toFixed(1)}, ours ${median(createB).toFixed(1)}, ratio ${(median(createB) / median(createA)).toFixed(2)}`,
        `  latency (ms, median of ${runs}, interleaved, ORT all): original ${median(la).toFixed(2)}, ours ${median(lb).toFixed(2)}, ratio ours/original ${median(ratios).toFixed(3)}`,
        `  ORT basic removes where we keep: ${basicOnly.join(', ') || 'nothing'}${newInBasic.length ? `; ORT basic adds: ${newInBasic.join(', ')}` : ''}`,
      ].join('\n'));
      console.log(rows[rows.length - 1]);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
