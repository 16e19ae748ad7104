import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseGeluContrib } from '../../passes/fuse/fuse-gelu-contrib.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { checkPass, ops } from './harness.js';
import { allVariants, explanations, fixtures, gelu, hasFixture, lmFeeds, rand } from './gelu-util.js';

describe('fuse-gelu-contrib', () => {
  for (const opset of [14, 20]) {
    test(`opset ${opset}: every erf variant -> com.microsoft Gelu, every tanh variant -> FastGelu`, async () => {
      const erf = allVariants(opset, ['erf-div', 'erf-mul']);
      const a = await checkPass(erf.model, fuseGeluContrib, { feeds: erf.feeds, atol: 1e-4 });
      expect(a.changes).toBe(erf.count);
      expect(ops(a.after)).toEqual({ Gelu: erf.count });
      expect(a.after.graph.nodes.every((n) => n.domain === 'com.microsoft')).toBe(true);
      expect(a.after.opsetVersion('com.microsoft')).toBe(1);
      // FastGelu against the exact tanh form
      const tanh = allVariants(opset, ['tanh-pow', 'tanh-cube', 'tanh-expanded']);
      const b = await checkPass(tanh.model, fuseGeluContrib, { feeds: tanh.feeds, atol: 1e-4 });
      expect(b.changes).toBe(tanh.count);
      expect(ops(b.after)).toEqual({ FastGelu: tanh.count });
    });
  }

  test('does not fire: 0.6 instead of 0.5, float64', async () => {
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', ['batch', 16]);
    b.output(gelu(b, x, { form: 'tanh-pow', tail: 'x*half*e', flip: false, half: 0.6 }), 'y');
    const { changes } = await checkPass(b.model, fuseGeluContrib, { feeds: { x: rand(1)([2, 16], -3, 3) } });
    expect(changes).toBe(0);
    // float64 (not run: ORT has no float64 Erf either): ORT's Gelu kernel is float32 only
    const d = b.input('d', 'float64', ['batch', 16]);
    const c = (v: number, name: string) => b.constant(Tensor.fromTypedArray(DataType.DOUBLE, [], Float64Array.of(v)), name);
    const e = b.node('Add', [b.node('Erf', [b.node('Div', [d, c(Math.SQRT2, 'dsqrt2')])]), c(1, 'done')]);
    b.output(b.node('Mul', [b.node('Mul', [d, e]), c(0.5, 'dhalf')]), 'z');
    const model = b.build();
    const msgs = await explanations(model, fuseGeluContrib);
    expect(msgs).toContainEqual(expect.stringMatching(/\(Mul\): multiplies x by 0\.6, a GELU by 0\.5/));
    expect(msgs).toContainEqual(expect.stringMatching(/a GELU of 'd' whose element type is float64, which the target's Gelu kernel does not take/));
  });

  const expected: Record<string, Record<string, number>> = {
    'gpt2-tiny-op14': { FastGelu: 2 },
    'gpt2-tiny-op17': { FastGelu: 2 },
    'bert-tiny-op17': { Gelu: 2 },
    'bert-tiny-op14': { Gelu: 2 },
    'prenorm-tiny-op17': { Gelu: 2 },
  };
  for (const [name, want] of Object.entries(expected)) {
    test.skipIf(!hasFixture(name))(`${name}: ${JSON.stringify(want)}, outputs equal on batch 2, sequence 9`, async () => {
      const model = readModel(path.join(fixtures, name, 'model.onnx')).model;
      const { after, changes } = await checkPass(model, fuseGeluContrib, { feeds: lmFeeds(model), atol: 1e-4 });
      expect(changes).toBe(2);
      const h = ops(after);
      for (const [op, n] of Object.entries(want)) expect(h[op]).toBe(n);
      expect(h.Erf ?? 0).toBe(0);
      expect(h.Tanh ?? 0).toBe(name.startsWith('bert') ? 1 : 0); // BERT's pooler keeps its Tanh
    });
  }
});
