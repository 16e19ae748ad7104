/**
 * npm run bench:precision-matrix [MODEL_DIR ...] [--runs N] [--threads N] [--no-time] [--no-fixtures]
 *
 * Input precision x target, as a user meets it: each model (fp32, fp16 as a GPU export leaves it,
 * ONNX Runtime's dynamic-quantizer form, a hand-built QOperator model, and the project's own static
 * QDQ, dynamic int8 and int4 outputs) compiled with `retarget compile MODEL -t TARGET` and no other
 * flag, for every target. Per pair: written or refused (the first reason), nodes, the validation
 * compile itself did (its tolerance, worst cosine, on the target's runtime or the CPU stand-in), and,
 * where this machine has the target's runtime (the ORT CPU targets; wasm through onnxruntime-web),
 * `retarget bench ORIGINAL COMPILED` (interleaved, 1 thread by default): the compiled model's p50
 * time over the original's, with its 95% CI (< 1: faster). Prints a Markdown table.
 *
 * Default models: the fixtures below (--no-fixtures: none); MODEL_DIR adds folders holding model.onnx (and test_data_set_*),
 * e.g. the mobilenet_v2 variants fixtures/precision.py makes in /tmp/precision/mobilenet_v2/.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TARGETS } from '../targets/index.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const RUNS = flag('--runs', 30);
const THREADS = flag('--threads', 1);
const TIME = !args.includes('--no-time');
const extra = args.filter((a, i) => !a.startsWith('--') && !['--runs', '--threads'].includes(args[i - 1] ?? ''));
const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const FIX = path.join(ROOT, 'fixtures/models');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'precision-matrix-'));

interface Input { name: string; precision: string; dir: string }

const FIXTURES: Input[] = [
  { name: 'cnn-tiny', precision: 'fp32', dir: 'cnn-tiny-op13' },
  { name: 'cnn-tiny', precision: 'fp16 (GPU export)', dir: 'cnn-tiny-fp16-op13' },
  { name: 'cnn-tiny', precision: 'int8 ConvInteger (ORT dynamic quantizer)', dir: 'cnn-tiny-convinteger-op13' },
  { name: 'cnn-tiny', precision: 'int8 QOperator (QLinearConv, by hand)', dir: 'cnn-tiny-qoperator-op13' },
  { name: 'gpt2-tiny', precision: 'fp32', dir: 'gpt2-tiny-op14' },
  { name: 'gpt2-tiny', precision: 'fp16 (GPU export)', dir: 'gpt2-tiny-fp16-op14' },
  { name: 'bert-tiny', precision: 'int8 MatMulInteger (ORT dynamic quantizer)', dir: 'bert-tiny-convinteger-op14' },
].map((f) => ({ ...f, dir: path.join(FIX, f.dir) }));

function cli(argv: string[]): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync('node', [CLI, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

/** A folder holding `model` and the test data of `like` (so that compile validates on it). */
function folderWith(model: string, like: string, name: string): string {
  const dir = path.join(WORK, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(model, path.join(dir, 'model.onnx'));
  for (const d of fs.readdirSync(like).filter((f) => f.startsWith('test_data_set_'))) fs.cpSync(path.join(like, d), path.join(dir, d), { recursive: true });
  return dir;
}

/** The project's own quantized outputs, made here: x86-avx2 static QDQ, dynamic int8, int4. */
function ownOutputs(): Input[] {
  const made: Input[] = [];
  const make = (fx: string, name: string, mode: string, precision: string, more: string[] = []): void => {
    const src = path.join(FIX, fx);
    const out = path.join(WORK, `${fx}-${mode}.onnx`);
    const r = cli(['compile', path.join(src, 'model.onnx'), '-t', 'x86-avx2', '--quantize', mode, '-o', out, ...more]);
    if (r.code !== 0) { process.stderr.write(`could not make ${fx} ${mode}: ${r.out}\n`); return; }
    made.push({ name, precision, dir: folderWith(out, src, `${fx}-${mode}`) });
  };
  make('cnn-tiny-op13', 'cnn-tiny', 'static', 'int8 static QDQ (retarget, x86-avx2)', ['--calibration', path.join(FIX, 'cnn-tiny-op13')]);
  make('gpt2-tiny-op14', 'gpt2-tiny', 'dynamic', 'int8 dynamic (retarget, x86-avx2)');
  make('gpt2-tiny-op14', 'gpt2-tiny', 'int4', 'int4 MatMulNBits (retarget, x86-avx2)');
  return made;
}

interface Row { input: Input; target: string; result: string; nodes: string; validation: string; ratio: string }

const RUNTIME: Record<string, string[] | undefined> = {
  'x86-avx2': [], 'x86-avx512': [], 'x86-vnni': [], arm64: [], portable: [], wasm: ['--runtime', 'web'],
};

function pair(input: Input, target: string): Row {
  const model = path.join(input.dir, 'model.onnx');
  const out = path.join(WORK, `${path.basename(input.dir)}.${target}.onnx`);
  const report = `${out}.json`;
  const r = cli(['compile', model, '-t', target, '-o', out, '--report', report]);
  const rep = fs.existsSync(report) ? JSON.parse(fs.readFileSync(report, 'utf8')) : undefined;
  if (r.code !== 0 || !fs.existsSync(out)) {
    const why = (r.out.split('\n').find((l) => /error|refus|cannot/i.test(l)) ?? r.out.split('\n')[0] ?? '').slice(0, 110);
    return { input, target, result: `refused: ${why}`, nodes: '-', validation: '-', ratio: '-' };
  }
  const v = rep?.validation;
  const worst = v ? Math.min(...v.cases.flatMap((c: { outputs: { cosine: number }[] }) => c.outputs.map((o) => o.cosine))) : undefined;
  const validation = v ? `${v.ok ? 'ok' : 'FAILED'} ${v.tolerance.name}, cosine ${worst!.toFixed(6)}` : 'not validated';
  const nodes = `${rep.before.nodes} -> ${rep.after.nodes}`;
  const placed = (rep.withCasts?.length ? `, ${rep.withCasts.length} with casts` : '') + (rep.cpuPlaced?.length ? `, ${rep.cpuPlaced.length} on CPU fallback` : '');
  return { input, target, result: `written${placed}`, nodes, validation, ratio: TIME ? timeRatio(model, out, target) : '-' };
}

function timeRatio(original: string, compiled: string, target: string): string {
  const runtime = RUNTIME[target];
  if (!runtime) return 'no runtime here';
  const json = `${compiled}.bench.json`;
  const r = cli(['bench', original, compiled, '--runs', String(RUNS), '--threads', String(THREADS), '--json', json, ...runtime]);
  if (r.code !== 0 || !fs.existsSync(json)) return `bench failed: ${r.out.split('\n')[0]?.slice(0, 60)}`;
  const m = JSON.parse(fs.readFileSync(json, 'utf8')).models[1].ratioVsFirst;
  return `${m.p50.toFixed(3)} [${m.ci95[0].toFixed(2)}, ${m.ci95[1].toFixed(2)}]`;
}

const inputs = [...(args.includes('--no-fixtures') ? [] : [...FIXTURES, ...ownOutputs()]), ...extra.map((d) => ({ name: path.basename(path.dirname(path.resolve(d))), precision: path.basename(path.resolve(d)), dir: path.resolve(d) }))];
process.stdout.write(`# input precision x target (retarget compile MODEL -t TARGET, no other flag; time ratio compiled/original, ${THREADS} thread(s), ${RUNS} runs each, interleaved)\n\n`);
process.stdout.write('| model | arrives as | target | compile | nodes | validation (compile\'s own) | time vs original |\n|---|---|---|---|---|---|---|\n');
const rows: Row[] = [];
for (const input of inputs) {
  for (const t of TARGETS) {
    const row = pair(input, t.name);
    rows.push(row);
    process.stdout.write(`| ${input.name} | ${input.precision} | ${t.name} | ${row.result} | ${row.nodes} | ${row.validation} | ${row.ratio} |\n`);
  }
}
const written = rows.filter((r) => r.result.startsWith('written'));
process.stdout.write(`\n${written.length} of ${rows.length} pairs written; ${written.filter((r) => r.validation.startsWith('ok')).length} validated ok.\n`);
fs.rmSync(WORK, { recursive: true, force: true });
