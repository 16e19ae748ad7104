/**
 * A target is data plus a pipeline: the runtime and execution provider the model is for, the ISA
 * features it assumes, the ops and element types it can run (its capability table), its
 * quantization preset, preferred layout, the session options it recommends, the pass levels it
 * allows (1 = standard ONNX only), and the passes to run, by name, in order (a `fixedPoint` group
 * repeats until nothing changes).
 */
import type { PassLevel, QuantizeMode } from './pass/pass.js';

export type PipelineSpec = string | { fixedPoint: string[]; maxIterations?: number };

/**
 * Kernels a runtime has, by `domain::Op` ('ai.onnx' for the default domain): a list of
 * [sinceVersion, lastVersion or null, element types of the op's main type constraint or null for any].
 */
export type KernelTable = Record<string, [number, number | null, string[] | null][]>;

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
