/**
 * Issue 15, "prove it generalizes": a decoder family that the fusions were not written against.
 * fixtures/models/neox-past-tiny-op14 is GPT-NeoX / Pythia (fixtures/make_decoder_family.py): parallel
 * residual, a per-head packed query_key_value with bias, partial rotary (4 of each head's 16)
 * with cos/sin computed from position_ids in the graph, scores scaled by a Mul, transformers' 4-D
 * additive causal + padding mask, erf GELU, LayerNorm. Compiled for x86-avx2 it must fuse like gpt2
 * and llama do (one MultiHeadAttention per layer, a RotaryEmbedding per q and per k, every LayerNorm,
 * the GELUs) and give the original's outputs on every test set.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { compareTensors } from '../src/compare.js';
import { compile } from '../src/compile.js';
import { seededRandom } from '../src/inputs.js';
import { cloneModel } from '../src/ir/clone.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../src/node/testdata.js';
import { x86Avx2 } from '../targets/x86-avx2.js';
import { ops, runModel } from './passes/harness.js';

const DIR = path.resolve(import.meta.dirname, '../fixtures/models/neox-past-tiny-op14');
const LAYERS = 2, HEADS = 4, HEAD = 16, VOCAB = 256;
const TOL = { rtol: 1e-3, atol: 1e-4 };

async function compiled(dims: Record<string, number> = {}): Promise<{ original: Model; model: Model }> {
  const original = readModel(path.join(DIR, 'model.onnx')).model;
  const model = cloneModel(original);
  await compile(model, x86Avx2, { runtime: onnxruntimeNode, dims });
  return { original, model };
}

function expectFused(model: Model): void {
  const h = ops(model);
  expect(h.MultiHeadAttention).toBe(LAYERS);
  expect(h.RotaryEmbedding).toBe(2 * LAYERS);
  // two per layer (parallel residual: both read the block input) and the final one
  expect(h.LayerNormalization).toBe(2 * LAYERS + 1);
  expect(h.BiasGelu).toBe(LAYERS);
  for (const gone of ['Softmax', 'Erf', 'Neg', 'ReduceMean', 'Pow', 'Sqrt', 'GroupQueryAttention']) expect(h[gone], gone).toBeUndefined();
  const rot = model.graph.nodes.filter((n) => n.opType === 'RotaryEmbedding');
  // partial rotary: 4 of each head's 16, in the 3-D form the attention op takes
  for (const n of rot) {
    expect(n.attr('rotary_embedding_dim')?.value).toBe(4);
    expect(n.attr('num_heads')?.value).toBe(HEADS);
  }
  // the angles the graph computes are the cache, shared by q and k of every layer
  expect(new Set(rot.map((n) => n.inputs[2])).size).toBe(1);
  expect(new Set(rot.map((n) => n.inputs[1])).size).toBe(1);
  const mha = model.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention');
  for (const n of mha) {
    expect(n.attr('num_heads')?.value).toBe(HEADS);
    expect(n.attr('scale')?.value).toBeCloseTo(HEAD ** -0.5, 6);
    expect(n.attr('unidirectional')).toBeUndefined();
    expect(n.inputs[0]!.producer!.opType).toBe('RotaryEmbedding');
    expect(n.inputs[1]!.producer!.opType).toBe('RotaryEmbedding');
  }
  // the graph keeps its inputs and outputs
  expect(model.graph.outputs.map((v) => v.name)).toEqual(['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
}

async function expectSame(original: Model, model: Model, feeds: Record<string, Tensor>, what: string, stored?: Record<string, Tensor>): Promise<void> {
  const want = stored ?? await runModel(original, feeds);
  const got = await runModel(model, feeds);
  for (const [name, t] of Object.entries(want)) {
    const c = compareTensors(got[name]!, t, TOL);
    expect(c.ok, `${what} '${name}': ${c.problem}`).toBe(true);
  }
}

/** A left-padded prompt with an empty cache: the padded query rows are masked entirely. */
function paddedPrefill(): Record<string, Tensor> {
  const r = seededRandom(7);
  const B = 2, S = 6, pad = [0, 3];
  const mask = pad.flatMap((p) => Array.from({ length: S }, (_, j) => (j < p ? 0 : 1)));
  const pos = pad.flatMap((p) => Array.from({ length: S }, (_, j) => (j < p ? 1 : j - p)));
  const feeds: Record<string, Tensor> = {
    input_ids: Tensor.int64(Array.from({ length: B * S }, () => Math.floor(r() * VOCAB)), [B, S]),
    attention_mask: Tensor.int64(mask, [B, S]),
    position_ids: Tensor.int64(pos, [B, S]),
  };
  for (let l = 0; l < LAYERS; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = Tensor.float32([], [B, HEADS, 0, HEAD]);
  return feeds;
}

/** The compiled model against the original and against torch's outputs on the folder's 3 test sets, and on a left-padded prefill. */
async function expectEverySet(original: Model, model: Model, dir: string): Promise<void> {
  const sets = testDataSets(dir);
  expect(sets).toHaveLength(3);
  for (const set of sets) {
    const data = readTestDataSet(set);
    const feeds = Object.fromEntries(data.inputs.map((i) => [i.name, i.tensor]));
    await expectSame(original, model, feeds, path.basename(set));
    await expectSame(original, model, feeds, `${path.basename(set)} vs torch`, Object.fromEntries(data.outputs.map((o) => [o.name, o.tensor])));
  }
  await expectSame(original, model, paddedPrefill(), 'left-padded prefill');
}

describe('GPT-NeoX (a family the decoder fusions were not written for) compiled for x86-avx2', () => {
  test('one MultiHeadAttention per layer, a RotaryEmbedding per q and k, LayerNorms and GELUs fused; the outputs of the original and of torch on every test set', async () => {
    const { original, model } = await compiled();
    expectFused(model);
    await expectEverySet(original, model, DIR);
  });

  test('--dim batch=1: the same fusions, the batch-1 test sets as the original', async () => {
    const { original, model } = await compiled({ batch: 1 });
    expectFused(model);
    for (const set of testDataSets(DIR)) {
      const data = readTestDataSet(set);
      if (data.inputs[0]!.tensor.dims[0] !== 1) continue;
      await expectSame(original, model, Object.fromEntries(data.inputs.map((i) => [i.name, i.tensor])), path.basename(set));
    }
  });
});

// GPT-J (fixtures/make_decoder_family.py gptj): interleaved rotary (rotate_every_two) on 8 of each
// head's 16, before the head transpose, sin/cos tables gathered by position_ids; q/k/v without bias;
// one LayerNorm feeding attention and MLP; gelu_new.
const GPTJ = path.resolve(import.meta.dirname, '../fixtures/models/gptj-past-tiny-op14');

describe('GPT-J (interleaved rotary) compiled for x86-avx2', () => {
  test('one MultiHeadAttention per layer, an interleaved RotaryEmbedding per q and k; the outputs of the original and of torch on every test set', async () => {
    const original = readModel(path.join(GPTJ, 'model.onnx')).model;
    const model = cloneModel(original);
    await compile(model, x86Avx2, { runtime: onnxruntimeNode });
    const h = ops(model);
    expect(h.MultiHeadAttention).toBe(LAYERS);
    expect(h.RotaryEmbedding).toBe(2 * LAYERS);
    expect(h.LayerNormalization).toBe(LAYERS + 1);
    for (const gone of ['Softmax', 'Neg', 'Tanh', 'ReduceMean']) expect(h[gone], gone).toBeUndefined();
    for (const n of model.graph.nodes.filter((x) => x.opType === 'RotaryEmbedding')) {
      expect(n.attr('interleaved')?.value).toBe(1);
      expect(n.attr('rotary_embedding_dim')?.value).toBe(8);
      expect(n.attr('num_heads')?.value).toBe(HEADS);
    }
    for (const n of model.graph.nodes.filter((x) => x.opType === 'MultiHeadAttention')) {
      expect(n.attr('scale')?.value).toBeCloseTo(HEAD ** -0.5, 6);
      expect(n.inputs[0]!.producer!.opType).toBe('RotaryEmbedding');
      expect(n.inputs[1]!.producer!.opType).toBe('RotaryEmbedding');
    }
    await expectEverySet(original, model, GPTJ);
  });
});
