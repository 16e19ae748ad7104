/**
 * Bytes <-> Model, browser-safe: decode, load external data through a reader, build the IR; and the
 * reverse, with external data written to a separate data file when asked or when the model would
 * exceed protobuf's 2 GiB limit.
 */
import { decode, encodeChunks, encodedSize } from './onnx/codec.js';
import { externalizeData, PROTOBUF_LIMIT, resolveExternalData, type ExternalDataReader, type ExternalFileUse } from './onnx/external.js';
import { allTensorProtos, isExternal } from './onnx/external.js';
import type { ModelProto } from './onnx/proto.js';
import { modelFromProto, ModelError } from './ir/from-proto.js';
import { IrError } from './ir/graph.js';
import { TensorError } from './ir/tensor.js';
import { BadModelError, RetargetError } from './errors.js';
import type { Model } from './ir/model.js';
import { modelToProto } from './ir/to-proto.js';

export interface ParseOptions {
  /** reads external data files; without one, a model with external data is refused */
  externalData?: ExternalDataReader;
}

export interface ParsedModel {
  model: Model;
  /** external data files the model's tensors were read from */
  externalFiles: ExternalFileUse[];
}

export function parseModelProto(bytes: Uint8Array): ModelProto {
  if (bytes.length === 0) throw new BadModelError('empty file');
  return decode<ModelProto>('ModelProto', bytes);
}

export function parseModel(bytes: Uint8Array, opts: ParseOptions = {}): ParsedModel {
  const proto = parseModelProto(bytes);
  if (!proto.graph) throw new BadModelError('not an ONNX model: it has no graph');
  let externalFiles: ExternalFileUse[] = [];
  if (opts.externalData) externalFiles = resolveExternalData(proto, opts.externalData);
  else {
    for (const t of allTensorProtos(proto)) {
      if (isExternal(t)) throw new BadModelError(`tensor '${t.name ?? ''}' has external data, and no reader was given for it`);
    }
  }
  return { model: buildModel(proto), externalFiles };
}

/** The IR of `proto`; what the IR refuses (an undefined value, a bad dim, data that does not fit its shape) is a BadModelError. */
function buildModel(proto: ModelProto): Model {
  try {
    return modelFromProto(proto);
  } catch (e) {
    if (e instanceof ModelError || e instanceof TensorError || e instanceof IrError) throw new BadModelError(e.message, {}, { cause: e });
    throw e;
  }
}

export interface SerializeOptions {
  /**
   * Write tensor data to a separate file with this name (relative to the model's folder).
   * Without it, data goes to the model itself unless that would exceed 2 GiB, in which case
   * `autoExternalLocation` is used.
   */
  externalData?: string;
  autoExternalLocation?: string;
  /** tensors smaller than this stay inline when writing external data (default 1024 bytes) */
  externalThreshold?: number;
  /** size above which data goes to an external file automatically (default: protobuf's 2 GiB limit; lower it in tests) */
  sizeLimit?: number;
}

export interface SerializedModel {
  /** the model file's bytes, as chunks to be written in order */
  chunks: Uint8Array[];
  size: number;
  /** the external data file, when one is written */
  data?: { location: string; chunks: Uint8Array[]; size: number; tensors: number };
}

export function serializeModel(model: Model, opts: SerializeOptions = {}): SerializedModel {
  const proto = modelToProto(model);
  let location = opts.externalData;
  const limit = opts.sizeLimit ?? PROTOBUF_LIMIT;
  if (location === undefined && encodedSize('ModelProto', proto) > limit) {
    location = opts.autoExternalLocation;
    if (location === undefined) throw new RetargetError('write', `the model exceeds ${limit === PROTOBUF_LIMIT ? "protobuf's 2 GiB limit" : `${limit} bytes`}: it needs external data`);
  }
  let data: SerializedModel['data'];
  if (location !== undefined) {
    const ext = externalizeData(proto, { location, ...(opts.externalThreshold !== undefined ? { threshold: opts.externalThreshold } : {}) });
    data = { location, ...ext };
  }
  const chunks = encodeChunks('ModelProto', proto);
  const size = chunks.reduce((n, c) => n + c.length, 0);
  if (size > limit) throw new RetargetError('write', `the model is ${size} bytes without its tensor data, beyond the ${limit}-byte limit`);
  return { chunks, size, ...(data ? { data } : {}) };
}
