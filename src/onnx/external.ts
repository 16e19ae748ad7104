/**
 * External tensor data (TensorProto.data_location = EXTERNAL): the bytes live in a file beside the
 * model, named by the `location` entry, at `offset` for `length` bytes.
 *
 * This module is browser-safe: it walks the ModelProto and talks to files only through an
 * ExternalDataReader (the Node one is in src/node/files.ts). Every location is checked before it
 * reaches a reader: no absolute paths, no `..`, nothing that could name a file outside the
 * model's folder; the Node reader also checks where links resolve.
 */
import type { Int64 } from './codec.js';
import { BadModelError } from '../errors.js';
import { DATA_LOCATION_EXTERNAL, type GraphProto, type ModelProto, type NodeProto, type StringStringEntryProto, type TensorProto } from './proto.js';

/** External data that is missing, out of range, or at an unsafe location: a bad input model. */
export class ExternalDataError extends BadModelError {}

export interface ExternalDataReader {
  /** `length` bytes of `location` (relative to the model's folder, already checked) from `offset`; to the end when length is undefined. */
  read(location: string, offset: number, length: number | undefined): Uint8Array;
}

/** Throws ExternalDataError unless `location` is a plain relative path inside the model's folder. */
export function checkExternalLocation(location: string): void {
  const bad = (why: string): never => { throw new ExternalDataError(`unsafe external data location '${location}': ${why}`); };
  if (location === '') bad('empty');
  if (location.includes('\0')) bad('contains a NUL byte');
  if (location.startsWith('/') || location.startsWith('\\') || /^[A-Za-z]:/.test(location)) bad('absolute path');
  if (location.split(/[\\/]/).some((part) => part === '..')) bad("contains '..'");
}

export interface ExternalRef {
  location: string;
  offset: number;
  length: number | undefined;
  checksum?: string;
}

function parseCount(entry: string, value: string, location: string): number {
  if (!/^\d+$/.test(value.trim())) throw new ExternalDataError(`external data '${location}': invalid ${entry} '${value}'`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new ExternalDataError(`external data '${location}': ${entry} ${value} too large`);
  return n;
}

export function externalRef(entries: StringStringEntryProto[], tensorName: string): ExternalRef {
  const get = (k: string): string | undefined => entries.find((e) => e.key === k)?.value;
  const location = get('location');
  if (location === undefined) throw new ExternalDataError(`tensor '${tensorName}': external data without a location`);
  checkExternalLocation(location);
  const offset = get('offset');
  const length = get('length');
  const checksum = get('checksum');
  return {
    location,
    offset: offset === undefined ? 0 : parseCount('offset', offset, location),
    length: length === undefined ? undefined : parseCount('length', length, location),
    ...(checksum !== undefined ? { checksum } : {}),
  };
}

/**
 * Every TensorProto of a model: initializers and attribute tensors of all graphs and functions, and
 * unless `ownedOnly`, also sparse tensors and training graphs (which the IR keeps as the loaded
 * protos, so they must not be changed in place).
 */
export function* allTensorProtos(model: ModelProto, ownedOnly = false): Generator<TensorProto> {
  function* fromNodes(nodes: NodeProto[] | undefined): Generator<TensorProto> {
    for (const n of nodes ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) yield a.t;
        if (a.tensors) yield* a.tensors;
        for (const s of ownedOnly ? [] : [a.sparseTensor, ...(a.sparseTensors ?? [])]) {
          if (s?.values) yield s.values;
          if (s?.indices) yield s.indices;
        }
        if (a.g) yield* fromGraph(a.g);
        for (const g of a.graphs ?? []) yield* fromGraph(g);
      }
    }
  }
  function* fromGraph(g: GraphProto): Generator<TensorProto> {
    if (g.initializer) yield* g.initializer;
    for (const s of ownedOnly ? [] : g.sparseInitializer ?? []) {
      if (s.values) yield s.values;
      if (s.indices) yield s.indices;
    }
    yield* fromNodes(g.node);
  }
  if (model.graph) yield* fromGraph(model.graph);
  for (const f of model.functions ?? []) yield* fromNodes(f.node);
  for (const t of ownedOnly ? [] : model.trainingInfo ?? []) {
    for (const key of ['initialization', 'algorithm']) {
      const g = t[key] as GraphProto | undefined;
      if (g) yield* fromGraph(g);
    }
  }
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === DATA_LOCATION_EXTERNAL;
}

export interface ExternalFileUse { location: string; tensors: number; bytes: number }

/**
 * Load every external tensor's bytes into raw_data (in place), so the rest of the compiler sees an
 * ordinary model. Returns the files that were read.
 */
export function resolveExternalData(model: ModelProto, reader: ExternalDataReader): ExternalFileUse[] {
  const files = new Map<string, ExternalFileUse>();
  for (const t of allTensorProtos(model)) {
    if (!isExternal(t)) continue;
    const ref = externalRef(t.externalData ?? [], t.name ?? '');
    const bytes = reader.read(ref.location, ref.offset, ref.length);
    if (ref.length !== undefined && bytes.length !== ref.length) {
      throw new ExternalDataError(`external data '${ref.location}': tensor '${t.name ?? ''}' wants ${ref.length} bytes at offset ${ref.offset}, file has ${bytes.length}`);
    }
    t.rawData = bytes;
    delete t.externalData;
    delete t.dataLocation;
    const use = files.get(ref.location) ?? { location: ref.location, tensors: 0, bytes: 0 };
    use.tensors++;
    use.bytes += bytes.length;
    files.set(ref.location, use);
  }
  return [...files.values()];
}

export interface ExternalizeOptions {
  /** file name of the data file, relative to the model's folder */
  location: string;
  /** tensors with fewer raw bytes than this stay inline (onnx's default is 1024) */
  threshold?: number;
}

const PAGE = 4096;
const BIG_TENSOR = 1 << 20;

/**
 * Move tensor bytes out of the model into one data file (in place on `model`, which must be a
 * freshly built proto, e.g. from modelToProto). Returns the data file's contents as chunks.
 * Offsets of tensors of 1 MiB or more are page aligned (mmap-friendly), others 64-byte aligned.
 */
export function externalizeData(model: ModelProto, opts: ExternalizeOptions): { chunks: Uint8Array[]; size: number; tensors: number } {
  checkExternalLocation(opts.location);
  const threshold = opts.threshold ?? 1024;
  const chunks: Uint8Array[] = [];
  let size = 0;
  let tensors = 0;
  for (const t of allTensorProtos(model, true)) {
    const raw = t.rawData;
    if (raw === undefined || raw.length < threshold || isExternal(t)) continue;
    const align = raw.length >= BIG_TENSOR ? PAGE : 64;
    const pad = (align - (size % align)) % align;
    if (pad) { chunks.push(new Uint8Array(pad)); size += pad; }
    const entries: StringStringEntryProto[] = [
      { key: 'location', value: opts.location },
      { key: 'offset', value: String(size) },
      { key: 'length', value: String(raw.length) },
    ];
    chunks.push(raw);
    size += raw.length;
    tensors++;
    delete t.rawData;
    t.externalData = entries;
    t.dataLocation = DATA_LOCATION_EXTERNAL;
  }
  return { chunks, size, tensors };
}

/** protobuf refuses messages of 2 GiB or more. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

export type { Int64 };
