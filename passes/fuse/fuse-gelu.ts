/**
 * fuse-gelu
 *
 * Before (erf form, as PyTorch and TensorFlow export nn.GELU()):
 *          e = Add(Erf(Div(x, 1.4142...)), 1)          (or Erf(Mul(x, 0.7071...)); Add in either order)
 *          y = Mul(Mul(x, e), 0.5) | Mul(Mul(x, 0.5), e) | Mul(x, Mul(e, 0.5)) | Div(Mul(x, e), 2)
 *              (every Mul in either operand order)
 * Before (tanh form, GPT-2's gelu_new, nn.GELU(approximate='tanh')):
 *          c = Pow(x, 3) | Mul(Mul(x, x), x)
 *          u = Mul(Add(x, Mul(c, 0.044715)), 0.79788...)  | Add(Mul(x, 0.79788...), Mul(c, 0.035677...))
 *          e = Add(Tanh(u), 1);  y = the same products of x, e and 0.5 as above
 * After:   y = Gelu(x)                        (erf form)
 *          y = Gelu(x, approximate='tanh')    (tanh form)
 * Conditions:
 *   - the model's default-domain opset is >= 20 (Gelu is new in opset 20; fuse-gelu-contrib emits
 *     com.microsoft Gelu / FastGelu for older models);
 *   - every value between x and y has exactly one use and is not a graph output (x may have any);
 *   - the constants are scalars (one element, float32 or float64) within 1e-3 (relative) of
 *     0.5, 1, 2, sqrt(2), 1/sqrt(2), 0.044715, sqrt(2/pi), 0.044715 * sqrt(2/pi), and 3 for the Pow;
 *   - x is float32, float64, float16 or bfloat16 (Gelu's types).
 * Formula:  Gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
 *           Gelu(x, 'tanh') = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
 *
 * The matcher (matchGelu) is shared with fuse-gelu-contrib. It starts at the Erf or Tanh, the op
 * that makes a GELU recognizable, and walks to the final product, so that --explain can say which
 * step of a GELU-like subgraph did not fit.
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';
import { elemTypeOf, FLOAT32_64, scalarOf } from '../lib/query.js';

export type GeluMatch = {
  /** the GELU's input */
  x: Value;
  /** the last node of the subgraph: its output is the GELU's output */
  root: Node;
  approximate: 'none' | 'tanh';
};

const SQRT2 = Math.SQRT2;
const SQRT_2_PI = Math.sqrt(2 / Math.PI);
const CUBIC = 0.044715;

/** A scalar constant (one element, float32 or float64), or undefined. */
export const scalarConstant = (v: Value | undefined): number | undefined => scalarOf(v, GELU_CONSTANT_TYPES);

/** a float16 model's GELU constants are float16 (0.5, 1, 0.7978... rounded to float16: within the matcher's 1e-3) */
const GELU_CONSTANT_TYPES: readonly number[] = [...FLOAT32_64, DataType.FLOAT16, DataType.BFLOAT16];

function near(value: number | undefined, want: number): boolean {
  return value !== undefined && Math.abs(value - want) <= 1e-3 * Math.abs(want);
}

/** The one node using `v`, when v has exactly one use and is not a graph output. */
function soleUser(v: Value): Node | undefined {
  return v.uses.length === 1 && !v.isReturned ? v.uses[0]!.node : undefined;
}

/** v's producer, when it is `opType` (default domain), has two inputs and v has one use. */
function binary(v: Value | undefined, opType: string): Node | undefined {
  const n = v?.producer;
  if (!v || !n || n.opType !== opType || n.domain !== '' || n.inputs.length !== 2) return undefined;
  if (!n.inputs[0] || !n.inputs[1]) return undefined;
  return soleUser(v) ? n : undefined;
}

/** The input of a two-input node other than `v` (v itself when both are v). */
function other(n: Node, v: Value): Value | undefined {
  return n.inputs[0] === v ? n.inputs[1] : n.inputs[1] === v ? n.inputs[0] : undefined;
}

/** [input, scalar] of a commutative binary node with one scalar-constant input. */
function splitScalar(n: Node): [Value, number] | undefined {
  const a = scalarConstant(n.inputs[1]);
  if (a !== undefined) return [n.inputs[0]!, a];
  const b = scalarConstant(n.inputs[0]);
  if (b !== undefined) return [n.inputs[1]!, b];
  return undefined;
}

/** "has 2 uses", "has 1 use and is a graph output" */
function usesText(v: Value): string {
  const n = v.uses.length;
  return `has ${n} use${n === 1 ? '' : 's'}${v.isReturned ? ' and is a graph output' : ''}`;
}

const fmt = (n: number): string => String(Math.round(n * 1e6) / 1e6);

