/**
 * `retarget bench --generate`: time decoder LLMs with a KV cache the way they are used, generating
 * token by token (batch 1, greedy), side by side.
 *
 * A model qualifies when decoderSignature() recognizes it: integer input_ids, a rank-3 logits
 * output, and `present.N.*` outputs that feed `past_key_values.N.*` inputs at the next step
 * (attention_mask and position_ids are fed when the model takes them).
 *
 * One generation:
 *  1. prefill: one run over the `prompt` tokens with an empty cache, then the argmax of the last
 *     logits row (timed: one sample per generation);
 *  2. when `past` > `prompt`: untimed runs over (past - prompt) more tokens (chunks of at most
 *     `prompt`), so that the decode starts from a cache of exactly `past` positions;
 *  3. `newTokens` decode steps, each timed: feed the previous token, present in as past, the
 *     attention mask one longer and the next position id; take the argmax of the logits.
 * Prompt and filler ids are seeded (--seed), the same for every model, so every model should pick
 * the same greedy tokens: a model that does not is flagged (agreesWithFirst: false).
 *
 * No copies through JavaScript: the cache lives in two preallocated buffers per cache tensor
 * (capacity prompt|past + new tokens positions); each run reads past from one and has ORT write
 * present straight into the other (pre-allocated fetches: `session.run(feeds, fetches)`), then they
 * swap; logits go into one preallocated buffer; attention_mask, position_ids and input_ids are
 * views of preallocated arrays. What cannot be avoided from JavaScript: onnxruntime-node (1.30)
 * still copies every fetched CPU output into a fresh ArrayBuffer that it returns (verified: the
 * returned tensors never alias the fetches; its Run has no zero-copy path for CPU outputs, IO
 * binding only for GPU buffers). Those bytes (logits row + present) are reported per token as
 * outputBytesPerToken, so the cost is visible: on gpt2-small at past 512 they are 38 MB a step.
 *
 * Timing is interleaved like runBench (see interleave.ts): rounds run every model `block`
 * generations in a row, after untimed settling prefills (at least one, until `settleMs` have passed
 * since the switch), rounds rotating the order, so drift hits every model alike; ratios against the
 * first model come with a seeded bootstrap 95% CI over the per-token samples.
 *
 * The roofline: a decode step reads every weight once, so tokens/s can be at most memory bandwidth /
 * weight bytes per token. Weight bytes: initializers and Constant tensors that a node reads, except
 * tables read only through Gather (token and position embeddings, rotary tables: a row per token).
 * The KV cache read per step is reported (kvCacheBytesPerToken) but not counted. Bandwidth: measured
 * in process before any session exists (bandwidth.ts), or given (--bandwidth).
 */
import ort from 'onnxruntime-node';
import { DataType } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import { fromFloat16Bits } from '../ir/half.js';
import type { Model } from '../ir/model.js';
import { intInputRanges } from '../inputs.js';
import { readModel } from '../node/files.js';
import { measureBandwidth } from './bandwidth.js';
import { BenchError, BenchOptionError, defaultNames, sizeOnDisk, type BenchProgress } from './bench.js';
import { benchEnvironment } from './environment.js';
import { decoderSignature, syntheticPrompt, type DecoderSignature } from './generation.js';
import { bootstrapRatioCI, latencyStats } from './stats.js';
import { BENCH_SCHEMA, type BenchResult, type GenerateResult, type GenerateRunOptions, type ModelBenchResult } from './types.js';
import { InternalError } from '../errors.js';

