/** Shape and data-movement ops: they move elements without computing on them (any supported dtype). */
import { attrInt, attrInts } from '../../ir/attribute.js';
import { DataType } from '../../ir/dtype.js';
import type { Node } from '../../ir/graph.js';
import { Tensor } from '../../ir/tensor.js';
import {
  alloc, broadcastIndex, broadcastShapes, checkSize, count, fromTensor, int64Arr, intValues, kindOf, need, normAxis, refuse,
  scalarNumber, stridesOf, toTensor, type Arr, type Evaluator,
} from './core.js';

type Store = { [i: number]: number | bigint; length: number };

/** Gather rows of `a` along `axis` given by `take(outer, j, inner)`-style index lists. */
function gatherAxis(a: Arr, axis: number, indices: number[], indexDims: number[]): Arr {
  const dims = [...a.dims.slice(0, axis), ...indexDims, ...a.dims.slice(axis + 1)];
  const out = alloc(a.dt, dims);
  const outer = count(a.dims.slice(0, axis));
  const inner = count(a.dims.slice(axis + 1));
  const n = a.dims[axis]!;
  const src = a.data as Store, dst = out.data as Store;
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const idx0 of indices) {
      const idx = idx0 < 0 ? idx0 + n : idx0;
      if (!(idx >= 0 && idx < n)) refuse(`index ${idx0} out of range`);
      const base = (i * n + idx) * inner;
      for (let j = 0; j < inner; j++) dst[o++] = src[base + j]!;
    }
  }
  return out;
}

function transpose(a: Arr, perm: number[]): Arr {
  const rank = a.dims.length;
  if (perm.length !== rank || [...perm].sort((x, y) => x - y).some((p, i) => p !== i)) refuse(`invalid perm [${perm.join(',')}]`);
  const dims = perm.map((p) => a.dims[p]!);
  const out = alloc(a.dt, dims);
  const inStrides = stridesOf(a.dims);
  const ps = perm.map((p) => inStrides[p]!);
  const src = a.data as Store, dst = out.data as Store;
  const n = dst.length;
  const counter = new Array<number>(rank).fill(0);
  let cur = 0;
  for (let i = 0; i < n; i++) {
    dst[i] = src[cur]!;
    for (let ax = rank - 1; ax >= 0; ax--) {
      counter[ax]!++;
      cur += ps[ax]!;
      if (counter[ax]! < dims[ax]!) break;
      cur -= ps[ax]! * counter[ax]!;
      counter[ax] = 0;
    }
  }
  return out;
}

/** Copy the block of `a` at per-axis start/step/length into a new array (Slice). */
function strided(a: Arr, starts: number[], steps: number[], lens: number[]): Arr {
  const out = alloc(a.dt, lens);
  const rank = a.dims.length;
  const st = stridesOf(a.dims);
  const src = a.data as Store, dst = out.data as Store;
  const n = dst.length;
  if (n === 0) return out;
  const counter = new Array<number>(rank).fill(0);
  let cur = 0;
  for (let ax = 0; ax < rank; ax++) cur += starts[ax]! * st[ax]!;
  for (let i = 0; i < n; i++) {
    dst[i] = src[cur]!;
    for (let ax = rank - 1; ax >= 0; ax--) {
      counter[ax]!++;
      cur += steps[ax]! * st[ax]!;
      if (counter[ax]! < lens[ax]!) break;
      cur -= steps[ax]! * st[ax]! * counter[ax]!;
      counter[ax] = 0;
    }
  }
  return out;
}

/** Concatenate along `axis`. */
function concat(arrs: Arr[], axis: number): Arr {
  const first = arrs[0]!;
  const rank = first.dims.length;
  for (const a of arrs) {
    if (a.dt !== first.dt || a.dims.length !== rank) refuse('Concat of mismatched inputs');
    for (let i = 0; i < rank; i++) if (i !== axis && a.dims[i] !== first.dims[i]) refuse('Concat of mismatched shapes');
  }
  const dims = [...first.dims];
  dims[axis] = arrs.reduce((s, a) => s + a.dims[axis]!, 0);
  const out = alloc(first.dt, dims);
  const outer = count(dims.slice(0, axis));
  const dst = out.data as Store;
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const a of arrs) {
      const block = count(a.dims.slice(axis));
      const src = a.data as Store;
      for (let j = 0; j < block; j++) dst[o++] = src[i * block + j]!;
    }
  }
  return out;
}

function reshapeArr(a: Arr, dims: number[]): Arr {
  if (count(dims) !== count(a.dims)) refuse(`cannot reshape [${a.dims.join(',')}] to [${dims.join(',')}]`);
  return { dt: a.dt, dims, data: a.data };
}

