import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseGqa } from '../../passes/fuse/fuse-gqa.js';
import { fuseRotary } from '../../passes/fuse/fuse-rotary.js';
import { decoderSignature, greedyGenerate, syntheticPrompt } from '../../src/bench/generation.js';
import { compareTensors } from '../../src/compare.js';
import { compile } from '../../src/compile.js';
import { seededRandom } from '../../src/inputs.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { serializeModel } from '../../src/io.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { PassManager } from '../../src/pass/manager.js';
import { portable } from '../../targets/portable.js';
import { checkPass, ops, runModel } from './harness.js';

// The Llama decoders with a KV cache: the fixture (2 layers, 4 heads / 2 kv heads of 8) and, where it
// has been exported, decoders.py's llama-tiny-past (2 layers, 4 / 2 heads of 32).
const LLAMAS = ['fixtures/models/llama-past-tiny-op14'];
const LAYERS = 2;

/** The exported model after the portable pipeline, with `dims` fixed (what `compile --dim` does). */
async function prepared(dir: string, dims: Record<string, number> = {}): Promise<{ original: Model; model: Model }> {
  const original = readModel(path.join(dir, 'model.onnx')).model;
  const model = cloneModel(original);
  await compile(model, portable, { runtime: onnxruntimeNode, dims });
  return { original, model };
}

function explained() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

/**
 * Inputs as generate() makes them: left padding `pad[b]` zeros at the start of row b's mask,
 * position ids cumsum(mask) - 1 with padding at 1, a random cache of `past` positions.
 */
function decoderFeeds(model: Model, o: { past: number; seq: number; pad: number[]; seed: number }): Record<string, Tensor> {
  const r = seededRandom(o.seed);
  const B = o.pad.length, T = o.past + o.seq;
  const feeds: Record<string, Tensor> = {};
  const mask = o.pad.flatMap((p) => Array.from({ length: T }, (_, j) => (j < p ? 0 : 1)));
  const pos: number[] = [];
  for (let b = 0; b < B; b++) {
    let c = 0;
    const row = mask.slice(b * T, (b + 1) * T).map((m) => { c += m; return m === 0 ? 1 : c - 1; });
    pos.push(...row.slice(o.past));
  }
  for (const v of model.graph.inputs) {
    if (v.name === 'input_ids') feeds[v.name] = Tensor.int64(Array.from({ length: B * o.seq }, () => Math.floor(r() * 64)), [B, o.seq]);
    else if (v.name === 'attention_mask') feeds[v.name] = Tensor.int64(mask, [B, T]);
    else if (v.name === 'position_ids') feeds[v.name] = Tensor.int64(pos, [B, o.seq]);
    else {
      const shape = v.type?.kind === 'tensor' ? v.type.shape ?? [] : [];
      const dims = [B, Number(shape[1]), o.past, Number(shape[3])];
      feeds[v.name] = Tensor.float32(Array.from({ length: dims.reduce((a, x) => a * x, 1) }, () => r() * 2 - 1), dims);
    }
  }
  return feeds;
}

/** The fused model against the export as it was, output by output. */
async function expectSameAsOriginal(original: Model, after: Model, feeds: Record<string, Tensor>, what: string): Promise<void> {
  const want = await runModel(original, feeds);
  const got = await runModel(after, feeds);
  for (const [name, t] of Object.entries(want)) {
    const c = compareTensors(got[name]!, t, { rtol: 1e-3, atol: 1e-4 });
    expect(c.ok, `${what} '${name}': ${c.problem}`).toBe(true);
  }
}

function expectFused(after: Model): void {
  const h = ops(after);
  expect(h.GroupQueryAttention).toBe(LAYERS);
  expect(h.RotaryEmbedding).toBe(2 * LAYERS);
  expect(h.Softmax).toBeUndefined();
  const gqa = after.graph.nodes.filter((n) => n.opType === 'GroupQueryAttention');
  expect(gqa.every((n) => n.domain === 'com.microsoft' && n.attr('num_heads')?.value === 4 && n.attr('kv_num_heads')?.value === 2)).toBe(true);
  // q and k rotated in their 3-D form [b, s, heads*D] by RotaryEmbedding, v straight from its projection
  for (const n of gqa) {
    expect(n.inputs[0]!.producer!.opType).toBe('RotaryEmbedding');
    expect(n.inputs[1]!.producer!.opType).toBe('RotaryEmbedding');
    expect(n.inputs[2]!.producer!.opType).toBe('MatMul');
  }
  // seqlens_k, total_sequence_length and the mask shared by the layers
  for (const slot of [5, 6, 10]) expect(new Set(gqa.map((n) => n.inputs[slot])).size).toBe(1);
  // the cache: past in, present out straight from GroupQueryAttention (no Concat, no repeat_kv)
  for (let i = 0; i < LAYERS; i++) {
    for (const kind of ['key', 'value'] as const) {
      const present = after.graph.outputs.find((v) => v.name === `present.${i}.${kind}`)!;
      expect(present.producer!.opType).toBe('GroupQueryAttention');
      expect(present.producer!.inputs[kind === 'key' ? 3 : 4]!.name).toBe(`past_key_values.${i}.${kind}`);
    }
  }
  expect(after.graph.nodes.some((n) => n.opType === 'Expand' && n.inputs[0]!.producer?.opType === 'Unsqueeze' && n.inputs[0]!.producer.inputs[0]!.producer?.opType === 'GroupQueryAttention')).toBe(false);
}

