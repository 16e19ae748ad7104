/**
 * `retarget bench`: time models with onnxruntime-node (CPU), side by side.
 *
 * For each model: read it (with external data), serialize it to bytes, and give ONNX Runtime those
 * bytes (graph optimization level 'all', `threads` intra-op threads). Every model gets the same
 * inputs: a test_data_set's input_N.pb files (--inputs), or seeded synthetic inputs from the input
 * types at the given dims (integer inputs in their valid ranges, see intInputRanges).
 *
 * Phases:
 *  0. one untimed session creation of the first model (ORT's one-time initialization).
 *  1. session creation, interleaved: `sessionRuns` rounds of A B C, each creation timed; sessions of
 *     all rounds but the last are released at once.
 *  2. in the last creation round, each model's session is kept and warmed up (`warmup` runs) right
 *     after it is created, sampling the process's resident set size (RSS) after the creation and
 *     after each warm-up run: `peakRssBytes` is the largest sample minus the RSS just before the
 *     creation. Best effort: it is the process's growth, so memory freed by earlier sessions and
 *     reused makes it an underestimate, and allocations ORT defers past warm-up are missed.
 *  3. timed runs, interleaved in blocks (interleave.ts): each round runs every model `block` times
 *     in a row after untimed settling runs (the runs just after another model are not the
 *     model's steady state), rounds rotating the order so that drift of the machine (clock, thermals,
 *     neighbours) hits every model alike; `runs` timed runs per model or until `timeBudgetMs` has
 *     been spent in this phase (whichever comes first; never fewer than 5, or `runs` if smaller).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { inferShapes, modelCost, RULES } from '../analysis/index.js';
import { intInputRanges, syntheticInputs, SyntheticInputError } from '../inputs.js';
import { serializeModel } from '../io.js';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import { readModel } from '../node/files.js';
import { fromOrtTensor, toOrtTensor } from '../node/ort.js';
import { readInputSets } from '../node/inputs.js';
import { appliedInputLayouts, feedsForLayouts } from '../layout.js';
import { concatChunks } from '../onnx/codec.js';
import { benchEnvironment } from './environment.js';
import { outputMetrics } from './metrics.js';
import { timeInterleaved } from './interleave.js';
import { bootstrapRatioCI, latencyStats } from './stats.js';
import { judge, TOLERANCES, type Tolerance } from './validate.js';
import { BENCH_SCHEMA, type BenchResult, type ModelBenchResult } from './types.js';
import { RetargetError, UsageError } from '../errors.js';

export interface BenchOptions {
  /** timed runs per model; default 50 */
  runs?: number;
  /** timed runs per model in a row, after untimed settling runs (see interleave.ts); default 5 */
  block?: number;
  /** ONNX Runtime session config entries for every model alike, e.g. the CPU targets' { 'optimization.disable_specified_optimizers': 'SkipLayerNormFusion' } */
  sessionConfig?: Record<string, string>;
  /** untimed runs per model before timing; default 5 */
  warmup?: number;
  /** stop the timed rounds once this much time has gone by (after at least 5 rounds) */
  timeBudgetMs?: number;
  /** session creations per model, each timed; default 3 */
  sessionRuns?: number;
  /** intra-op threads; default: ORT's own choice */
  threads: number;
  /** symbolic input dims, e.g. { batch: 1, sequence: 64 } */
  dims?: Record<string, number>;
  /** an inputs folder (see readInputSets: test_data_set_*, input_N.pb, .npy); its first set is used */
  inputsDir?: string;
  /** seed of the synthetic inputs and of the bootstrap; default 0 */
  seed?: number;
  /** how outputs are judged against the first model's (validation tolerances: fp32, fp16, int8, int4) */
  tolerance?: string;
  /** labels, one per model */
  names?: string[];
  machine?: string;
  target?: string;
  /**
   * which ONNX Runtime times the models: 'node' (onnxruntime-node, the CPU EP; default) or 'web'
   * (onnxruntime-web's WebAssembly EP in Node, SIMD, `threads` wasm threads: what a wasm-bound model
   * runs on in the browser)
   */
  runtime?: BenchRuntime;
  onProgress?: (p: BenchProgress) => void;
}

