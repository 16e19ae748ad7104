/**
 * The compile worker: everything heavy happens here, off the page's thread. It parses the model
 * (inspect's summary), and on request compiles it with the browser-safe core, checks it against the
 * target, validates it against the original and times both, interleaved, with onnxruntime-web's
 * wasm backend. Errors come back as the CLI's one-line messages (RetargetError.format()).
 */
import * as ort from 'onnxruntime-web/wasm';
import { summarize } from '../src/cli/inspect.js';
import { compile, quantizeModes, type CompileReport } from '../src/compile.js';
import { ReportedError, RetargetError, UsageError } from '../src/errors.js';
import { parseModel } from '../src/io.js';
import { serializeModel } from '../src/io.js';
import { concatChunks } from '../src/onnx/codec.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Model } from '../src/ir/model.js';
import type { ExternalDataReader } from '../src/onnx/external.js';
import type { QuantizeOptions } from '../src/pass/pass.js';
import { TOLERANCES, validate, type PreparedInputs, type ValidationResult } from '../src/bench/validate.js';
import { findValidationInputs } from '../src/bench/validation-inputs.js';
import { timeInterleaved } from '../src/bench/interleave.js';
import { latencyStats, bootstrapRatioCI } from '../src/bench/stats.js';
import { findTarget } from '../targets/index.js';
import { halfFloatTypes } from '../passes/lib/model-precision.js';
import { withInterfaceOf } from '../src/bench/interface.js';
import { summarizeCpuPlaced } from '../targets/capabilities/check.js';
import { ortWebRuntime } from '../src/web/ort-runtime.js';
import type { CompileOutcome, FromWorker, LatencyResult, QuantizeChoice, TargetInfo, ToWorker } from './protocol.js';

/**
 * The largest model (with its external data) the page takes. The worker holds the file's bytes, the
 * IR (views into them, plus what passes create), the original's copy for validation and the
 * serialized result; onnxruntime-web copies each model it runs into its wasm heap, which is
 * 32-bit: 4 GiB at most, shared by both sessions. 1 GiB keeps all of that inside one tab.
 */
const MAX_BYTES = 1024 ** 3;
const PAGE_TARGETS = ['wasm', 'webgpu', 'portable'];

interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  crossOriginIsolated?: boolean;
  location: { href: string };
  navigator: { hardwareConcurrency?: number };
}
const scope = self as unknown as WorkerScope;

// the wasm files are served beside the page (no CDN: the page works offline)
ort.env.wasm.wasmPaths = new URL('./ort/', scope.location.href).href;
// threads need cross-origin isolation (SharedArrayBuffer): `retarget playground` sends the headers;
// on a plain static host the runtime runs single-threaded
const threads = scope.crossOriginIsolated ? Math.max(1, Math.min(4, scope.navigator.hardwareConcurrency ?? 1)) : 1;
ort.env.wasm.numThreads = threads;
ort.env.logLevel = 'error';
const runtime = ortWebRuntime(ort);
const runtimeName = `${runtime.name}, ${threads} thread${threads === 1 ? '' : 's'}`;

const post = (m: FromWorker, transfer: Transferable[] = []): void => scope.postMessage(m, transfer);

let loaded: { name: string; bytes: Uint8Array; data: Map<string, Uint8Array>; size: number } | undefined;