export interface GenerateOptions {
  /** prefill length, tokens (default 64) */
  prompt?: number;
  /** decode steps per generation (default 32) */
  newTokens?: number;
  /** cache positions the decode starts from: 0 (default) = the prompt's; else at least `prompt` */
  past?: number;
  /** timed generations per model (default 5) */
  runs?: number;
  /** generations per model in a row (default 1) */
  block?: number;
  /** untimed generations per model after its session is created (default 1) */
  warmup?: number;
  /** stop the timed rounds once this much time has gone by (after at least 2 generations per model, or `runs` if fewer) */
  timeBudgetMs?: number;
  /** intra-op threads (also the bandwidth measurement's reader threads) */
  threads: number;
  /** ONNX Runtime session config entries for every model alike */
  sessionConfig?: Record<string, string>;
  /** seed of the prompt and filler ids and of the bootstrap (default 0) */
  seed?: number;
  names?: string[];
  machine?: string;
  target?: string;
  /** memory bandwidth in GB/s to use instead of measuring it */
  bandwidthGBs?: number;
  /** buffer size of the bandwidth measurement (default 512 MiB) */
  bandwidthBytes?: number;
  /** untimed settling before each block (default 50 ms, at least one prefill) */
  settleMs?: number;
  onProgress?: (p: BenchProgress) => void;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.trim();
}

// ---------------------------------------------------------------------------------------------
// What a decode step reads

const LOOKUP_OPS = new Set(['Gather', 'GatherElements', 'GatherND', 'GatherBlockQuantized']);

/** A table that nodes read only through lookups (slot 1 of every Gather-like op is the indices). */
function lookupOnly(v: Value): boolean {
  return v.uses.length > 0 && !v.isReturned && v.uses.every((u) => LOOKUP_OPS.has(u.node.opType) && u.slot !== 1);
}

/**
 * Weight bytes a decode step reads: initializers and Constant tensors that a node reads, except
 * tables read only through Gather (a row per token: their bytes are `lookupTableBytes`).
 */
export function weightBytesPerToken(model: Model): { bytesPerToken: number; lookupTableBytes: number } {
  let weights = 0, lookup = 0;
  for (const g of model.allGraphs()) {
    const add = (v: Value | undefined, bytes: number): void => {
      if (!v || (v.uses.length === 0 && !v.isReturned)) return; // unread
      if (lookupOnly(v)) lookup += bytes;
      else weights += bytes;
    };
    for (const v of g.initializers) if (v.initializer) add(v, v.initializer.byteLength ?? 0);
    for (const n of g.nodes) {
      if (n.opType !== 'Constant' || n.domain !== '') continue;
      const a = n.attr('value');
      if (a?.type === 'tensor') add(n.outputs[0], a.value.byteLength ?? 0);
    }
  }
  return { bytesPerToken: weights, lookupTableBytes: lookup };
}

// ---------------------------------------------------------------------------------------------
// One model's generation loop

type IntArray = BigInt64Array | Int32Array;
type FloatArray = Float32Array | Uint16Array;

function intArray(type: 'int64' | 'int32', n: number): IntArray {
  return type === 'int64' ? new BigInt64Array(n) : new Int32Array(n);
}
function setInt(a: IntArray, i: number, v: number): void {
  if (a instanceof BigInt64Array) a[i] = BigInt(v);
  else a[i] = v;
}

interface CacheSlot {
  input: string;
  output: string;
  type: 'float32' | 'float16';
  /** dims with the past axis to be filled in */
  dims: number[];
  pastAxis: number;
  /** elements per cache position */
  perPosition: number;
  buffers: [FloatArray, FloatArray];
}

interface Generation {
  prefillMs: number;
  decodeMs: number[];
  tokens: number[];
}

class DecoderLoop {
  private readonly cache: CacheSlot[];
  private readonly idsType: 'int64' | 'int32';
  private readonly maskType: 'int64' | 'int32';
  private readonly posType: 'int64' | 'int32';
  private logitsType: 'float32' | 'float16' = 'float32';
  private logitsDims: (number | string)[] = [];
  private vocab = 0;
  private logits: FloatArray = new Float32Array(0);
  private readonly ids: IntArray;
  private readonly mask: IntArray;
  private readonly positions: IntArray;
  /** cache positions filled */
  private length = 0;
  /** which of the two buffers holds the cache */
  private current = 0;

