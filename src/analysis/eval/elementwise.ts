/** Elementwise ops: arithmetic, comparisons, logic, unary math, Where, Clip, Cast. */
import { attrFloat, attrInt } from '../../ir/attribute.js';
import { DataType } from '../../ir/dtype.js';
import type { Node } from '../../ir/graph.js';
import type { Tensor, TypedArray } from '../../ir/tensor.js';
import { alloc, broadcastIndex, broadcastShapes, fromTensor, kindOf, need, refuse, toTensor, type Arr, type Evaluator, type Kind } from './core.js';
import { fromBfloat16Bits, fromFloat16Bits, toBfloat16Bits, toFloat16Bits } from '../../ir/half.js';

type Elem = number | bigint;
type Store = { [i: number]: Elem; length: number };

function numericKind(a: Arr, allowed: readonly Kind[], what: string): Kind {
  const k = kindOf(a.dt);
  if (!k || !allowed.includes(k)) refuse(`${what}: dtype ${a.dt}`);
  return k;
}

/** out[i] = f(a[ia], b[ib]) with numpy broadcasting. */
function map2(a: Arr, b: Arr, outDt: number, f: (x: Elem, y: Elem) => Elem): Arr {
  const dims = broadcastShapes([a.dims, b.dims]);
  const out = alloc(outDt, dims);
  const ia = broadcastIndex(a.dims, dims);
  const ib = broadcastIndex(b.dims, dims);
  const ad = a.data as Store, bd = b.data as Store, od = out.data as Store;
  for (let i = 0; i < od.length; i++) od[i] = f(ad[ia[i]!]!, bd[ib[i]!]!);
  return out;
}

function map1(a: Arr, outDt: number, f: (x: Elem) => Elem): Arr {
  const out = alloc(outDt, a.dims);
  const ad = a.data as Store, od = out.data as Store;
  for (let i = 0; i < od.length; i++) od[i] = f(ad[i]!);
  return out;
}

function sameDtype(a: Arr, b: Arr, op: string): void {
  if (a.dt !== b.dt) refuse(`${op}: mixed dtypes ${a.dt} and ${b.dt}`);
}

const ARITH: readonly Kind[] = ['float', 'int', 'bigint'];

/** Integer Mod with fmod=0: the remainder has the sign of the divisor (Python %, numpy.mod). */
function floorMod(x: number, y: number): number {
  const r = x % y;
  return r !== 0 && (r < 0) !== (y < 0) ? r + y : r;
}
function floorModBig(x: bigint, y: bigint): bigint {
  const r = x % y;
  return r !== 0n && (r < 0n) !== (y < 0n) ? r + y : r;
}

function binaryArith(op: string, a: Arr, b: Arr, node: Node, powDt?: number): Arr {
  if (op === 'Pow') { const r = pow(a, b); return powDt !== undefined && powDt !== r.dt ? castArr(r, powDt) : r; }
  sameDtype(a, b, op);
  const k = numericKind(a, ARITH, op);
  const dt = a.dt;
  const is32 = dt === DataType.INT32 || dt === DataType.UINT32;
  switch (op) {
    case 'Add': return k === 'bigint' ? map2(a, b, dt, (x, y) => (x as bigint) + (y as bigint)) : map2(a, b, dt, (x, y) => (x as number) + (y as number));
    case 'Sub': return k === 'bigint' ? map2(a, b, dt, (x, y) => (x as bigint) - (y as bigint)) : map2(a, b, dt, (x, y) => (x as number) - (y as number));
    case 'Mul':
      if (k === 'bigint') return map2(a, b, dt, (x, y) => (x as bigint) * (y as bigint));
      // int32 products can pass 2^53; Math.imul gives the wrapped 32-bit product exactly
      if (is32) return map2(a, b, dt, (x, y) => Math.imul(x as number, y as number));
      return map2(a, b, dt, (x, y) => (x as number) * (y as number));
    case 'Div':
      // Integer Div truncates toward zero (C++ semantics, as onnxruntime does; the ONNX reference
      // implementation onnx/reference/ops/op_div.py: "Truncate toward zero for integer division
      // (C++-style)"). Division by zero is undefined for integers: not folded.
      if (k === 'float') return map2(a, b, dt, (x, y) => (x as number) / (y as number));
      if (k === 'bigint') return map2(a, b, dt, (x, y) => { if (y === 0n) refuse('integer division by zero'); return (x as bigint) / (y as bigint); });
      return map2(a, b, dt, (x, y) => { if (y === 0) refuse('integer division by zero'); return Math.trunc((x as number) / (y as number)); });
    case 'Mod': {
      // fmod=0 (integers only): sign of the divisor, like Python's %; fmod=1: sign of the dividend, like C fmod
      const fmod = attrInt(node.attr('fmod'), 0) === 1;
      if (k === 'float') {
        if (!fmod) refuse('Mod on floats needs fmod=1');
        return map2(a, b, dt, (x, y) => (x as number) % (y as number));
      }
      if (k === 'bigint') return map2(a, b, dt, (x, y) => { if (y === 0n) refuse('Mod by zero'); return fmod ? (x as bigint) % (y as bigint) : floorModBig(x as bigint, y as bigint); });
      return map2(a, b, dt, (x, y) => { if (y === 0) refuse('Mod by zero'); return fmod ? (x as number) % (y as number) : floorMod(x as number, y as number); });
    }
  }
  refuse(op);
}