function baseName(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

function reader(data: Map<string, Uint8Array>): ExternalDataReader {
  return {
    read(location, offset, length) {
      const file = data.get(baseName(location));
      if (!file) throw new Error(`external data file '${location}' was not given: choose it together with the model`);
      if (offset + (length ?? 0) > file.length) throw new Error(`external data '${location}' is ${file.length} bytes; a tensor reads past its end`);
      return file.subarray(offset, length === undefined ? undefined : offset + length);
    },
  };
}

/** Parse the loaded bytes (a fresh model each time: compile works in place). Errors name the file, stage 'read'. */
function parse(): Model {
  const l = loaded!;
  try {
    return parseModel(l.bytes, { externalData: reader(l.data) }).model;
  } catch (e) {
    // as readModel does: a model that cannot be read is a 'reading' error naming the file
    if (e instanceof Error && !(e instanceof TypeError) && !(e instanceof ReferenceError)) throw new RetargetError('read', e.message, { file: l.name }, { cause: e });
    throw e;
  }
}

function oneLine(e: unknown, file: string | undefined): string {
  if (e instanceof RetargetError) return (file ? e.inFile(file) : e).format();
  if (e instanceof ReportedError) return e.format();
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n')[0]!;
}

async function load(files: File[]): Promise<void> {
  loaded = undefined;
  const model = files.find((f) => /\.onnx$/i.test(f.name)) ?? files[0];
  if (!model) throw new Error('no file chosen');
  const size = files.reduce((n, f) => n + f.size, 0);
  if (size > MAX_BYTES) {
    throw new RetargetError('read', `the model and its data are ${(size / 1024 ** 3).toFixed(2)} GiB; the page takes up to ${MAX_BYTES / 1024 ** 3} GiB (a tab's memory, and onnxruntime-web's 4 GiB wasm heap for both models): compile it with the CLI, npx retarget compile`, { file: model.name });
  }
  const bytes = new Uint8Array(await model.arrayBuffer());
  const data = new Map<string, Uint8Array>();
  for (const f of files) if (f !== model) data.set(f.name, new Uint8Array(await f.arrayBuffer()));
  loaded = { name: model.name, bytes, data, size };
  const parsed = (() => {
    try {
      return parseModel(bytes, { externalData: reader(data) });
    } catch (e) {
      loaded = undefined;
      if (e instanceof Error && !(e instanceof TypeError) && !(e instanceof ReferenceError)) throw new RetargetError('read', e.message, { file: model.name }, { cause: e });
      throw e;
    }
  })();
  post({ kind: 'loaded', summary: summarize(parsed.model, model.name, size, parsed.externalFiles) });
}

function quantizeOptions(choice: QuantizeChoice): QuantizeOptions | undefined {
  if (choice === 'none') return undefined;
  // the CLI's defaults (compile-command.ts): minmax, block size 32, symmetric
  return { mode: choice, method: 'minmax', blockSize: 32, symmetric: true, report: {} };
}

/** The tolerance the CLI picks: the quantization mode's budget, else fp16 for a half-float model, else fp32. */
function toleranceFor(choice: QuantizeChoice, original: Model): string {
  if (choice === 'dynamic') return 'int8';
  if (choice === 'int4' || choice === 'fp16') return choice;
  return halfFloatTypes(original).length ? 'fp16' : 'fp32';
}

/**
 * Above this many bytes of model, the two sessions are timed one after the other instead of
 * interleaved: wasm memory only grows, so two large sessions at once would keep both in the heap
 * (a 96 MiB model's compile peaked at 6 to 9 copies of its weights with both open).
 */
const INTERLEAVE_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Both models on the same inputs, interleaved in blocks (as `retarget bench`), for up to ~2.5 s;
 * large models one session at a time, each timed in one stretch (the result says which).
 */
async function timeBoth(original: Uint8Array, compiled: Uint8Array, prepared: PreparedInputs): Promise<LatencyResult> {
  const set = prepared.sets[0]!;
  const runs = 60;
  if (original.byteLength + compiled.byteLength > INTERLEAVE_MAX_BYTES) {
    const timeOne = async (bytes: Uint8Array, label: string): Promise<number[]> => {
      const s = await runtime.createSession(bytes);
      try {
        for (let i = 0; i < 3; i++) await s.run(set.feeds);
        const t: number[] = [];
        const t0 = performance.now();
        while (t.length < runs && (t.length < 10 || performance.now() - t0 < 1250)) {
          const a = performance.now();
          await s.run(set.feeds);
          t.push(performance.now() - a);
          if (t.length % 5 === 0) post({ kind: 'progress', phase: 'latency', text: `timing the ${label} model (large: one session at a time): ${t.length} runs`, index: t.length, total: runs });
        }
        return t;
      } finally {
        await s.release();
      }
    };
    const ta = await timeOne(original, 'original');
    const tb = await timeOne(compiled, 'compiled');
    const { ratio, ci95 } = bootstrapRatioCI(ta, tb);
    return { runtime: `${runtimeName}, one model at a time`, inputs: set.source, original: latencyStats(ta), compiled: latencyStats(tb), ratio, ci95, timedRuns: Math.min(ta.length, tb.length) };
  }
  const a = await runtime.createSession(original);
  const b = await runtime.createSession(compiled);
  try {
    const run = (s: typeof a) => () => s.run(set.feeds);
    for (let i = 0; i < 3; i++) { await run(a)(); await run(b)(); }
    const t0 = performance.now();
    const res = await timeInterleaved([run(a), run(b)], {
      runs, block: 5, settleMs: 20,
      shouldStop: (n) => n >= 10 && performance.now() - t0 > 2500,
      onRound: (n) => post({ kind: 'progress', phase: 'latency', text: `timing both models, interleaved: ${n} runs each`, index: n, total: runs }),
    });
    const [ta, tb] = res.timed as [number[], number[]];
    const { ratio, ci95 } = bootstrapRatioCI(ta, tb);
    return { runtime: runtimeName, inputs: set.source, original: latencyStats(ta), compiled: latencyStats(tb), ratio, ci95, timedRuns: Math.min(ta.length, tb.length) };
  } finally {
    await a.release();
    await b.release();
  }
}

async function compileLoaded(targetName: string, choice: QuantizeChoice): Promise<void> {
  if (!loaded) throw new Error('choose a model first');
  const file = loaded.name;
  const target = findTarget(targetName);
  if (!target) throw new UsageError(`unknown target '${targetName}'`);
  const phases: Record<string, number> = {};
  const timed = async <T>(phase: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    try { return await f(); } finally { phases[phase] = Math.round(performance.now() - t0); }
  };
  post({ kind: 'progress', phase: 'prepare', text: 'choosing validation inputs the original accepts' });
  const model = parse();
  const original = cloneModel(model);
  const tolerance = TOLERANCES[toleranceFor(choice, original)]!;
  const quantize = quantizeOptions(choice);
  // the original as the runtime gets it: the file itself, unless its weights are in external data files
  const originalBytes = loaded.data.size ? concatChunks(serializeModel(original).chunks) : loaded.bytes;
  // inputs the original accepts, chosen before compiling, as the CLI does (validationInputs(), on
  // the file's own bytes: the page holds no serialized copy of the original)
  const prepared: PreparedInputs = await timed('prepare', async () => {
    try {
      const search = await findValidationInputs(original, originalBytes, runtime, {});
      return { sets: search.sets, search };
    } catch (e) {
      throw e instanceof RetargetError ? e.inFile(file) : e;
    }
  });
  let report: CompileReport;
  report = await timed('compile', () => compile(model, target, {
    ...(quantize ? { quantize } : {}),
    ioType: 'keep',
    runtime,
    onProgress: (index, total, pass) => post({ kind: 'progress', phase: 'compile', text: `pass ${index} of ${total}: ${pass}`, index, total }),
  }));
  const outcome: CompileOutcome = { fileName: file, target: target.name, quantize: choice, report, sizeBefore: loaded.size, sizeAfter: 0, phases };
  if (report.violations.length) {
    // the CLI's refusal (compile-command.ts), word for word
    const v = report.violations;
    const why = `${v.length} node(s) target '${target.name}' cannot run: ${v.slice(0, 3).map((x) => `${x.node} ${x.domain}::${x.op} (${x.reason})`).join('; ')}${v.length > 3 ? '; ...' : ''}; nothing written`;
    post({ kind: 'error', during: 'compile', message: new RetargetError('check', why, { file, node: v[0]!.node }).format(), outcome });
    return;
  }
  if (report.cpuPlaced.length) report.warnings.unshift(summarizeCpuPlaced(report.cpuPlaced, (n) => `${n} B`));
  post({ kind: 'progress', phase: 'validate', text: `validating against the original (${tolerance.name}) with ${runtimeName}` });
  const validation: ValidationResult = await timed('validate', () => validate(original, withInterfaceOf(model, original, cloneModel) ?? model, runtime, { tolerance, prepared }));
  outcome.validation = validation;
  post({ kind: 'progress', phase: 'write', text: 'serializing the compiled model' });
  const bytes = await timed('write', () => concatChunks(serializeModel(model).chunks));
  outcome.sizeAfter = bytes.length;
  if (!validation.ok) {
    const w = validation.worst!;
    const why = `output '${w.output}' on ${w.source}: ${w.problem}`;
    const message = quantize
      ? `the ${quantize.mode} model misses its accuracy budget (${validation.tolerance.name}): ${why}; not offered for download`
      : `it differs from the original (${validation.tolerance.name}): ${why}; nothing written`;
    post({ kind: 'error', during: 'compile', message: new RetargetError('validate-compiled', message, { file }).format(), outcome });
    return;
  }
  post({ kind: 'progress', phase: 'latency', text: 'timing both models, interleaved' });
  try {
    outcome.latency = await timed('latency', () => timeBoth(originalBytes, bytes, prepared));
  } catch (e) {
    report.warnings.push(`latency: ${oneLine(e, undefined)}`);
  }
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer as ArrayBuffer : bytes.slice().buffer;
  outcome.bytes = buffer;
  post({ kind: 'done', outcome }, [buffer]);
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  const during = m.kind === 'load' ? 'load' : 'compile';
  const task = m.kind === 'load' ? load(m.files) : compileLoaded(m.target, m.quantize);
  task.catch((err: unknown) => {
    const file = m.kind === 'load' ? (m.files.find((f) => /\.onnx$/i.test(f.name)) ?? m.files[0])?.name : loaded?.name;
    post({ kind: 'error', during, message: oneLine(err, file) });
  });
};

const targets: TargetInfo[] = PAGE_TARGETS.map((n) => findTarget(n)).filter((t) => t !== undefined).map((t) => ({ name: t.name, description: t.description, quantize: quantizeModes(t) }));
post({ kind: 'ready', targets, runtime: runtimeName, maxBytes: MAX_BYTES });
