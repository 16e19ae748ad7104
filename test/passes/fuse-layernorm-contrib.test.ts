import { describe, expect, test } from 'vitest';
import { fuseLayernormContrib } from '../../passes/fuse/fuse-layernorm-contrib.js';
import type { Value } from '../../src/ir/graph.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { checkPass, ops } from './harness.js';
import { decomposedNorm } from './norm-models.js';
import { fixture, transformerFeeds } from './transformer-feeds.js';

function explained() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

describe('fuse-layernorm-contrib', () => {
  test('decomposed LayerNorm at opset 14 -> ONNX-domain LayerNormalization (ONNX Runtime contrib kernel)', async () => {
    const { after, changes } = await checkPass(decomposedNorm({ opset: 14 }), fuseLayernormContrib, { inputDims: { batch: 2, seq: 3 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ LayerNormalization: 1, Relu: 1 });
    const ln = after.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
    expect(ln.domain).toBe('');
    // no com.microsoft import needed: ORT registers this kernel in the ONNX domain for opsets 1-16
    expect(after.opsetImports.map((o) => o.domain ?? '')).toEqual(['']);
  });

  test.each([
    ['Div(x, std)', { normalize: 'div' as const }],
    ['Mul(Reciprocal(std), x), Mul(x, x)', { normalize: 'reciprocal' as const, square: 'mul' as const }],
    ['Mul(x, Div(1, std)) (rsqrt), opset 18', { normalize: 'div1' as const, opset: 18 }],
  ])('RMSNorm %s -> SimplifiedLayerNormalization', async (_name, o) => {
    const { after, changes } = await checkPass(decomposedNorm({ opset: 14, rms: true, ...o }), fuseLayernormContrib, { inputDims: { batch: 2, seq: 3 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ SimplifiedLayerNormalization: 1, Relu: 1 });
    const n = after.graph.nodes.find((x) => x.opType === 'SimplifiedLayerNormalization')!;
    expect(n.domain).toBe('');
    expect(n.inputs.map((v) => v?.name)).toEqual(['x', 'gamma']);
  });

  test('two LayerNorms of one input sharing their centering (parallel residual after CSE) -> two LayerNormalization, nothing left', async () => {
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', ['batch', 'seq', 8]);
    const f = (v: number[], name: string) => b.constant(Tensor.float32(v, v.length === 1 ? [] : [v.length]), name);
    const d = b.node('Sub', [x, b.node('ReduceMean', [x], { axes: [-1], keepdims: 1 })]);
    const ln = (k: number): Value => {
      const std = b.node('Sqrt', [b.node('Add', [b.node('ReduceMean', [b.node('Pow', [d, f([2], `two${k}`)])], { axes: [-1], keepdims: 1 }), f([1e-5], `eps${k}`)])]);
      const g = f(Array.from({ length: 8 }, (_, i) => 1 + 0.1 * (i - k)), `gamma${k}`), be = f(Array.from({ length: 8 }, (_, i) => 0.05 * (i + k)), `beta${k}`);
      return b.node('Add', [b.node('Mul', [b.node('Div', [d, std]), g]), be]);
    };
    b.output(ln(0), 'y0');
    b.output(ln(1), 'y1');
    const { after, changes } = await checkPass(b.build(), fuseLayernormContrib, { inputDims: { batch: 2, seq: 3 } });
    expect(changes).toBeGreaterThan(0);
    expect(ops(after)).toEqual({ LayerNormalization: 2 });
  });

  test('LayerNorm without gamma/beta at opset 13: a gamma of ones', async () => {
    const { after } = await checkPass(decomposedNorm({ opset: 13, gamma: false, beta: false }), fuseLayernormContrib, { inputDims: { batch: 2, seq: 3 } });
    expect(ops(after)).toEqual({ LayerNormalization: 1, Relu: 1 });
  });

  test('explains: exponent 3 is not a variance, reduce over all axes', async () => {
    const model = decomposedNorm({ opset: 14 });
    const pow = model.graph.nodes.find((n) => n.opType === 'Pow')!;
    model.graph.setInput(pow, 1, model.graph.addInitializer('three', Tensor.float32([3], [])));
    const e = explained();
    const r = await checkPass(model, fuseLayernormContrib, { inputDims: { batch: 2, seq: 3 }, onExplain: e.onExplain } as never);
    expect(r.changes).toBe(0);
    expect(e.messages).toEqual(["LayerNorm of 'x' at node 'ln/Div' (Div): node 'ln/Pow' (Pow): exponent is 3, not 2"]);

    const m2 = decomposedNorm({ opset: 14 });
    for (const n of m2.graph.nodes) if (n.opType === 'ReduceMean') n.attributes.delete('axes');
    const e2 = explained();
    const r2 = await checkPass(m2, fuseLayernormContrib, { inputDims: { batch: 2, seq: 3 }, onExplain: e2.onExplain } as never);
    expect(r2.changes).toBe(0);
    expect(e2.messages).toEqual(["LayerNorm of 'x' at node 'ln/Div' (Div): node 'ln/ReduceMean' (ReduceMean): reduces over axes (all), not the last axis only"]);
  });

  test.each(['gpt2-tiny-op14', 'bert-tiny-op14'])('%s: 5 LayerNorms (2 per layer + final/embedding), no pieces left', async (name) => {
    const model = fixture(name);
    const before = ops(model);
    const { after, changes } = await checkPass(model, fuseLayernormContrib, { feeds: transformerFeeds(model), atol: 1e-4 });
    expect(changes).toBe(5);
    const h = ops(after);
    expect(h.LayerNormalization).toBe(5);
    expect(h.ReduceMean).toBeUndefined();
    expect(h.Sqrt).toBeUndefined();
    expect(h.Pow ?? 0).toBe((before.Pow ?? 0) - 5); // GPT-2's tanh GELU keeps its Pow(x, 3)
    expect(h.Sub ?? 0).toBe((before.Sub ?? 0) - 5);
  });

  test.each(['gpt2-tiny-op17', 'bert-tiny-op17'])('%s: LayerNormalization already there, nothing to do', async (name) => {
    const model = fixture(name);
    const { changes } = await checkPass(model, fuseLayernormContrib, { feeds: transformerFeeds(model) });
    expect(changes).toBe(0);
  });

  test('prenorm-tiny-op17: the final RMSNorm -> SimplifiedLayerNormalization, no pieces left', async () => {
    const model = fixture('prenorm-tiny-op17');
    const { after, changes } = await checkPass(model, fuseLayernormContrib, { feeds: transformerFeeds(model), atol: 1e-4 });
    expect(changes).toBe(1);
    const h = ops(after);
    expect(h.SimplifiedLayerNormalization).toBe(1);
    expect(h.LayerNormalization).toBe(4);
    expect(h.ReduceMean).toBeUndefined();
    expect(h.Sqrt).toBeUndefined();
    expect(h.Pow).toBeUndefined();
    const n = after.graph.nodes.find((x) => x.opType === 'SimplifiedLayerNormalization')!;
    expect(n.name).toBe('/norm/SimplifiedLayerNormalization');
    expect(n.attr('epsilon')?.value).toBeCloseTo(1e-6, 12);
  });
});