/** Pow: the result has the base's type; an integer base is raised exactly where the result is representable. */
function pow(a: Arr, b: Arr): Arr {
  const ka = numericKind(a, ARITH, 'Pow');
  const kb = numericKind(b, ARITH, 'Pow');
  if (ka === 'float') return map2(a, b, a.dt, (x, y) => Math.pow(x as number, Number(y)));
  const intPow = (x: bigint, y: bigint): bigint => {
    if (y >= 0n) {
      if (y > 64n && (x > 1n || x < -1n)) refuse('Pow overflows');
      return x ** y;
    }
    if (x === 0n) refuse('Pow of zero to a negative power');
    if (x === 1n) return 1n;
    if (x === -1n) return y % 2n === 0n ? 1n : -1n;
    return 0n; // |x^y| < 1 truncates to 0
  };
  const fromFloat = (x: bigint, y: number): bigint => {
    const r = Math.pow(Number(x), y);
    if (!Number.isFinite(r) || Math.abs(r) > Number.MAX_SAFE_INTEGER) refuse('Pow result out of range');
    return BigInt(Math.trunc(r));
  };
  const big = (x: Elem): bigint => BigInt(x);
  if (ka === 'bigint') {
    return map2(a, b, a.dt, (x, y) => (kb === 'float' ? fromFloat(x as bigint, y as number) : intPow(x as bigint, big(y))));
  }
  return map2(a, b, a.dt, (x, y) => {
    const r = kb === 'float' ? fromFloat(big(x), y as number) : intPow(big(x), big(y));
    if (r > BigInt(Number.MAX_SAFE_INTEGER) || r < BigInt(Number.MIN_SAFE_INTEGER)) refuse('Pow result out of range');
    return Number(r);
  });
}

const COMPARE: Record<string, (x: Elem, y: Elem) => boolean> = {
  Equal: (x, y) => x === y,
  Less: (x, y) => x < y,
  Greater: (x, y) => x > y,
  LessOrEqual: (x, y) => x <= y,
  GreaterOrEqual: (x, y) => x >= y,
};

const LOGIC: Record<string, (x: number, y: number) => number> = {
  And: (x, y) => (x && y ? 1 : 0),
  Or: (x, y) => (x || y ? 1 : 0),
  Xor: (x, y) => ((x ? 1 : 0) ^ (y ? 1 : 0)),
};

/** Round half to even, as numpy.round and ONNX Round do. */
function roundEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const FLOAT_UNARY: Record<string, (x: number, node: Node) => number> = {
  Sqrt: Math.sqrt,
  Exp: Math.exp,
  Log: Math.log,
  Reciprocal: (x) => 1 / x,
  Floor: Math.floor,
  Ceil: Math.ceil,
  Round: roundEven,
  Sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  Tanh: Math.tanh,
  Sin: Math.sin, Cos: Math.cos, Tan: Math.tan, Asin: Math.asin, Acos: Math.acos, Atan: Math.atan,
  Sinh: Math.sinh, Cosh: Math.cosh, Asinh: Math.asinh, Acosh: Math.acosh, Atanh: Math.atanh,
  Softsign: (x) => x / (1 + Math.abs(x)),
};

