import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseGelu } from '../../passes/fuse/fuse-gelu.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { readModel } from '../../src/node/files.js';
import { checkPass, ops } from './harness.js';
import { allVariants, explanations, fixtures, gelu, hasFixture, lmFeeds, rand, scalar } from './gelu-util.js';

describe('fuse-gelu', () => {
  test('opset 20: every erf variant (Div by sqrt 2, Mul by 1/sqrt 2; 0.5 first, last, on (1 + erf), or / 2; both operand orders) -> Gelu', async () => {
    const { model, count, feeds } = allVariants(20, ['erf-div', 'erf-mul']);
    const { after, changes } = await checkPass(model, fuseGelu, { feeds, atol: 1e-4 });
    expect(changes).toBe(count);
    expect(ops(after)).toEqual({ Gelu: count });
    for (const n of after.graph.nodes) expect(n.attr('approximate')).toBeUndefined();
    expect(after.graph.outputs.map((v) => v.name)).toEqual(Array.from({ length: count }, (_, i) => `y${i}`));
  });

  test('opset 20: every tanh variant (Pow 3, x*x*x, expanded sqrt(2/pi) products) -> Gelu approximate=tanh', async () => {
    const { model, count, feeds } = allVariants(20, ['tanh-pow', 'tanh-cube', 'tanh-expanded']);
    const { after, changes } = await checkPass(model, fuseGelu, { feeds, atol: 1e-4 });
    expect(changes).toBe(count);
    expect(ops(after)).toEqual({ Gelu: count });
    for (const n of after.graph.nodes) expect(n.attributes.get('approximate')).toMatchObject({ type: 'string' });
  });

  test('opset 14: nothing fires, and --explain says the opset is too old', async () => {
    const { model, count, feeds } = allVariants(14, ['erf-div', 'tanh-pow']);
    const { after, changes } = await checkPass(model, fuseGelu, { feeds });
    expect(changes).toBe(0);
    expect(ops(after).Gelu).toBeUndefined();
    const msgs = await explanations(model, fuseGelu);
    expect(msgs).toHaveLength(count);
    expect(msgs[0]).toMatch(/a GELU \(erf form\) of 'x', but the model's opset is 14: Gelu needs opset 20/);
  });

  test('does not fire on near misses, and explains each', async () => {
    const b = new ModelBuilder({ opset: 20, irVersion: 9 });
    const x = b.input('x', 'float32', ['batch', 16]);
    b.output(gelu(b, x, { form: 'erf-div', tail: 'x*e*half', flip: false, half: 0.6 }), 'half06');
    b.output(gelu(b, x, { form: 'erf-div', tail: 'x*half*e', flip: true, half: 0.6 }), 'half06first');
    b.output(gelu(b, x, { form: 'erf-div', tail: 'x*(e*half)', flip: false, half: 0.6 }), 'half06e');
    b.output(gelu(b, x, { form: 'erf-div', tail: 'x*e/2', flip: false, half: 0.4 }), 'div25');
    b.output(gelu(b, x, { form: 'erf-div', tail: 'x*e*half', flip: false, inner: 1.5 }), 'div15');
    b.output(gelu(b, x, { form: 'erf-mul', tail: 'x*e*half', flip: true, inner: 0.8 }), 'mul08');
    b.output(gelu(b, x, { form: 'tanh-pow', tail: 'x*e*half', flip: false, inner: 0.05 }), 'cubic05');
    // 2 + erf instead of 1 + erf
    const e2 = b.node('Add', [b.node('Erf', [b.node('Div', [x, scalar(b, Math.SQRT2)])]), scalar(b, 2)]);
    b.output(b.node('Mul', [b.node('Mul', [x, e2]), scalar(b, 0.5)]), 'add2');
    // the erf is also a graph output: it must stay
    const erf = b.node('Erf', [b.node('Div', [x, scalar(b, Math.SQRT2)])]);
    b.output(b.node('Mul', [b.node('Mul', [x, b.node('Add', [erf, scalar(b, 1)])]), scalar(b, 0.5)]), 'shared');
    b.output(erf, 'erf_out');
    // x * (1 + erf(y / sqrt 2)) * 0.5 with y != x
    const y = b.input('y', 'float32', ['batch', 16]);
    const ey = b.node('Add', [b.node('Erf', [b.node('Div', [y, scalar(b, Math.SQRT2)])]), scalar(b, 1)]);
    b.output(b.node('Mul', [b.node('Mul', [x, ey]), scalar(b, 0.5)]), 'otherx');
    const model = b.build();
    const feeds = { x: rand(3)([2, 16], -3, 3), y: rand(4)([2, 16], -3, 3) };
    const { after, changes } = await checkPass(model, fuseGelu, { feeds });
    expect(changes).toBe(0);
    expect(ops(after).Gelu).toBeUndefined();
    const msgs = await explanations(model, fuseGelu);
    const has = (re: RegExp): void => expect(msgs.some((m) => re.test(m)), `${re} in\n${msgs.join('\n')}`).toBe(true);
    has(/\(Mul\): multiplies x \* \(1 \+ Erf\(\.\.\)\) by 0\.6, a GELU by 0\.5/);
    has(/\(Mul\): multiplies x by 0\.6, a GELU by 0\.5/);
    has(/\(Mul\): multiplies 1 \+ Erf\(\.\.\) by 0\.6, a GELU by 0\.5/);
    has(/\(Div\): divides x \* \(1 \+ Erf\(\.\.\)\) by 2\.5, a GELU by 2/);
    has(/\(Div\): divides by 1\.5 before node '.*' \(Erf\), a GELU by sqrt\(2\)/);
    has(/\(Mul\): multiplies by 0\.8 before node '.*' \(Erf\), a GELU by 1\/sqrt\(2\)/);
    has(/\(Tanh\): its input '.*' is not sqrt\(2\/pi\) \* \(x \+ 0\.044715 \* x\^3\)/);
    has(/\(Add\): after node '.*' \(Erf\) a GELU adds the constant 1, this is Add with 2/);
    has(/\(Erf\): its output has 1 use and is a graph output, a GELU needs one \(the Add of 1\)/);
    has(/\(Mul\): multiplies 1 \+ Erf\(\.\.\) by 'x', which is neither the Erf's x \('y'\), 0\.5, nor x \* 0\.5/);
  });

  test('bert-tiny-op17 moved to opset 20: 2 erf GELUs -> 2 Gelu', async () => {
    const model = readModel(path.join(fixtures, 'bert-tiny-op17/model.onnx')).model;
    model.opsetImports.find((o) => !o.domain)!.version = 20;
    model.irVersion = 9;
    const { after, changes } = await checkPass(model, fuseGelu, { feeds: lmFeeds(model), atol: 1e-4 });
    expect(changes).toBe(2);
    expect(ops(after).Gelu).toBe(2);
    expect(ops(after).Erf).toBeUndefined();
  });

  for (const name of ['bert-tiny-op17', 'gpt2-tiny-op14', 'gpt2-tiny-op17', 'bert-tiny-op14', 'prenorm-tiny-op17']) {
    test.skipIf(!hasFixture(name))(`${name}: opset < 20, nothing fires, each GELU explained`, async () => {
      const model = readModel(path.join(fixtures, name, 'model.onnx')).model;
      const { changes } = await checkPass(model, fuseGelu, { feeds: lmFeeds(model) });
      expect(changes).toBe(0);
      const msgs = await explanations(model, fuseGelu);
      expect(msgs.filter((m) => /Gelu needs opset 20/.test(m))).toHaveLength(2);
    });
  }
});
