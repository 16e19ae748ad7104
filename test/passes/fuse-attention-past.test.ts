import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseAttentionPast } from '../../passes/fuse/fuse-attention-past.js';
import { Sym } from '../../src/analysis/symbolic.js';
import { decoderSignature, greedyGenerate } from '../../src/bench/generation.js';
import { compareTensors } from '../../src/compare.js';
import { compile } from '../../src/compile.js';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { serializeModel } from '../../src/io.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { PassManager } from '../../src/pass/manager.js';
import { TARGETS } from '../../targets/index.js';
import { portable } from '../../targets/portable.js';
import { checkPass, ops, runModel } from './harness.js';

const FIXTURE = path.resolve(__dirname, '../../fixtures/models/decoder-past-tiny-op14');
/** made by ../shared/corpus/decoders.py (not committed): checked when present */

function explainer() {
  const messages: string[] = [];
  return { messages, onExplain: (_pass: string, m: string) => { messages.push(m); } };
}

async function portableCompiled(file: string): Promise<{ original: Model; compiled: Model }> {
  const original = readModel(file).model;
  const compiled = cloneModel(original);
  await compile(compiled, portable, { runtime: onnxruntimeNode });
  return { original, compiled };
}

/**
 * Feeds for a decoder with past: batch 2, the second row left-padded by `pad` (attention_mask 0 on
 * its first `pad` positions, position ids counted from its first 1), random cache of length `past`.
 */
function decoderFeeds(model: Model, opts: { batch: number; seq: number; past: number; pad: number; vocab: number; seed: number }): Record<string, Tensor> {
  const { batch, seq, past, pad, vocab } = opts;
  const r = seededRandom(opts.seed);
  const total = past + seq;
  const padOf = (b: number): number => (b === batch - 1 ? pad : 0);
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs) {
    const dims = v.type?.kind === 'tensor' ? v.type.shape ?? [] : [];
    if (v.name === 'input_ids') feeds[v.name] = Tensor.int64(Array.from({ length: batch * seq }, () => Math.floor(r() * vocab)), [batch, seq]);
    else if (v.name === 'attention_mask') feeds[v.name] = Tensor.int64(Array.from({ length: batch * total }, (_, i) => (i % total < padOf(Math.floor(i / total)) ? 0 : 1)), [batch, total]);
    else if (v.name === 'position_ids') {
      feeds[v.name] = Tensor.int64(Array.from({ length: batch * seq }, (_, i) => Math.max(0, past + (i % seq) - padOf(Math.floor(i / seq)))), [batch, seq]);
    } else if (v.name.startsWith('past_key_values.')) {
      const shape = [batch, dims[1] as number, past, dims[3] as number];
      const n = shape.reduce((a, b) => a * b, 1);
      feeds[v.name] = Tensor.float32(Array.from({ length: n }, () => r() * 2 - 1), shape);
    } else throw new Error(`unexpected input ${v.name}`);
  }
  return feeds;
}

/** inputs and outputs with their types; symbolic dims in canonical form (the portable pipeline writes 'p+s' for 'p + s') */
function interfaceOf(m: Model): string[] {
  const dim = (d: number | string | null): string => (typeof d === 'string' ? Sym.from(d).toString() : String(d));
  const fmt = (v: Value): string => `${v.name}: ${v.type?.kind === 'tensor' ? `${v.type.elemType}[${(v.type.shape ?? []).map(dim).join(',')}]` : '?'}`;
  return [...m.graph.inputs.filter((v) => !v.initializer).map(fmt), '->', ...m.graph.outputs.map(fmt)];
}

