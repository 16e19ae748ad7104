/**
 * Bytes <-> plain protobuf messages, driven by the schema in schema.ts (parsed by protobufjs).
 *
 * Why a schema-driven codec of our own instead of protobufjs's generated decoders:
 * - lossless: fields the schema does not know are kept as their raw bytes (`$unknown`) and written
 *   back; field presence is kept (a field is a key of the object only if it was on the wire), so
 *   proto2 models (which is what ONNX is) round-trip exactly;
 * - zero-copy: `bytes` fields (raw_data) are `subarray` views into the input buffer, and the encoder
 *   emits large byte fields as their own chunks instead of copying them into one big buffer;
 * - packed numeric arrays decode straight into typed arrays (float_data -> Float32Array).
 * int64 values decode to `number` when they are safe integers and to `bigint` otherwise
 * (INT64_MAX in Slice ends must survive).
 */
import protobuf from 'protobufjs';
import { ONNX_PROTO } from './schema.js';
import { BadModelError, InternalError } from '../errors.js';

export type Int64 = number | bigint;

type ScalarKind = 'string' | 'bytes' | 'int32' | 'int64' | 'uint64' | 'float' | 'double' | 'enum' | 'bool';

export interface FieldInfo {
  readonly id: number;
  readonly name: string;
  readonly kind: ScalarKind | 'message';
  readonly repeated: boolean;
  readonly message?: MessageInfo;
  /** member of a oneof: presence is meaningful even for a default value */
  readonly oneof: boolean;
}

export interface MessageInfo {
  readonly name: string;
  readonly fields: FieldInfo[];
  readonly byId: Map<number, FieldInfo>;
}

export type Message = Record<string, unknown> & { $unknown?: Uint8Array[] };

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

function wireTypeOf(kind: FieldInfo['kind']): number {
  switch (kind) {
    case 'float': return WIRE_FIXED32;
    case 'double': return WIRE_FIXED64;
    case 'string': case 'bytes': case 'message': return WIRE_LEN;
    default: return WIRE_VARINT;
  }
}

// ---------------------------------------------------------------- schema tables

const root = protobuf.parse(ONNX_PROTO, { keepCase: false }).root;
const infos = new Map<string, MessageInfo>();

function messageInfo(type: protobuf.Type): MessageInfo {
  const existing = infos.get(type.fullName);
  if (existing) return existing;
  const info: MessageInfo = { name: type.name, fields: [], byId: new Map() };
  infos.set(type.fullName, info);
  for (const field of type.fieldsArray.slice().sort((a, b) => a.id - b.id)) {
    field.resolve();
    let kind: FieldInfo['kind'];
    let message: MessageInfo | undefined;
    if (field.resolvedType instanceof protobuf.Type) {
      kind = 'message';
      message = messageInfo(field.resolvedType);
    } else if (field.resolvedType instanceof protobuf.Enum) {
      kind = 'enum';
    } else {
      kind = field.type as ScalarKind;
      if (!['string', 'bytes', 'int32', 'int64', 'uint64', 'float', 'double', 'bool'].includes(kind)) {
        throw new InternalError(undefined, `schema: unsupported field type ${field.type} in ${type.name}.${field.name}`);
      }
    }
    const f: FieldInfo = { id: field.id, name: field.name, kind, repeated: field.repeated, message, oneof: !!field.partOf };
    info.fields.push(f);
    info.byId.set(f.id, f);
  }
  return info;
}

/** Schema info for a message of package `onnx`, e.g. `schema('ModelProto')`. */
export function schema(name: string): MessageInfo {
  return messageInfo(root.lookupType(`onnx.${name}`));
}

// ---------------------------------------------------------------- decoding

/** The bytes are not a well-formed protobuf of the schema: a bad input model. */
export class ProtoDecodeError extends BadModelError {}

type Reader = protobuf.Reader & { buf: Uint8Array };

interface LongLike { low: number; high: number }