  constructor(
    readonly file: string,
    readonly session: ort.InferenceSession,
    readonly sig: DecoderSignature,
    model: Model,
    /** largest run (tokens) */
    private readonly maxChunk: number,
    /** cache capacity, positions */
    private readonly capacity: number,
  ) {
    const intType = (name: string | undefined): 'int64' | 'int32' => {
      const v = name ? model.graph.inputs.find((x) => x.name === name) : undefined;
      return v?.type?.kind === 'tensor' && v.type.elemType === DataType.INT32 ? 'int32' : 'int64';
    };
    this.idsType = intType(sig.ids);
    this.maskType = intType(sig.mask);
    this.posType = intType(sig.positions);
    this.ids = intArray(this.idsType, maxChunk);
    this.mask = intArray(this.maskType, capacity);
    if (this.mask instanceof BigInt64Array) this.mask.fill(1n);
    else this.mask.fill(1);
    this.positions = intArray(this.posType, maxChunk);
    this.cache = sig.cache.map((c) => {
      if (c.elemType !== DataType.FLOAT && c.elemType !== DataType.FLOAT16) throw new BenchError(file, `cache input '${c.input}' is not float32 or float16`);
      const dims = c.dims.map((d, i) => (i === sig.pastAxis ? 0 : typeof d === 'number' ? d : 1)); // batch 1
      const perPosition = dims.reduce((a, d, i) => (i === sig.pastAxis ? a : a * d), 1);
      const type = c.elemType === DataType.FLOAT ? 'float32' as const : 'float16' as const;
      const make = (): FloatArray => (type === 'float32' ? new Float32Array(perPosition * capacity) : new Uint16Array(perPosition * capacity));
      return { input: c.input, output: c.output, type, dims, pastAxis: sig.pastAxis, perPosition, buffers: [make(), make()] };
    });
    const out = model.graph.outputs.find((v) => v.name === sig.logits);
    if (out?.type?.kind === 'tensor') {
      this.logitsType = out.type.elemType === DataType.FLOAT16 ? 'float16' : 'float32';
      this.logitsDims = (out.type.shape ?? []).map((d) => (typeof d === 'number' ? d : String(d)));
      if (out.type.elemType !== DataType.FLOAT && out.type.elemType !== DataType.FLOAT16) throw new BenchError(file, `logits output '${sig.logits}' is not float32 or float16`);
    }
  }

  /** bytes of one cache position over every cache tensor */
  get cacheBytesPerPosition(): number {
    return this.cache.reduce((a, c) => a + c.perPosition * (c.type === 'float32' ? 4 : 2), 0);
  }
  /** bytes of the logits of a one-token run */
  get logitsBytesPerToken(): number {
    return this.logitsElements(1) * (this.logitsType === 'float32' ? 4 : 2);
  }
  get vocabSize(): number { return this.vocab; }