export type BenchRuntime = 'node' | 'web';

/** The part of an ort module bench uses; onnxruntime-node and onnxruntime-web share it. */
interface OrtModule { InferenceSession: typeof ort.InferenceSession; Tensor: typeof ort.Tensor; env: typeof ort.env }

/** The runtime's module, its name and version for the report, and session options for it. */
async function ortRuntime(runtime: BenchRuntime, threads: number): Promise<{ ort: OrtModule; name: string; options: ort.InferenceSession.SessionOptions }> {
  if (runtime === 'node') return { ort, name: `onnxruntime-node ${ort.env.versions?.common ?? ''}`.trim(), options: { intraOpNumThreads: threads } };
  const web = (await import('onnxruntime-web')) as unknown as OrtModule;
  // threads in the wasm EP are a process-wide setting, taken when its first session is created
  web.env.wasm.numThreads = threads;
  web.env.wasm.simd = true;
  return { ort: web, name: `onnxruntime-web ${web.env.versions?.common ?? ''} (wasm EP)`.trim(), options: { executionProviders: ['wasm'] } };
}

export interface BenchProgress {
  phase: 'load' | 'create' | 'run';
  done: number;
  total: number;
  /** the model being loaded or created */
  model?: string;
}

/** An invalid option value: a usage error (exit 2). */
export class BenchOptionError extends UsageError {}
/** A model that cannot be benchmarked (ORT refuses it, inputs that do not fit): stage 'bench', naming the file. */
export class BenchError extends RetargetError {
  constructor(file: string | undefined, message: string, options?: { cause?: unknown }) {
    super('bench', message, file !== undefined ? { file } : {}, options);
  }
}

interface Prepared {
  name: string;
  file: string;
  /** model bytes for ORT, or the file path when the model cannot be serialized inline (> 2 GiB) */
  source: Uint8Array | string;
  sizeBytes: number;
  feeds: Record<string, ort.Tensor>;
  dims: Record<string, number>;
  batch: number;
  gflops?: number;
  /** valid id ranges of integer inputs used for the synthetic feeds */
  intRanges: Record<string, number>;
  /** the inputs, as tensors */
  inputs: Record<string, Tensor>;
  sessionCreateMs: number[];
  latencyMs: number[];
  peakRssBytes?: number;
  session?: ort.InferenceSession;
  /** outputs of one run on the shared inputs, to compare with the first model */
  outputs?: Record<string, Tensor>;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.trim();
}

/** Default labels: the file name without extension; where those collide, the parent folder too. */
export function defaultNames(files: string[]): string[] {
  const base = files.map((f) => path.basename(f).replace(/\.[^.]*$/, '') || path.basename(f));
  const withDir = files.map((f, i) => (base.filter((b) => b === base[i]).length > 1 ? `${path.basename(path.dirname(path.resolve(f)))}/${base[i]}` : base[i]!));
  const seen = new Map<string, number>();
  return withDir.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k > 1 ? `${n}#${k}` : n;
  });
}

/** The model file plus the external data files it names (their sizes on disk). */
export function sizeOnDisk(file: string, fileSize: number, external: { location: string; bytes: number }[]): number {
  let size = fileSize;
  for (const e of external) {
    try {
      size += fs.statSync(path.resolve(path.dirname(path.resolve(file)), e.location)).size;
    } catch {
      size += e.bytes;
    }
  }
  return size;
}

function modelInputs(model: Model) {
  return model.graph.inputs.filter((v) => !v.initializer);
}

/** The first input set of an inputs folder (see readInputSets), checked against the model's inputs. */
function feedsFromDir(model: Model, file: string, dir: string): Record<string, Tensor> {
  let feeds: Record<string, Tensor>;
  try {
    feeds = readInputSets(model, dir)[0]!.feeds;
  } catch (e) {
    throw new BenchError(file, firstLine(e), { cause: e });
  }
  for (const v of modelInputs(model)) {
    if (!feeds[v.name]) throw new BenchError(file, `--inputs ${dir} has no tensor for input '${v.name}'`);
  }
  return feeds;
}