function longToInt64(v: LongLike | number, unsigned: boolean): Int64 {
  if (typeof v === 'number') return v;
  const lo = v.low >>> 0;
  if (unsigned) {
    const hi = v.high >>> 0;
    if (hi < 0x200000) return hi * 4294967296 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  const hi = v.high | 0;
  if (hi >= -0x200000 && hi < 0x200000) return hi * 4294967296 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function readScalar(r: Reader, kind: ScalarKind): unknown {
  switch (kind) {
    case 'string': return r.string();
    case 'bytes': return r.bytes();
    case 'int32': case 'enum': return r.int32();
    case 'int64': return longToInt64(r.int64() as unknown as LongLike, false);
    case 'uint64': return longToInt64(r.uint64() as unknown as LongLike, true);
    case 'float': return r.float();
    case 'double': return r.double();
    case 'bool': return r.bool();
  }
}

/** Copy `n` bytes at the reader's position into a fresh, aligned buffer (for typed-array views). */
function alignedCopy(r: Reader, n: number): ArrayBuffer {
  if (r.pos + n > r.len) throw new RangeError(`index out of range: ${r.pos} + ${n} > ${r.len}`);
  const out = new Uint8Array(n);
  out.set(r.buf.subarray(r.pos, r.pos + n));
  r.pos += n;
  return out.buffer;
}

function readPacked(r: Reader, kind: ScalarKind, previous: unknown): unknown {
  const n = r.uint32();
  const end = r.pos + n;
  if (end > r.len) throw new RangeError(`index out of range: ${r.pos} + ${n} > ${r.len}`);
  let fresh: ArrayLike<unknown>;
  if (kind === 'float') {
    if (n % 4) throw new ProtoDecodeError('packed float field has a length that is not a multiple of 4');
    fresh = new Float32Array(alignedCopy(r, n));
  } else if (kind === 'double') {
    if (n % 8) throw new ProtoDecodeError('packed double field has a length that is not a multiple of 8');
    fresh = new Float64Array(alignedCopy(r, n));
  } else {
    const values: unknown[] = [];
    while (r.pos < end) values.push(readScalar(r, kind));
    fresh = values;
  }
  if (r.pos !== end) throw new ProtoDecodeError('packed field overruns its length');
  return appendRepeated(previous, fresh);
}

function isTypedKind(kind: FieldInfo['kind']): boolean {
  return kind === 'float' || kind === 'double' || kind === 'int32' || kind === 'enum';
}

function typedArrayFor(kind: FieldInfo['kind'], values: ArrayLike<number>): Float32Array | Float64Array | Int32Array {
  if (kind === 'float') return Float32Array.from(values);
  if (kind === 'double') return Float64Array.from(values);
  return Int32Array.from(values);
}

/**
 * Repeated fields collect into plain arrays while decoding (cheap appends, since proto2 writers
 * emit many repeated scalars unpacked); a packed float/double run arrives as a typed array.
 * finishRepeated() turns float/double/int32 fields into typed arrays once the message is complete.
 */
function appendRepeated(previous: unknown, more: ArrayLike<unknown>): unknown {
  if (previous === undefined) return ArrayBuffer.isView(more) ? more : Array.from(more);
  const list = ArrayBuffer.isView(previous) ? Array.from(previous as Float32Array) : (previous as unknown[]);
  for (let i = 0; i < more.length; i++) list.push(more[i]);
  return list;
}

function finishRepeated(msg: Message, info: MessageInfo): void {
  for (const f of info.fields) {
    if (!f.repeated || !isTypedKind(f.kind)) continue;
    const v = msg[f.name];
    if (Array.isArray(v)) msg[f.name] = typedArrayFor(f.kind, v as number[]);
  }
}

const MAX_DEPTH = 100;

function decodeMessage(r: Reader, end: number, info: MessageInfo, depth: number): Message {
  if (depth > MAX_DEPTH) throw new ProtoDecodeError(`messages nested deeper than ${MAX_DEPTH}`);
  const msg: Message = {};
  while (r.pos < end) {
    const start = r.pos;
    const tag = r.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 0) throw new ProtoDecodeError(`illegal field number 0 at offset ${start}`);
    const f = info.byId.get(id);
    const expected = f ? wireTypeOf(f.kind) : -1;
    if (!f || (wire !== expected && !(f.repeated && wire === WIRE_LEN && f.kind !== 'message'))) {
      // Unknown field (or a wire type the schema does not expect): keep its bytes verbatim.
      if (wire === 4 || wire > 5) throw new ProtoDecodeError(`invalid wire type ${wire} at offset ${start}`);
      r.skipType(wire);
      (msg.$unknown ??= []).push(r.buf.subarray(start, r.pos));
      continue;
    }
    if (f.kind === 'message') {
      const n = r.uint32();
      const subEnd = r.pos + n;
      if (subEnd > end) throw new RangeError(`index out of range: ${r.pos} + ${n} > ${end}`);
      const sub = decodeMessage(r, subEnd, f.message!, depth + 1);
      if (f.repeated) ((msg[f.name] as Message[] | undefined) ?? (msg[f.name] = [] as Message[]) as Message[]).push(sub);
      else msg[f.name] = sub; // proto: a repeated occurrence of a singular message merges; ONNX writers never do that
    } else if (f.repeated) {
      if (wire === WIRE_LEN && expected !== WIRE_LEN) msg[f.name] = readPacked(r, f.kind, msg[f.name]);
      else msg[f.name] = appendRepeated(msg[f.name], [readScalar(r, f.kind)]);
    } else {
      msg[f.name] = readScalar(r, f.kind);
    }
    if (r.pos > end) throw new RangeError(`index out of range: ${r.pos} > ${end}`);
  }
  finishRepeated(msg, info);
  return msg;
}

/** Decode `bytes` as message `name` of the ONNX schema. Byte fields are views into `bytes`. */
export function decode<T = Message>(name: string, bytes: Uint8Array): T {
  const r = protobuf.Reader.create(bytes) as Reader;
  try {
    return decodeMessage(r, bytes.length, schema(name), 0) as T;
  } catch (e) {
    const msg = (e as Error).message;
    // protobufjs reports reading past the end as a RangeError ('index out of range'), and other
    // malformed input as plain Errors ('invalid wire type', 'invalid varint encoding')
    if (e instanceof RangeError) throw new ProtoDecodeError(`truncated or corrupt protobuf (${msg})`, {}, { cause: e });
    throw new ProtoDecodeError(`corrupt protobuf (${msg})`, {}, { cause: e });
  }
}

// ---------------------------------------------------------------- encoding

const textEncoder = new TextEncoder();
/** Byte fields at least this large are emitted as their own chunk (no copy). */
const ZERO_COPY_MIN = 4096;

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

function varintSize(v: number): number {
  if (v < 0) return 10;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  v = Math.floor(v / 0x800000000);
  while (v > 0) { n++; v = Math.floor(v / 128); }
  return n;
}

function toUint64(v: Int64): bigint {
  return BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v));
}

