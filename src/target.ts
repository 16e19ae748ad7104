/**
 * A target is data plus a pipeline: the runtime and execution provider the model is for, the ISA
 * features it assumes, the ops and element types it can run (its capability table), its
 * quantization preset, preferred layout, the session options it recommends, the pass levels it
 * allows (1 = standard ONNX only), and the passes to run, by name, in order (a `fixedPoint` group
 * repeats until nothing changes).
 */
import { isStandardOp } from './onnx/standard-ops.js';
import type { PassLevel, QuantizeMode } from './pass/pass.js';

export type PipelineSpec = string | { fixedPoint: string[]; maxIterations?: number };

/**
 * One kernel row: [sinceVersion, lastVersion or null (open), element types of the op's main type
 * constraint (its first input) or null for any]. It covers opset versions since..last.
 */
export type KernelRow = [number, number | null, string[] | null];

/** Kernels a runtime has, by `domain::Op` ('ai.onnx' for the default domain): its rows, oldest first. */
export type KernelTable = Record<string, KernelRow[]>;

export interface Capabilities {
  /** where these facts come from (document and version) */
  source: string;
  kernels: KernelTable;
  /** domains whose ops the runtime accepts at all */
  domains: string[];
  /**
   * Kernels that read fewer inputs than the op's schema has ('com.microsoft::FusedConv': 3): a node
   * using more is refused here (the kernel would ignore the rest and compute something else), and
   * passes do not create one. Measured facts, each with its source beside the table.
   */
  maxInputs?: Record<string, number>;
  /**
   * The CPU execution provider the runtime always registers behind this one, and places a node on when
   * `kernels` has none for it (ONNX Runtime's CUDA and WebGPU sessions). A node only this table runs is
   * reported as CPU-placed (a warning: it runs, with copies between devices), not as a violation.
   * Absent: the runtime has no fallback, and every node must be in `kernels`.
   */
  cpuFallback?: Capabilities;
  /**
   * Element types the runtime runs through casts it inserts itself, and the type it casts them to: a node
   * whose first-input type its kernel row lacks but whose cast-to type the row lists runs (reported as
   * 'runs, with casts', not refused). Measured in the runtime, with one-node models
   * (test/targets/runtime-types.test.ts); e.g. { float16: 'float32' } for ONNX Runtime's CPU EP.
   */
  castsTo?: Record<string, string>;
}

export interface QuantizationPreset {
  /** what --quantize picks by default for this target */
  mode: 'none' | 'dynamic' | 'static' | 'int4' | 'fp16';
  activations?: 'uint8' | 'int8';
  weights?: 'uint8' | 'int8' | 'int4';
  symmetricActivations?: boolean;
  symmetricWeights?: boolean;
  perChannel?: boolean;
  /** 7-bit ranges, for AVX2 without VNNI (avoids saturation in vpmaddubsw) */
  reduceRange?: boolean;
  /** where the preset comes from */
  source: string;
}

export interface Target {
  name: string;
  description: string;
  /** the runtime the compiled model is meant for ('any' for portable models) */
  runtime: string;
  /** ONNX Runtime execution provider, when the runtime is ORT */
  executionProvider?: string;
  /** ISA features the target assumes (avx2, avx512f, avx512_vnni, asimddp, ...) */
  isa?: string[];
  /** highest pass level allowed: 1 keeps the model standard ONNX */
  maxLevel: PassLevel;
  pipeline: PipelineSpec[];
  capabilities?: Capabilities;
  quantization?: QuantizationPreset;
  /** 'NCHW' (ONNX's) or 'NHWC' (what the target's conv kernels prefer) */
  layout?: 'NCHW' | 'NHWC';
  /** the session options the target recommends (written into the report and the model's metadata) */
  sessionOptions?: Record<string, string | number | boolean>;
  /** the --quantize modes this target can run */
  quantizeModes?: QuantizeMode[];
}

// ------------------------------------------------------------------------------- kernel lookup

/** 'ai.onnx' for the default domain ('' or absent), the domain otherwise. */
export const kernelDomain = (domain: string | undefined): string => (domain === undefined || domain === '' ? 'ai.onnx' : domain);