/** Symbolic input dims and the sizes the feeds give them. */
function dimsOf(model: Model, feeds: Record<string, Tensor>): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const v of modelInputs(model)) {
    const shape = v.type?.kind === 'tensor' ? v.type.shape : undefined;
    const t = feeds[v.name];
    if (!shape || !t) continue;
    shape.forEach((d, i) => {
      if (typeof d === 'string' && t.dims[i] !== undefined) dims[d] = Number(t.dims[i]);
    });
  }
  return dims;
}

function gflopsOf(model: Model, dims: Record<string, number>): number | undefined {
  try {
    const flops = modelCost(model, inferShapes(model, RULES, { dims, apply: false }), { dims }).numbers?.flops;
    return flops !== undefined && Number.isFinite(flops) ? flops / 1e9 : undefined;
  } catch {
    return undefined; // the cost model is extra information: a model it cannot count is still timed
  }
}

/**
 * `first`: the first model, already prepared. A later model's ids stay within both its own valid
 * ranges and the first's, and a model compiled with --input-layout gets the first's data laid out
 * channels-last: every model gets the same synthetic inputs.
 */
function prepare(file: string, name: string, opts: BenchOptions, first?: Prepared): Prepared {
  const firstRanges = first?.intRanges;
  const loaded = readModel(file);
  const model = loaded.model;
  let source: Uint8Array | string;
  try {
    source = concatChunks(serializeModel(model).chunks);
  } catch {
    source = file; // too large to hold inline: ORT reads the file and its external data itself
  }
  const intRanges = { ...intInputRanges(model) };
  for (const [k, v] of Object.entries(firstRanges ?? {})) intRanges[k] = Math.min(intRanges[k] ?? v, v);
  let tensors: Record<string, Tensor>;
  if (opts.inputsDir !== undefined) tensors = feedsFromDir(model, file, opts.inputsDir);
  else if (first && Object.keys(appliedInputLayouts(model)).length) {
    // compiled with --input-layout: the first model's data, laid out as this model takes it
    tensors = feedsForLayouts(model, first.inputs);
  } else {
    try {
      tensors = syntheticInputs(model, { seed: opts.seed ?? 0, dims: opts.dims ?? {}, intRanges });
    } catch (e) {
      if (e instanceof SyntheticInputError) throw e.atStage('bench').inFile(file);
      throw e;
    }
  }
  const feeds: Record<string, ort.Tensor> = {};
  try {
    for (const [k, t] of Object.entries(tensors)) feeds[k] = toOrtTensor(t);
  } catch (e) {
    throw new BenchError(file, firstLine(e), { cause: e });
  }
  const dims = dimsOf(model, tensors);
  const firstInput = modelInputs(model)[0];
  const batch = firstInput && tensors[firstInput.name]?.dims.length ? Number(tensors[firstInput.name]!.dims[0]) : 1;
  const gflops = gflopsOf(model, { ...(opts.dims ?? {}), ...dims });
  return {
    name, file, source, feeds, dims, batch, intRanges, inputs: tensors,
    sizeBytes: sizeOnDisk(file, loaded.fileSize, loaded.externalFiles),
    ...(gflops !== undefined ? { gflops } : {}),
    sessionCreateMs: [], latencyMs: [],
  };
}

function positiveInt(v: number | undefined, def: number, what: string, min = 1): number {
  const n = v ?? def;
  if (!Number.isInteger(n) || n < min) throw new BenchOptionError(`${what}: '${v}' is not ${min === 0 ? 'a count' : 'a positive integer'}`);
  return n;
}

/** The options, checked (BenchOptionErrors), with their defaults. */
interface BenchSettings {
  runs: number;
  warmup: number;
  block: number;
  sessionRuns: number;
  threads: number;
  seed: number;
  tolerance: Tolerance;
  names: string[];
}

