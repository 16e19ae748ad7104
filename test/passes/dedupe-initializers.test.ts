import { describe, expect, test } from 'vitest';
import { DataType } from '../../src/ir/dtype.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Tensor } from '../../src/ir/tensor.js';
import { dedupeInitializers } from '../../passes/cleanup/dedupe-initializers.js';
import { checkPass } from './harness.js';
import { fixture } from './elim-util.js';

describe('dedupe-initializers', () => {
  test('identical initializers merge into the first; users are rewired', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [4]);
    const w1 = b.constant(Tensor.float32([1, 2, 3, 4]), 'w1');
    const w2 = b.constant(Tensor.float32([1, 2, 3, 4]), 'w2');
    const w3 = b.constant(Tensor.float32([1, 2, 3, 4]), 'w3');
    b.output(b.node('Sum', [b.node('Add', [x, w1]), b.node('Mul', [x, w2]), b.node('Sub', [x, w3]), w2]), 'y');
    const { after, changes } = await checkPass(b.build(), dedupeInitializers);
    expect(changes).toBe(2);
    expect(after.graph.initializers.map((v) => v.name)).toEqual(['w1']);
    expect(after.graph.initializers[0]!.uses).toHaveLength(4);
  });

  test('no merge: same bytes with other dims or another type; different values; a graph input; a graph output', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2, 2]);
    const a = b.constant(Tensor.float32([1, 2, 3, 4], [2, 2]), 'a');
    const bDims = b.constant(Tensor.float32([1, 2, 3, 4], [4]), 'b_dims');
    const bits = new Int32Array(new Float32Array([1, 2, 3, 4]).buffer);
    const bType = b.constant(Tensor.fromTypedArray(DataType.INT32, [2, 2], bits), 'b_type');
    const other = b.constant(Tensor.float32([1, 2, 3, 5], [2, 2]), 'other');
    const asInput = b.input('as_input', 'float32', [2, 2]);
    b.graph.setInitializer(asInput, Tensor.float32([1, 2, 3, 4], [2, 2]));
    const asOutput = b.constant(Tensor.float32([1, 2, 3, 4], [2, 2]), 'as_output');
    const r = b.node('Reshape', [bDims, b.constant(Tensor.int64([2, 2]), 'shape')]);
    const c = b.node('Cast', [bType], { to: DataType.FLOAT });
    b.output(b.node('Sum', [x, a, r, c, other, asInput]), 'y');
    b.output(asOutput);
    const { after, changes } = await checkPass(b.build(), dedupeInitializers);
    expect(changes).toBe(0);
    expect(after.graph.initializers).toHaveLength(7);
  });

  test('string tensors are compared by their strings', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'int64', [2]);
    const s1 = b.constant(Tensor.strings(['a', 'bc']), 's1');
    const s2 = b.constant(Tensor.strings(['a', 'bc']), 's2');
    const s3 = b.constant(Tensor.strings(['ab', 'c']), 's3');
    b.output(b.node('Gather', [s1, x]), 'y1');
    b.output(b.node('Gather', [s2, x]), 'y2');
    b.output(b.node('Gather', [s3, x]), 'y3');
    const feeds = { x: Tensor.int64([1, 0]) };
    const { after, changes } = await checkPass(b.build(), dedupeInitializers, { feeds });
    expect(changes).toBe(1);
    expect(after.graph.initializers.map((v) => v.name)).toEqual(['s1', 's3']);
  });

  test('cnn-tiny: weights stored twice (e.g. by a fold that copied them) are stored once', async () => {
    const model = fixture('cnn-tiny-op13');
    const g = model.graph;
    const n0 = g.initializers.length;
    for (const op of ['Conv', 'Gemm']) {
      const node = g.nodes.find((n) => n.opType === op)!;
      const w = node.inputs[1]!;
      const t = w.initializer!;
      // a copy in a buffer of its own, used instead of the original
      const copy = g.addInitializer(`${w.name}_copy`, Tensor.fromRaw(t.dataType, t.dims, new Uint8Array(t.rawBytes())));
      g.setInput(node, 1, copy);
    }
    expect(g.initializers).toHaveLength(n0 + 2);
    const { after, changes } = await checkPass(model, dedupeInitializers, { inputDims: { batch: 2 } });
    expect(changes).toBe(2);
    expect(after.graph.initializers).toHaveLength(n0);
    expect(after.graph.initializers.some((v) => v.name.endsWith('_copy'))).toBe(false);
  });
});
