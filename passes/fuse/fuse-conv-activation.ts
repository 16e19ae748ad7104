/**
 * fuse-conv-activation
 *
 * Before:  y = Conv(x, W, B);  z = Act(y)
 *          y = Conv(x, W, B);  s = Add(y, Z) (or Add(Z, y));  z = Act(s)
 *          Act: Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid
 * After:   z = com.microsoft.FusedConv(x, W, B)     {Conv's attributes, activation, activation_params}
 *          z = com.microsoft.FusedConv(x, W, B, Z)  (the sum input: Act(Conv(x) + B + Z))
 * Conditions:
 *   - y (and s) have one use and are not graph outputs;
 *   - x is float32 (ONNX Runtime's CPU FusedConv kernel is float32 only);
 *   - Clip: its bounds are constant (scalar inputs at opset >= 11, attributes before; a missing
 *     bound is -/+FLT_MAX); LeakyRelu and HardSigmoid: their alpha/beta attributes (defaults
 *     0.01 and 0.2/0.5) become activation_params;
 *   - the sum form: the target's FusedConv kernel reads a fourth input (else ctx.patch refuses the
 *     node: capabilities.maxInputs; the WebGPU EP's does not add Z, measured), and Z has exactly
 *     the Conv output's shape (inferred, dims compared symbolically)
 *     and element type; ONNX Runtime's kernel adds Z without broadcasting (it copies Z into the
 *     output buffer and accumulates the convolution onto it).
 * Formula:  FusedConv(x, W, B, Z) = Act(Conv(x, W, B) + Z)
 */
import { attrFloat, attr, type Attribute } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { rulePass, type PassContext, type Rule } from '../../src/pass/pass.js';
import { FLOAT32_64, scalarOf, tensorTypeOf } from '../lib/query.js';

const MS = 'com.microsoft';

/** "has 2 uses", "has 1 use and is a graph output" */
function usesText(v: Value): string {
  const n = v.uses.length;
  return `has ${n} use${n === 1 ? '' : 's'}${v.isReturned ? ' and is a graph output' : ''}`;
}
const FLT_MAX = 3.4028234663852886e38;

type Caps = { conv: Node; act: Node; z?: Value; activation: string; params: number[] };

/** A one-element float constant's value; `fallback` when the input is missing; undefined when not constant. */
function bound(v: Value | undefined, fallback: number): number | undefined {
  return v ? scalarOf(v, FLOAT32_64) : fallback;
}

/** activation_params of `act`, or a reason why it cannot be fused. */
function activationParams(act: Node, ctx: PassContext): number[] | string {
  switch (act.opType) {
    case 'Relu': case 'Sigmoid': case 'Tanh': return [];
    case 'LeakyRelu': return [attrFloat(act.attr('alpha'), 0.01)!];
    case 'HardSigmoid': return [attrFloat(act.attr('alpha'), 0.2)!, attrFloat(act.attr('beta'), 0.5)!];
    case 'Clip': {
      if (ctx.opset() < 11) return [attrFloat(act.attr('min'), -FLT_MAX)!, attrFloat(act.attr('max'), FLT_MAX)!];
      const lo = bound(act.inputs[1], -FLT_MAX), hi = bound(act.inputs[2], FLT_MAX);
      if (lo === undefined || hi === undefined) {
        const which = lo === undefined ? act.inputs[1]! : act.inputs[2]!;
        return `its ${lo === undefined ? 'min' : 'max'} '${which.name}' is not a constant scalar`;
      }
      return [lo, hi];
    }
  }
  return 'not an activation FusedConv has';
}

function singleUse(v: Value): boolean {
  return v.uses.length === 1 && !v.isReturned;
}

const rule: Rule<Caps> = {
  name: 'conv-activation',
  ops: ['Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Clip', 'HardSigmoid'],
  match: (act, ctx) => {
    const s = act.inputs[0];
    const p = s?.producer;
    if (!s || !p || p.domain !== '') return null;
    let conv: Node | undefined;
    let z: Value | undefined;
    const isConv = (v: Value | undefined): v is Value => v?.producer?.opType === 'Conv' && v.producer.domain === '' && v.producerSlot === 0;
    if (p.opType === 'Conv') {
      conv = p;
    } else if (p.opType === 'Add' && p.inputs.length === 2) {
      const [a, b] = p.inputs;
      // prefer the Conv whose output has one use (the other operand becomes Z)
      const cands = [[a, b], [b, a]].filter(([c]) => isConv(c)) as [Value, Value | undefined][];
      if (!cands.length) return null;
      const pick = cands.find(([c]) => singleUse(c)) ?? cands[0]!;
      conv = pick[0].producer!;
      z = pick[1];
      if (!z) return null;
      if (!singleUse(s)) {
        ctx.explain(`${p}: the sum of ${conv} and '${z.name}' ${usesText(s)}; it can only be fused into ${act} when that is its one use`);
        return null;
      }
    } else {
      return null;
    }
    const y = conv.outputs[0]!;
    if (!singleUse(y)) {
      ctx.explain(`${conv}: its output ${usesText(y)}; it can only be fused into ${z ? p : act} when that is its one use`);
      return null;
    }
    if (conv.inputs.length > 3 || [...conv.attributes.values()].some((a) => a.refAttrName !== undefined)) return null;
    const xt = tensorTypeOf(ctx.shapesOrExplain(), conv.inputs[0]);
    if (xt?.elemType !== DataType.FLOAT) {
      ctx.explain(`${conv}: input element type is not float32 (ONNX Runtime's FusedConv takes float32), not fused with ${act}`);
      return null;
    }
    if (z) {
      const info = ctx.shapesOrExplain();
      const yt = tensorTypeOf(info, y), zt = tensorTypeOf(info, z);
      const same = yt?.shape && zt?.shape && zt.elemType === yt.elemType && yt.shape.length === zt.shape.length && yt.shape.every((d, i) => d.equals(zt.shape![i]!));
      if (!same) {
        const show = (t: typeof yt): string => (t?.shape ? `[${t.shape.map(String).join(', ')}]` : 'unknown');
        ctx.explain(`${p}: '${z.name}' has shape ${show(zt)} and ${conv} output ${show(yt)}: FusedConv's sum input must have exactly the Conv output's shape`);
        return null;
      }
    }
    const params = activationParams(act, ctx);
    if (typeof params === 'string') {
      ctx.explain(`${act}: after ${conv}, but ${params}`);
      return null;
    }
    return { conv, act, activation: act.opType, params, ...(z ? { z } : {}) };
  },
  rewrite: ({ conv, act, z, activation, params }, patch, ctx) => {
    ctx.requireOpset(MS, 1);
    const attrs: Attribute[] = [...conv.attributes.values()].filter((a) => a.name !== 'activation' && a.name !== 'activation_params');
    attrs.push(attr.string('activation', activation));
    if (params.length) attrs.push(attr.floats('activation_params', params));
    const inputs: (Value | undefined)[] = [conv.inputs[0], conv.inputs[1], conv.inputs[2]];
    if (z) inputs[3] = z;
    while (inputs.length && inputs[inputs.length - 1] === undefined) inputs.pop();
    const out = patch.add('FusedConv', inputs, attrs, { domain: MS, name: conv.name || 'FusedConv' });
    patch.replace(act.outputs[0]!, out);
  },
};

export const fuseConvActivation = rulePass({
  name: 'fuse-conv-activation',
  description: 'fuse Conv (+ Add of a residual) + Relu/LeakyRelu/Sigmoid/Tanh/Clip/HardSigmoid into com.microsoft FusedConv',
  level: 2,
  rules: [rule as Rule],
});