function int64Size(v: Int64): number {
  if (typeof v === 'number' && v >= 0) return varintSize(v);
  let u = toUint64(v);
  let n = 1;
  while (u >= 0x80n) { n++; u >>= 7n; }
  return n;
}

/** Collects output as a list of chunks: small writes go to a scratch buffer, big byte fields are referenced. */
class ChunkWriter {
  readonly chunks: Uint8Array[] = [];
  private buf = new Uint8Array(1 << 16);
  private pos = 0;
  private view = new DataView(this.buf.buffer);

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) {
      this.buf = new Uint8Array(n);
      this.view = new DataView(this.buf.buffer);
    }
  }

  flush(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = new Uint8Array(this.buf.length);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  varint(v: number): void {
    if (v < 0 || v > 0xffffffff) { this.varint64(v); return; }
    this.ensure(5);
    while (v > 0x7f) { this.buf[this.pos++] = (v & 0x7f) | 0x80; v >>>= 7; }
    this.buf[this.pos++] = v;
  }

  varint64(v: Int64): void {
    if (typeof v === 'number' && v >= 0 && v <= 0xffffffff) { this.varint(v); return; }
    let u = toUint64(v);
    this.ensure(10);
    while (u >= 0x80n) { this.buf[this.pos++] = Number(u & 0x7fn) | 0x80; u >>= 7n; }
    this.buf[this.pos++] = Number(u);
  }

  float(v: number): void { this.ensure(4); this.view.setFloat32(this.pos, v, true); this.pos += 4; }
  double(v: number): void { this.ensure(8); this.view.setFloat64(this.pos, v, true); this.pos += 8; }

  string(s: string, byteLength: number): void {
    this.ensure(byteLength);
    const { written } = textEncoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + byteLength));
    if (written !== byteLength) throw new InternalError(undefined, 'utf8 length mismatch');
    this.pos += byteLength;
  }

  bytes(b: Uint8Array): void {
    if (b.length >= ZERO_COPY_MIN) { this.flush(); this.chunks.push(b); return; }
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  finish(): Uint8Array[] { this.flush(); return this.chunks; }
}

function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}
const LITTLE_ENDIAN = isLittleEndian();

function typedBytes(a: Float32Array | Float64Array): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error('big-endian hosts are not supported');
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

class Encoder {
  private readonly sizes = new Map<object, number>();
  private readonly strSizes = new Map<string, number>();

  private strLen(s: string): number {
    let n = this.strSizes.get(s);
    if (n === undefined) { n = utf8Length(s); if (s.length < 256) this.strSizes.set(s, n); }
    return n;
  }

  private scalarSize(kind: ScalarKind, v: unknown): number {
    switch (kind) {
      case 'string': { const n = this.strLen(v as string); return varintSize(n) + n; }
      case 'bytes': { const n = (v as Uint8Array).length; return varintSize(n) + n; }
      case 'int32': case 'enum': return varintSize(v as number);
      case 'int64': case 'uint64': return int64Size(v as Int64);
      case 'float': return 4;
      case 'double': return 8;
      case 'bool': return 1;
    }
  }

