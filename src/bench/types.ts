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
}

export interface BenchResult {
  schema: typeof BENCH_SCHEMA;
  createdAt: string;
  environment: BenchEnvironment;
  /** block: timed runs per model in a row (after untimed settling runs), see interleave.ts */
  options: { warmup: number; runs: number; block?: number; sessionConfig?: Record<string, string>; timeBudgetMs?: number; seed: number };
  models: ModelBenchResult[];
}
