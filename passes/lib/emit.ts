/**
 * An Emitter writes standard ONNX through a Patch at the model's opset: the ops whose signature
 * changed between opsets (axes as an attribute or an input; Split's sizes) are written the way the
 * model's opset reads them, so a rewrite says what it computes once. Node names share one prefix.
 */
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Patch } from '../../src/pass/patch.js';

export class Emitter {
  private count = 0;

  /** `opset`: the model's default-domain opset; `prefix`: the node names' stem (the node rewritten). */
  constructor(readonly patch: Patch, readonly opset: number, readonly prefix: string) {}

  /** One standard op with a single output. */
  op(opType: string, inputs: (Value | undefined)[], attrs: Record<string, unknown> = {}): Value {
    return this.patch.add(opType, inputs, attrs, { name: `${this.prefix}/${opType}_${this.count++}` });
  }

  /** One standard op with `outputs` outputs. */
  opN(opType: string, inputs: (Value | undefined)[], outputs: number, attrs: Record<string, unknown> = {}): Value[] {
    return this.patch.addN(opType, inputs, attrs, { name: `${this.prefix}/${opType}_${this.count++}`, outputs });
  }

  /** A float32 constant (a scalar when `dims` is []). */
  f32(values: number[], dims: number[] = [values.length]): Value {
    return this.patch.constant(Tensor.float32(values, dims), `${this.prefix}_c`);
  }

  /** An int64 constant (a 1-D list by default). */
  i64(values: number[], dims: number[] = [values.length]): Value {
    return this.patch.constant(Tensor.int64(values, dims), `${this.prefix}_c`);
  }

  /** A constant tensor. */
  constant(t: Tensor, hint = 'c'): Value {
    return this.patch.constant(t, `${this.prefix}_${hint}`);
  }

  /** A float32 scalar of `x`'s element type: Cast when x is not float32 (elemType given). */
  scalarLike(value: number, elemType: number | undefined): Value {
    const c = this.f32([value], []);
    return elemType === undefined || elemType === 1 ? c : this.op('Cast', [c], { to: elemType });
  }

  private axesOp(opType: string, x: Value, axes: number[], inputFrom: number, attrs: Record<string, unknown> = {}): Value {
    return this.opset >= inputFrom ? this.op(opType, [x, this.i64(axes)], attrs) : this.op(opType, [x], { axes, ...attrs });
  }

  unsqueeze(x: Value, axes: number[]): Value { return this.axesOp('Unsqueeze', x, axes, 13); }
  squeeze(x: Value, axes: number[]): Value { return this.axesOp('Squeeze', x, axes, 13); }
  reduceMean(x: Value, axes: number[], keepdims = 1): Value { return this.axesOp('ReduceMean', x, axes, 18, { keepdims }); }
  reduceSum(x: Value, axes: number[], keepdims = 1): Value { return this.axesOp('ReduceSum', x, axes, 13, { keepdims }); }
  reduceMax(x: Value, axes: number[], keepdims = 1): Value { return this.axesOp('ReduceMax', x, axes, 18, { keepdims }); }

  /** Split `x` along `axis` into parts of the given sizes. */
  split(x: Value, axis: number, sizes: number[]): Value[] {
    return this.opset >= 13
      ? this.opN('Split', [x, this.i64(sizes)], sizes.length, { axis })
      : this.opN('Split', [x], sizes.length, { axis, split: sizes });
  }

  /** x[starts:ends] along `axes` (steps 1). */
  slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
    return this.op('Slice', [x, this.i64(starts), this.i64(ends), this.i64(axes)]);
  }

  reshape(x: Value, shape: number[] | Value): Value {
    return this.op('Reshape', [x, Array.isArray(shape) ? this.i64(shape) : shape]);
  }

  transpose(x: Value, perm: number[]): Value { return this.op('Transpose', [x], { perm }); }
  cast(x: Value, to: number): Value { return this.op('Cast', [x], { to }); }
  add(a: Value, b: Value): Value { return this.op('Add', [a, b]); }
  sub(a: Value, b: Value): Value { return this.op('Sub', [a, b]); }
  mul(a: Value, b: Value): Value { return this.op('Mul', [a, b]); }
  div(a: Value, b: Value): Value { return this.op('Div', [a, b]); }
  matmul(a: Value, b: Value): Value { return this.op('MatMul', [a, b]); }
}