function signedUnary(op: string, a: Arr): Arr {
  const k = numericKind(a, ARITH, op);
  const unsigned = a.dt === DataType.UINT8 || a.dt === DataType.UINT16 || a.dt === DataType.UINT32 || a.dt === DataType.UINT64;
  if (k === 'bigint') {
    switch (op) {
      case 'Neg': return map1(a, a.dt, (x) => -(x as bigint));
      case 'Abs': return map1(a, a.dt, (x) => ((x as bigint) < 0n ? -(x as bigint) : x));
      case 'Sign': return map1(a, a.dt, (x) => ((x as bigint) > 0n ? 1n : (x as bigint) < 0n ? -1n : 0n));
      case 'Relu': return map1(a, a.dt, (x) => ((x as bigint) > 0n ? x : 0n));
    }
  }
  switch (op) {
    case 'Neg': return map1(a, a.dt, (x) => -(x as number));
    case 'Abs': return map1(a, a.dt, (x) => (unsigned ? x : Math.abs(x as number)));
    case 'Sign': return map1(a, a.dt, (x) => (Number.isNaN(x) ? NaN : Math.sign(x as number) + 0));
    case 'Relu': return map1(a, a.dt, (x) => (Number.isNaN(x) ? x : Math.max(x as number, 0)));
  }
  refuse(op);
}

function floatUnary(op: string, a: Arr, node: Node): Arr {
  numericKind(a, ['float'], op);
  const f = FLOAT_UNARY[op]!;
  return map1(a, a.dt, (x) => f(x as number, node));
}

function variadic(op: string, arrs: Arr[]): Arr {
  if (arrs.length === 0) refuse(`${op} without inputs`);
  const k = numericKind(arrs[0]!, ARITH, op);
  for (const a of arrs) sameDtype(arrs[0]!, a, op);
  const dt = arrs[0]!.dt;
  let f: (x: Elem, y: Elem) => Elem;
  switch (op) {
    case 'Max': f = k === 'float' ? (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x as number, y as number)) : (x, y) => (x > y ? x : y); break;
    case 'Min': f = k === 'float' ? (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x as number, y as number)) : (x, y) => (x < y ? x : y); break;
    case 'Sum': case 'Mean':
      if (op === 'Mean' && k !== 'float') refuse('Mean on integers');
      f = k === 'bigint' ? (x, y) => (x as bigint) + (y as bigint) : (x, y) => (x as number) + (y as number);
      break;
    default: refuse(op);
  }
  // fold in float64 (not the output type) so Sum/Mean round once, like a single pass over the inputs
  const work = k === 'float' ? DataType.DOUBLE : dt;
  let acc = map1(arrs[0]!, work, (x) => x);
  for (let i = 1; i < arrs.length; i++) acc = map2(acc, arrs[i]!, work, f);
  if (op === 'Mean') acc = map1(acc, work, (x) => (x as number) / arrs.length);
  return work === dt ? acc : map1(acc, dt, (x) => x);
}

function clip(node: Node, inputs: (Tensor | undefined)[], opset: number): Arr {
  const x = fromTensor(need(inputs, 0));
  const k = numericKind(x, ARITH, 'Clip');
  let lo: Elem, hi: Elem;
  if (opset < 11) {
    if (k !== 'float') refuse('Clip < 11 on integers');
    lo = attrFloat(node.attr('min'), -Infinity)!;
    hi = attrFloat(node.attr('max'), Infinity)!;
  } else {
    const bound = (i: number, fallback: Elem): Elem => {
      const t = inputs[i];
      if (!t) return fallback;
      if (t.dataType !== x.dt) refuse('Clip bound of another dtype');
      if (t.elementCount !== 1) refuse('Clip bound is not a scalar');
      return t.toTypedArray()[0]!;
    };
    const big = k === 'bigint';
    const ctorMin = k === 'float' ? -Infinity : big ? -(2n ** 64n) : -Infinity;
    const ctorMax = k === 'float' ? Infinity : big ? 2n ** 64n : Infinity;
    lo = bound(1, ctorMin);
    hi = bound(2, ctorMax);
  }
  return map1(x, x.dt, (v) => {
    if (typeof v === 'number' && Number.isNaN(v)) return v;
    let r = v < lo ? lo : v;
    r = r > hi ? hi : r;
    return r;
  });
}

