/**
 * intInputRanges reads valid id ranges off the model, also once the lookups are fused away
 * (EmbedLayerNormalization, GatherBlockQuantized): the same synthetic inputs for the original and
 * the compiled model, and no out-of-range ids for a fused one (ORT refuses them).
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { compile } from '../src/compile.js';
import { intInputRanges, syntheticInputs } from '../src/inputs.js';
import { serializeModel } from '../src/io.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { cloneModel } from '../src/ir/clone.js';
import { Tensor } from '../src/ir/tensor.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { concatChunks } from '../src/onnx/codec.js';
import { x86Avx2 } from '../targets/x86-avx2.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');

describe('intInputRanges', () => {
  test('bert-tiny: the same ranges before and after EmbedLayerNormalization hides the Gathers', async () => {
    const original = readModel(path.join(FIXTURES, 'bert-tiny-op17/model.onnx')).model;
    const want = intInputRanges(original);
    expect(Object.keys(want).sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
    expect(want.input_ids).toBeGreaterThan(2);
    const fused = cloneModel(original);
    await compile(fused, x86Avx2, { runtime: onnxruntimeNode });
    expect(fused.graph.nodes.some((n) => n.opType === 'EmbedLayerNormalization')).toBe(true);
    expect(intInputRanges(fused)).toEqual(want);
    // and the fused model runs on inputs drawn from them
    const s = await onnxruntimeNode.createSession(concatChunks(serializeModel(fused).chunks));
    await s.run(syntheticInputs(fused, { seed: 3, dims: { batch: 2, sequence: 7 }, intRanges: intInputRanges(fused) }));
    await s.release();
  });

  test('int4 embeddings (GatherBlockQuantized) keep the table\'s row count', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const ids = b.input('ids', 'int64', ['batch', 'sequence']);
    const table = Tensor.float32(Array.from({ length: 256 * 32 }, (_, i) => Math.sin(i)), [256, 32]);
    b.output(b.node('Gather', [b.constant(table, 'wte'), ids]), 'emb');
    const original = b.build();
    expect(intInputRanges(original)).toEqual({ ids: 256 });
    const q = cloneModel(original);
    await compile(q, x86Avx2, { runtime: onnxruntimeNode, quantize: { mode: 'int4' } });
    expect(q.graph.nodes.map((n) => n.opType)).toContain('GatherBlockQuantized');
    expect(intInputRanges(q)).toEqual({ ids: 256 });
  });
});