function benchSettings(files: string[], opts: BenchOptions): BenchSettings {
  if (files.length === 0) throw new BenchOptionError('no models to benchmark');
  const runs = positiveInt(opts.runs, 50, '--runs');
  const warmup = positiveInt(opts.warmup, 5, '--warmup', 0);
  const block = positiveInt(opts.block, 5, '--block');
  const sessionRuns = positiveInt(opts.sessionRuns, 3, '--session-runs');
  const threads = positiveInt(opts.threads, 1, '--threads');
  const seed = opts.seed ?? 0;
  const tolerance = TOLERANCES[opts.tolerance ?? 'fp32'];
  if (!tolerance) throw new BenchOptionError(`--tolerance: '${opts.tolerance}' is not one of ${Object.keys(TOLERANCES).join(', ')}`);
  if (!Number.isInteger(seed)) throw new BenchOptionError(`--seed: '${seed}' is not an integer`);
  if (opts.timeBudgetMs !== undefined && !(opts.timeBudgetMs > 0)) throw new BenchOptionError(`--time-budget: '${opts.timeBudgetMs / 1000}' is not a positive number of seconds`);
  if (opts.names && opts.names.length !== files.length) throw new BenchOptionError(`--name: ${opts.names.length} labels for ${files.length} models`);
  const names = opts.names ?? defaultNames(files);
  if (new Set(names).size !== names.length) throw new BenchOptionError(`--name: labels must be distinct`);
  return { runs, warmup, block, sessionRuns, threads, seed, tolerance, names };
}

type LoadedRuntime = Awaited<ReturnType<typeof ortRuntime>>;

/** Creating a model's session (timed, into m.sessionCreateMs) and running it once; failures are BenchErrors naming the model. */
interface SessionOps {
  create(m: Prepared): Promise<ort.InferenceSession>;
  run(m: Prepared): Promise<void>;
}

function sessionOps(runtime: LoadedRuntime, opts: BenchOptions): SessionOps {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all', logSeverityLevel: 4, ...runtime.options,
    ...(opts.sessionConfig && Object.keys(opts.sessionConfig).length ? { extra: { ...opts.sessionConfig } } : {}),
  };
  return {
    async create(m) {
      const t0 = performance.now();
      let s: ort.InferenceSession;
      try {
        s = typeof m.source === 'string' ? await runtime.ort.InferenceSession.create(m.source, sessionOptions) : await runtime.ort.InferenceSession.create(m.source, sessionOptions);
      } catch (e) {
        throw new BenchError(m.file, `onnxruntime cannot load the model: ${firstLine(e)}`, { cause: e });
      }
      m.sessionCreateMs.push(performance.now() - t0);
      return s;
    },
    async run(m) {
      try {
        await m.session!.run(m.feeds);
      } catch (e) {
        throw new BenchError(m.file, `onnxruntime failed to run the model: ${firstLine(e)}${opts.inputsDir === undefined ? ' (synthetic inputs: --dim NAME=N sets their sizes, --inputs DIR gives real ones)' : ''}`, { cause: e });
      }
    },
  };
}

/**
 * 1-2. Session creation, interleaved, `sessionRuns` times per model; the last round keeps the
 * sessions, warms them up (peak RSS growth), and keeps one run's outputs for the accuracy check.
 */
async function createSessions(models: Prepared[], ops: SessionOps, s: BenchSettings, progress: (p: BenchProgress) => void): Promise<void> {
  // ORT initializes itself on the first creation: do it untimed, so the first model is not charged
  await (await ops.create(models[0]!)).release();
  models[0]!.sessionCreateMs.length = 0;
  const totalCreate = s.sessionRuns * models.length;
  for (let r = 0; r < s.sessionRuns; r++) {
    const last = r === s.sessionRuns - 1;
    for (const [i, m] of models.entries()) {
      progress({ phase: 'create', done: r * models.length + i, total: totalCreate, model: m.name });
      if (!last) {
        await (await ops.create(m)).release();
        continue;
      }
      const rss0 = process.memoryUsage.rss();
      m.session = await ops.create(m);
      let peak = process.memoryUsage.rss();
      for (let w = 0; w < s.warmup; w++) {
        await ops.run(m);
        peak = Math.max(peak, process.memoryUsage.rss());
      }
      m.peakRssBytes = Math.max(0, peak - rss0);
      try {
        const outs = await m.session.run(m.feeds);
        m.outputs = Object.fromEntries(Object.entries(outs).map(([k, t]) => [k, fromOrtTensor(t as ort.Tensor)]));
      } catch (e) {
        throw new BenchError(m.file, `onnxruntime failed to run the model: ${firstLine(e)}`, { cause: e });
      }
    }
  }
}