// ------------------------------------------------------------------ Cast

function readAs(a: Arr): (i: number) => Elem {
  const d = a.data as Store;
  if (a.dt === DataType.FLOAT16) return (i) => fromFloat16Bits(d[i] as number);
  if (a.dt === DataType.BFLOAT16) return (i) => fromBfloat16Bits(d[i] as number);
  return (i) => d[i]!;
}

export function castArr(a: Arr, to: number): Arr {
  const from = kindOf(a.dt);
  const target = kindOf(to);
  if (!from || !target) refuse(`Cast from ${a.dt} to ${to}`);
  const out = alloc(to, a.dims);
  const od = out.data as Store;
  const get = readAs(a);
  const n = od.length;
  const toNumber = (v: Elem): number => Number(v);
  let put: (v: Elem) => Elem;
  switch (target) {
    case 'float': put = toNumber; break;
    case 'half': put = to === DataType.FLOAT16 ? (v) => toFloat16Bits(Number(v)) : (v) => toBfloat16Bits(Number(v)); break;
    case 'bool': put = (v) => (typeof v === 'bigint' ? (v !== 0n ? 1 : 0) : v !== 0 ? 1 : 0); break; // NaN -> true
    case 'int': put = (v) => {
      if (typeof v === 'bigint') return Number(BigInt.asIntN(32, v)); // the store wraps further for narrower types
      if (!Number.isFinite(v)) refuse('Cast of a non-finite value to an integer');
      return Math.trunc(v); // float -> int truncates toward zero (C static_cast)
    }; break;
    case 'bigint': put = (v) => {
      if (typeof v === 'bigint') return v; // the BigInt64Array/BigUint64Array store wraps modulo 2^64
      if (!Number.isFinite(v)) refuse('Cast of a non-finite value to an integer');
      const t = Math.trunc(v);
      if (Math.abs(t) >= 2 ** 64) refuse('Cast out of int64 range');
      return BigInt(t);
    }; break;
  }
  if (from === 'float' && a.dt === to) return { dt: to, dims: [...a.dims], data: a.data.slice() as TypedArray };
  for (let i = 0; i < n; i++) od[i] = put(get(i));
  return out;
}

// ------------------------------------------------------------------ 16-bit floats

function widenOnly(t: Tensor): Arr {
  return widen(fromTensor(t));
}

const isHalf = (dt: number): boolean => dt === DataType.FLOAT16 || dt === DataType.BFLOAT16;

/** float16/bfloat16 are computed on as float64 and rounded once at the end (as numpy computes float16 ops). */
export function widen(a: Arr): Arr {
  return isHalf(a.dt) ? castArr(a, DataType.DOUBLE) : a;
}

function withHalf(inputs: (Tensor | undefined)[], f: (arrs: Arr[]) => Arr): Tensor {
  const arrs = inputs.map((t, i) => fromTensor(need(inputs, i)));
  const half = arrs[0] && isHalf(arrs[0].dt) ? arrs[0].dt : undefined;
  if (half !== undefined && arrs.some((a) => a.dt !== half)) refuse('mixed dtypes');
  const out = f(arrs.map(widen));
  return toTensor(half !== undefined && out.dt === DataType.DOUBLE ? castArr(out, half) : out);
}

// ------------------------------------------------------------------ dispatch

export const ELEMENTWISE: Record<string, Evaluator> = {};