  private logitsShape(n: number): number[] {
    const rank = this.logitsDims.length;
    return this.logitsDims.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : i === rank - 1 ? this.vocab : n));
  }
  private logitsElements(n: number): number {
    return this.logitsShape(n).reduce((a, b) => a * b, 1);
  }

  private cacheDims(c: CacheSlot, n: number): number[] {
    const d = [...c.dims];
    d[c.pastAxis] = n;
    return d;
  }

  private fail(e: unknown): BenchError {
    return new BenchError(this.file, `onnxruntime failed to run the model: ${firstLine(e)} (this run needs ${this.capacity} positions, prompt or past + new tokens: the model may allow fewer)`);
  }

  /**
   * One untimed run over `tokens` with an empty cache and ORT-allocated outputs: learns the vocab
   * size and the logits shape, then allocates the logits buffer.
   */
  async probe(tokens: number[]): Promise<void> {
    const n = tokens.length;
    const feeds = this.feeds(tokens, 0);
    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds);
    } catch (e) {
      throw this.fail(e);
    }
    const l = out[this.sig.logits] as ort.Tensor | undefined;
    if (!l) throw new BenchError(this.file, `no '${this.sig.logits}' output`);
    this.vocab = Number(l.dims[l.dims.length - 1]);
    if (this.logitsDims.length !== l.dims.length) this.logitsDims = l.dims.map((d, i) => (i === 0 ? 1 : i === l.dims.length - 1 ? Number(d) : 'sequence'));
    this.logitsType = l.type === 'float16' ? 'float16' : 'float32';
    const got = l.dims.reduce((a, b) => a * Number(b), 1);
    if (got !== this.logitsElements(n)) throw new BenchError(this.file, `logits of a ${n}-token run have shape [${l.dims.join(',')}], not [${this.logitsShape(n).join(',')}]`);
    this.logits = this.logitsType === 'float32' ? new Float32Array(this.logitsElements(this.maxChunk)) : new Uint16Array(this.logitsElements(this.maxChunk));
  }

  private feeds(tokens: number[], past: number): Record<string, ort.Tensor> {
    const n = tokens.length, total = past + n;
    const feeds: Record<string, ort.Tensor> = {};
    for (let i = 0; i < n; i++) setInt(this.ids, i, tokens[i]!);
    feeds[this.sig.ids] = new ort.Tensor(this.idsType, this.ids.subarray(0, n), [1, n]);
    if (this.sig.mask) feeds[this.sig.mask] = new ort.Tensor(this.maskType, this.mask.subarray(0, total), [1, total]);
    if (this.sig.positions) {
      for (let i = 0; i < n; i++) setInt(this.positions, i, past + i);
      feeds[this.sig.positions] = new ort.Tensor(this.posType, this.positions.subarray(0, n), [1, n]);
    }
    for (const c of this.cache) {
      feeds[c.input] = new ort.Tensor(c.type, c.buffers[this.current]!.subarray(0, c.perPosition * past), this.cacheDims(c, past));
    }
    return feeds;
  }

  /** Run `tokens` over the cache (present written into the other buffer), return the greedy next token. */
  async forward(tokens: number[]): Promise<number> {
    const n = tokens.length, past = this.length, total = past + n;
    if (n > this.maxChunk || total > this.capacity) throw new InternalError('bench', `run of ${n} at ${past} exceeds the buffers`, { file: this.file });
    const feeds = this.feeds(tokens, past);
    const fetches: Record<string, ort.Tensor> = {};
    const next = 1 - this.current;
    for (const c of this.cache) fetches[c.output] = new ort.Tensor(c.type, c.buffers[next]!.subarray(0, c.perPosition * total), this.cacheDims(c, total));
    const count = this.logitsElements(n);
    fetches[this.sig.logits] = new ort.Tensor(this.logitsType, this.logits.subarray(0, count), this.logitsShape(n));
    try {
      await this.session.run(feeds, fetches);
    } catch (e) {
      throw this.fail(e);
    }
    this.current = next;
    this.length = total;
    return this.argmaxLastRow(count);
  }

  private argmaxLastRow(count: number): number {
    const v = this.vocab, from = count - v, l = this.logits;
    let best = 0;
    if (l instanceof Float32Array) {
      let max = l[from]!;
      for (let i = 1; i < v; i++) if (l[from + i]! > max) { max = l[from + i]!; best = i; }
    } else {
      let max = fromFloat16Bits(l[from]!);
      for (let i = 1; i < v; i++) {
        const x = fromFloat16Bits(l[from + i]!);
        if (x > max) { max = x; best = i; }
      }
    }
    return best;
  }

  reset(): void {
    this.length = 0;
    this.current = 0;
  }

  /** A settling run: the prompt with an empty cache, untimed. */
  async settle(prompt: number[]): Promise<void> {
    this.reset();
    await this.forward(prompt);
  }

  async generate(prompt: number[], filler: number[], newTokens: number): Promise<Generation> {
    this.reset();
    let t0 = performance.now();
    let token = await this.forward(prompt);
    const prefillMs = performance.now() - t0;
    for (let i = 0; i < filler.length; i += this.maxChunk) token = await this.forward(filler.slice(i, i + this.maxChunk));
    const tokens = [token];
    const decodeMs: number[] = [];
    for (let s = 0; s < newTokens; s++) {
      t0 = performance.now();
      token = await this.forward([token]);
      decodeMs.push(performance.now() - t0);
      tokens.push(token);
    }
    return { prefillMs, decodeMs, tokens };
  }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

