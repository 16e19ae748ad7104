/**
 * A target is data plus a pipeline: what the model is for (runtime, execution provider), the pass
 * levels it allows (1 = standard ONNX only), and the passes to run, by name, in order; a
 * `fixedPoint` group repeats until nothing changes.
 */
import type { PassLevel } from './pass/pass.js';

export type PipelineSpec = string | { fixedPoint: string[]; maxIterations?: number };

export interface Target {
  name: string;
  description: string;
  /** the runtime the compiled model is meant for ('any' for portable models) */
  runtime: string;
  /** highest pass level allowed: 1 keeps the model standard ONNX */
  maxLevel: PassLevel;
  pipeline: PipelineSpec[];
}
