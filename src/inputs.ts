/**
 * Seeded synthetic inputs for a model, from its input types: floats uniform in [-1, 1), integers
 * in [0, intHigh) (valid token ids and indices for small vocabularies), masks all ones, bools at
 * random, and inputs given a value (`values`: a sample rate, a selector) filled with it.
 * Symbolic dims take their value from `dims`, else `defaultDim`; a dim whose text is an expression
 * of others (`past_sequence + sequence`), or that shape inference unified with one (`unified`),
 * is computed from them, so inputs that must agree do.
 */
import { parseSym, Sym } from './analysis/symbolic.js';
import { DataType } from './ir/dtype.js';
import { toFloat16Bits } from './ir/half.js';
import { constantValue, scalarOf } from './analysis/query.js';
import type { Node, Value } from './ir/graph.js';
import type { Model } from './ir/model.js';
import { Tensor } from './ir/tensor.js';
import { RetargetError } from './errors.js';

export interface SyntheticOptions {
  seed?: number;
  dims?: Record<string, number>;
  /** size of symbolic dims not in `dims` (default 2) */
  defaultDim?: number;
  /** integer inputs are drawn from [0, intHigh) (default 10) */
  intHigh?: number;
  /** per-input upper bounds for integer inputs (see intInputRanges) */
  intRanges?: Record<string, number>;
  /** inputs filled with one value (every element) */
  values?: Record<string, number>;
  /** symbols that shape inference found equal to an expression of others (InferResult.unified) */
  unified?: ReadonlyMap<string, Sym>;
}

/** A dim's expression in terms of free symbols: its text parsed, unified symbols substituted. */
function dimExpr(d: string, unified: ReadonlyMap<string, Sym> | undefined): Sym {
  let s = parseSym(d);
  for (let i = 0; i < 8 && unified?.size; i++) {
    const next = s.subst(unified);
    if (next.equals(s)) break;
    s = next;
  }
  return s;
}

/**
 * The symbols the inputs' dims are made of, once dims that are expressions of others
 * (`past_sequence + sequence`) or that unify with others are written in terms of them.
 */
export function freeSymbols(model: Model, unified?: ReadonlyMap<string, Sym>): string[] {
  const out: string[] = [];
  for (const v of model.graph.inputs) {
    if (v.initializer || v.type?.kind !== 'tensor') continue;
    for (const d of v.type.shape ?? []) {
      if (typeof d !== 'string') continue;
      for (const s of dimExpr(d, unified).symbols()) if (!out.includes(s)) out.push(s);
    }
  }
  return out;
}

/** The value of dim `d` given the free symbols' values (`fallback` for those not given). */
export function dimValue(d: string, dims: Record<string, number>, fallback: number, unified?: ReadonlyMap<string, Sym>): number {
  if (d in dims) return dims[d]!;
  const e = dimExpr(d, unified);
  const bind = new Map<string, Sym>();
  for (const s of e.symbols()) bind.set(s, Sym.const(dims[s] ?? fallback));
  const v = e.subst(bind).value;
  return v !== undefined && v >= 0 ? v : fallback;
}

const COMPARISONS = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']);

/**
 * Call `f` for each use of `input` (subgraph nodes reading it from an outer scope included), seen
 * through ops that move values without changing them (`passThrough`, data input only), to depth 6.
 */
function forEachUseThrough(input: Value, passThrough: ReadonlySet<string>, f: (node: Node, slot: number) => void): void {
  const seen = new Set<Value>();
  const visit = (x: Value, depth: number): void => {
    if (seen.has(x) || depth > 6) return;
    seen.add(x);
    for (const u of x.uses) {
      const n = u.node;
      if (passThrough.has(n.opType) && u.slot === 0 && n.outputs[0]) visit(n.outputs[0], depth + 1);
      else f(n, u.slot);
    }
  };
  visit(input, 0);
}

function isIntInput(v: Value): boolean {
  const t = v.type;
  return !v.initializer && t?.kind === 'tensor' && (t.elemType === DataType.INT64 || t.elemType === DataType.INT32);
}

/** A constant scalar's value, when it is a finite integer. */
function integerScalar(v: Value | undefined): number | undefined {
  const x = scalarOf(v);
  return x !== undefined && Number.isInteger(x) ? x : undefined;
}

/**
 * Values that select a branch: integer inputs compared (Equal, Less, ...) with a constant, as a
 * sample-rate input `sr == 16000` that picks an If branch. Each input gets the constants it is
 * compared with, in graph order; validation tries them in turn so that each branch is taken.
 */
export function selectorValues(model: Model): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const passThrough = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Flatten']);
  for (const input of model.graph.inputs) {
    if (!isIntInput(input)) continue;
    const found: number[] = [];
    forEachUseThrough(input, passThrough, (n, slot) => {
      const c = COMPARISONS.has(n.opType) ? integerScalar(n.inputs[1 - slot]) : undefined;
      if (c !== undefined && !found.includes(c)) found.push(c);
    });
    if (found.length) out[input.name] = found;
  }
  return out;
}

/**
 * Valid value ranges for integer inputs, read off the model: an input used as Gather indices into
 * a constant table (token ids into an embedding) gets [0, rows); one named like a mask gets {0, 1}.
 */