/** Axes from the attribute (before `inputFrom`) or from input 1 (from `inputFrom` on). */
function axesOf(node: Node, inputs: (Tensor | undefined)[], opset: number, inputFrom: number, index = 1): number[] | undefined {
  if (opset >= inputFrom) {
    const t = inputs[index];
    return t ? intValues(t) : undefined;
  }
  return attrInts(node.attr('axes'));
}

function sliceArr(a: Arr, startsIn: number[], endsIn: number[], axesIn: number[] | undefined, stepsIn: number[] | undefined): Arr {
  const rank = a.dims.length;
  const axes = axesIn ?? startsIn.map((_, i) => i);
  if (startsIn.length !== endsIn.length || axes.length !== startsIn.length || (stepsIn && stepsIn.length !== startsIn.length)) refuse('Slice: lengths differ');
  const starts = new Array<number>(rank).fill(0);
  const steps = new Array<number>(rank).fill(1);
  const lens = [...a.dims];
  const seen = new Set<number>();
  axes.forEach((ax0, i) => {
    const ax = normAxis(ax0, rank);
    if (seen.has(ax)) refuse('Slice: repeated axis');
    seen.add(ax);
    const dim = a.dims[ax]!;
    const step = stepsIn ? stepsIn[i]! : 1;
    if (step === 0 || !Number.isFinite(step)) refuse('Slice: step 0');
    let s = startsIn[i]!, e = endsIn[i]!;
    // ONNX Slice: negative starts/ends count from the end; then clamp to [0, dim] (positive step)
    // or [0, dim-1] for starts and [-1, dim-1] for ends (negative step). INT64_MAX/MIN clamp too.
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
      lens[ax] = Math.max(0, Math.ceil((e - s) / step));
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
      lens[ax] = Math.max(0, Math.ceil((s - e) / -step));
    }
    starts[ax] = s;
    steps[ax] = step;
  });
  return strided(a, starts, steps, lens);
}

function tile(a: Arr, repeats: number[]): Arr {
  if (repeats.length !== a.dims.length || repeats.some((r) => r < 0)) refuse('Tile: bad repeats');
  const dims = a.dims.map((d, i) => d * repeats[i]!);
  const out = alloc(a.dt, dims);
  const rank = dims.length;
  const inStrides = stridesOf(a.dims);
  const src = a.data as Store, dst = out.data as Store;
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < dst.length; i++) {
    let off = 0;
    for (let ax = 0; ax < rank; ax++) off += (idx[ax]! % a.dims[ax]!) * inStrides[ax]!;
    dst[i] = src[off]!;
    for (let ax = rank - 1; ax >= 0; ax--) {
      if (++idx[ax]! < dims[ax]!) break;
      idx[ax] = 0;
    }
  }
  return out;
}

function constantTensor(node: Node): Tensor {
  for (const a of node.attributes.values()) {
    switch (a.name) {
      case 'value': if (a.type === 'tensor') return a.value; break;
      case 'value_float': if (a.type === 'float') return Tensor.fromTypedArray(DataType.FLOAT, [], Float32Array.of(a.value)); break;
      case 'value_floats': if (a.type === 'floats') return Tensor.fromTypedArray(DataType.FLOAT, [a.value.length], Float32Array.from(a.value)); break;
      case 'value_int': if (a.type === 'int') return Tensor.int64([a.value], []); break;
      case 'value_ints': if (a.type === 'ints') return Tensor.int64(a.value); break;
      case 'value_string': if (a.type === 'string') return new Tensor(DataType.STRING, [], { kind: 'stringData', values: [a.value] }); break;
      case 'value_strings': if (a.type === 'strings') return new Tensor(DataType.STRING, [a.value.length], { kind: 'stringData', values: a.value }); break;
    }
  }
  refuse('Constant without a supported value attribute (sparse_value?)');
}

function splitSizes(node: Node, inputs: (Tensor | undefined)[], opset: number, dim: number): number[] {
  const outputs = node.outputs.length;
  let split: number[] | undefined;
  if (opset >= 13) split = inputs[1] ? intValues(inputs[1]) : undefined;
  else split = attrInts(node.attr('split'));
  if (split) {
    if (split.reduce((s, x) => s + x, 0) !== dim || split.some((x) => x < 0)) refuse('Split sizes do not add up');
    return split;
  }
  const n = opset >= 18 && node.attr('num_outputs') ? attrInt(node.attr('num_outputs'), outputs) : outputs;
  if (n <= 0) refuse('Split into no outputs');
  if (opset >= 18) {
    // opset 18: ceil(dim / n) per output, the last one smaller
    const chunk = Math.ceil(dim / n);
    const sizes: number[] = [];
    let left = dim;
    for (let i = 0; i < n; i++) { const s = Math.min(chunk, left); sizes.push(s); left -= s; }
    if (node.attr('num_outputs') === undefined && dim % n !== 0) refuse('Split: uneven equal split');
    return sizes;
  }
  if (dim % n !== 0) refuse('Split: uneven equal split');
  return new Array<number>(n).fill(dim / n);
}

