import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseAttention } from '../../passes/fuse/fuse-attention.js';
import { compareTensors } from '../../src/compare.js';
import { compile } from '../../src/compile.js';
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { PassManager } from '../../src/pass/manager.js';
import { portable } from '../../targets/portable.js';
import { checkPass, ops, runModel } from './harness.js';

const fixtures = path.resolve(__dirname, '../../fixtures/models');

/** input_ids (vocab 64), token_type_ids 0/1, attention_mask with padding zeros at the end of row 1. */
function feedsFor(model: Model, batch: number, seq: number, seed: number): Record<string, Tensor> {
  const r = seededRandom(seed);
  const n = batch * seq;
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs) {
    if (v.name === 'input_ids') feeds[v.name] = Tensor.int64(Array.from({ length: n }, () => Math.floor(r() * 64)), [batch, seq]);
    else if (v.name === 'token_type_ids') feeds[v.name] = Tensor.int64(Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1)), [batch, seq]);
    else if (v.name === 'attention_mask') {
      // row 0 attends everywhere, row 1 has its last third padded
      const pad = Math.max(1, Math.floor(seq / 3));
      feeds[v.name] = Tensor.int64(Array.from({ length: n }, (_, i) => (Math.floor(i / seq) >= 1 && i % seq >= seq - pad ? 0 : 1)), [batch, seq]);
    } else throw new Error(`unexpected input ${v.name}`);
  }
  return feeds;
}

const FIXTURES = ['bert-tiny-op17', 'bert-tiny-op14', 'gpt2-tiny-op14', 'gpt2-tiny-op17', 'prenorm-tiny-op17']
  .filter((name) => fs.existsSync(path.join(fixtures, name, 'model.onnx')));

function count(model: Model, op: string): number {
  return ops(model)[op] ?? 0;
}

