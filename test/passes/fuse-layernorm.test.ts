import { describe, expect, test } from 'vitest';
import { fuseLayernorm } from '../../passes/fuse/fuse-layernorm.js';
import { cloneModel } from '../../src/ir/clone.js';
import { checkPass, ops } from './harness.js';
import { decomposedNorm } from './norm-models.js';
import { fixture, transformerFeeds } from './transformer-feeds.js';

function explained() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

describe('fuse-layernorm', () => {
  test('decomposed LayerNorm at opset 17 -> LayerNormalization', async () => {
    const { after, changes } = await checkPass(decomposedNorm({ opset: 17 }), fuseLayernorm, { inputDims: { batch: 2, seq: 3 } });
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ LayerNormalization: 1, Relu: 1 });
    const ln = after.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
    expect(ln.attr('axis')?.value).toBe(-1);
    expect(ln.attr('epsilon')?.value).toBeCloseTo(1e-5, 10);
    expect(ln.inputs.map((v) => v?.name)).toEqual(['x', 'gamma', 'beta']);
  });

  test('opset 18 (axes as an input), Mul(d, d), Mul(Reciprocal(std), d), no beta', async () => {
    const { after } = await checkPass(decomposedNorm({ opset: 18, square: 'mul', normalize: 'reciprocal', beta: false }), fuseLayernorm, { inputDims: { batch: 2, seq: 3 } });
    expect(ops(after)).toEqual({ LayerNormalization: 1, Relu: 1 });
    expect(after.graph.nodes.find((n) => n.opType === 'LayerNormalization')!.inputs.length).toBe(2);
  });

  test('positive last axis, x * Div(1, std), no gamma/beta (gamma of ones made), [1, 1, H] gamma', async () => {
    const { after } = await checkPass(decomposedNorm({ axis: 2, normalize: 'div1', gamma: false, beta: false }), fuseLayernorm, { inputDims: { batch: 2, seq: 3 } });
    expect(ops(after)).toEqual({ LayerNormalization: 1, Relu: 1 });
    const { after: a2 } = await checkPass(decomposedNorm({ gamma: [1, 2, 3, 4, 5, 6, 7, 8] }), fuseLayernorm, { inputDims: { batch: 2, seq: 3 } });
    expect(ops(a2)).toEqual({ LayerNormalization: 1, Relu: 1 });
  });

  test('explains: reduce over a non-last axis, an intermediate with another use, a gamma along another axis', async () => {
    const e1 = explained();
    const r1 = await checkPass(decomposedNorm({ axis: 1 }), fuseLayernorm, { inputDims: { batch: 2, seq: 3 }, onExplain: e1.onExplain } as never);
    expect(r1.changes).toBe(0);
    expect(e1.messages).toEqual([
      "LayerNorm of 'x' at node 'ln/Div' (Div): node 'ln/ReduceMean' (ReduceMean): reduces over axis 1 of a rank-3 input, not the last axis",
    ]);
    const e2 = explained();
    const r2 = await checkPass(decomposedNorm({ leakCentered: true }), fuseLayernorm, { inputDims: { batch: 2, seq: 3 }, onExplain: e2.onExplain } as never);
    expect(r2.changes).toBe(0);
    expect(e2.messages).toEqual(["LayerNorm of 'x' at node 'ln/Div' (Div): intermediate 'ln/Sub_out' (node 'ln/Sub' (Sub)) is also used outside the pattern"]);
    // gamma [3, 1] scales along seq, not hidden: the normalization fuses, the Mul stays
    const e3 = explained();
    const r3 = await checkPass(decomposedNorm({ gamma: [1, 2, 3], gammaDims: [3, 1] }), fuseLayernorm, { inputDims: { batch: 2, seq: 3 }, onExplain: e3.onExplain } as never);
    expect(e3.messages).toEqual(["LayerNorm of 'x' at node 'ln/Div' (Div): node 'ln/Mul' (Mul) not folded in: gamma 'gamma' has shape [3,1]: it does not broadcast along the last axis only"]);
    expect(ops(r3.after)).toMatchObject({ LayerNormalization: 1, Mul: 1 });
  });

  test('gpt2-tiny-op14: opset 14 has no LayerNormalization (explained), nothing changes', async () => {
    const model = fixture('gpt2-tiny-op14');
    const e = explained();
    const { changes } = await checkPass(model, fuseLayernorm, { feeds: transformerFeeds(model), onExplain: e.onExplain } as never);
    expect(changes).toBe(0);
    expect(e.messages).toHaveLength(5);
    expect(e.messages[0]).toBe("LayerNorm of '/Add_output_0' at node '/h.0/ln_1/Div' (Div): default opset 14 < 17 has no standard LayerNormalization; fuse-layernorm-contrib (level 2) fuses it for ONNX Runtime");
  });

  test.each(['gpt2-tiny-op14', 'bert-tiny-op14'])('%s with its opset import raised to 17: every LayerNorm fused (5)', async (name) => {
    // no op of these models changed meaning between opsets 14 and 17: a real decomposed LN at opset 17
    const model = cloneModel(fixture(name));
    model.opsetImports.find((o) => !o.domain || o.domain === 'ai.onnx')!.version = 17;
    const before = ops(model);
    const { after, changes } = await checkPass(model, fuseLayernorm, { feeds: transformerFeeds(model), atol: 1e-4 });
    expect(changes).toBe(5);
    const h = ops(after);
    expect(h.LayerNormalization).toBe(5);
    expect(h.ReduceMean).toBeUndefined();
    expect(h.Sqrt).toBeUndefined();
    expect(h.Pow ?? 0).toBe((before.Pow ?? 0) - 5); // GPT-2's GELU keeps its Pow(x, 3)
  });

  test('prenorm-tiny-op17: RMSNorm is not fused at level 1 (explained); the LayerNormalizations are untouched', async () => {
    const model = fixture('prenorm-tiny-op17');
    const e = explained();
    const { changes, after } = await checkPass(model, fuseLayernorm, { feeds: transformerFeeds(model), onExplain: e.onExplain } as never);
    expect(changes).toBe(0);
    expect(ops(after).LayerNormalization).toBe(4);
    expect(e.messages).toEqual([
      "RMSNorm of '/blocks.1/Add_1_output_0' at node '/norm/Mul' (Mul): no standard ONNX op for RMSNorm before opset 23 (RMSNormalization, not emitted yet); fuse-layernorm-contrib (level 2) fuses it into SimplifiedLayerNormalization",
    ]);
  });
});