interface Prepared {
  name: string;
  file: string;
  sizeBytes: number;
  sig: DecoderSignature;
  model?: Model;
  bytesPerToken: number;
  lookupTableBytes: number;
  /** bytes of one cache position over every cache tensor, and of a one-token run's logits */
  cachePerPosition: number;
  logitsPerToken: number;
  /** ids below this are valid (the embedding's rows) */
  idsLimit?: number;
  loop?: DecoderLoop;
  sessionCreateMs: number[];
  peakRssBytes?: number;
  prefillMs: number[];
  decodeMs: number[];
  tokens?: number[];
  consistent: boolean;
}


function count(v: number | undefined, def: number, what: string, min: number): number {
  const n = v ?? def;
  if (!Number.isSafeInteger(n) || n < min) throw new BenchOptionError(`${what}: '${v}' is not ${min === 0 ? 'a count' : 'a positive integer'}`);
  return n;
}

function sameTokens(a: number[], b: number[]): number | undefined {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return undefined;
}

/** The options, checked (BenchOptionErrors), with their defaults; `past` is the decode's starting cache length. */
interface GenerateSettings {
  prompt: number;
  newTokens: number;
  past: number;
  /** positions a generation needs: past + newTokens */
  capacity: number;
  runs: number;
  block: number;
  warmup: number;
  threads: number;
  seed: number;
  names: string[];
}

function generateSettings(files: string[], opts: GenerateOptions): GenerateSettings {
  if (files.length === 0) throw new BenchOptionError('no models to benchmark');
  const prompt = count(opts.prompt, 64, '--prompt', 1);
  const newTokens = count(opts.newTokens, 32, '--new-tokens', 1);
  const pastOpt = count(opts.past, 0, '--past', 0);
  if (pastOpt > 0 && pastOpt < prompt) throw new BenchOptionError(`--past: ${pastOpt} is less than --prompt ${prompt} (the decode starts from the prompt's cache: --past is 0 or at least --prompt)`);
  const runs = count(opts.runs, 5, '--runs', 1);
  const block = count(opts.block, 1, '--block', 1);
  const warmup = count(opts.warmup, 1, '--warmup', 0);
  const threads = count(opts.threads, 1, '--threads', 1);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new BenchOptionError(`--seed: '${seed}' is not an integer`);
  if (opts.timeBudgetMs !== undefined && !(opts.timeBudgetMs > 0)) throw new BenchOptionError(`--time-budget: '${opts.timeBudgetMs / 1000}' is not a positive number of seconds`);
  if (opts.bandwidthGBs !== undefined && !(opts.bandwidthGBs > 0 && Number.isFinite(opts.bandwidthGBs))) throw new BenchOptionError(`--bandwidth: '${opts.bandwidthGBs}' is not a positive number of GB/s`);
  if (opts.names && opts.names.length !== files.length) throw new BenchOptionError(`--name: ${opts.names.length} labels for ${files.length} models`);
  const names = opts.names ?? defaultNames(files);
  if (new Set(names).size !== names.length) throw new BenchOptionError(`--name: labels must be distinct`);
  const past = pastOpt || prompt;
  return { prompt, newTokens, past, capacity: past + newTokens, runs, block, warmup, threads, seed, names };
}

/** Read every model: its decoder signature (none: a BenchError), weight bytes per token, valid ids. */
function loadDecoders(files: string[], s: GenerateSettings, progress: (p: BenchProgress) => void): Prepared[] {
  return files.map((file, i) => {
    progress({ phase: 'load', done: i, total: files.length, model: s.names[i]! });
    const loaded = readModel(file);
    const sig = decoderSignature(loaded.model);
    if (!sig) throw new BenchError(file, `not a decoder with a KV cache (--generate needs input_ids, logits, and present.N.* outputs that feed past_key_values.N.* inputs)`);
    const w = weightBytesPerToken(loaded.model);
    const limit = intInputRanges(loaded.model)[sig.ids];
    return {
      name: s.names[i]!, file, sig, model: loaded.model, sizeBytes: sizeOnDisk(file, loaded.fileSize, loaded.externalFiles),
      ...w, ...(limit !== undefined ? { idsLimit: limit } : {}),
      cachePerPosition: 0, logitsPerToken: 0, sessionCreateMs: [], prefillMs: [], decodeMs: [], consistent: true,
    };
  });
}