describe('fuse-gqa on Llama decoders', () => {
  test.each(LLAMAS)('%s, symbolic dims: not fused (GQA refuses batch > 1 with sequence > 1 and a past), explained', async (dir) => {
    const { model } = await prepared(dir);
    const e = explained();
    await new PassManager([fuseRotary, fuseGqa], { onExplain: e.onExplain }).run(model);
    expect(ops(model).GroupQueryAttention).toBeUndefined();
    expect(ops(model).RotaryEmbedding).toBe(2 * LAYERS);
    expect(e.messages.filter((m) => m.includes('batch_size must be 1 when sequence_length > 1 and past context is given'))).toHaveLength(LAYERS);
    expect(e.messages[0]).toMatch(/fix --dim batch=1 \(or sequence=1 for a decode-only model\)/);
  });

  test.each(LLAMAS)('%s, --dim batch=1: one GroupQueryAttention per layer; test sets, left padding (past and prefill), as the original', async (dir) => {
    const { original, model } = await prepared(dir, { batch: 1 });
    const sets = testDataSets(dir).map((d) => readTestDataSet(d)).filter((d) => d.inputs.find((i) => i.name === 'input_ids')!.tensor.dims[0] === 1);
    expect(sets.length).toBeGreaterThanOrEqual(1);
    const cases: [string, Record<string, Tensor>][] = [
      ...sets.map((d, i) => [`test set ${i}`, Object.fromEntries(d.inputs.map((x) => [x.name, x.tensor]))] as [string, Record<string, Tensor>]),
      // batch 1 left-padded by 2 in its past, 3 new tokens
      ['left-padded past', decoderFeeds(original, { past: 6, seq: 3, pad: [2], seed: 1 })],
      // prefill of a left-padded prompt: the two padded queries see only padding (fully masked rows)
      ['left-padded prefill', decoderFeeds(original, { past: 0, seq: 7, pad: [2], seed: 2 })],
      ['decode step', decoderFeeds(original, { past: 9, seq: 1, pad: [0], seed: 3 })],
    ];
    for (const [what, feeds] of cases) {
      const { after, changes } = await checkPass(model, [fuseRotary, fuseGqa], { feeds, rtol: 1e-3, atol: 1e-4 });
      expect(changes).toBe(3 * LAYERS);
      expectFused(after);
      await expectSameAsOriginal(original, after, feeds, what);
    }
    // and torch's outputs for the test sets
    const { after } = await checkPass(model, [fuseRotary, fuseGqa], { feeds: cases[0]![1] });
    for (const d of sets) {
      const got = await runModel(after, Object.fromEntries(d.inputs.map((x) => [x.name, x.tensor])));
      for (const o of d.outputs) expect(compareTensors(got[o.name]!, o.tensor, { rtol: 1e-3, atol: 1e-4 }).ok, o.name).toBe(true);
    }
  });

  test.each(LLAMAS)('%s, --dim sequence=1 (a decode-only model): fused for any batch; a left-padded batch of 2 and a row whose mask is all zeros', async (dir) => {
    const { original, model } = await prepared(dir, { sequence: 1 });
    const padded = decoderFeeds(original, { past: 8, seq: 1, pad: [0, 2], seed: 4 });
    const empty = decoderFeeds(original, { past: 5, seq: 1, pad: [0, 6], seed: 5 });
    for (const [what, feeds] of [['left-padded batch of 2', padded], ['all-zero mask row', empty]] as const) {
      const { after } = await checkPass(model, [fuseRotary, fuseGqa], { feeds, rtol: 1e-3, atol: 1e-4 });
      expectFused(after);
      await expectSameAsOriginal(original, after, feeds, what);
    }
  });

  test.each(LLAMAS)('%s, --dim batch=1: greedy generation of 8 tokens gives the same tokens', async (dir) => {
    const { original, model } = await prepared(dir, { batch: 1 });
    await new PassManager([fuseRotary, fuseGqa], { verifyEach: true }).run(model);
    expect(ops(model).GroupQueryAttention).toBe(LAYERS);
    const sig = decoderSignature(original)!;
    expect(sig).toBeDefined();
    const vocab = Number((original.graph.outputs[0]!.type as { shape: (number | string)[] }).shape[2]);
    const prompt = syntheticPrompt(5, Math.min(vocab, 64), 11);
    const run = async (m: Model) => {
      const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(m).chunks), { graphOptimizationLevel: 'all' });
      try { return await greedyGenerate(m, session, sig, prompt, 8); } finally { await session.release(); }
    };
    const want = await run(original);
    const got = await run(model);
    expect(got.tokens).toEqual(want.tokens);
    for (let i = 0; i < want.logits.length; i++) {
      const c = compareTensors(Tensor.float32(got.logits[i]!), Tensor.float32(want.logits[i]!), { rtol: 1e-3, atol: 1e-4 });
      expect(c.ok, `step ${i}: ${c.problem}`).toBe(true);
    }
  });

  test('the fully-masked-row handling is needed: without it, padded queries (prefill) and all-zero mask rows (decode) differ', async () => {
    const dir = LLAMAS[0]!;
    const worst = async (dims: Record<string, number>, feeds: (m: Model) => Record<string, Tensor>, undo: (m: Model) => void): Promise<[number, number]> => {
      const { original, model } = await prepared(dir, dims);
      await new PassManager([fuseRotary, fuseGqa]).run(model);
      const f = feeds(original);
      const want = (await runModel(original, f)).logits!.toTypedArray() as Float32Array;
      const diff = async (m: Model): Promise<number> => {
        const got = (await runModel(m, f)).logits!.toTypedArray() as Float32Array;
        return got.reduce((w, x, i) => Math.max(w, Math.abs(x - want[i]!)), 0);
      };
      const fused = await diff(model);
      undo(model);
      return [fused, await diff(model)];
    };
    // batch 1, prefill of a left-padded prompt: drop the Where that puts the mean of V back
    const [withWhere, withoutWhere] = await worst({ batch: 1 }, (m) => decoderFeeds(m, { past: 0, seq: 7, pad: [2], seed: 2 }), (m) => {
      for (const n of m.graph.nodes.filter((x) => x.opType === 'Where' && x.name.endsWith('masked_rows'))) m.graph.replaceAllUsesWith(n.outputs[0]!, n.inputs[2]!);
    });
    expect(withWhere).toBeLessThan(1e-4);
    expect(withoutWhere).toBeGreaterThan(1e-2);
    // sequence 1, a row whose mask is all zeros: give GQA the mask itself instead of Clip(mask, min=-3e38)
    const [withMax, withoutMax] = await worst({ sequence: 1 }, (m) => decoderFeeds(m, { past: 5, seq: 1, pad: [0, 6], seed: 5 }), (m) => {
      for (const n of m.graph.nodes.filter((x) => x.opType === 'GroupQueryAttention')) m.graph.setInput(n, 10, n.inputs[10]!.producer!.inputs[0]!);
    });
    expect(withMax).toBeLessThan(1e-4);
    expect(withoutMax).toBeGreaterThan(1e-2);
  });

  test('a mask that is not causal (padding only) is not fused, and says why', async () => {
    const { model } = await prepared(LLAMAS[0]!, { batch: 1 });
    // re-point every layer's mask Add at the padding-only mask (the Where the causal Where wraps)
    const g = model.graph;
    const adds = g.nodes.filter((n) => n.opType === 'Add' && n.outputs[0]!.uses.some((u) => u.node.opType === 'Softmax'));
    expect(adds).toHaveLength(LAYERS);
    for (const add of adds) {
      const slot = add.inputs.findIndex((v) => v!.producer?.opType === 'Where');
      const causalWhere = add.inputs[slot]!.producer!;
      g.setInput(add, slot, causalWhere.inputs[2]!);
    }
    const e = explained();
    await new PassManager([fuseRotary, fuseGqa], { onExplain: e.onExplain }).run(model);
    expect(ops(model).GroupQueryAttention).toBeUndefined();
    expect(e.messages.filter((m) => /not causal \(a query would see a later key\)/.test(m))).toHaveLength(LAYERS);
  });
});
