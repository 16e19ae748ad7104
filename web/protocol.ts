/** Messages between the page (main.ts) and the compile worker (worker.ts). */
import type { ModelSummary } from '../src/cli/inspect.js';
import type { CompileReport } from '../src/compile.js';
import type { ValidationResult } from '../src/bench/validate.js';
import type { LatencyStats } from '../src/bench/types.js';

export type QuantizeChoice = 'none' | 'dynamic' | 'int4' | 'fp16';

export type ToWorker =
  | { kind: 'load'; files: File[] }
  | { kind: 'compile'; target: string; quantize: QuantizeChoice };

export interface TargetInfo { name: string; description: string; quantize: string[] }

export interface LatencyResult {
  /** the runtime that timed them, e.g. 'onnxruntime-web 1.30.0 (wasm), 4 threads' */
  runtime: string;
  inputs: string;
  original: LatencyStats;
  compiled: LatencyStats;
  /** p50 compiled / p50 original, with a bootstrap 95% CI */
  ratio: number;
  ci95: [number, number];
  timedRuns: number;
}

export interface CompileOutcome {
  fileName: string;
  target: string;
  quantize: QuantizeChoice;
  report: CompileReport;
  validation?: ValidationResult;
  latency?: LatencyResult;
  sizeBefore: number;
  sizeAfter: number;
  /** the compiled model, absent when it was refused */
  bytes?: ArrayBuffer;
  /** ms per phase, measured in the worker */
  phases: Record<string, number>;
}

export type FromWorker =
  | { kind: 'ready'; targets: TargetInfo[]; runtime: string; maxBytes: number }
  | { kind: 'loaded'; summary: ModelSummary }
  | { kind: 'progress'; phase: 'prepare' | 'compile' | 'validate' | 'latency' | 'write'; text: string; index?: number; total?: number }
  /** a failure: the CLI's one-line message; `outcome` when the compile got as far as a report */
  | { kind: 'error'; message: string; during: 'load' | 'compile'; outcome?: CompileOutcome }
  | { kind: 'done'; outcome: CompileOutcome };