export function intInputRanges(model: Model): Record<string, number> {
  const out: Record<string, number> = {};
  // ops that move values without changing them: ids reach their Gather through these
  const passThrough = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Expand', 'Cast', 'Transpose']);
  // index input slot -> table input slot, for ops that look ids up in a table
  const lookups: Record<string, Record<number, number>> = {
    ':Gather': { 1: 0 },
    'com.microsoft:EmbedLayerNormalization': { 0: 2, 1: 4, 7: 3 }, // input_ids, segment_ids, position_ids
    'com.microsoft:GatherBlockQuantized': { 1: 0 },
  };
  const tableRows = (n: Node, slot: number): number | undefined => {
    const tableSlot = lookups[`${n.domain}:${n.opType}`]?.[slot];
    if (tableSlot === undefined) return undefined;
    const t = constantValue(n.inputs[tableSlot]);
    if (!t) return undefined;
    const a = n.attr(n.opType === 'GatherBlockQuantized' ? 'gather_axis' : 'axis');
    const axis = n.opType === 'EmbedLayerNormalization' ? 0 : a?.type === 'int' ? Number(a.value) : 0;
    return t.dims[axis < 0 ? axis + t.dims.length : axis];
  };
  for (const v of model.graph.inputs) {
    if (!isIntInput(v)) continue;
    let high: number | undefined;
    forEachUseThrough(v, passThrough, (n, slot) => {
      const rows = tableRows(n, slot);
      if (rows !== undefined) high = Math.min(high ?? rows, rows);
    });
    if (high === undefined && /mask/i.test(v.name)) high = 2;
    if (high !== undefined) out[v.name] = high;
  }
  return out;
}

/** mulberry32: small, fast, good enough for test data */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An input synthetic data cannot be made for (no known rank, an element type without a generator):
 * `where.input` names it; the caller's stage (validation, bench) is set where it is caught.
 */
export class SyntheticInputError extends RetargetError {
  constructor(input: string, problem: string) {
    super(undefined, `input '${input}': ${problem}`, { input });
  }
}

export function syntheticInputs(model: Model, opts: SyntheticOptions = {}): Record<string, Tensor> {
  const rand = seededRandom(opts.seed ?? 0);
  const out: Record<string, Tensor> = {};
  for (const v of model.graph.inputs) {
    if (v.initializer) continue;
    const t = v.type;
    if (!t || t.kind !== 'tensor' || !t.shape) throw new SyntheticInputError(v.name, 'needs a tensor type with a known rank');
    const fallback = opts.defaultDim ?? 2;
    const dims = t.shape.map((d) => (typeof d === 'number' ? d : d === null ? fallback : dimValue(d, opts.dims ?? {}, fallback, opts.unified)));
    const n = dims.reduce((a, b) => a * b, 1);
    const high = opts.intRanges?.[v.name] ?? opts.intHigh ?? 10;
    const fill = opts.values?.[v.name];
    if (fill !== undefined) {
      out[v.name] = filled(t.elemType, dims, n, fill, v.name);
      continue;
    }
    // a mask input: all positions valid (random 0/1 masks would mask whole rows, which decoders
    // answer with garbage that no two implementations need agree on; padding comes from test data)
    if (high === 2 && /mask/i.test(v.name) && t.elemType !== DataType.BOOL) {
      out[v.name] = filled(t.elemType, dims, n, 1, v.name);
      continue;
    }
    switch (t.elemType) {
      case DataType.FLOAT: out[v.name] = Tensor.float32(Array.from({ length: n }, () => rand() * 2 - 1), dims); break;
      case DataType.DOUBLE: out[v.name] = Tensor.fromTypedArray(DataType.DOUBLE, dims, Float64Array.from({ length: n }, () => rand() * 2 - 1)); break;
      // float16 models (GPU exports): the same uniform values, rounded to float16
      case DataType.FLOAT16: out[v.name] = Tensor.fromTypedArray(DataType.FLOAT16, dims, Uint16Array.from({ length: n }, () => toFloat16Bits(rand() * 2 - 1))); break;
      case DataType.INT64: out[v.name] = Tensor.int64(Array.from({ length: n }, () => Math.floor(rand() * high)), dims); break;
      case DataType.INT32: out[v.name] = Tensor.int32(Array.from({ length: n }, () => Math.floor(rand() * high)), dims); break;
      case DataType.BOOL: out[v.name] = Tensor.fromTypedArray(DataType.BOOL, dims, Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0))); break;
      case DataType.UINT8: out[v.name] = Tensor.fromTypedArray(DataType.UINT8, dims, Uint8Array.from({ length: n }, () => Math.floor(rand() * 256))); break;
      case DataType.INT8: out[v.name] = Tensor.fromTypedArray(DataType.INT8, dims, Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128)); break;
      default: throw new SyntheticInputError(v.name, `no synthetic data for element type ${t.elemType}`);
    }
  }
  return out;
}

function filled(elemType: number, dims: number[], n: number, x: number, name: string): Tensor {
  switch (elemType) {
    case DataType.FLOAT: return Tensor.float32(new Array<number>(n).fill(x), dims);
    case DataType.DOUBLE: return Tensor.fromTypedArray(DataType.DOUBLE, dims, new Float64Array(n).fill(x));
    case DataType.FLOAT16: return Tensor.fromTypedArray(DataType.FLOAT16, dims, new Uint16Array(n).fill(toFloat16Bits(x)));
    case DataType.INT64: return Tensor.int64(new Array<number>(n).fill(Math.trunc(x)), dims);
    case DataType.INT32: return Tensor.int32(new Array<number>(n).fill(Math.trunc(x)), dims);
    case DataType.BOOL: return Tensor.fromTypedArray(DataType.BOOL, dims, new Uint8Array(n).fill(x ? 1 : 0));
    case DataType.UINT8: return Tensor.fromTypedArray(DataType.UINT8, dims, new Uint8Array(n).fill(x));
    case DataType.INT8: return Tensor.fromTypedArray(DataType.INT8, dims, new Int8Array(n).fill(x));
    default: throw new SyntheticInputError(name, `no synthetic data for element type ${elemType}`);
  }
}