/** The token ids every model is fed: the prompt, and the filler that takes the cache from the prompt to --past. */
interface PromptIds { prompt: number[]; filler: number[] }

/**
 * Sessions: create, probe, warm up, one model at a time. The first model's probe fixes the ids
 * every model gets (below every model's embedding size and the first's vocab).
 */
async function startSessions(models: Prepared[], s: GenerateSettings, opts: GenerateOptions, progress: (p: BenchProgress) => void): Promise<PromptIds> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all', intraOpNumThreads: s.threads, logSeverityLevel: 4,
    ...(opts.sessionConfig && Object.keys(opts.sessionConfig).length ? { extra: { ...opts.sessionConfig } } : {}),
  };
  const ids: PromptIds = { prompt: [], filler: [] };
  for (const [i, m] of models.entries()) {
    progress({ phase: 'create', done: i, total: models.length, model: m.name });
    const rss0 = process.memoryUsage.rss();
    const t0 = performance.now();
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(m.file, sessionOptions);
    } catch (e) {
      throw new BenchError(m.file, `onnxruntime cannot load the model: ${firstLine(e)}`, { cause: e });
    }
    m.sessionCreateMs.push(performance.now() - t0);
    m.loop = new DecoderLoop(m.file, session, m.sig, m.model!, s.prompt, s.capacity);
    delete m.model; // the IR (and its file buffer) is not needed any more
    if (i === 0) {
      await m.loop.probe(new Array<number>(s.prompt).fill(0));
      const limit = Math.min(m.loop.vocabSize, ...models.map((x) => x.idsLimit ?? Infinity));
      ids.prompt = syntheticPrompt(s.prompt, limit, s.seed);
      ids.filler = syntheticPrompt(s.past - s.prompt, limit, s.seed + 1);
    }
    if (i > 0) await m.loop.probe(ids.prompt);
    m.cachePerPosition = m.loop.cacheBytesPerPosition;
    m.logitsPerToken = m.loop.logitsBytesPerToken;
    let peak = process.memoryUsage.rss();
    for (let w = 0; w < s.warmup; w++) {
      const g = await m.loop.generate(ids.prompt, ids.filler, s.newTokens);
      m.tokens ??= g.tokens;
      peak = Math.max(peak, process.memoryUsage.rss());
    }
    m.peakRssBytes = Math.max(0, peak - rss0);
  }
  return ids;
}

/** Timed generations, interleaved in blocks; a model's first generations after a switch settle it first. */
async function timeGenerations(models: Prepared[], s: GenerateSettings, ids: PromptIds, opts: GenerateOptions, progress: (p: BenchProgress) => void): Promise<void> {
  const { runs, block } = s;
  const settleMs = opts.settleMs ?? 50;
  const minRuns = Math.min(2, runs);
  const start = performance.now();
  progress({ phase: 'run', done: 0, total: runs });
  let done = 0;
  for (let round = 0; done < runs; round++) {
    const n = Math.min(block, runs - done);
    for (let j = 0; j < models.length; j++) {
      const m = models[(round + j) % models.length]!;
      const loop = m.loop!;
      const switched = performance.now();
      do await loop.settle(ids.prompt);
      while (performance.now() - switched < settleMs);
      for (let r = 0; r < n; r++) {
        const g = await loop.generate(ids.prompt, ids.filler, s.newTokens);
        m.prefillMs.push(g.prefillMs);
        m.decodeMs.push(...g.decodeMs);
        if (!m.tokens) m.tokens = g.tokens;
        else if (sameTokens(m.tokens, g.tokens) !== undefined) m.consistent = false;
      }
    }
    done += n;
    progress({ phase: 'run', done, total: runs });
    if (opts.timeBudgetMs !== undefined && done >= minRuns && performance.now() - start >= opts.timeBudgetMs) break;
  }
}

