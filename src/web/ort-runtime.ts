/**
 * The Runtime interface on onnxruntime-web (its WebAssembly execution provider): the browser
 * playground validates and times models with it, in a Web Worker. The ort module is handed in, so
 * the same adapter serves the browser bundle (`onnxruntime-web/wasm`) and Node (`onnxruntime-web`).
 *
 * Browser-safe: no Node built-ins.
 */
import { OrtSession, type OrtModule } from '../ort-session.js';
import type { Runtime, Session, SessionOptions } from '../runtime.js';

export { RuntimeError as WebRuntimeError, type OrtModule } from '../ort-session.js';

/** A Runtime on an onnxruntime-web module, with the wasm execution provider. */
export function ortWebRuntime(ort: OrtModule): Runtime {
  return {
    name: `onnxruntime-web ${ort.env.versions?.web ?? ort.env.versions?.common ?? ''} (wasm)`.trim(),
    async createSession(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
      const session = await ort.InferenceSession.create(model, {
        executionProviders: ['wasm'],
        logSeverityLevel: 4, // fatal only: load errors come back as exceptions
        graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      });
      return new OrtSession(ort, session, 'onnxruntime-web');
    },
  };
}