for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Mod', 'Pow']) {
  ELEMENTWISE[op] = (node, inputs) => {
    if (op === 'Pow') return [toTensor(binaryArith(op, widenOnly(need(inputs, 0)), widenOnly(need(inputs, 1)), node, need(inputs, 0).dataType))];
    return [withHalf(inputs.slice(0, 2), ([a, b]) => binaryArith(op, a!, b!, node))];
  };
}
for (const [op, f] of Object.entries(COMPARE)) {
  ELEMENTWISE[op] = (_node, inputs) => {
    const a = widen(fromTensor(need(inputs, 0))), b = widen(fromTensor(need(inputs, 1)));
    sameDtype(a, b, op);
    const k = kindOf(a.dt);
    if (k === 'bool' && op !== 'Equal') refuse(`${op} on dtype ${a.dt}`);
    return [toTensor(map2(a, b, DataType.BOOL, (x, y) => (f(x, y) ? 1 : 0)))];
  };
}
for (const [op, f] of Object.entries(LOGIC)) {
  ELEMENTWISE[op] = (_node, inputs) => {
    const a = fromTensor(need(inputs, 0)), b = fromTensor(need(inputs, 1));
    if (a.dt !== DataType.BOOL || b.dt !== DataType.BOOL) refuse(`${op} on non-bool`);
    return [toTensor(map2(a, b, DataType.BOOL, (x, y) => f(x as number, y as number)))];
  };
}
ELEMENTWISE.Not = (_node, inputs) => {
  const a = fromTensor(need(inputs, 0));
  if (a.dt !== DataType.BOOL) refuse('Not on non-bool');
  return [toTensor(map1(a, DataType.BOOL, (x) => (x ? 0 : 1)))];
};
for (const op of Object.keys(FLOAT_UNARY)) {
  ELEMENTWISE[op] = (node, inputs) => [withHalf(inputs.slice(0, 1), ([a]) => floatUnary(op, a!, node))];
}
for (const op of ['Neg', 'Abs', 'Sign', 'Relu']) {
  ELEMENTWISE[op] = (_node, inputs) => [withHalf(inputs.slice(0, 1), ([a]) => signedUnary(op, a!))];
}
ELEMENTWISE.IsNaN = (_node, inputs) => {
  const a = widen(fromTensor(need(inputs, 0)));
  numericKind(a, ['float'], 'IsNaN');
  return [toTensor(map1(a, DataType.BOOL, (x) => (Number.isNaN(x) ? 1 : 0)))];
};
ELEMENTWISE.IsInf = (node, inputs) => {
  const a = widen(fromTensor(need(inputs, 0)));
  numericKind(a, ['float'], 'IsInf');
  const neg = attrInt(node.attr('detect_negative'), 1) === 1;
  const pos = attrInt(node.attr('detect_positive'), 1) === 1;
  return [toTensor(map1(a, DataType.BOOL, (x) => ((pos && x === Infinity) || (neg && x === -Infinity) ? 1 : 0)))];
};
for (const op of ['Max', 'Min', 'Sum', 'Mean']) {
  ELEMENTWISE[op] = (_node, inputs) => [withHalf(inputs, (arrs) => variadic(op, arrs))];
}
ELEMENTWISE.Clip = (node, inputs, opset) => [toTensor(clip(node, inputs, opset))];
ELEMENTWISE.Where = (_node, inputs) => {
  const c = fromTensor(need(inputs, 0)), x = fromTensor(need(inputs, 1)), y = fromTensor(need(inputs, 2));
  if (c.dt !== DataType.BOOL) refuse('Where condition is not bool');
  sameDtype(x, y, 'Where');
  const dims = broadcastShapes([c.dims, x.dims, y.dims]);
  const out = alloc(x.dt, dims);
  const ic = broadcastIndex(c.dims, dims), ix = broadcastIndex(x.dims, dims), iy = broadcastIndex(y.dims, dims);
  const cd = c.data as Store, xd = x.data as Store, yd = y.data as Store, od = out.data as Store;
  for (let i = 0; i < od.length; i++) od[i] = cd[ic[i]!] ? xd[ix[i]!]! : yd[iy[i]!]!;
  return [toTensor(out)];
};
ELEMENTWISE.Cast = (node, inputs) => {
  const to = attrInt(node.attr('to'));
  if (to === undefined) refuse('Cast without to');
  return [toTensor(castArr(fromTensor(need(inputs, 0)), to))];
};
ELEMENTWISE.CastLike = (_node, inputs) => [toTensor(castArr(fromTensor(need(inputs, 0)), need(inputs, 1).dataType))];
