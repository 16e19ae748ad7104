/** The Runtime interface on onnxruntime-node (CPU execution provider). */
import ort from 'onnxruntime-node';
import type { Tensor } from '../ir/tensor.js';
import { fromOrt, OrtSession, toOrt, type OrtModule } from '../ort-session.js';
import type { Runtime, Session, SessionOptions } from '../runtime.js';

export { RuntimeError } from '../ort-session.js';

// onnxruntime-node's module has onnxruntime-web's API (both are onnxruntime-common)
const ORT = ort as unknown as OrtModule;

export function toOrtTensor(t: Tensor): ort.Tensor {
  return toOrt(ORT, t, 'onnxruntime-node') as unknown as ort.Tensor;
}

export function fromOrtTensor(t: ort.Tensor): Tensor {
  return fromOrt(t as never);
}

export const onnxruntimeNode: Runtime = {
  name: `onnxruntime-node ${ort.env.versions?.common ?? ''}`.trim(),
  async createSession(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
    const session = await ort.InferenceSession.create(model, {
      logSeverityLevel: 4, // fatal only: load errors come back as exceptions, warnings are not ours to print
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
    });
    return new OrtSession(ORT, session as never, 'onnxruntime-node');
  },
};
