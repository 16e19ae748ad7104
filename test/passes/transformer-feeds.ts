/**
 * Seeded inputs for the transformer fixtures (gpt2-tiny-*, bert-tiny-*, prenorm-tiny-op17): batch 2
 * and a sequence length other than the exported one (7), token ids < 64, and for BERT token types
 * 0/1 and an attention_mask whose second row is padded (zeros at the end).
 */
import { seededRandom } from '../../src/inputs.js';
import type { Model } from '../../src/ir/model.js';
import { readModel } from '../../src/node/files.js';
import { Tensor } from '../../src/ir/tensor.js';

export const VOCAB = 64;

export function fixture(name: string): Model {
  return readModel(`fixtures/models/${name}/model.onnx`).model;
}

export function transformerFeeds(model: Model, opts: { batch?: number; seq?: number; seed?: number } = {}): Record<string, Tensor> {
  const batch = opts.batch ?? 2, seq = opts.seq ?? 6;
  const r = seededRandom(opts.seed ?? 7);
  const n = batch * seq;
  const feeds: Record<string, Tensor> = {};
  for (const input of model.graph.inputs) {
    if (input.name === 'input_ids') feeds[input.name] = Tensor.int64(Array.from({ length: n }, () => 1 + Math.floor(r() * (VOCAB - 1))), [batch, seq]);
    else if (input.name === 'token_type_ids') feeds[input.name] = Tensor.int64(Array.from({ length: n }, (_, i) => (i % seq >= seq / 2 ? 1 : 0)), [batch, seq]);
    else if (input.name === 'attention_mask') feeds[input.name] = Tensor.int64(Array.from({ length: n }, (_, i) => (Math.floor(i / seq) === 1 && i % seq >= seq - 2 ? 0 : 1)), [batch, seq]);
    else throw new Error(`transformerFeeds: unexpected input '${input.name}'`);
  }
  return feeds;
}
