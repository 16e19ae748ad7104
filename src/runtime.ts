/**
 * How the core runs a model (constant-folding fallback, calibration, validation) without knowing
 * which runtime does it: onnxruntime-node implements this in Node (src/node/ort.ts), and
 * onnxruntime-web can in a browser.
 */
import type { Tensor } from './ir/tensor.js';

export interface RunOptions {
  /** names of the outputs to fetch (default: all graph outputs) */
  outputs?: string[];
}

export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, Tensor>, opts?: RunOptions): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

export interface SessionOptions {
  /** ONNX Runtime graph optimization level */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  intraOpNumThreads?: number;
}

export interface Runtime {
  readonly name: string;
  /** Open a session on a serialized model. */
  createSession(model: Uint8Array, opts?: SessionOptions): Promise<Session>;
}
