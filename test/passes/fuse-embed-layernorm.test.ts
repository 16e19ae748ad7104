import { describe, expect, test } from 'vitest';
import { fuseEmbedLayernorm } from '../../passes/fuse/fuse-embed-layernorm.js';
import { fuseLayernormContrib } from '../../passes/fuse/fuse-layernorm-contrib.js';
import { fuseSkipLayernorm } from '../../passes/fuse/fuse-skip-layernorm.js';
import { DataType } from '../../src/ir/dtype.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { checkPass, ops } from './harness.js';
import { rand } from './norm-models.js';
import { fixture, transformerFeeds } from './transformer-feeds.js';

function explained() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

describe('fuse-embed-layernorm', () => {
  test.each([
    ['bert-tiny-op17', []],
    ['bert-tiny-op14', [fuseLayernormContrib]],
  ] as const)('%s: word + token type + position (Slice of the position_ids buffer) -> EmbedLayerNormalization', async (name, pre) => {
    const model = fixture(name);
    const { after, report } = await checkPass(model, [...pre, fuseEmbedLayernorm], { feeds: transformerFeeds(model), atol: 1e-4 });
    expect(report.passes.at(-1)!.changes).toBe(1);
    const h = ops(after);
    expect(h.EmbedLayerNormalization).toBe(1);
    expect(h.LayerNormalization).toBe(4);
    const e = after.graph.nodes.find((n) => n.opType === 'EmbedLayerNormalization')!;
    expect(e.domain).toBe('com.microsoft');
    expect(e.inputs.map((v) => v?.name)).toEqual(['input_ids_int32_out', 'token_type_ids_int32_out', 'embeddings.word_embeddings.weight',
      'embeddings.position_embeddings.weight', 'embeddings.token_type_embeddings.weight', 'embeddings.LayerNorm.weight', 'embeddings.LayerNorm.bias']);
    expect(e.inputs.slice(0, 2).map((v) => v!.producer!.opType)).toEqual(['Cast', 'Cast']);
    expect(e.outputs.length).toBe(2); // output, mask_index (required by the kernel)
    // the three embedding Gathers are gone (the ones left read shapes), as is the position Slice
    const gathers = after.graph.nodes.filter((n) => n.opType === 'Gather');
    expect(gathers.every((g) => !g.inputs[0]!.name.includes('embeddings'))).toBe(true);
    expect(h.Slice ?? 0).toBe(0);
  });

  test.each(['gpt2-tiny-op17', 'prenorm-tiny-op17'])('%s: word + position (Range) -> EmbedLayerNormalization with embedding_sum feeding the residual stream', async (name) => {
    const model = fixture(name);
    const { after, changes } = await checkPass(model, fuseEmbedLayernorm, { feeds: transformerFeeds(model), atol: 1e-4 });
    expect(changes).toBe(1);
    const e = after.graph.nodes.find((n) => n.opType === 'EmbedLayerNormalization')!;
    expect(e.inputs[1]).toBeUndefined(); // no segment
    expect(e.outputs.length).toBe(3);
    expect(e.outputs[2]!.uses.length).toBeGreaterThan(0);
    expect(ops(after).Range).toBeUndefined();
  });

  test('BERT pipeline: contrib LN, embed LN, skip LN -> 1 EmbedLayerNormalization + 4 SkipLayerNormalization', async () => {
    const model = fixture('bert-tiny-op14');
    const { after } = await checkPass(model, [fuseLayernormContrib, fuseEmbedLayernorm, fuseSkipLayernorm], { feeds: transformerFeeds(model), atol: 1e-4 });
    const h = ops(after);
    expect([h.EmbedLayerNormalization, h.SkipLayerNormalization, h.LayerNormalization, h.ReduceMean]).toEqual([1, 4, undefined, undefined]);
  });

  test('explains: position ids that are a graph input are not provably 0..S-1', async () => {
    const t = rand(3);
    const b = new ModelBuilder({ opset: 17 });
    const ids = b.input('ids', 'int64', ['batch', 'seq']);
    const pos = b.input('pos', 'int64', [1, 'seq']);
    const w = b.node('Gather', [b.constant(t([16, 8]), 'wte'), ids]);
    const p = b.node('Gather', [b.constant(t([16, 8]), 'wpe'), pos]);
    const s = b.node('Add', [w, p], {}, { name: 'emb_add' });
    b.output(b.node('LayerNormalization', [s, b.constant(t([8]), 'g'), b.constant(t([8]), 'b')], {}, { name: 'ln' }), 'y');
    const e = explained();
    const feeds = { ids: Tensor.int64([1, 2, 3, 4, 5, 6], [2, 3]), pos: Tensor.int64([2, 0, 1], [1, 3]) };
    const { changes } = await checkPass(b.build(), fuseEmbedLayernorm, { feeds, onExplain: e.onExplain } as never);
    expect(changes).toBe(0);
    expect(e.messages).toEqual(["embedding sum 'emb_add_out' feeding node 'ln' (LayerNormalization): position ids not provably 0..S-1: node 'Gather_1' (Gather): 'pos' is not computed by Range or Slice"]);
  });

  test('int32 ids need no Cast; a beta of zeros is made when the LayerNormalization has none', async () => {
    const t = rand(4);
    const b = new ModelBuilder({ opset: 17 });
    const ids = b.input('ids', 'int32', ['batch', 'seq']);
    const w = b.node('Gather', [b.constant(t([16, 8]), 'wte'), ids]);
    const range = b.node('Range', [b.constant(Tensor.int64([0], []), 'zero'), b.node('Gather', [b.node('Shape', [ids]), b.constant(Tensor.int64([1], []), 'one_i')]), b.constant(Tensor.int64([1], []), 'step')]);
    const p = b.node('Gather', [b.constant(t([16, 8]), 'wpe'), b.node('Unsqueeze', [range, b.constant(Tensor.int64([0]), 'ax0')])]);
    b.output(b.node('LayerNormalization', [b.node('Add', [p, w]), b.constant(t([8]), 'g')], {}, { name: 'ln' }), 'y');
    const feeds = { ids: Tensor.int32([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]) };
    const { after } = await checkPass(b.build(), fuseEmbedLayernorm, { feeds });
    expect(ops(after)).toEqual({ EmbedLayerNormalization: 1 });
    const e = after.graph.nodes[0]!;
    expect(e.inputs[0]!.name).toBe('ids');
    expect(e.inputs[6]!.initializer!.dataType).toBe(DataType.FLOAT);
  });
});
