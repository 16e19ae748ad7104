/** Building blocks shared by the shape rules. */
import { DataType } from '../../ir/dtype.js';
import type { InferContext, Rule } from '../infer.js';
import { Sym } from '../symbolic.js';
import { tensorInfo, type OutputInfo, type SymType } from '../types.js';

/** Output 0 has the type of input `i` (Relu, Identity, Softmax, ...). */
export const sameAs = (i = 0): Rule => (ctx) => [{ type: ctx.type(i) }];

/** Elementwise over broadcast inputs; the output element type is input 0's, or `elemType`. */
export const broadcastRule = (elemType?: number): Rule => (ctx) => {
  const shapes = Array.from({ length: ctx.inputCount }, (_, i) => (ctx.has(i) ? ctx.shape(i) : []));
  const t = elemType ?? firstElemType(ctx);
  if (t === undefined) return [];
  return [{ type: tensorInfo(t, ctx.broadcast(...shapes)) }];
};

export function firstElemType(ctx: InferContext): number | undefined {
  for (let i = 0; i < ctx.inputCount; i++) {
    const t = ctx.elemType(i);
    if (t !== undefined) return t;
  }
  return undefined;
}

/** A normalized axis in [0, rank); errors when out of range. */
export function normAxis(ctx: InferContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) ctx.error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

export const BOOL = DataType.BOOL;
export const INT64 = DataType.INT64;

export function constShape(dims: readonly number[]): Sym[] {
  return dims.map((d) => Sym.const(d));
}

/** An output with a type and (for small int tensors) symbolic contents. */
export function withSym(type: SymType, values: Sym[] | undefined, dims?: number[]): OutputInfo {
  if (!values) return { type };
  return { type, sym: { dims: dims ?? [values.length], values } };
}

/** Product of dims (symbolic). */
export function product(dims: Sym[]): Sym {
  return dims.reduce((a, d) => a.mul(d), Sym.ONE);
}