  private packedSize(kind: ScalarKind, values: ArrayLike<unknown>): number {
    if (kind === 'float') return values.length * 4;
    if (kind === 'double') return values.length * 8;
    let n = 0;
    for (let i = 0; i < values.length; i++) n += this.scalarSize(kind, values[i]);
    return n;
  }

  size(msg: Message, info: MessageInfo): number {
    const cached = this.sizes.get(msg);
    if (cached !== undefined) return cached;
    let n = 0;
    for (const f of info.fields) {
      const v = msg[f.name];
      if (v === undefined || v === null) continue;
      const tagSize = varintSize(f.id << 3);
      if (f.kind === 'message') {
        const items = f.repeated ? (v as Message[]) : [v as Message];
        for (const m of items) { const s = this.size(m, f.message!); n += tagSize + varintSize(s) + s; }
      } else if (f.repeated) {
        const items = v as ArrayLike<unknown>;
        if (items.length === 0) continue;
        if (wireTypeOf(f.kind) === WIRE_LEN) {
          for (let i = 0; i < items.length; i++) n += tagSize + this.scalarSize(f.kind, items[i]);
        } else {
          const s = this.packedSize(f.kind, items);
          n += tagSize + varintSize(s) + s;
        }
      } else {
        n += tagSize + this.scalarSize(f.kind, v);
      }
    }
    if (msg.$unknown) for (const u of msg.$unknown) n += u.length;
    this.sizes.set(msg, n);
    return n;
  }

  private writeScalar(w: ChunkWriter, kind: ScalarKind, v: unknown): void {
    switch (kind) {
      case 'string': { const s = v as string; const n = this.strLen(s); w.varint(n); w.string(s, n); return; }
      case 'bytes': { const b = v as Uint8Array; w.varint(b.length); w.bytes(b); return; }
      case 'int32': case 'enum': w.varint(v as number); return;
      case 'int64': case 'uint64': w.varint64(v as Int64); return;
      case 'float': w.float(v as number); return;
      case 'double': w.double(v as number); return;
      case 'bool': w.varint(v ? 1 : 0); return;
    }
  }

  write(w: ChunkWriter, msg: Message, info: MessageInfo): void {
    for (const f of info.fields) {
      const v = msg[f.name];
      if (v === undefined || v === null) continue;
      const wire = wireTypeOf(f.kind);
      if (f.kind === 'message') {
        const items = f.repeated ? (v as Message[]) : [v as Message];
        for (const m of items) {
          w.varint((f.id << 3) | WIRE_LEN);
          w.varint(this.size(m, f.message!));
          this.write(w, m, f.message!);
        }
      } else if (f.repeated) {
        const items = v as ArrayLike<unknown>;
        if (items.length === 0) continue;
        if (wire === WIRE_LEN) {
          for (let i = 0; i < items.length; i++) { w.varint((f.id << 3) | WIRE_LEN); this.writeScalar(w, f.kind, items[i]); }
        } else {
          w.varint((f.id << 3) | WIRE_LEN);
          w.varint(this.packedSize(f.kind, items));
          if (f.kind === 'float' || f.kind === 'double') {
            const typed = ArrayBuffer.isView(items) ? (items as Float32Array | Float64Array) : (f.kind === 'float' ? Float32Array : Float64Array).from(items as ArrayLike<number>);
            w.bytes(typedBytes(typed));
          } else {
            for (let i = 0; i < items.length; i++) this.writeScalar(w, f.kind, items[i]);
          }
        }
      } else {
        w.varint((f.id << 3) | wire);
        this.writeScalar(w, f.kind, v);
      }
    }
    if (msg.$unknown) for (const u of msg.$unknown) w.bytes(u);
  }
}

/**
 * Encode `msg` (message `name`) as a list of chunks whose concatenation is the serialized message.
 * Large byte fields are the caller's own buffers (not copied); write the chunks with writev.
 */
export function encodeChunks(name: string, msg: object): Uint8Array[] {
  const info = schema(name);
  const enc = new Encoder();
  const w = new ChunkWriter();
  enc.write(w, msg as Message, info);
  return w.finish();
}

/** The serialized size of `msg` in bytes, without serializing it. */
export function encodedSize(name: string, msg: object): number {
  return new Encoder().size(msg as Message, schema(name));
}

export function concatChunks(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) { out.set(c, pos); pos += c.length; }
  return out;
}

/** Encode `msg` (message `name`) into one buffer. */
export function encode(name: string, msg: object): Uint8Array {
  return concatChunks(encodeChunks(name, msg));
}