/** One model's result: prefill and decode statistics, tokens/s against the roofline; after the first, ratios and token agreement. */
function generateResult(m: Prepared, i: number, first: Prepared, s: GenerateSettings, bw: { gbPerSec: number }): ModelBenchResult {
  const { prompt, past, newTokens } = s;
  const stats = latencyStats(m.decodeMs);
  const prefillStats = latencyStats(m.prefillMs);
  const tokensPerSecond = 1000 / stats.p50Ms;
  const roofline = (bw.gbPerSec * 1e9) / m.bytesPerToken;
  const gen: GenerateResult = {
    prompt, past, newTokens,
    generations: m.prefillMs.length,
    prefillMs: m.prefillMs,
    prefillStats,
    decodeMsPerToken: stats,
    tokensPerSecond,
    prefillTokensPerSecond: (prompt * 1000) / prefillStats.p50Ms,
    bytesPerToken: m.bytesPerToken,
    lookupTableBytes: m.lookupTableBytes,
    // the steps read past + 0 .. past + newTokens - 1 positions, and return one more each
    kvCacheBytesPerToken: m.cachePerPosition * (past + (newTokens - 1) / 2),
    outputBytesPerToken: m.logitsPerToken + m.cachePerPosition * (past + (newTokens + 1) / 2),
    bandwidthGBs: bw.gbPerSec,
    rooflineTokensPerSecond: roofline,
    rooflinePct: (100 * tokensPerSecond) / roofline,
    tokens: m.tokens ?? [],
    consistent: m.consistent,
  };
  const out: ModelBenchResult = {
    name: m.name, path: m.file, sizeBytes: m.sizeBytes, dims: { batch: 1 }, batch: 1,
    sessionCreateMs: m.sessionCreateMs, latencyMs: m.decodeMs, stats, throughputPerSec: tokensPerSecond,
    ...(m.peakRssBytes !== undefined ? { peakRssBytes: m.peakRssBytes } : {}),
    generate: gen,
  };
  if (i > 0) {
    const ci = bootstrapRatioCI(first.decodeMs, m.decodeMs, { seed: s.seed });
    out.ratioVsFirst = { p50: ci.ratio, ci95: ci.ci95 };
    gen.tokensPerSecondRatioVsFirst = { ratio: 1 / ci.ratio, ci95: [1 / ci.ci95[1], 1 / ci.ci95[0]] };
    const pci = bootstrapRatioCI(first.prefillMs, m.prefillMs, { seed: s.seed });
    gen.prefillRatioVsFirst = { p50: pci.ratio, ci95: pci.ci95 };
    const mismatch = sameTokens(first.tokens ?? [], gen.tokens);
    gen.agreesWithFirst = mismatch === undefined;
    if (mismatch !== undefined) gen.firstMismatch = mismatch;
  }
  return out;
}

export async function runGenerateBench(files: string[], opts: GenerateOptions): Promise<BenchResult> {
  const s = generateSettings(files, opts);
  const progress = opts.onProgress ?? (() => {});
  const models = loadDecoders(files, s, progress);
  // bandwidth first, while no session's threads are spinning
  const bw = opts.bandwidthGBs !== undefined
    ? { gbPerSec: opts.bandwidthGBs, method: 'given (--bandwidth)' }
    : await measureBandwidth({ threads: s.threads, ...(opts.bandwidthBytes !== undefined ? { bytes: opts.bandwidthBytes } : {}) });
  try {
    const ids = await startSessions(models, s, opts, progress);
    await timeGenerations(models, s, ids, opts, progress);
  } finally {
    for (const m of models) {
      const session = m.loop?.session;
      delete m.loop;
      if (session) await session.release().catch(() => {});
    }
  }
  const { warmup, runs, block, seed, prompt, newTokens, past } = s;
  const generate: GenerateRunOptions = { prompt, newTokens, past, bandwidth: { ...bw } };
  return {
    schema: BENCH_SCHEMA,
    createdAt: new Date().toISOString(),
    environment: benchEnvironment({ threads: s.threads, ...(opts.machine !== undefined ? { machine: opts.machine } : {}), ...(opts.target !== undefined ? { target: opts.target } : {}) }),
    options: {
      warmup, runs, block, seed, generate,
      ...(opts.sessionConfig && Object.keys(opts.sessionConfig).length ? { sessionConfig: opts.sessionConfig } : {}),
      ...(opts.timeBudgetMs !== undefined ? { timeBudgetMs: opts.timeBudgetMs } : {}),
    },
    models: models.map((m, i) => generateResult(m, i, models[0]!, s, bw)),
  };
}