describe('fuse-attention-past on decoder-past-tiny-op14 (GPT-2 with a KV cache, after the portable pipeline)', () => {
  test('one MultiHeadAttention per layer; names and shapes kept; outputs as the original on its test data, an empty-cache prefill and a left-padded prefill', async () => {
    const { original, compiled } = await portableCompiled(path.join(FIXTURE, 'model.onnx'));
    const sets = testDataSets(FIXTURE).map((d) => Object.fromEntries(readTestDataSet(d).inputs.map((i) => [i.name, i.tensor])));
    expect(sets).toHaveLength(2);
    // past 0 (empty cache tensors): a prefill; the second one left-padded, so whole query rows are padding
    sets.push(decoderFeeds(original, { batch: 1, seq: 6, past: 0, pad: 0, vocab: 64, seed: 3 }));
    sets.push(decoderFeeds(original, { batch: 2, seq: 5, past: 0, pad: 2, vocab: 64, seed: 4 }));
    for (const feeds of sets) {
      const { after, changes } = await checkPass(compiled, fuseAttentionPast, { feeds, rtol: 1e-3, atol: 1e-4 });
      expect(changes).toBe(2);
      const h = ops(after);
      expect(h.MultiHeadAttention).toBe(2);
      expect(h.Softmax).toBeUndefined();
      expect(h.Concat).toBeUndefined();
      expect(after.opsetVersion('com.microsoft')).toBe(1);
      expect(interfaceOf(after)).toEqual(interfaceOf(original));
      const mha = after.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention');
      expect(mha.every((n) => n.domain === 'com.microsoft' && n.attr('num_heads')?.value === 2 && n.attr('scale')?.value === 0.25)).toBe(true);
      // causal + padding: one bias [batch, 1, seq, past + seq] shared by both layers, no unidirectional
      expect(mha.every((n) => n.attr('unidirectional') === undefined)).toBe(true);
      expect(new Set(mha.map((n) => n.inputs[5])).size).toBe(1);
      expect(mha.map((n) => n.inputs[6]!.name)).toEqual(['past_key_values.0.key', 'past_key_values.1.key']);
      expect(mha.map((n) => n.outputs[1]!.name)).toEqual(['present.0.key', 'present.1.key']);
      // and against the model as exported (not only the portable one)
      const want = await runModel(original, feeds);
      const got = await runModel(after, feeds);
      for (const [name, t] of Object.entries(want)) {
        const c = compareTensors(got[name]!, t, { rtol: 1e-3, atol: 1e-4 });
        expect(c.ok, `output '${name}': ${c.problem}`).toBe(true);
      }
    }
  });

  test('greedy generation of 8 tokens (prefill on an empty cache, present fed back as past): the same tokens', async () => {
    const { original, compiled } = await portableCompiled(path.join(FIXTURE, 'model.onnx'));
    await new PassManager([fuseAttentionPast], { verifyEach: true }).run(compiled);
    expect(ops(compiled).MultiHeadAttention).toBe(2);
    const sig = decoderSignature(original)!;
    expect(sig).toBeDefined();
    const open = (m: Model) => onnxruntimeNode.createSession(concatChunks(serializeModel(m).chunks), { graphOptimizationLevel: 'all' });
    const [a, b] = [await open(original), await open(compiled)];
    try {
      const prompt = [5, 17, 42, 8, 33];
      const want = await greedyGenerate(original, a, sig, prompt, 8);
      const got = await greedyGenerate(compiled, b, sig, prompt, 8);
      expect(got.tokens).toEqual(want.tokens);
      for (let i = 0; i < want.logits.length; i++) {
        const c = compareTensors(Tensor.float32(got.logits[i]!), Tensor.float32(want.logits[i]!), { rtol: 1e-3, atol: 1e-4 });
        expect(c.ok, `step ${i}: ${c.problem}`).toBe(true);
      }
    } finally {
      await a.release();
      await b.release();
    }
  });

  test('the raw export (no portable pipeline): not fused, the scale computed from shapes is explained', async () => {
    const m = readModel(path.join(FIXTURE, 'model.onnx')).model;
    const e = explainer();
    await new PassManager([fuseAttentionPast], { onExplain: e.onExplain }).run(m);
    expect(ops(m).MultiHeadAttention).toBeUndefined();
    expect(e.messages).toHaveLength(2);
    expect(e.messages[0]).toMatch(/scale .* is not a scalar constant/);
  });
});

