/** Reductions, ArgMax/ArgMin, CumSum and MatMul. */
import { attrInt, attrInts } from '../../ir/attribute.js';
import { DataType } from '../../ir/dtype.js';
import type { Node } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import {
  alloc, broadcastShapes, count, fromTensor, intValues, kindOf, need, normAxis, refuse, stridesOf, toTensor, type Arr, type Evaluator,
} from './core.js';

type Store = { [i: number]: number | bigint; length: number };

/** For each element of `dims`, the flat index of its slot in the reduced output (reduced axes collapse). */
function reduceIndex(dims: readonly number[], reduced: readonly boolean[]): { index: Int32Array; outCount: number } {
  const rank = dims.length;
  const keptDims = dims.map((d, i) => (reduced[i] ? 1 : d));
  const ost = stridesOf(keptDims).map((s, i) => (reduced[i] ? 0 : s));
  const n = count(dims);
  const index = new Int32Array(n);
  const counter = new Array<number>(rank).fill(0);
  let cur = 0;
  for (let i = 0; i < n; i++) {
    index[i] = cur;
    for (let ax = rank - 1; ax >= 0; ax--) {
      counter[ax]!++;
      cur += ost[ax]!;
      if (counter[ax]! < dims[ax]!) break;
      cur -= ost[ax]! * counter[ax]!;
      counter[ax] = 0;
    }
  }
  return { index, outCount: count(keptDims) };
}

const INT_RANGE: Record<number, [number, number]> = {
  [DataType.INT8]: [-128, 127], [DataType.UINT8]: [0, 255], [DataType.INT16]: [-32768, 32767], [DataType.UINT16]: [0, 65535],
  [DataType.INT32]: [-(2 ** 31), 2 ** 31 - 1], [DataType.UINT32]: [0, 2 ** 32 - 1],
};

/** axes from the attribute before `inputFrom`, from input 1 from then on */
function reduceAxes(node: Node, inputs: (Tensor | undefined)[], opset: number, inputFrom: number): number[] | undefined {
  if (opset >= inputFrom) {
    const t = inputs[1];
    return t && t.elementCount > 0 ? intValues(t) : undefined;
  }
  return attrInts(node.attr('axes'));
}

/** Reductions refused on integers (their results are not integers). */
const FLOAT_ONLY = ['ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp'];

function reduce(op: string, node: Node, inputs: (Tensor | undefined)[], opset: number): Arr {
  const a = fromTensor(need(inputs, 0));
  const k = kindOf(a.dt);
  if (k !== 'float' && k !== 'int' && k !== 'bigint') refuse(`${op} dtype ${a.dt}`);
  if (k !== 'float' && FLOAT_ONLY.includes(op)) refuse(`${op} on integers`);
  const inputFrom = op === 'ReduceSum' ? 13 : 18;
  const axes = reduceAxes(node, inputs, opset, inputFrom);
  const keepdims = attrInt(node.attr('keepdims'), 1) === 1;
  const noop = opset >= inputFrom && attrInt(node.attr('noop_with_empty_axes'), 0) === 1;
  const rank = a.dims.length;
  if (!axes && noop) return a;
  const reduced = new Array<boolean>(rank).fill(axes === undefined);
  for (const ax of axes ?? []) reduced[normAxis(ax, rank)] = true;
  const outDims = keepdims ? a.dims.map((d, i) => (reduced[i] ? 1 : d)) : a.dims.filter((_, i) => !reduced[i]);
  const out = alloc(a.dt, outDims);
  const { index, outCount } = reduceIndex(a.dims, reduced);
  const n = count(a.dims);
  const groups: Groups = { index, outCount, n, groupSize: outCount === 0 ? 0 : n / outCount };
  if (k === 'bigint') reduceBigint(op, a, groups, out.data as Store);
  else reduceNumber(op, a, k, groups, out.data as Store);
  return out;
}

/** How the input's n elements fall into the output's outCount slots (index: each element's slot). */
interface Groups { index: Int32Array; outCount: number; n: number; groupSize: number }

/** `op` over int64 / uint64 elements, exact in bigint, into `dst`. */
function reduceBigint(op: string, a: Arr, g: Groups, dst: Store): void {
  const { index, outCount, n, groupSize } = g;
  const big = a.data as unknown as BigInt64Array;
  const acc: bigint[] = new Array<bigint>(outCount);
  const unsigned = a.dt === DataType.UINT64;
  const init = op === 'ReduceProd' ? 1n : op === 'ReduceMax' ? (unsigned ? 0n : -(2n ** 63n)) : op === 'ReduceMin' ? (unsigned ? 2n ** 64n - 1n : 2n ** 63n - 1n) : 0n;
  acc.fill(init);
  for (let i = 0; i < n; i++) {
    const x = big[i]!, j = index[i]!;
    switch (op) {
      case 'ReduceSum': case 'ReduceMean': acc[j]! += x; break;
      case 'ReduceProd': acc[j]! *= x; break;
      case 'ReduceMax': if (x > acc[j]!) acc[j] = x; break;
      case 'ReduceMin': if (x < acc[j]!) acc[j] = x; break;
      case 'ReduceSumSquare': acc[j]! += x * x; break;
      case 'ReduceL1': acc[j]! += x < 0n ? -x : x; break;
      default: refuse(op);
    }
  }
  for (let j = 0; j < outCount; j++) {
    let v = acc[j]!;
    if (op === 'ReduceMean') { if (groupSize === 0) refuse('ReduceMean of nothing'); v /= BigInt(groupSize); }
    dst[j] = v;
  }
}

