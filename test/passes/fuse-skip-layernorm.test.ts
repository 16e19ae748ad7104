import { describe, expect, test } from 'vitest';
import { fuseEmbedLayernorm } from '../../passes/fuse/fuse-embed-layernorm.js';
import { fuseLayernormContrib } from '../../passes/fuse/fuse-layernorm-contrib.js';
import { fuseSkipLayernorm } from '../../passes/fuse/fuse-skip-layernorm.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/model.js';
import { checkPass, ops } from './harness.js';
import { rand } from './norm-models.js';
import { fixture, transformerFeeds } from './transformer-feeds.js';

function explained() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

/** y = LN(a + (p + bias)) and, when `residual`, z = Relu(a + (p + bias)) */
function addLn(o: { residual?: boolean; bShape?: (string | number)[]; simplified?: boolean; bias?: boolean } = {}): Model {
  const t = rand(9);
  const b = new ModelBuilder({ opset: 17 });
  const a = b.input('a', 'float32', ['batch', 'seq', 8]);
  const p = b.input('p', 'float32', o.bShape ?? ['batch', 'seq', 8]);
  const rhs = o.bias === false ? p : b.node('Add', [b.constant(t([8]), 'bias'), p], {}, { name: 'bias_add' });
  const s = b.node('Add', [a, rhs], {}, { name: 'residual' });
  const y = o.simplified
    ? b.node('SimplifiedLayerNormalization', [s, b.constant(t([8], 0.5, 1.5), 'gamma')], { axis: -1, epsilon: 1e-6 }, { name: 'LayerNormalization' })
    : b.node('LayerNormalization', [s, b.constant(t([8], 0.5, 1.5), 'gamma'), b.constant(t([8]), 'beta')], { axis: -1, epsilon: 1e-5 }, { name: 'ln/LayerNormalization' });
  b.output(y, 'y');
  if (o.residual) b.output(b.node('Relu', [s]), 'z');
  return b.build();
}

const dims = { inputDims: { batch: 2, seq: 3 } };