describe('fuse-attention-past on built graphs', () => {
  const H = 2, D = 4, HID = H * D, N_POS = 16;
  function rand(seed: number) {
    const r = seededRandom(seed);
    return (dims: number[]) => Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1), dims);
  }

  /**
   * One attention layer with a cache: x [b, s, 8] -> q, k, v projections, key/value = Concat(past,
   * new), Where(tril window, scores, fill), optionally + padding mask; `rowStart` picks the window's
   * first row ('past': t - s, right; 'zero': 0, wrong with a past), `maskFirst` adds the padding
   * mask before the Where.
   */
  function build(opts: { padding?: boolean; maskFirst?: boolean; rowStart?: 'past' | 'zero'; mulScaleOnQ?: boolean } = {}): Model {
    const t = rand(11);
    const b = new ModelBuilder({ opset: 14 });
    const x = b.input('x', 'float32', ['batch', 'seq', HID]);
    const mask = opts.padding ? b.input('attention_mask', 'int64', ['batch', 'total']) : undefined;
    const pastK = b.input('past_key', 'float32', ['batch', H, 'past', D]);
    const pastV = b.input('past_value', 'float32', ['batch', H, 'past', D]);
    const i64 = (vals: number[], name: string) => b.constant(Tensor.int64(vals), name);
    const heads = (name: string) => {
      const p = b.node('Add', [b.node('MatMul', [x, b.constant(t([HID, HID]), `W${name}`)]), b.constant(t([HID]), `b${name}`)]);
      return b.node('Transpose', [b.node('Reshape', [p, i64([0, 0, H, D], `shape_${name}`)])], { perm: [0, 2, 1, 3] });
    };
    const qHeads = heads('q');
    const q = opts.mulScaleOnQ ? b.node('Mul', [qHeads, b.constant(Tensor.float32([0.5], []), 'q_scale')]) : qHeads;
    const key = b.node('Concat', [pastK, heads('k')], { axis: -2 });
    const value = b.node('Concat', [pastV, heads('v')], { axis: 2 });
    b.output(key, 'present_key');
    b.output(value, 'present_value');
    const kT = b.node('Transpose', [key], { perm: [0, 1, 3, 2] });
    let s = b.node('MatMul', [q, kT]);
    if (!opts.mulScaleOnQ) s = b.node('Div', [s, b.constant(Tensor.float32([2], []), 'sqrt_d')]);
    // the causal window bias[:, :, t-s:t, :t] of a tril buffer, with t and s read from shapes
    const tril = Tensor.fromTypedArray(9, [1, 1, N_POS, N_POS], Uint8Array.from({ length: N_POS * N_POS }, (_, i) => (i % N_POS <= Math.floor(i / N_POS) ? 1 : 0)));
    const buf = b.constant(tril, 'causal_buffer');
    const len = (v: Value, axis: number, name: string) => b.node('Slice', [b.node('Shape', [v]), i64([axis], `${name}_s`), i64([axis + 1], `${name}_e`)]);
    const kLen = len(key, 2, 'klen'), qLen = len(qHeads, 2, 'qlen');
    const start = opts.rowStart === 'zero' ? i64([0], 'row0') : b.node('Sub', [kLen, qLen]);
    const end = opts.rowStart === 'zero' ? qLen : kLen;
    const rows = b.node('Slice', [buf, start, end, i64([2], 'ax2'), i64([1], 'st1')]);
    const cond = b.node('Slice', [rows, i64([0], 'c0'), kLen, i64([3], 'ax3'), i64([1], 'st1b')]);
    const neg = b.constant(Tensor.float32([-3.4028234663852886e38], []), 'neg');
    let pad: Value | undefined;
    if (mask) {
      const m4 = b.node('Cast', [b.node('Unsqueeze', [mask, i64([1, 2], 'axes')])], { to: 1 });
      pad = b.node('Mul', [b.node('Sub', [b.constant(Tensor.float32([1], []), 'one'), m4]), neg]);
    }
    if (pad && opts.maskFirst) s = b.node('Add', [s, pad]);
    s = b.node('Where', [cond, s, neg]);
    if (pad && !opts.maskFirst) s = b.node('Add', [s, pad]);
    const ctxv = b.node('Transpose', [b.node('MatMul', [b.node('Softmax', [s], { axis: -1 }), value])], { perm: [0, 2, 1, 3] });
    const y = b.node('Reshape', [ctxv, i64([0, 0, HID], 'merge')]);
    b.output(b.node('MatMul', [y, b.constant(t([HID, HID]), 'Wo')]), 'y');
    return b.build();
  }

  function feeds(model: Model, batch: number, seq: number, past: number, pad: number, seed: number): Record<string, Tensor> {
    const r = rand(seed);
    const f: Record<string, Tensor> = { x: r([batch, seq, HID]), past_key: r([batch, H, past, D]), past_value: r([batch, H, past, D]) };
    if (model.graph.inputs.some((v) => v.name === 'attention_mask')) {
      const total = past + seq;
      f.attention_mask = Tensor.int64(Array.from({ length: batch * total }, (_, i) => (Math.floor(i / total) === batch - 1 && i % total < pad ? 0 : 1)), [batch, total]);
    }
    return f;
  }

  test('causal mask alone: unidirectional=1, no bias, no mask ops; a scale on q is taken', async () => {
    const model = build({ mulScaleOnQ: true });
    for (const [batch, seq, past] of [[2, 3, 4], [1, 1, 7], [2, 5, 0]] as const) {
      const { after } = await checkPass(model, fuseAttentionPast, { feeds: feeds(model, batch, seq, past, 0, seq + past), atol: 1e-5 });
      expect(ops(after)).toEqual({ MatMul: 4, Add: 3, MultiHeadAttention: 1 });
      const mha = after.graph.nodes.find((n) => n.opType === 'MultiHeadAttention')!;
      expect(mha.attr('unidirectional')?.value).toBe(1);
      expect(mha.attr('scale')?.value).toBe(0.5);
      expect(mha.inputs[5]).toBeUndefined();
    }
  });

  test.each([false, true])('causal + padding (padding added first: %s): one bias, exact on left-padded prefill rows', async (maskFirst) => {
    const model = build({ padding: true, maskFirst });
    for (const [batch, seq, past, pad] of [[2, 3, 4, 2], [2, 5, 0, 3], [1, 1, 6, 0]] as const) {
      const { after } = await checkPass(model, fuseAttentionPast, { feeds: feeds(model, batch, seq, past, pad, 3 + seq), atol: 1e-5 });
      const h = ops(after);
      expect(h.MultiHeadAttention).toBe(1);
      expect(h.Softmax).toBeUndefined();
      const mha = after.graph.nodes.find((n) => n.opType === 'MultiHeadAttention')!;
      expect(mha.attr('unidirectional')).toBeUndefined();
      expect(mha.inputs[5]?.producer?.opType).toBe(maskFirst ? 'Where' : 'Add');
    }
  });

  test('a causal window that ignores the past (rows from 0): not fused, explained', async () => {
    const model = build({ rowStart: 'zero' });
    const e = explainer();
    await new PassManager([fuseAttentionPast], { onExplain: e.onExplain }).run(model);
    expect(ops(model).MultiHeadAttention).toBeUndefined();
    expect(e.messages).toHaveLength(1);
    expect(e.messages[0]).toMatch(/query i sees keys <= i \+ 0, not i \+ past/);
  });
});