/** `op` over float or (up to 32-bit) integer elements, accumulated in float64, into `dst`. */
function reduceNumber(op: string, a: Arr, k: 'float' | 'int', g: Groups, dst: Store): void {
  const { index, outCount, n, groupSize } = g;
  const src = a.data as Store;
  const acc = new Float64Array(outCount);
  const [imin, imax] = INT_RANGE[a.dt] ?? [-Infinity, Infinity];
  const init = op === 'ReduceProd' ? 1 : op === 'ReduceMax' ? (k === 'float' ? -Infinity : imin) : op === 'ReduceMin' ? (k === 'float' ? Infinity : imax) : 0;
  acc.fill(init);
  const max = op === 'ReduceLogSumExp' ? groupMax(src, g) : undefined;
  for (let i = 0; i < n; i++) {
    const x = src[i] as number, j = index[i]!;
    switch (op) {
      case 'ReduceSum': case 'ReduceMean': case 'ReduceLogSum': acc[j]! += x; break;
      case 'ReduceProd': acc[j]! *= x; break;
      case 'ReduceMax': if (x > acc[j]! || Number.isNaN(x)) acc[j] = x; break;
      case 'ReduceMin': if (x < acc[j]! || Number.isNaN(x)) acc[j] = x; break;
      case 'ReduceSumSquare': case 'ReduceL2': acc[j]! += x * x; break;
      case 'ReduceL1': acc[j]! += Math.abs(x); break;
      case 'ReduceLogSumExp': { const m = max![j]!; acc[j]! += Number.isFinite(m) ? Math.exp(x - m) : Math.exp(x); break; }
      default: refuse(op);
    }
  }
  for (let j = 0; j < outCount; j++) {
    let v = acc[j]!;
    switch (op) {
      case 'ReduceMean': v = v / groupSize; if (k !== 'float') { if (groupSize === 0) refuse('ReduceMean of nothing'); v = Math.trunc(v); } break;
      case 'ReduceL2': v = Math.sqrt(v); break;
      case 'ReduceLogSum': v = Math.log(v); break;
      case 'ReduceLogSumExp': { const m = max![j]!; v = Math.log(v) + (Number.isFinite(m) ? m : 0); break; }
    }
    if (k !== 'float' && !Number.isSafeInteger(v)) refuse(`${op}: integer result beyond 2^53`);
    dst[j] = v;
  }
}

/** The max of each group (NaN when it has one): ReduceLogSumExp subtracts it first, so exp cannot overflow. */
function groupMax(src: Store, g: Groups): Float64Array {
  const max = new Float64Array(g.outCount).fill(-Infinity);
  for (let i = 0; i < g.n; i++) { const x = src[i] as number; if (x > max[g.index[i]!]! || Number.isNaN(x)) max[g.index[i]!] = x; }
  return max;
}

function argReduce(op: 'ArgMax' | 'ArgMin', node: Node, inputs: (Tensor | undefined)[]): Arr {
  const a = fromTensor(need(inputs, 0));
  const k = kindOf(a.dt);
  if (k !== 'float' && k !== 'int' && k !== 'bigint') refuse(`${op} dtype`);
  const rank = a.dims.length;
  const axis = normAxis(attrInt(node.attr('axis'), 0), rank);
  const keepdims = attrInt(node.attr('keepdims'), 1) === 1;
  const last = attrInt(node.attr('select_last_index'), 0) === 1;
  const outDims = keepdims ? a.dims.map((d, i) => (i === axis ? 1 : d)) : a.dims.filter((_, i) => i !== axis);
  const out = alloc(DataType.INT64, outDims);
  const od = out.data as BigInt64Array;
  const outer = count(a.dims.slice(0, axis)), inner = count(a.dims.slice(axis + 1)), n = a.dims[axis]!;
  if (n === 0) refuse(`${op} over an empty axis`);
  const src = a.data as Store;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = src[o * n * inner + i]!, bi = 0;
      for (let j = 1; j < n; j++) {
        const x = src[(o * n + j) * inner + i]!;
        const better = op === 'ArgMax' ? (last ? x >= best : x > best) : (last ? x <= best : x < best);
        if (better) { best = x; bi = j; }
      }
      od[o * inner + i] = BigInt(bi);
    }
  }
  return out;
}