/** x when `v` is x^3 computed as Pow(x, 3), Mul(Mul(x, x), x) or Mul(x, Mul(x, x)). */
function cubeOf(v: Value): Value | undefined {
  const pow = binary(v, 'Pow');
  if (pow) {
    return scalarOf(pow.inputs[1]) === 3 ? pow.inputs[0] : undefined;
  }
  const m = binary(v, 'Mul');
  if (!m) return undefined;
  for (const [sq, x] of [[m.inputs[0]!, m.inputs[1]!], [m.inputs[1]!, m.inputs[0]!]] as const) {
    const inner = binary(sq, 'Mul');
    if (inner && inner.inputs[0] === x && inner.inputs[1] === x) return x;
  }
  return undefined;
}

/** x when `v` is Mul(x^3, k) (either order) with k near `k`. */
function scaledCube(v: Value | undefined, k: number): Value | undefined {
  const m = binary(v, 'Mul');
  const s = m && splitScalar(m);
  if (!s || !near(s[1], k)) return undefined;
  return cubeOf(s[0]);
}

/** x when `u` is sqrt(2/pi) * (x + 0.044715 x^3), in one of the two exported arrangements. */
function tanhArgument(u: Value): Value | undefined {
  const m = binary(u, 'Mul');
  const ms = m && splitScalar(m);
  if (ms && near(ms[1], SQRT_2_PI)) {
    const add = binary(ms[0], 'Add');
    if (!add) return undefined;
    for (const [a, b] of [[add.inputs[0]!, add.inputs[1]!], [add.inputs[1]!, add.inputs[0]!]] as const) {
      if (scaledCube(b, CUBIC) === a) return a;
    }
    return undefined;
  }
  const add = binary(u, 'Add');
  if (!add) return undefined;
  for (const [a, b] of [[add.inputs[0]!, add.inputs[1]!], [add.inputs[1]!, add.inputs[0]!]] as const) {
    const lin = binary(a, 'Mul');
    const ls = lin && splitScalar(lin);
    if (ls && near(ls[1], SQRT_2_PI) && scaledCube(b, CUBIC * SQRT_2_PI) === ls[0]) return ls[0];
  }
  return undefined;
}

/**
 * From h = Erf(..) or Tanh(..) of x: match 0.5 * x * (1 + h) and return its last node, or explain
 * what does not fit and return undefined.
 */
function matchTail(h: Node, x: Value, ctx: PassContext): Node | undefined {
  const hv = h.outputs[0]!;
  const add = soleUser(hv);
  if (!add) {
    ctx.explain(`${h}: its output ${usesText(hv)}, a GELU needs one (the Add of 1)`);
    return undefined;
  }
  const one = add.opType === 'Add' && add.domain === '' && add.inputs.length === 2 ? scalarConstant(other(add, hv)) : undefined;
  if (!near(one, 1)) {
    ctx.explain(`${add}: after ${h} a GELU adds the constant 1, this is ${add.opType}${one !== undefined ? ` with ${fmt(one)}` : ' of a non-constant'}`);
    return undefined;
  }
  const e = add.outputs[0]!;
  const m1 = soleUser(e);
  if (!m1 || m1.opType !== 'Mul' || m1.domain !== '' || m1.inputs.length !== 2) {
    ctx.explain(`${add}: 1 + ${h.opType}(..) must have one use, a Mul (it ${usesText(e)}${m1 ? `, ${m1}` : ''})`);
    return undefined;
  }
  const f = other(m1, e)!;
  // (a) 0.5 * x computed first: Mul(Mul(x, 0.5), e)
  const half = binary(f, 'Mul');
  const hs = half && splitScalar(half);
  if (hs && hs[0] === x) {
    if (near(hs[1], 0.5)) return m1;
    ctx.explain(`${half}: multiplies x by ${fmt(hs[1])}, a GELU by 0.5`);
    return undefined;
  }
  const m1out = m1.outputs[0]!;
  const m2 = soleUser(m1out);
  const constF = scalarConstant(f);
  if (f !== x && constF === undefined) {
    ctx.explain(`${m1}: multiplies 1 + ${h.opType}(..) by '${f.name}', which is neither the ${h.opType}'s x ('${x.name}'), 0.5, nor x * 0.5 (with one use)`);
    return undefined;
  }
  if (!m2) {
    ctx.explain(`${m1}: its output ${usesText(m1out)}, a GELU needs one`);
    return undefined;
  }
  if (constF !== undefined) {
    // (b) 0.5 * (1 + h) first, then times x
    if (!near(constF, 0.5)) {
      ctx.explain(`${m1}: multiplies 1 + ${h.opType}(..) by ${fmt(constF)}, a GELU by 0.5`);
      return undefined;
    }
    if (m2.opType === 'Mul' && m2.domain === '' && m2.inputs.length === 2 && other(m2, m1out) === x) return m2;
    ctx.explain(`${m2}: 0.5 * (1 + ${h.opType}(..)) must be multiplied by x ('${x.name}')`);
    return undefined;
  }
  // (c) x * (1 + h) first, then times 0.5 (or / 2)
  if (m2.domain === '' && m2.inputs.length === 2) {
    if (m2.opType === 'Mul') {
      const c = scalarConstant(other(m2, m1out));
      if (near(c, 0.5)) return m2;
      if (c !== undefined) {
        ctx.explain(`${m2}: multiplies x * (1 + ${h.opType}(..)) by ${fmt(c)}, a GELU by 0.5`);
        return undefined;
      }
    } else if (m2.opType === 'Div' && m2.inputs[0] === m1out) {
      const c = scalarConstant(m2.inputs[1]);
      if (near(c, 2)) return m2;
      if (c !== undefined) {
        ctx.explain(`${m2}: divides x * (1 + ${h.opType}(..)) by ${fmt(c)}, a GELU by 2`);
        return undefined;
      }
    }
  }
  ctx.explain(`${m2}: x * (1 + ${h.opType}(..)) must be multiplied by 0.5 (or divided by 2)`);
  return undefined;
}