/**
 * The CLI's --generate options (commander gives strings) on top of the common bench options.
 * `isDefault(option)` says whether commander filled an option from its default: --runs, --block and
 * --warmup then take the generation defaults (5, 1, 1: they count whole generations here).
 * Errors are BenchOptionErrors (usage errors).
 */
export function generateOptionsFromCli(
  o: { prompt?: string; newTokens?: string; past?: string; bandwidth?: string; dim?: string[]; inputs?: string; sessionRuns?: string; tolerance?: string },
  common: { runs?: number; block?: number; warmup?: number; threads: number; seed?: number; timeBudgetMs?: number; sessionConfig?: Record<string, string>; names?: string[]; machine?: string; target?: string },
  isDefault: (option: 'runs' | 'block' | 'warmup' | 'sessionRuns' | 'tolerance') => boolean,
): GenerateOptions {
  if (o.dim?.length) throw new BenchOptionError('--dim: not with --generate (batch 1; --prompt, --past and --new-tokens set the lengths)');
  if (o.inputs !== undefined) throw new BenchOptionError('--inputs: not with --generate (the prompt is seeded token ids: --seed)');
  if (!isDefault('sessionRuns')) throw new BenchOptionError('--session-runs: not with --generate (each model is created once)');
  if (!isDefault('tolerance')) throw new BenchOptionError('--tolerance: not with --generate (models are compared by their greedy tokens)');
  const int = (v: string | undefined, what: string, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new BenchOptionError(`${what}: '${v}' is not ${min === 0 ? 'a count' : 'a positive integer'}`);
    return n;
  };
  let bandwidthGBs: number | undefined;
  if (o.bandwidth !== undefined) {
    bandwidthGBs = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(o.bandwidth) ? Number(o.bandwidth) : NaN;
    if (!(bandwidthGBs > 0)) throw new BenchOptionError(`--bandwidth: '${o.bandwidth}' is not a positive number of GB/s`);
  }
  const prompt = int(o.prompt, '--prompt', 1), newTokens = int(o.newTokens, '--new-tokens', 1), past = int(o.past, '--past', 0);
  return {
    threads: common.threads,
    ...(prompt !== undefined ? { prompt } : {}),
    ...(newTokens !== undefined ? { newTokens } : {}),
    ...(past !== undefined ? { past } : {}),
    ...(bandwidthGBs !== undefined ? { bandwidthGBs } : {}),
    ...(common.runs !== undefined && !isDefault('runs') ? { runs: common.runs } : {}),
    ...(common.block !== undefined && !isDefault('block') ? { block: common.block } : {}),
    ...(common.warmup !== undefined && !isDefault('warmup') ? { warmup: common.warmup } : {}),
    ...(common.seed !== undefined ? { seed: common.seed } : {}),
    ...(common.timeBudgetMs !== undefined ? { timeBudgetMs: common.timeBudgetMs } : {}),
    ...(common.sessionConfig ? { sessionConfig: common.sessionConfig } : {}),
    ...(common.names ? { names: common.names } : {}),
    ...(common.machine !== undefined ? { machine: common.machine } : {}),
    ...(common.target !== undefined ? { target: common.target } : {}),
  };
}
