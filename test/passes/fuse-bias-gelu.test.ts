import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseBiasGelu } from '../../passes/fuse/fuse-bias-gelu.js';
import { fuseGelu } from '../../passes/fuse/fuse-gelu.js';
import { fuseGeluContrib } from '../../passes/fuse/fuse-gelu-contrib.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { readModel } from '../../src/node/files.js';
import { checkPass, ops } from './harness.js';
import { explanations, fixtures, gelu, hasFixture, lmFeeds, rand, type GeluSpec } from './gelu-util.js';

/** y_i = GELU(Add(x, b_i)) for each form, the bias first or second. */
function biasGelus(opset: number, forms: GeluSpec['form'][]) {
  const t = rand(5);
  const b = new ModelBuilder({ opset, ...(opset >= 20 ? { irVersion: 9 } : {}) });
  const x = b.input('x', 'float32', ['batch', 'seq', 16]);
  let i = 0;
  for (const form of forms) {
    for (const flip of [false, true]) {
      const bias = b.constant(t([16]), `bias${i}`);
      const s = b.node('Add', flip ? [bias, x] : [x, bias]);
      b.output(gelu(b, s, { form, tail: flip ? 'x*half*e' : 'x*e*half', flip }), `y${i++}`);
    }
  }
  return { model: b.build(), feeds: { x: rand(6)([2, 3, 16], -3, 3) } };
}

describe('fuse-bias-gelu', () => {
  for (const opset of [14, 20]) {
    test(`opset ${opset}, after fuse-gelu-contrib: Add + Gelu -> BiasGelu, Add + FastGelu -> FastGelu(x, bias)`, async () => {
      const { model, feeds } = biasGelus(opset, ['erf-div', 'erf-mul', 'tanh-pow']);
      const { after, report } = await checkPass(model, [fuseGeluContrib, fuseBiasGelu], { feeds, atol: 1e-4 });
      expect(report.passes.find((p) => p.name === 'fuse-bias-gelu')!.changes).toBe(6);
      expect(ops(after)).toEqual({ BiasGelu: 4, FastGelu: 2 });
      for (const n of after.graph.nodes) {
        expect(n.domain).toBe('com.microsoft');
        expect(n.inputs.length).toBe(2);
        expect(n.inputs[1]!.initializer?.dims).toEqual([16]);
      }
    });
  }

  test('opset 20, after fuse-gelu: standard Gelu -> BiasGelu, Gelu(approximate=tanh) -> FastGelu(x, bias)', async () => {
    const { model, feeds } = biasGelus(20, ['erf-div', 'tanh-cube']);
    const { after } = await checkPass(model, [fuseGelu, fuseBiasGelu], { feeds, atol: 1e-4 });
    expect(ops(after)).toEqual({ BiasGelu: 2, FastGelu: 2 });
  });

  test('does not fire: 2-D bias, non-constant bias, bias length not the last dim, Add output used twice; explains each', async () => {
    const t = rand(8);
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', ['batch', 16]);
    const g = (s: ReturnType<typeof b.node>, name: string) => b.output(gelu(b, s, { form: 'erf-div', tail: 'x*e*half', flip: false }), name);
    g(b.node('Add', [x, b.constant(t([1, 16]), 'bias2d')]), 'y2d');
    const dyn = b.input('dyn', 'float32', [16]);
    g(b.node('Add', [x, dyn]), 'ydyn');
    const x1 = b.input('x1', 'float32', ['batch', 1]);
    g(b.node('Add', [x1, b.constant(t([16]), 'bias16')]), 'ylen');
    const s = b.node('Add', [x, b.constant(t([16]), 'bias_shared')]);
    g(s, 'yshared');
    b.output(b.node('Relu', [s]), 'relu');
    const model = b.build();
    const feeds = { x: rand(1)([2, 16], -3, 3), dyn: rand(2)([16]), x1: rand(3)([2, 1]) };
    const { after, report } = await checkPass(model, [fuseGeluContrib, fuseBiasGelu], { feeds, atol: 1e-4 });
    expect(report.passes.find((p) => p.name === 'fuse-bias-gelu')!.changes).toBe(0);
    expect(ops(after).Gelu).toBe(4);
    const msgs = await explanations(model, [fuseGeluContrib, fuseBiasGelu]);
    const has = (re: RegExp): void => expect(msgs.some((m) => re.test(m)), `${re} in\n${msgs.join('\n')}`).toBe(true);
    has(/\(Add\): bias 'bias2d' has shape \[1, 16\], not 1-D/);
    has(/\(Add\): feeds node '.*' \(Gelu\) but neither operand is a constant bias/);
    has(/\(Add\): bias 'bias16' has length 16, and the last dim of 'x1' is 1: not a bias over the last dim/);
    has(/\(Add\): its output has 2 uses; it can only be fused into node '.*' \(Gelu\) when the Gelu is its one use/);
  });

  const expected: Record<string, Record<string, number>> = {
    'gpt2-tiny-op14': { FastGelu: 2 },
    'gpt2-tiny-op17': { FastGelu: 2 },
    'bert-tiny-op17': { BiasGelu: 2 },
    'bert-tiny-op14': { BiasGelu: 2 },
    'prenorm-tiny-op17': { BiasGelu: 2 },
  };
  for (const [name, want] of Object.entries(expected)) {
    test.skipIf(!hasFixture(name))(`${name}: fuse-gelu-contrib then fuse-bias-gelu -> ${JSON.stringify(want)}`, async () => {
      const model = readModel(path.join(fixtures, name, 'model.onnx')).model;
      const { after } = await checkPass(model, [fuseGeluContrib, fuseBiasGelu], { feeds: lmFeeds(model), atol: 1e-4 });
      const h = ops(after);
      for (const [op, n] of Object.entries(want)) expect(h[op]).toBe(n);
      expect(h.Gelu ?? 0).toBe(0);
    });
  }
});
