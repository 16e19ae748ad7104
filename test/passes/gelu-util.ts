/**
 * Shared by the GELU fusion tests (fuse-gelu, fuse-gelu-contrib, fuse-bias-gelu): graphs spelling
 * GELU out the way exporters do, explanation capture, and feeds for the transformer fixtures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { PassManager } from '../../src/pass/manager.js';
import type { Pass } from '../../src/pass/pass.js';

export const fixtures = path.resolve(__dirname, '../../fixtures/models');
export const hasFixture = (name: string): boolean => fs.existsSync(path.join(fixtures, name, 'model.onnx'));

export function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

/** The messages `pass` explains on a copy of `model`. */
export async function explanations(model: Model, pass: Pass | Pass[]): Promise<string[]> {
  const msgs: string[] = [];
  await new PassManager(Array.isArray(pass) ? pass : [pass], { onExplain: (_p, m) => msgs.push(m) }).run(cloneModel(model));
  return msgs;
}

/** A scalar float32 constant. */
export function scalar(b: ModelBuilder, value: number, name = 'c'): Value {
  return b.constant(Tensor.float32([value], []), name);
}

/** a op b, or b op a when `flip`. */
function bin(b: ModelBuilder, op: string, x: Value, y: Value, flip: boolean): Value {
  return b.node(op, flip ? [y, x] : [x, y]);
}

export type Tail = 'x*e*half' | 'x*half*e' | 'x*(e*half)' | 'x*e/2';
export const TAILS: Tail[] = ['x*e*half', 'x*half*e', 'x*(e*half)', 'x*e/2'];

export interface GeluSpec {
  form: 'erf-div' | 'erf-mul' | 'tanh-pow' | 'tanh-cube' | 'tanh-expanded';
  tail: Tail;
  /** operand order of every commutative op */
  flip: boolean;
  /** constant override: the 0.5 */
  half?: number;
  /** constant override: sqrt(2) (erf-div), 1/sqrt(2) (erf-mul), 0.044715 (tanh) */
  inner?: number;
}

/** GELU(x) spelled out as `spec` says; returns its output. */
export function gelu(b: ModelBuilder, x: Value, spec: GeluSpec): Value {
  const f = spec.flip;
  const half = spec.half ?? 0.5;
  let h: Value;
  if (spec.form === 'erf-div') {
    h = b.node('Erf', [b.node('Div', [x, scalar(b, spec.inner ?? 1.4142135381698608, 'sqrt2')])]);
  } else if (spec.form === 'erf-mul') {
    h = b.node('Erf', [bin(b, 'Mul', x, scalar(b, spec.inner ?? 0.7071067690849304, 'rsqrt2'), f)]);
  } else {
    const a = spec.inner ?? 0.044715;
    const k = Math.sqrt(2 / Math.PI);
    const cube = spec.form === 'tanh-pow'
      ? b.node('Pow', [x, scalar(b, 3, 'three')])
      : bin(b, 'Mul', bin(b, 'Mul', x, x, false), x, f);
    let u: Value;
    if (spec.form === 'tanh-expanded') {
      u = bin(b, 'Add', bin(b, 'Mul', x, scalar(b, k, 'k'), f), bin(b, 'Mul', cube, scalar(b, a * k, 'ak'), f), f);
    } else {
      u = bin(b, 'Mul', bin(b, 'Add', x, bin(b, 'Mul', cube, scalar(b, a, 'a'), f), f), scalar(b, k, 'k'), f);
    }
    h = b.node('Tanh', [u]);
  }
  const e = bin(b, 'Add', h, scalar(b, 1, 'one'), f);
  switch (spec.tail) {
    case 'x*e*half': return bin(b, 'Mul', bin(b, 'Mul', x, e, f), scalar(b, half, 'half'), f);
    case 'x*half*e': return bin(b, 'Mul', bin(b, 'Mul', x, scalar(b, half, 'half'), f), e, f);
    case 'x*(e*half)': return bin(b, 'Mul', x, bin(b, 'Mul', e, scalar(b, half, 'half'), f), f);
    case 'x*e/2': return b.node('Div', [bin(b, 'Mul', x, e, f), scalar(b, 1 / half, 'two')]);
  }
}

/** Every GELU variant of `forms`, each tail, both operand orders: one model, one output each. */
export function allVariants(opset: number, forms: GeluSpec['form'][]): { model: Model; count: number; feeds: Record<string, Tensor> } {
  const b = new ModelBuilder({ opset, ...(opset >= 20 ? { irVersion: 9 } : {}) });
  const x = b.input('x', 'float32', ['batch', 16]);
  let count = 0;
  for (const form of forms) {
    for (const tail of TAILS) {
      for (const flip of [false, true]) b.output(gelu(b, x, { form, tail, flip }), `y${count++}`);
    }
  }
  return { model: b.build(), count, feeds: { x: rand(7)([3, 16], -4, 4) } };
}

/** Token-id feeds for the transformer fixtures: batch 2, a sequence length other than the exported one. */
export function lmFeeds(model: Model, batch = 2, seq = 9): Record<string, Tensor> {
  const r = seededRandom(11);
  const feeds: Record<string, Tensor> = {};
  for (const input of model.graph.inputs) {
    if (input.initializer) continue;
    const n = batch * seq;
    let values: number[];
    if (input.name === 'attention_mask') values = Array.from({ length: n }, (_, i) => (i >= n - 2 ? 0 : 1)); // last row padded
    else if (input.name === 'token_type_ids') values = Array.from({ length: n }, (_, i) => (i % seq >= seq / 2 ? 1 : 0));
    else values = Array.from({ length: n }, () => Math.floor(r() * 64));
    feeds[input.name] = Tensor.int64(values, [batch, seq]);
  }
  return feeds;
}