function cumSum(node: Node, inputs: (Tensor | undefined)[]): Arr {
  const a = fromTensor(need(inputs, 0));
  const k = kindOf(a.dt);
  if (k !== 'float' && k !== 'int' && k !== 'bigint') refuse('CumSum dtype');
  const axisT = need(inputs, 1);
  const axis = normAxis(intValues(axisT)[0]!, a.dims.length);
  const exclusive = attrInt(node.attr('exclusive'), 0) === 1;
  const reverse = attrInt(node.attr('reverse'), 0) === 1;
  const out = alloc(a.dt, a.dims);
  const outer = count(a.dims.slice(0, axis)), inner = count(a.dims.slice(axis + 1)), n = a.dims[axis]!;
  const src = a.data as Store, dst = out.data as Store;
  const f32 = a.dt === DataType.FLOAT;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc: number | bigint = k === 'bigint' ? 0n : 0;
      for (let s = 0; s < n; s++) {
        const j = reverse ? n - 1 - s : s;
        const at = (o * n + j) * inner + i;
        const x = src[at]!;
        if (exclusive) dst[at] = acc;
        if (typeof acc === 'bigint') acc += x as bigint;
        else acc = f32 ? Math.fround(acc + (x as number)) : acc + (x as number);
        if (!exclusive) dst[at] = acc;
      }
    }
  }
  return out;
}

function matMul(inputs: (Tensor | undefined)[]): Arr {
  const a0 = fromTensor(need(inputs, 0)), b0 = fromTensor(need(inputs, 1));
  if (a0.dt !== b0.dt) refuse('MatMul of mixed dtypes');
  const k = kindOf(a0.dt);
  if (k !== 'float' && k !== 'int' && k !== 'bigint') refuse('MatMul dtype');
  if (a0.dims.length === 0 || b0.dims.length === 0) refuse('MatMul of a scalar');
  // numpy: a 1-D A is a row [1,K], a 1-D B a column [K,1]; the added dims are dropped again
  const a = a0.dims.length === 1 ? { ...a0, dims: [1, a0.dims[0]!] } : a0;
  const b = b0.dims.length === 1 ? { ...b0, dims: [b0.dims[0]!, 1] } : b0;
  const M = a.dims[a.dims.length - 2]!, K = a.dims[a.dims.length - 1]!;
  const K2 = b.dims[b.dims.length - 2]!, N = b.dims[b.dims.length - 1]!;
  if (K !== K2) refuse('MatMul: inner dims differ');
  const batch = broadcastShapes([a.dims.slice(0, -2), b.dims.slice(0, -2)]);
  const nb = count(batch);
  if (nb * M * N * K > 20_000_000) refuse('MatMul too large to fold');
  let outDims = [...batch, M, N];
  const out = alloc(a.dt, outDims);
  const ia = broadcastBatch(a.dims.slice(0, -2), batch), ib = broadcastBatch(b.dims.slice(0, -2), batch);
  const ad = a.data as Store, bd = b.data as Store, od = out.data as Store;
  const is32 = a.dt === DataType.INT32 || a.dt === DataType.UINT32;
  for (let t = 0; t < nb; t++) {
    const ao = ia[t]! * M * K, bo = ib[t]! * K * N, oo = t * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        if (k === 'bigint') {
          let s = 0n;
          for (let q = 0; q < K; q++) s += (ad[ao + i * K + q] as bigint) * (bd[bo + q * N + j] as bigint);
          od[oo + i * N + j] = BigInt.asIntN(64, s);
        } else if (is32) {
          let s = 0;
          for (let q = 0; q < K; q++) s = (s + Math.imul(ad[ao + i * K + q] as number, bd[bo + q * N + j] as number)) | 0;
          od[oo + i * N + j] = s;
        } else {
          let s = 0;
          for (let q = 0; q < K; q++) s += (ad[ao + i * K + q] as number) * (bd[bo + q * N + j] as number);
          od[oo + i * N + j] = s;
        }
      }
    }
  }
  if (a0.dims.length === 1) outDims = outDims.filter((_, i) => i !== outDims.length - 2);
  if (b0.dims.length === 1) outDims = outDims.slice(0, -1);
  return { dt: out.dt, dims: outDims, data: out.data };
}

/** For each batch index of `batch`, the batch index into an operand with batch dims `dims`. */
function broadcastBatch(dims: readonly number[], batch: readonly number[]): number[] {
  const n = count(batch);
  const out: number[] = [];
  const off = batch.length - dims.length;
  const st = stridesOf(dims);
  const bst = stridesOf(batch);
  for (let t = 0; t < n; t++) {
    let rem = t, idx = 0;
    for (let ax = 0; ax < batch.length; ax++) {
      const c = Math.floor(rem / bst[ax]!);
      rem -= c * bst[ax]!;
      if (ax >= off && dims[ax - off] !== 1) idx += c * st[ax - off]!;
    }
    out.push(idx);
  }
  return out;
}

export const REDUCE_OPS: Record<string, Evaluator> = {
  ArgMax: (node, inputs) => [toTensor(argReduce('ArgMax', node, inputs))],
  ArgMin: (node, inputs) => [toTensor(argReduce('ArgMin', node, inputs))],
  CumSum: (node, inputs) => [toTensor(cumSum(node, inputs))],
  MatMul: (_node, inputs) => [toTensor(matMul(inputs))],
};
for (const op of ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSumSquare', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp']) {
  REDUCE_OPS[op] = (node, inputs, opset) => [toTensor(reduce(op, node, inputs, opset))];
}
