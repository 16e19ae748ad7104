/** The Runtime interface on onnxruntime-node (CPU execution provider). */
import ort from 'onnxruntime-node';
import { DataType, dataTypeName } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import type { Runtime, RunOptions, Session, SessionOptions } from '../runtime.js';

const TO_ORT: Record<number, ort.Tensor.Type> = {
  [DataType.FLOAT]: 'float32', [DataType.UINT8]: 'uint8', [DataType.INT8]: 'int8', [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64', [DataType.STRING]: 'string',
  [DataType.BOOL]: 'bool', [DataType.FLOAT16]: 'float16', [DataType.DOUBLE]: 'float64', [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64', [DataType.UINT4]: 'uint4', [DataType.INT4]: 'int4',
};
const FROM_ORT = new Map<string, number>(Object.entries(TO_ORT).map(([k, v]) => [v, Number(k)]));

export class RuntimeError extends Error {}

export function toOrtTensor(t: Tensor): ort.Tensor {
  const type = TO_ORT[t.dataType];
  if (!type) throw new RuntimeError(`onnxruntime-node cannot take ${dataTypeName(t.dataType)} tensors`);
  const dims = [...t.dims];
  if (type === 'string') return new ort.Tensor('string', t.strings(), dims);
  return new ort.Tensor(type, t.toTypedArray() as ort.Tensor.DataType, dims);
}

export function fromOrtTensor(t: ort.Tensor): Tensor {
  const dataType = FROM_ORT.get(t.type);
  if (dataType === undefined) throw new RuntimeError(`unsupported onnxruntime tensor type ${t.type}`);
  const dims = t.dims.map(Number);
  if (dataType === DataType.STRING) return Tensor.strings(t.data as string[], dims);
  const data = t.data as ArrayBufferView;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return Tensor.fromRaw(dataType, dims, bytes);
}

class OrtSession implements Session {
  constructor(private readonly session: ort.InferenceSession) {}
  get inputNames(): readonly string[] { return this.session.inputNames; }
  get outputNames(): readonly string[] { return this.session.outputNames; }

  async run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(v);
    const result = opts.outputs ? await this.session.run(ortFeeds, opts.outputs) : await this.session.run(ortFeeds);
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(result)) out[k] = fromOrtTensor(v as ort.Tensor);
    return out;
  }

  release(): Promise<void> { return this.session.release(); }
}

export const onnxruntimeNode: Runtime = {
  name: `onnxruntime-node ${ort.env.versions?.common ?? ''}`.trim(),
  async createSession(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
    const session = await ort.InferenceSession.create(model, {
      logSeverityLevel: 4, // fatal only: load errors come back as exceptions, warnings are not ours to print
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
    });
    return new OrtSession(session);
  },
};