/**
 * The GELU whose Erf or Tanh is `anchor`, or undefined (with the reason explained when the anchor's
 * neighbourhood looks like a GELU but a condition fails).
 */
export function matchGelu(anchor: Node, ctx: PassContext): GeluMatch | undefined {
  if (anchor.domain !== '' || !anchor.inputs[0]) return undefined;
  const t = anchor.inputs[0];
  let x: Value | undefined;
  let approximate: GeluMatch['approximate'];
  if (anchor.opType === 'Erf') {
    approximate = 'none';
    const div = binary(t, 'Div');
    const mul = binary(t, 'Mul');
    if (div) {
      const c = scalarConstant(div.inputs[1]);
      if (near(c, SQRT2)) x = div.inputs[0];
      else if (c !== undefined) ctx.explain(`${div}: divides by ${fmt(c)} before ${anchor}, a GELU by sqrt(2)`);
    } else if (mul) {
      const s = splitScalar(mul);
      if (s && near(s[1], 1 / SQRT2)) x = s[0];
      else if (s) ctx.explain(`${mul}: multiplies by ${fmt(s[1])} before ${anchor}, a GELU by 1/sqrt(2)`);
    }
    if (!x) {
      if (!div && !mul) ctx.explain(`${anchor}: its input '${t.name}' is not x / sqrt(2) (a Div or Mul with one use)`);
      return undefined;
    }
  } else if (anchor.opType === 'Tanh') {
    approximate = 'tanh';
    x = tanhArgument(t);
    if (!x) {
      // a Tanh is far more common than an Erf outside GELUs: only explain when its input is a product or sum
      if (t.producer && ['Mul', 'Add'].includes(t.producer.opType)) {
        ctx.explain(`${anchor}: its input '${t.name}' is not sqrt(2/pi) * (x + 0.044715 * x^3) (with one use of every intermediate value)`);
      }
      return undefined;
    }
  } else {
    return undefined;
  }
  const root = matchTail(anchor, x, ctx);
  return root ? { x, root, approximate } : undefined;
}

const GELU_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

const rule: Rule<GeluMatch> = {
  name: 'gelu',
  ops: ['Erf', 'Tanh'],
  match: (node, ctx) => {
    const m = matchGelu(node, ctx);
    if (!m) return null;
    if (ctx.opset() < 20) {
      ctx.explain(`${m.root}: a GELU (${m.approximate === 'none' ? 'erf' : 'tanh'} form) of '${m.x.name}', but the model's opset is ${ctx.opset()}: Gelu needs opset 20 (fuse-gelu-contrib emits com.microsoft ops)`);
      return null;
    }
    const et = elemTypeOf(ctx.shapesOrExplain(), m.x);
    if (et === undefined || !GELU_TYPES.has(et)) {
      ctx.explain(`${m.root}: a GELU of '${m.x.name}' whose element type is ${et ?? 'unknown'}, not one Gelu takes`);
      return null;
    }
    return m;
  },
  rewrite: ({ x, root, approximate }, patch) => {
    const y = patch.add('Gelu', [x], approximate === 'tanh' ? { approximate: 'tanh' } : {}, { name: root.name ? `${root.name}_gelu` : 'Gelu' });
    patch.replace(root.outputs[0]!, y);
  },
};

export const fuseGelu = rulePass({
  name: 'fuse-gelu',
  description: 'fuse the erf and tanh forms of GELU into the standard Gelu op (opset 20)',
  level: 1,
  rules: [rule as Rule],
});
