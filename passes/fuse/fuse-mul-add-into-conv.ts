/**
 * fuse-mul-add-into-conv
 *
 * Before:  y = Conv(x, W, b); z = Mul(y, c)      (or Mul(c, y))
 *          y = Conv(x, W, b); z = Add(y, d)      (or Add(d, y))
 *          y = Conv(x, W, b); z = Sub(y, d)
 * After:   z = Conv(x, W * c, b * c)
 *          z = Conv(x, W, b + d)                 (b absent: b = d)
 *          z = Conv(x, W, b - d)
 * Conditions:
 *   - y has one use and is not a graph output;
 *   - W (and b) and c/d are float32 constants;
 *   - c/d are per output channel: a scalar or a shape that, right-aligned with the Conv output
 *     [N, M, spatial...], is 1 on every axis except possibly M on the channel axis, and has no
 *     more dims than the output ([M,1,1], [1,M,1,1], [1], []): broadcasting leaves the Conv
 *     output shape unchanged. A [M,H,W] or [M] constant is not per-channel: no fold.
 * Formula:  W'[m, ...] = W[m, ...] * c[m];  b'[m] = b[m] * c[m];  b'[m] = b[m] +/- d[m]
 * New weights are new initializers; the old ones stay while something else uses them.
 */
import type { Attribute } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { rulePass, type Rule } from '../../src/pass/pass.js';
import { alt, constant, constantValue, op, opt, v, type OpPattern, type ValuePattern } from '../../src/pass/pattern.js';

type Caps = { x: Value; w: Value; b?: Value; conv: Node; k: Value; node: Node };

const convP = (): OpPattern => op('Conv', v('x'), constant('w'), opt(constant('b'))).as('conv').oneUse();

const mulP = alt(
  op('Mul', convP(), constant('k')).as('node'),
  op('Mul', constant('k'), convP()).as('node'),
);
const addP = alt(
  op('Add', convP(), constant('k')).as('node'),
  op('Add', constant('k'), convP()).as('node'),
);
const subP = op('Sub', convP(), constant('k')).as('node');

function floats(val: Value | undefined): Float32Array | undefined {
  const t = constantValue(val);
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  return t.toTypedArray() as Float32Array;
}

/**
 * The constant as one value per output channel (length `channels`), or undefined when it is not
 * per-channel for a Conv output of rank `rank`.
 */
function perChannel(k: Value, channels: number, rank: number): Float32Array | undefined {
  const t = constantValue(k)!;
  const vals = floats(k);
  if (!vals) return undefined;
  const dims = t.dims;
  if (dims.length > rank) return undefined;
  const off = rank - dims.length;
  for (let i = 0; i < dims.length; i++) {
    const axis = off + i;
    const d = dims[i]!;
    if (d === 1) continue;
    if (axis === 1 && d === channels) continue;
    return undefined;
  }
  if (vals.length === 1) return new Float32Array(channels).fill(vals[0]!);
  return vals;
}

function attrsOf(conv: Node): Attribute[] {
  return [...conv.attributes.values()];
}

function makeRule(name: string, opType: 'Mul' | 'Add' | 'Sub', pattern: ValuePattern): Rule<Caps & { k2: Float32Array }> {
  return {
    name,
    ops: [opType],
    match: (node) => {
      // match through the node's own output so alternatives (commuted operands) are tried
      const out = node.outputs[0];
      if (!out) return null;
      const caps: Record<string, unknown> = {};
      if (!pattern.matchValue(out, caps) || caps.node !== node) return null;
      const c = caps as Caps;
      const wt = constantValue(c.w)!;
      if (wt.dataType !== DataType.FLOAT || wt.dims.length < 3) return null;
      if (c.b && !floats(c.b)) return null;
      const k2 = perChannel(c.k, wt.dims[0]!, wt.dims.length);
      return k2 ? { ...c, k2 } : null;
    },
    rewrite: (c, patch) => {
      const wt = constantValue(c.w)!;
      const channels = wt.dims[0]!;
      const b = c.b ? floats(c.b)! : new Float32Array(channels);
      let w: Value = c.w;
      const b2 = new Float32Array(channels);
      if (opType === 'Mul') {
        const wv = wt.toTypedArray() as Float32Array;
        const per = wv.length / channels;
        const w2 = new Float32Array(wv.length);
        for (let i = 0; i < wv.length; i++) w2[i] = wv[i]! * c.k2[Math.floor(i / per)]!;
        w = patch.constant(Tensor.float32(w2, wt.dims), `${c.w.name}_scaled`);
        for (let m = 0; m < channels; m++) b2[m] = b[m]! * c.k2[m]!;
      } else {
        const sign = opType === 'Add' ? 1 : -1;
        for (let m = 0; m < channels; m++) b2[m] = b[m]! + sign * c.k2[m]!;
      }
      const bias = c.b || opType !== 'Mul'
        ? patch.constant(Tensor.float32(b2, [channels]), `${c.b?.name ?? `${c.conv.name || 'Conv'}_bias`}_fused`)
        : undefined;
      const y = patch.add('Conv', bias ? [c.x, w, bias] : [c.x, w], attrsOf(c.conv), { name: c.conv.name || 'Conv' });
      patch.replace(c.node.outputs[0]!, y);
    },
  };
}

export const fuseMulAddIntoConv = rulePass({
  name: 'fuse-mul-add-into-conv',
  description: 'fold a per-channel constant Mul into the Conv weight and bias, and a per-channel constant Add/Sub into the Conv bias',
  level: 1,
  rules: [makeRule('mul', 'Mul', mulP), makeRule('add', 'Add', addP), makeRule('sub', 'Sub', subP)] as Rule[],
});
