/**
 * ONNX Runtime's JavaScript API as the project's Runtime/Session: tensor conversion both ways and
 * a Session over an InferenceSession. onnxruntime-node and onnxruntime-web share this API (both
 * are onnxruntime-common), so one adapter serves both; the ort module is handed in (src/node/ort.ts
 * passes onnxruntime-node, src/web/ort-runtime.ts onnxruntime-web).
 *
 * Browser-safe: no Node built-ins; only types are imported from onnxruntime-web.
 */
import type * as Ort from 'onnxruntime-web';
import { DataType, dataTypeName } from './ir/dtype.js';
import { Tensor } from './ir/tensor.js';
import type { RunOptions, Session } from './runtime.js';

/** The part of an ort module the adapter uses. */
export type OrtModule = Pick<typeof Ort, 'InferenceSession' | 'Tensor' | 'env'>;

const TO_ORT: Record<number, Ort.Tensor.Type> = {
  [DataType.FLOAT]: 'float32', [DataType.UINT8]: 'uint8', [DataType.INT8]: 'int8', [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64', [DataType.STRING]: 'string',
  [DataType.BOOL]: 'bool', [DataType.FLOAT16]: 'float16', [DataType.DOUBLE]: 'float64', [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64', [DataType.UINT4]: 'uint4', [DataType.INT4]: 'int4',
};
const FROM_ORT = new Map<string, number>(Object.entries(TO_ORT).map(([k, v]) => [v, Number(k)]));

/** A tensor the runtime cannot take or give (an element type its API lacks). */
export class RuntimeError extends Error {}

export function toOrt(ort: OrtModule, t: Tensor, runtime = 'onnxruntime'): Ort.Tensor {
  const type = TO_ORT[t.dataType];
  if (!type) throw new RuntimeError(`${runtime} cannot take ${dataTypeName(t.dataType)} tensors`);
  const dims = [...t.dims];
  if (type === 'string') return new ort.Tensor('string', t.strings(), dims);
  return new ort.Tensor(type, t.toTypedArray() as Ort.Tensor.DataType, dims);
}

export function fromOrt(t: Ort.Tensor): Tensor {
  const dataType = FROM_ORT.get(t.type);
  if (dataType === undefined) throw new RuntimeError(`unsupported onnxruntime tensor type ${t.type}`);
  const dims = t.dims.map(Number);
  if (dataType === DataType.STRING) return Tensor.strings(t.data as string[], dims);
  const data = t.data as ArrayBufferView;
  // a copy: the runtime may reuse the output's memory on the next run
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return Tensor.fromRaw(dataType, dims, bytes);
}

export class OrtSession implements Session {
  constructor(private readonly ort: OrtModule, private readonly session: Ort.InferenceSession, private readonly runtime = 'onnxruntime') {}
  get inputNames(): readonly string[] { return this.session.inputNames; }
  get outputNames(): readonly string[] { return this.session.outputNames; }

  async run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, Ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(this.ort, v, this.runtime);
    const result = opts.outputs ? await this.session.run(ortFeeds, opts.outputs) : await this.session.run(ortFeeds);
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(result)) {
      out[k] = fromOrt(v);
      v.dispose();
    }
    return out;
  }

  release(): Promise<void> { return this.session.release(); }
}
