/**
 * Gelu-family contrib ops in standard ONNX (their definitions in ONNX Runtime's ContribOperators.md):
 *
 *   com.microsoft::Gelu(x)          = 0.5 x (1 + Erf(x / sqrt 2))
 *   ai.onnx::Gelu(x) before opset 20 (ORT's own) : the same, or with approximate="tanh" FastGelu's form
 *   com.microsoft::BiasGelu(a, b)   = Gelu(a + b)
 *   com.microsoft::FastGelu(x, [b]) = 0.5 u (1 + Tanh(sqrt(2/pi) (u + 0.044715 u^3))),  u = x + b
 *   com.microsoft::QuickGelu(x)     = x Sigmoid(alpha x),  alpha = 1.702 by default
 *
 * Constants are written in x's element type (float16 models stay float16).
 */
import { attrFloat, attrString } from '../../../src/ir/attribute.js';
import type { Value } from '../../../src/ir/graph.js';
import type { Emitter } from '../emit.js';
import { elemTypeOf } from '../query.js';
import type { Lowering } from './lowering.js';

const MS = 'com.microsoft';

function erfGelu(e: Emitter, x: Value, elem: number): Value {
  const erf = e.op('Erf', [e.mul(x, e.scalarLike(Math.SQRT1_2, elem))]);
  return e.mul(e.mul(x, e.scalarLike(0.5, elem)), e.add(erf, e.scalarLike(1, elem)));
}

function tanhGelu(e: Emitter, x: Value, elem: number): Value {
  const cube = e.mul(e.mul(x, x), x);
  const inner = e.mul(e.add(x, e.mul(cube, e.scalarLike(0.044715, elem))), e.scalarLike(Math.sqrt(2 / Math.PI), elem));
  return e.mul(e.mul(x, e.scalarLike(0.5, elem)), e.add(e.op('Tanh', [inner]), e.scalarLike(1, elem)));
}

const UNKNOWN = 'element type of the input unknown';

export const ACTIVATION_LOWERINGS: Lowering[] = [
  {
    domain: MS, op: 'Gelu',
    lower(node, e, ctx) {
      const elem = elemTypeOf(ctx.shapesOrExplain(), node.inputs[0]);
      return elem === undefined ? UNKNOWN : [erfGelu(e, node.inputs[0]!, elem)];
    },
  },
  {
    domain: '', op: 'Gelu',
    lower(node, e, ctx) {
      const elem = elemTypeOf(ctx.shapesOrExplain(), node.inputs[0]);
      if (elem === undefined) return UNKNOWN;
      const tanh = attrString(node.attr('approximate'), 'none') === 'tanh';
      return [tanh ? tanhGelu(e, node.inputs[0]!, elem) : erfGelu(e, node.inputs[0]!, elem)];
    },
  },
  {
    domain: MS, op: 'BiasGelu',
    lower(node, e, ctx) {
      const elem = elemTypeOf(ctx.shapesOrExplain(), node.inputs[0]);
      return elem === undefined ? UNKNOWN : [erfGelu(e, e.add(node.inputs[0]!, node.inputs[1]!), elem)];
    },
  },
  {
    domain: MS, op: 'FastGelu',
    lower(node, e, ctx) {
      const [x, bias] = node.inputs;
      const elem = elemTypeOf(ctx.shapesOrExplain(), x);
      return elem === undefined ? UNKNOWN : [tanhGelu(e, bias ? e.add(x!, bias) : x!, elem)];
    },
  },
  {
    domain: MS, op: 'QuickGelu',
    lower(node, e, ctx) {
      const x = node.inputs[0]!;
      const elem = elemTypeOf(ctx.shapesOrExplain(), x);
      if (elem === undefined) return UNKNOWN;
      const alpha = attrFloat(node.attr('alpha'), 1.702)!;
      return [e.mul(x, e.op('Sigmoid', [e.mul(x, e.scalarLike(alpha, elem))]))];
    },
  },
];