/** 3. Timed runs, interleaved in blocks (at least 5 per model before --time-budget may stop them). */
async function timeRuns(models: Prepared[], ops: SessionOps, s: BenchSettings, opts: BenchOptions, progress: (p: BenchProgress) => void): Promise<void> {
  const { runs, block } = s;
  const minRuns = Math.min(5, runs);
  const start = performance.now();
  progress({ phase: 'run', done: 0, total: runs });
  const { timed } = await timeInterleaved(models.map((m) => () => ops.run(m)), {
    runs,
    block,
    onRound: (done) => progress({ phase: 'run', done, total: runs }),
    shouldStop: (done) => opts.timeBudgetMs !== undefined && done >= minRuns && performance.now() - start >= opts.timeBudgetMs,
  });
  models.forEach((m, i) => { m.latencyMs.push(...timed[i]!); });
  progress({ phase: 'run', done: runs, total: runs });
}

/** One model's result: latency statistics, throughput, GFLOP/s; after the first, the ratio and accuracy against it. */
function modelResult(m: Prepared, i: number, first: Prepared, s: BenchSettings): ModelBenchResult {
  const stats = latencyStats(m.latencyMs);
  const out: ModelBenchResult = {
    name: m.name,
    path: m.file,
    sizeBytes: m.sizeBytes,
    dims: m.dims,
    batch: m.batch,
    sessionCreateMs: m.sessionCreateMs,
    latencyMs: m.latencyMs,
    stats,
    throughputPerSec: (m.batch * 1000) / stats.p50Ms,
    ...(m.peakRssBytes !== undefined ? { peakRssBytes: m.peakRssBytes } : {}),
    ...(m.gflops !== undefined ? { gflops: m.gflops, achievedGflopsPerSec: m.gflops / (stats.p50Ms / 1000) } : {}),
  };
  if (i > 0) {
    const ci = bootstrapRatioCI(first.latencyMs, m.latencyMs, { seed: s.seed });
    out.ratioVsFirst = { p50: ci.ratio, ci95: ci.ci95 };
    const accuracy = accuracyVsFirst(first.outputs, m.outputs, s.tolerance);
    if (accuracy) out.accuracy = accuracy;
  }
  return out;
}

export async function runBench(files: string[], opts: BenchOptions): Promise<BenchResult> {
  const s = benchSettings(files, opts);
  const progress = opts.onProgress ?? (() => {});
  const models: Prepared[] = [];
  for (let i = 0; i < files.length; i++) {
    progress({ phase: 'load', done: i, total: files.length, model: s.names[i]! });
    models.push(prepare(files[i]!, s.names[i]!, opts, models[0]));
  }
  const runtime = await ortRuntime(opts.runtime ?? 'node', s.threads);
  if (runtime.ort !== ort) {
    // the web runtime takes model bytes (not a path) and its own Tensor class
    for (const m of models) {
      if (typeof m.source === 'string') m.source = new Uint8Array(fs.readFileSync(m.source));
      for (const [k, t] of Object.entries(m.feeds)) m.feeds[k] = new runtime.ort.Tensor(t.type, t.data as never, t.dims);
    }
  }
  const ops = sessionOps(runtime, opts);
  try {
    await createSessions(models, ops, s, progress);
    await timeRuns(models, ops, s, opts, progress);
  } finally {
    for (const m of models) {
      const session = m.session;
      delete m.session;
      if (session) await session.release().catch(() => {});
    }
  }
  const { warmup, runs, block, seed } = s;
  return {
    schema: BENCH_SCHEMA,
    createdAt: new Date().toISOString(),
    environment: { ...benchEnvironment({ threads: s.threads, ...(opts.machine !== undefined ? { machine: opts.machine } : {}), ...(opts.target !== undefined ? { target: opts.target } : {}) }), runtime: runtime.name },
    options: { warmup, runs, block, ...(opts.sessionConfig && Object.keys(opts.sessionConfig).length ? { sessionConfig: opts.sessionConfig } : {}), ...(opts.timeBudgetMs !== undefined ? { timeBudgetMs: opts.timeBudgetMs } : {}), seed },
    models: models.map((m, i) => modelResult(m, i, models[0]!, s)),
  };
}