export const SHAPE_OPS: Record<string, Evaluator> = {
  Constant: (node) => [constantTensor(node)],
  Identity: (_node, inputs) => [need(inputs, 0)],
  Shape: (node, inputs) => {
    const dims = need(inputs, 0).dims;
    const rank = dims.length;
    // opset 15 start/end: clamped like Slice's, never an error
    const clampAx = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const start = clampAx(attrInt(node.attr('start'), 0));
    const endAttr = node.attr('end');
    const end = endAttr ? clampAx(attrInt(endAttr, rank)) : rank;
    return [toTensor(int64Arr(dims.slice(start, Math.max(start, end))))];
  },
  Size: (_node, inputs) => [toTensor(int64Arr([need(inputs, 0).elementCount], []))],
  Gather: (node, inputs) => {
    const a = fromTensor(need(inputs, 0));
    const it = need(inputs, 1);
    const axis = normAxis(attrInt(node.attr('axis'), 0), a.dims.length);
    return [toTensor(gatherAxis(a, axis, intValues(it), [...it.dims]))];
  },
  GatherElements: (node, inputs) => {
    const a = fromTensor(need(inputs, 0));
    const it = need(inputs, 1);
    const rank = a.dims.length;
    if (it.dims.length !== rank) refuse('GatherElements rank mismatch');
    const axis = normAxis(attrInt(node.attr('axis'), 0), rank);
    const idx = intValues(it);
    const out = alloc(a.dt, it.dims);
    const ist = stridesOf(it.dims), ast = stridesOf(a.dims);
    const src = a.data as Store, dst = out.data as Store;
    for (let i = 0; i < idx.length; i++) {
      let off = 0;
      let rem = i;
      for (let ax = 0; ax < rank; ax++) {
        const c = Math.floor(rem / ist[ax]!);
        rem -= c * ist[ax]!;
        let k = c;
        if (ax === axis) {
          k = idx[i]! < 0 ? idx[i]! + a.dims[ax]! : idx[i]!;
          if (!(k >= 0 && k < a.dims[ax]!)) refuse('GatherElements index out of range');
        }
        off += k * ast[ax]!;
      }
      dst[i] = src[off]!;
    }
    return [toTensor(out)];
  },
  Concat: (node, inputs) => {
    const arrs = inputs.map((_, i) => fromTensor(need(inputs, i)));
    if (arrs.length === 0) refuse('Concat without inputs');
    const axis = normAxis(attrInt(node.attr('axis'), 0), arrs[0]!.dims.length);
    return [toTensor(concat(arrs, axis))];
  },
  Unsqueeze: (node, inputs, opset) => {
    const a = fromTensor(need(inputs, 0));
    const axes = axesOf(node, inputs, opset, 13);
    if (!axes) refuse('Unsqueeze without axes');
    const rank = a.dims.length + axes.length;
    const norm = axes.map((x) => normAxis(x, rank));
    if (new Set(norm).size !== norm.length) refuse('Unsqueeze: repeated axis');
    const dims: number[] = [];
    let j = 0;
    for (let i = 0; i < rank; i++) dims.push(norm.includes(i) ? 1 : a.dims[j++]!);
    return [toTensor(reshapeArr(a, dims))];
  },
  Squeeze: (node, inputs, opset) => {
    const a = fromTensor(need(inputs, 0));
    const axes = axesOf(node, inputs, opset, 13);
    const rank = a.dims.length;
    const norm = axes ? axes.map((x) => normAxis(x, rank)) : a.dims.flatMap((d, i) => (d === 1 ? [i] : []));
    for (const ax of norm) if (a.dims[ax] !== 1) refuse('Squeeze of a dim that is not 1');
    return [toTensor(reshapeArr(a, a.dims.filter((_, i) => !norm.includes(i))))];
  },
  Slice: (node, inputs, opset) => {
    const a = fromTensor(need(inputs, 0));
    if (opset < 10) {
      const starts = attrInts(node.attr('starts')), ends = attrInts(node.attr('ends'));
      if (!starts || !ends) refuse('Slice without starts/ends');
      return [toTensor(sliceArr(a, starts, ends, attrInts(node.attr('axes')), undefined))];
    }
    const starts = intValues(need(inputs, 1)), ends = intValues(need(inputs, 2));
    const axes = inputs[3] ? intValues(inputs[3]) : undefined;
    const steps = inputs[4] ? intValues(inputs[4]) : undefined;
    return [toTensor(sliceArr(a, starts, ends, axes, steps))];
  },
  Reshape: (node, inputs, opset) => {
    const a = fromTensor(need(inputs, 0));
    let shape: number[];
    if (opset < 5) {
      const s = attrInts(node.attr('shape'));
      if (!s) refuse('Reshape without shape');
      shape = s;
    } else shape = intValues(need(inputs, 1));
    const allowzero = opset >= 14 && attrInt(node.attr('allowzero'), 0) === 1;
    const dims = shape.map((d, i) => {
      if (d === 0 && !allowzero) {
        if (i >= a.dims.length) refuse('Reshape: 0 beyond the input rank');
        return a.dims[i]!;
      }
      return d;
    });
    const minus = dims.flatMap((d, i) => (d === -1 ? [i] : []));
    if (minus.length > 1 || dims.some((d) => d < -1)) refuse('Reshape: bad shape');
    if (minus.length === 1) {
      const known = count(dims.filter((d) => d !== -1));
      const total = count(a.dims);
      if (known === 0 || total % known !== 0) refuse('Reshape: cannot infer -1');
      dims[minus[0]!] = total / known;
    }
    return [toTensor(reshapeArr(a, dims))];
  },
  Flatten: (node, inputs) => {
    const a = fromTensor(need(inputs, 0));
    const rank = a.dims.length;
    let axis = attrInt(node.attr('axis'), 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank) refuse('Flatten axis out of range');
    return [toTensor(reshapeArr(a, [count(a.dims.slice(0, axis)), count(a.dims.slice(axis))]))];
  },
  Transpose: (node, inputs) => {
    const a = fromTensor(need(inputs, 0));
    const perm = attrInts(node.attr('perm')) ?? a.dims.map((_, i) => a.dims.length - 1 - i);
    return [toTensor(transpose(a, perm))];
  },
  Expand: (_node, inputs) => {
    const a = fromTensor(need(inputs, 0));
    const shape = intValues(need(inputs, 1));
    const dims = broadcastShapes([a.dims, shape]);
    const out = alloc(a.dt, dims);
    const idx = broadcastIndex(a.dims, dims);
    const src = a.data as Store, dst = out.data as Store;
    for (let i = 0; i < dst.length; i++) dst[i] = src[idx[i]!]!;
    return [toTensor(out)];
  },
  Tile: (_node, inputs) => [toTensor(tile(fromTensor(need(inputs, 0)), intValues(need(inputs, 1))))],
  Range: (_node, inputs) => {
    const ts = [need(inputs, 0), need(inputs, 1), need(inputs, 2)];
    const dt = ts[0]!.dataType;
    if (ts.some((t) => t.dataType !== dt || t.elementCount !== 1)) refuse('Range: inputs must be scalars of one type');
    const k = kindOf(dt);
    if (k === 'bigint') {
      const [s, l, d] = ts.map((t) => (t.toTypedArray() as BigInt64Array)[0]!) as [bigint, bigint, bigint];
      if (d === 0n) refuse('Range: delta 0');
      // n = max(ceil((limit - start) / delta), 0), exactly
      const num = l - s;
      let n = num / d;
      if (n * d !== num && (num > 0n) === (d > 0n)) n += 1n;
      if (n < 0n) n = 0n;
      if (n > 1_000_000n) refuse('Range too long');
      const out = alloc(dt, [Number(n)]);
      const od = out.data as BigInt64Array;
      for (let i = 0; i < od.length; i++) od[i] = s + BigInt(i) * d;
      return [toTensor(out)];
    }
    if (k !== 'float' && k !== 'int') refuse('Range dtype');
    const [s, l, d] = ts.map(scalarNumber) as [number, number, number];
    if (d === 0) refuse('Range: delta 0');
    const n = Math.max(Math.ceil((l - s) / d), 0);
    if (!Number.isFinite(n)) refuse('Range too long');
    checkSize([n]);
    const out = alloc(dt, [n]);
    const od = out.data as Store;
    // the reference accumulates start + i*delta in the output type (float32 for float inputs)
    if (dt === DataType.FLOAT) { let v = Math.fround(s); for (let i = 0; i < n; i++) { od[i] = v; v = Math.fround(v + d); } }
    else for (let i = 0; i < n; i++) od[i] = s + i * d;
    return [toTensor(out)];
  },
  ConstantOfShape: (node, inputs) => {
    const shape = intValues(need(inputs, 0));
    const v = node.attr('value');
    const value = v && v.type === 'tensor' ? v.value : Tensor.float32([0], [1]);
    if (value.elementCount !== 1) refuse('ConstantOfShape value is not one element');
    if (kindOf(value.dataType) === undefined) refuse('ConstantOfShape dtype');
    const out = alloc(value.dataType, shape);
    const x = value.toTypedArray()[0]!;
    (out.data as { fill(v: number | bigint): unknown }).fill(x);
    return [toTensor(out)];
  },
  Split: (node, inputs, opset) => {
    const a = fromTensor(need(inputs, 0));
    const axis = normAxis(attrInt(node.attr('axis'), 0), a.dims.length);
    const sizes = splitSizes(node, inputs, opset, a.dims[axis]!);
    if (sizes.length !== node.outputs.length) refuse('Split: sizes do not match outputs');
    const outs: Tensor[] = [];
    let start = 0;
    for (const size of sizes) {
      const starts = a.dims.map(() => 0), steps = a.dims.map(() => 1), lens = [...a.dims];
      starts[axis] = start;
      lens[axis] = size;
      outs.push(toTensor(strided(a, starts, steps, lens)));
      start += size;
    }
    return outs;
  },
  Trilu: (node, inputs) => {
    const a = fromTensor(need(inputs, 0));
    const rank = a.dims.length;
    if (rank < 2) refuse('Trilu rank < 2');
    const k = inputs[1] ? intValues(inputs[1])[0]! : 0;
    const upper = attrInt(node.attr('upper'), 1) === 1;
    const rows = a.dims[rank - 2]!, cols = a.dims[rank - 1]!;
    const out = alloc(a.dt, a.dims);
    const src = a.data as Store, dst = out.data as Store;
    const zero = a.dt === DataType.INT64 || a.dt === DataType.UINT64 ? 0n : 0;
    for (let i = 0; i < dst.length; i++) {
      const c = i % cols, r = Math.floor(i / cols) % rows;
      const keep = upper ? c - r >= k : c - r <= k;
      dst[i] = keep ? src[i]! : zero;
    }
    return [toTensor(out)];
  },
  NonZero: (_node, inputs) => {
    const a = fromTensor(need(inputs, 0));
    const k = kindOf(a.dt);
    if (k === 'half') refuse('NonZero on 16-bit floats');
    const src = a.data as Store;
    const hits: number[] = [];
    for (let i = 0; i < src.length; i++) { const v = src[i]!; if (v !== 0 && v !== 0n) hits.push(i); }
    const rank = a.dims.length;
    const st = stridesOf(a.dims);
    const out = alloc(DataType.INT64, [rank, hits.length]);
    const od = out.data as BigInt64Array;
    hits.forEach((flat, j) => {
      let rem = flat;
      for (let ax = 0; ax < rank; ax++) { const c = Math.floor(rem / st[ax]!); rem -= c * st[ax]!; od[ax * hits.length + j] = BigInt(c); }
    });
    return [toTensor(out)];
  },
  OneHot: (node, inputs) => {
    const it = need(inputs, 0);
    const ik = kindOf(it.dataType);
    if (ik !== 'float' && ik !== 'int' && ik !== 'bigint') refuse('OneHot indices dtype');
    const depth = Math.trunc(scalarNumber(need(inputs, 1)));
    const values = fromTensor(need(inputs, 2));
    if (values.data.length !== 2) refuse('OneHot values must have two elements');
    if (depth <= 0) refuse('OneHot depth');
    const idx = Array.from(it.toTypedArray() as ArrayLike<number | bigint>, (v) => Math.trunc(Number(v)));
    const rank = it.dims.length + 1;
    const axis = normAxis(attrInt(node.attr('axis'), -1), rank);
    const dims = [...it.dims.slice(0, axis), depth, ...it.dims.slice(axis)];
    const out = alloc(values.dt, dims);
    const vd = values.data as Store, od = out.data as Store;
    const off = vd[0]!, on = vd[1]!;
    const outer = count(it.dims.slice(0, axis)), inner = count(it.dims.slice(axis));
    for (let o = 0; o < outer; o++) {
      for (let d = 0; d < depth; d++) {
        for (let i = 0; i < inner; i++) {
          let x = idx[o * inner + i]!;
          if (x < 0) x += depth;
          od[(o * depth + d) * inner + i] = x === d ? on : off;
        }
      }
    }
    return [toTensor(out)];
  },
};