describe('fuse-skip-layernorm', () => {
  test('Add(a, Add(bias, p)) -> LayerNormalization: SkipLayerNormalization with the bias, one output', async () => {
    const { after, changes } = await checkPass(addLn(), fuseSkipLayernorm, dims);
    expect(changes).toBe(1);
    expect(ops(after)).toEqual({ SkipLayerNormalization: 1 });
    const n = after.graph.nodes[0]!;
    expect(n.domain).toBe('com.microsoft');
    expect(n.name).toBe('ln/SkipLayerNormalization');
    expect(n.inputs.map((v) => v?.name)).toEqual(['a', 'p', 'gamma', 'beta', 'bias']);
    expect(n.outputs.length).toBe(1);
    expect(after.opsetImports.some((o) => o.domain === 'com.microsoft')).toBe(true);
  });

  test('the sum has another user: output 3 (input_skip_bias_sum) replaces it', async () => {
    const { after } = await checkPass(addLn({ residual: true }), fuseSkipLayernorm, dims);
    expect(ops(after)).toEqual({ SkipLayerNormalization: 1, Relu: 1 });
    const n = after.graph.nodes.find((x) => x.opType === 'SkipLayerNormalization')!;
    expect(n.outputs.length).toBe(4);
    expect(after.graph.nodes.find((x) => x.opType === 'Relu')!.inputs[0]).toBe(n.outputs[3]);
  });

  test('skip of shape [1, S, H] (ORT broadcasts it); SimplifiedLayerNormalization -> SkipSimplifiedLayerNormalization', async () => {
    const { after } = await checkPass(addLn({ bShape: [1, 'seq', 8], bias: false }), fuseSkipLayernorm, dims);
    expect(ops(after)).toEqual({ SkipLayerNormalization: 1 });
    expect(after.graph.nodes[0]!.inputs.slice(0, 2).map((v) => v?.name)).toEqual(['a', 'p']);
    const { after: a2 } = await checkPass(addLn({ simplified: true, residual: true }), fuseSkipLayernorm, dims);
    expect(ops(a2)).toEqual({ SkipSimplifiedLayerNormalization: 1, Relu: 1 });
    expect(a2.graph.nodes.find((x) => x.opType === 'SkipSimplifiedLayerNormalization')!.inputs.map((v) => v?.name)).toEqual(['a', 'p', 'gamma', 'bias']);
  });

  test('explains: operand shapes that ORT cannot take, a 2-D input', async () => {
    const e = explained();
    const r = await checkPass(addLn({ bShape: ['seq', 8], bias: false }), fuseSkipLayernorm, { ...dims, onExplain: e.onExplain } as never);
    expect(r.changes).toBe(0);
    expect(e.messages).toEqual(["node 'residual' (Add) feeding node 'ln/LayerNormalization' (LayerNormalization): Add operands have shapes [batch,seq,8] and [seq,8]: need [B,S,H] and [B,S,H] or [1,S,H]"]);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['n', 8]);
    const s = b.node('Add', [x, b.node('Neg', [x])], {}, { name: 'residual' });
    b.output(b.node('LayerNormalization', [s, b.constant(rand(1)([8]), 'g')], {}, { name: 'ln' }), 'y');
    const e2 = explained();
    await checkPass(b.build(), fuseSkipLayernorm, { inputDims: { n: 3 }, onExplain: e2.onExplain } as never);
    expect(e2.messages).toEqual(["node 'residual' (Add) feeding node 'ln' (LayerNormalization): 'residual_out' has shape [n,8], not 3-D [batch, seq, hidden]"]);
  });

  // counts: 2 layers x 2 norms + the norm after the embeddings (GPT-2: ln_1 of layer 0 over
  // wte + wpe; BERT: the embedding LayerNorm) or the final one (GPT-2's ln_f, prenorm's RMSNorm)
  // (BERT's word + token-type sum stays an Add: it is the SkipLayerNormalization's input, the position
  // embedding its skip; fuse-embed-layernorm, run first, takes that one instead)
  test.each([
    ['gpt2-tiny-op14', 5, 0, 0],
    ['gpt2-tiny-op17', 5, 0, 0],
    ['bert-tiny-op14', 5, 0, 1],
    ['bert-tiny-op17', 5, 0, 1],
    ['prenorm-tiny-op17', 4, 1, 0],
  ] as const)('%s after fuse-layernorm-contrib: %i SkipLayerNormalization, %i SkipSimplifiedLayerNormalization', async (name, skip, skipSimplified, addsLeft) => {
    const model = fixture(name);
    const { after } = await checkPass(model, [fuseLayernormContrib, fuseSkipLayernorm], { feeds: transformerFeeds(model), atol: 1e-4 });
    const h = ops(after);
    expect(h.SkipLayerNormalization).toBe(skip);
    expect(h.SkipSimplifiedLayerNormalization ?? 0).toBe(skipSimplified);
    expect(h.LayerNormalization).toBeUndefined();
    expect(h.SimplifiedLayerNormalization).toBeUndefined();
    // no residual Add feeds a norm any more
    const adds = after.graph.nodes.filter((n) => n.opType === 'Add');
    expect(adds.filter((a) => a.outputs[0]!.uses.some((u) => u.node.opType.includes('LayerNormalization')))).toHaveLength(addsLeft);
  });

  test('gpt2-tiny-op17: the residual stream goes through output 3; bert-tiny-op17: the biases are folded in', async () => {
    const gpt2 = fixture('gpt2-tiny-op17');
    const { after } = await checkPass(gpt2, fuseSkipLayernorm, { feeds: transformerFeeds(gpt2), atol: 1e-4 });
    const skips = after.graph.nodes.filter((n) => n.opType === 'SkipLayerNormalization');
    // every one but ln_f (whose sum feeds nothing else) hands the sum on
    expect(skips.map((n) => n.outputs.length === 4 && n.outputs[3]!.uses.length > 0)).toEqual([true, true, true, true, false]);
    const bert = fixture('bert-tiny-op17');
    const r = await checkPass(bert, [fuseEmbedLayernorm, fuseSkipLayernorm], { feeds: transformerFeeds(bert), atol: 1e-4 });
    const bs = r.after.graph.nodes.filter((n) => n.opType === 'SkipLayerNormalization');
    expect(bs).toHaveLength(4);
    expect(bs.every((n) => n.inputs[4] !== undefined && n.outputs.length === 1)).toBe(true);
  });
});