/** The rows as "6-12, 13, 19+" (sorted by since), for messages. */
export function describeKernelRows(rows: readonly KernelRow[]): string {
  return [...rows]
    .sort((a, b) => a[0] - b[0])
    .map(([s, l]) => (l === null ? `${s}+` : s === l ? `${s}` : `${s}-${l}`))
    .join(', ');
}

/** What `lookupKernel` found: the row, or why there is none (the words `check` prints). */
export type KernelLookup = { row: KernelRow } | { row?: undefined; reason: string };

/**
 * The kernel row of `caps` that runs `domain::op` at opset `version`, or the reason there is none.
 * The one lookup behind `kernelFor`, the legality check (targets/capabilities/check.ts, so `check`,
 * `compile` and `split`) and the pass context's `supports()`.
 *
 * The version rule (`version` is the opset the model, or the function, imports for `domain`: ONNX's
 * per-op version history is not available here, so it stands for the op's schema version):
 * - the domain must be one `caps.domains` accepts, and `domain::op` must have rows;
 * - a row [since, last] covers since <= version <= last (last null: no end);
 * - a version past the end of the NEWEST row (the highest since) is covered by that row: a table is
 *   transcribed at some opset (TensorRT's rows all end at 17, its document's ceiling; ORT's at the
 *   newest opset of its OperatorKernels.md), and an op whose newest kernel ends there may simply not
 *   have changed since;
 * - a version below the first row's since, or in a gap between rows, has no kernel;
 * - `version` undefined (the model does not import the domain): the newest row.
 * Rows that overlap (a table's duplicate) resolve to the first that covers the version.
 */
export function lookupKernel(caps: Capabilities, op: string, domain: string, version: number | undefined): KernelLookup {
  const d = kernelDomain(domain);
  if (!caps.domains.map(kernelDomain).includes(d)) return { reason: `domain ${d} not supported` };
  const rows = caps.kernels[`${d}::${op}`];
  if (!rows || rows.length === 0) return { reason: 'op not implemented' };
  const newest = rows.reduce((a, b) => (b[0] > a[0] ? b : a));
  if (version === undefined) return { row: newest };
  const row = rows.find(([s, l]) => s <= version && (l === null || version <= l)) ?? (newest[0] <= version ? newest : undefined);
  return row ? { row } : { reason: `opset ${version} not covered (kernels ${describeKernelRows(rows)})` };
}

/**
 * The kernel row of a runtime's table (`caps`, or a target's table) for `domain::op` at opset
 * `version` ('' or 'ai.onnx' for the default domain), or undefined when it has none. The version
 * rule is `lookupKernel`'s: rows cover since..last, a version past the newest row's end is covered
 * by the newest row, undefined means the newest row. A target without a table has no rows here:
 * what it runs is the caller's rule (the pass context: any op, or standard ops only at level 1).
 */
export function kernelFor(of: Capabilities | Target, op: string, domain: string, version: number | undefined): KernelRow | undefined {
  const caps = 'kernels' in of ? of : of.capabilities;
  return caps ? lookupKernel(caps, op, domain, version).row : undefined;
}

/**
 * Whether `target` runs `domain::op` in a model importing `domain` at `version`: its table's row
 * (kernelFor); without a table, any op, unless the target promises standard ONNX only (level 1:
 * portable); no target at all, any op. The pass context asks this, and so may anything that must
 * agree with it.
 */
export function targetRuns(target: Target | undefined, op: string, domain: string, version: number | undefined, defaultOpset: number): boolean {
  if (!target) return true;
  if (!target.capabilities) return target.maxLevel === 1 ? isStandardOp(domain, op, defaultOpset) : true;
  return kernelFor(target.capabilities, op, domain, version) !== undefined;
}

/** Whether a kernel row takes first-input element type `typeName` ('float32', ...): rows with no type list take any. */
export function kernelTakes(row: KernelRow, typeName: string): boolean {
  return row[2] === null || row[2].includes(typeName);
}