describe('fuse-attention-past in the targets', () => {
  test.each(['cuda', 'webgpu', 'x86-avx2'])('%s: the fixture compiles to one MultiHeadAttention per layer, nothing the target cannot run', async (name) => {
    const m = readModel(path.join(FIXTURE, 'model.onnx')).model;
    const report = await compile(m, TARGETS.find((t) => t.name === name)!, { runtime: onnxruntimeNode });
    expect(ops(m).MultiHeadAttention).toBe(2);
    expect(report.violations).toEqual([]);
  });

  test('after fuse-attention in every ORT target whose table has MultiHeadAttention (CPU ones too: not slower there)', () => {
    for (const t of TARGETS) {
      const p = t.pipeline.flatMap((s) => (typeof s === 'string' ? [s] : s.fixedPoint));
      const hasMha = 'com.microsoft::MultiHeadAttention' in (t.capabilities?.kernels ?? {});
      if (['cuda', 'webgpu', 'x86-avx2', 'arm64'].includes(t.name)) expect(hasMha, t.name).toBe(true);
      if (hasMha && t.runtime.startsWith('onnxruntime')) {
        expect(p, t.name).toContain('fuse-attention-past');
        expect(p.indexOf('fuse-attention-past'), t.name).toBeGreaterThan(p.indexOf('fuse-attention'));
      }
    }
  });
});