async function expectClose(a: Model, b: Model, feeds: Record<string, Tensor>, atol: number): Promise<number> {
  const want = await runModel(a, feeds);
  const got = await runModel(b, feeds);
  let worst = 0;
  for (const [name, t] of Object.entries(want)) {
    const c = compareTensors(got[name]!, t, { rtol: 0, atol });
    expect(c.ok, `output '${name}': ${c.problem}`).toBe(true);
    const x = got[name]!.toTypedArray() as Float32Array, y = t.toTypedArray() as Float32Array;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

describe('fuse-attention on the fixtures (after the portable pipeline)', () => {
  test.each(FIXTURES)('%s: one Attention per layer, outputs as the original', async (name) => {
    const original = readModel(path.join(fixtures, name, 'model.onnx')).model;
    const compiled = cloneModel(original);
    await compile(compiled, portable, { runtime: onnxruntimeNode });
    for (const [seq, seed] of [[5, 1], [11, 2]] as const) {
      const feeds = feedsFor(original, 2, seq, seed);
      const { after, changes } = await checkPass(compiled, fuseAttention, { feeds, atol: 1e-4, rtol: 1e-4 });
      expect(changes).toBe(2);
      expect(count(after, 'Attention')).toBe(2);
      expect(count(after, 'Softmax')).toBe(0);
      expect(after.opsetVersion('com.microsoft')).toBe(1);
      const attn = after.graph.nodes.filter((n) => n.opType === 'Attention');
      expect(attn.every((n) => n.domain === 'com.microsoft')).toBe(true);
      if (name.startsWith('bert')) {
        // the mask converted once, shared by both layers, with BERT's -10000
        const masks = new Set(attn.map((n) => n.inputs[3]));
        expect(masks.size).toBe(1);
        expect([...masks][0]!.producer!.opType).toBe('Cast');
        expect(attn.every((n) => n.attr('mask_filter_value')?.value === -10000)).toBe(true);
        expect(attn.every((n) => n.attr('unidirectional') === undefined)).toBe(true);
      } else {
        expect(attn.every((n) => n.attr('unidirectional')?.value === 1 && n.inputs.length === 3)).toBe(true);
      }
      // and against the model as exported
      await expectClose(original, after, feeds, 1e-4);
    }
  });

  test('the raw export (no portable pipeline): BERT and pre-norm fuse; GPT-2 computes its scale at run time', async () => {
    for (const name of FIXTURES) {
      const original = readModel(path.join(fixtures, name, 'model.onnx')).model;
      if (name.startsWith('gpt2')) {
        const explained: string[] = [];
        const m = cloneModel(original);
        await new PassManager([fuseAttention], { onExplain: (_p, msg) => explained.push(msg) }).run(m);
        expect(count(m, 'Attention'), name).toBe(0);
        expect(explained, name).toHaveLength(2);
        expect(explained[0], name).toMatch(/scale .* is not a scalar constant/);
        continue;
      }
      const feeds = feedsFor(original, 2, 5, 3);
      const { after } = await checkPass(original, fuseAttention, { feeds, atol: 1e-4, rtol: 1e-4 });
      expect(count(after, 'Attention'), name).toBe(2);
      expect(count(after, 'Softmax'), name).toBe(0);
    }
  });
});

describe('fuse-attention on built graphs', () => {
  const H = 2, D = 4, HID = H * D;
  function rand(seed: number) {
    const r = seededRandom(seed);
    return (dims: number[]) => Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1), dims);
  }

  /** BERT-style attention; `maskAfterSoftmax` adds the mask to the probabilities instead of the scores. */
  function build(opts: { maskAfterSoftmax?: boolean; mulScale?: boolean; noBias?: boolean } = {}): Model {
    const t = rand(7);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 'seq', HID]);
    const mask = b.input('mask', 'int64', ['batch', 'seq']);
    const heads = (name: string, perm: number[]) => {
      let p = b.node('MatMul', [x, b.constant(t([HID, HID]), `W${name}`)]);
      if (!opts.noBias) p = b.node('Add', [p, b.constant(t([HID]), `b${name}`)]);
      const r = b.node('Reshape', [p, b.constant(Tensor.int64([0, 0, H, D]), `shape${name}`)]);
      return b.node('Transpose', [r], { perm });
    };
    const q = heads('q', [0, 2, 1, 3]), k = heads('k', [0, 2, 3, 1]), v = heads('v', [0, 2, 1, 3]);
    const qk = b.node('MatMul', [q, k]);
    const scaled = opts.mulScale
      ? b.node('Mul', [qk, b.constant(Tensor.float32([0.5], []), 'inv_sqrt_d')])
      : b.node('Div', [qk, b.constant(Tensor.float32([2], []), 'sqrt_d')]);
    const m4 = b.node('Unsqueeze', [mask, b.constant(Tensor.int64([1, 2]), 'axes')]);
    const mf = b.node('Cast', [m4], { to: 1 });
    const add = b.node('Mul', [b.node('Sub', [b.constant(Tensor.float32([1], []), 'one'), mf]), b.constant(Tensor.float32([-10000], []), 'neg')]);
    let probs;
    if (opts.maskAfterSoftmax) probs = b.node('Add', [b.node('Softmax', [scaled], { axis: -1 }), add]);
    else probs = b.node('Softmax', [b.node('Add', [scaled, add])], { axis: -1 });
    const ctxv = b.node('Transpose', [b.node('MatMul', [probs, v])], { perm: [0, 2, 1, 3] });
    const y = b.node('Reshape', [ctxv, b.constant(Tensor.int64([0, 0, HID]), 'merge')]);
    b.output(b.node('MatMul', [y, b.constant(t([HID, HID]), 'Wo')]), 'y');
    return b.build();
  }

  const maskFeeds = (seq: number): Record<string, Tensor> => {
    const r = seededRandom(5);
    return {
      x: Tensor.float32(Array.from({ length: 2 * seq * HID }, () => r() * 2 - 1), [2, seq, HID]),
      mask: Tensor.int64(Array.from({ length: 2 * seq }, (_, i) => (i >= seq && i % seq >= seq - 2 ? 0 : 1)), [2, seq]),
    };
  };

  test('Mul by 1/sqrt(d), no bias: zero bias, scale kept', async () => {
    const { after } = await checkPass(build({ mulScale: true, noBias: true }), fuseAttention, { feeds: maskFeeds(6), atol: 1e-5 });
    expect(ops(after)).toEqual({ Cast: 1, Attention: 1, MatMul: 1 });
    const attn = after.graph.nodes.find((n) => n.opType === 'Attention')!;
    expect(attn.attr('scale')?.value).toBe(0.5);
    expect(Array.from(attn.inputs[2]!.initializer!.toTypedArray())).toEqual(new Array(3 * HID).fill(0));
  });

  test('a mask added after the Softmax: not fused, and --explain says why', async () => {
    const model = build({ maskAfterSoftmax: true });
    const explained: string[] = [];
    const m = cloneModel(model);
    const report = await new PassManager([fuseAttention], { onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(report.passes[0]!.changes).toBe(0);
    expect(ops(m).Softmax).toBe(1);
    expect(explained).toHaveLength(1);
    expect(explained[0]).toMatch(/Softmax.*output feeds .*Add.*not the MatMul with V/);
  });

  test('unknown mask form is explained with the operand that failed', async () => {
    const t = rand(9);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 'seq', HID]);
    const bias = b.input('bias', 'float32', ['batch', H, 'seq', 'seq']);
    const heads = (name: string, perm: number[]) =>
      b.node('Transpose', [b.node('Reshape', [b.node('MatMul', [x, b.constant(t([HID, HID]), `W${name}`)]), b.constant(Tensor.int64([0, 0, H, D]), `s${name}`)])], { perm });
    const s = b.node('Add', [b.node('MatMul', [heads('q', [0, 2, 1, 3]), heads('k', [0, 2, 3, 1])]), bias]);
    const y = b.node('Transpose', [b.node('MatMul', [b.node('Softmax', [s], { axis: -1 }), heads('v', [0, 2, 1, 3])])], { perm: [0, 2, 1, 3] });
    b.output(b.node('Reshape', [y, b.constant(Tensor.int64([0, 0, HID]), 'merge')]), 'y');
    const explained: string[] = [];
    const m = b.build();
    await new PassManager([fuseAttention], { onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(ops(m).Softmax).toBe(1);
    expect(explained.join('\n')).toMatch(/no operand is a mask this fusion knows/);
  });
});
