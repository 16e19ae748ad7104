/**
 * The JSON that `retarget bench --json` writes and `retarget compare` / `retarget report` read.
 * A contract for users' CI scripts: extend it (new optional fields), never rename.
 */

export const BENCH_SCHEMA = 'retarget-bench/1';

export interface BenchEnvironment {
  /** a label for the machine, from --machine (e.g. "c7g.xlarge"); defaults to the host name */
  machine: string;
  cpuModel: string;
  /** ISA features that matter for kernels: avx2, avx512f, avx512_vnni, neon/asimd, asimddp, sve, ... */
  cpuFlags: string[];
  cores: number;
  /** intra-op threads given to ONNX Runtime */
  threads: number;
  platform: string;
  arch: string;
  node: string;
  onnxruntime: string;
  /** the runtime that timed the models: onnxruntime-node (CPU EP) or onnxruntime-web (wasm EP); absent in older results: onnxruntime-node */
  runtime?: string;
  retarget: string;
  /** the target the models were compiled for, when known (--target) */
  target?: string;
}

export interface LatencyStats {
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  stdevMs: number;
}

export interface ModelBenchResult {
  /** a short label (file name without extension, unless --name) used to match models across runs */
  name: string;
  path: string;
  /** model file plus external data, bytes */
  sizeBytes: number;
  /** input dims used (symbolic dims pinned), e.g. { batch: 1, sequence: 64 } */
  dims: Record<string, number>;
  batch: number;
  /** session creation time, one sample per creation */
  sessionCreateMs: number[];
  /** one sample per inference, in run order (interleaved with the other models) */
  latencyMs: number[];
  stats: LatencyStats;
  /** inferences per second at `batch` (batch / p50) */
  throughputPerSec: number;
  /** resident memory growth while the session existed, bytes (best effort) */
  peakRssBytes?: number;
  /** cost model: GFLOPs per inference at `dims` */
  gflops?: number;
  /** gflops / p50 latency */
  achievedGflopsPerSec?: number;
  /** latency relative to the first model of the run (p50 ratio, bootstrap 95% CI of the ratio of medians) */
  ratioVsFirst?: { p50: number; ci95: [number, number] };
  /** accuracy against the first model (from validation), when measured */
  accuracy?: { maxAbsError: number; cosine: number; ok: boolean };
  /**
   * `bench --generate` (a decoder with a KV cache generating greedily): then `latencyMs` holds one
   * sample per decode step (ms per token), `stats` their statistics, `throughputPerSec` tokens/s,
   * `ratioVsFirst` the decode ms/token ratio, and `batch` is 1.
   */
  generate?: GenerateResult;
}

/** One model's generation figures (see src/bench/generate.ts). */
export interface GenerateResult {
  /** prompt tokens (the prefill, run over an empty cache) */
  prompt: number;
  /** cache positions the decode steps start from (the prompt's, extended by untimed runs to --past) */
  past: number;
  /** decode steps per generation (each feeds the previous token and yields the next) */
  newTokens: number;
  /** timed generations */
  generations: number;
  /** one sample per generation: the prefill run plus the argmax of its last logits row */
  prefillMs: number[];
  prefillStats: LatencyStats;
  /** statistics of the decode steps (the samples are `latencyMs`) */
  decodeMsPerToken: LatencyStats;
  /** 1000 / median decode ms per token */
  tokensPerSecond: number;
  /** prompt tokens / median prefill time */
  prefillTokensPerSecond: number;
  /** weight bytes a decode step reads: initializers and Constant tensors that nodes read, except tables read only through Gather (embeddings) */
  bytesPerToken: number;
  /** bytes of tables read only through Gather (a row per token), not counted in bytesPerToken */
  lookupTableBytes: number;
  /** KV cache bytes a decode step reads (past inputs, mean over the steps); not counted in the roofline */
  kvCacheBytesPerToken: number;
  /** bytes of the outputs a decode step returns (logits and present), which onnxruntime-node copies into JavaScript memory */
  outputBytesPerToken: number;
  /** memory bandwidth the harness measured (or was given), GB/s */
  bandwidthGBs: number;
  /** bandwidthGBs * 1e9 / bytesPerToken: tokens/s if a step took only the time to read the weights once */
  rooflineTokensPerSecond: number;
  /** 100 * tokensPerSecond / rooflineTokensPerSecond */
  rooflinePct: number;
  /** the greedy tokens of the first timed generation: the prefill's, then one per decode step */
  tokens: number[];
  /** every generation of this model gave the same tokens */
  consistent: boolean;
  /** tokens equal to the first model's (absent for the first model) */
  agreesWithFirst?: boolean;
  /** index of the first token that differs from the first model's */
  firstMismatch?: number;
  /** prefill p50 relative to the first model, with a bootstrap 95% CI */
  prefillRatioVsFirst?: { p50: number; ci95: [number, number] };
  /** tokens/s relative to the first model (ratio of median decode ms, inverted), with a bootstrap 95% CI */
  tokensPerSecondRatioVsFirst?: { ratio: number; ci95: [number, number] };
}

/** `options.generate`: what every model of a `bench --generate` run was given. */
export interface GenerateRunOptions {
  prompt: number;
  newTokens: number;
  past: number;
  bandwidth: { gbPerSec: number; method: string; samplesGBs?: number[]; bytes?: number; threads?: number };
}

export interface BenchResult {
  schema: typeof BENCH_SCHEMA;
  createdAt: string;
  environment: BenchEnvironment;
  /** block: timed runs per model in a row (after untimed settling runs), see interleave.ts */
  /** with --generate, runs, block and warmup count whole generations, and `generate` is set */
  options: { warmup: number; runs: number; block?: number; sessionConfig?: Record<string, string>; timeBudgetMs?: number; seed: number; generate?: GenerateRunOptions };
  models: ModelBenchResult[];
}