/** Parse the CLI's option strings (commander gives strings); errors are BenchOptionErrors. Threads default to os.cpus().length. */
/** --session-config KEY=VALUE (repeatable) -> { KEY: VALUE } */
function sessionConfigFromCli(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i <= 0) throw new BenchOptionError(`--session-config: '${e}' is not KEY=VALUE`);
    out[e.slice(0, i).trim()] = e.slice(i + 1).trim();
  }
  return out;
}

export function benchOptionsFromCli(o: {
  runs: string; warmup: string; timeBudget?: string; sessionRuns: string; threads?: string; seed: string; block?: string;
  inputs?: string; name?: string; machine?: string; target?: string; tolerance?: string; sessionConfig?: string[]; runtime?: string;
}, defaults: { threads?: number } = {}): Omit<BenchOptions, 'dims' | 'onProgress'> {
  const int = (v: string, what: string, min: number): number => {
    const n = /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new BenchOptionError(`${what}: '${v}' is not ${min === 0 ? 'a count' : min === 1 ? 'a positive integer' : 'an integer'}`);
    return n;
  };
  let timeBudgetMs: number | undefined;
  if (o.timeBudget !== undefined) {
    const s = Number(o.timeBudget);
    if (!/^\s*[\d.]+\s*$/.test(o.timeBudget) || !Number.isFinite(s) || s <= 0) throw new BenchOptionError(`--time-budget: '${o.timeBudget}' is not a positive number of seconds`);
    timeBudgetMs = s * 1000;
  }
  let names: string[] | undefined;
  if (o.name !== undefined) {
    names = o.name.split(',').map((s) => s.trim());
    if (names.some((n) => !n)) throw new BenchOptionError(`--name: '${o.name}' has an empty label`);
  }
  return {
    runs: int(o.runs, '--runs', 1),
    ...(o.sessionConfig?.length ? { sessionConfig: sessionConfigFromCli(o.sessionConfig) } : {}),
    ...(o.block !== undefined ? { block: int(o.block, '--block', 1) } : {}),
    warmup: int(o.warmup, '--warmup', 0),
    sessionRuns: int(o.sessionRuns, '--session-runs', 1),
    threads: o.threads !== undefined ? int(o.threads, '--threads', 1) : defaults.threads ?? os.cpus().length,
    seed: int(o.seed, '--seed', Number.MIN_SAFE_INTEGER),
    ...(timeBudgetMs !== undefined ? { timeBudgetMs } : {}),
    ...(o.inputs !== undefined ? { inputsDir: o.inputs } : {}),
    ...(names ? { names } : {}),
    ...(o.machine !== undefined ? { machine: o.machine } : {}),
    ...(o.target !== undefined ? { target: o.target } : {}),
    ...(o.tolerance !== undefined ? { tolerance: o.tolerance } : {}),
    ...(o.runtime !== undefined ? { runtime: benchRuntime(o.runtime) } : {}),
  };
}

function benchRuntime(v: string): BenchRuntime {
  if (v !== 'node' && v !== 'web') throw new BenchOptionError(`--runtime: '${v}' is not node or web`);
  return v;
}

/**
 * Outputs of a model against the first model's on the same inputs (outputs matched by name): the
 * worst max abs error and cosine over all outputs, judged by the validation tolerance.
 */
function accuracyVsFirst(ref: Record<string, Tensor> | undefined, cand: Record<string, Tensor> | undefined, tolerance: Tolerance): ModelBenchResult['accuracy'] | undefined {
  if (!ref || !cand) return undefined;
  let maxAbsError = 0, cosine = 1, ok = true, compared = 0;
  for (const [name, a] of Object.entries(ref)) {
    const b = cand[name];
    if (!b) continue;
    compared++;
    try {
      const v = judge(outputMetrics(name, a, b, tolerance.atol === undefined ? undefined : { atol: tolerance.atol, rtol: tolerance.rtol ?? 0 }), tolerance);
      maxAbsError = Math.max(maxAbsError, v.maxAbsError);
      cosine = Math.min(cosine, v.cosine);
      ok &&= v.ok;
    } catch {
      ok = false;
      cosine = 0;
      maxAbsError = Infinity;
    }
  }
  return compared ? { maxAbsError, cosine, ok } : undefined;
}
