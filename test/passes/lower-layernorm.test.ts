import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { attr } from '../../src/ir/attribute.js';
import { Tensor } from '../../src/ir/tensor.js';
import { DataType } from '../../src/ir/dtype.js';
import { toFloat16Bits } from '../../src/ir/half.js';
import { lowerContribOps } from '../../passes/lower/lower-contrib-ops.js';
import { portable } from '../../targets/portable.js';
import { tensorrt } from '../../targets/tensorrt.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { checkPass, ops } from './harness.js';

function layerNorm(opset: number) {
  const b = new ModelBuilder({ opset });
  const x = b.input('x', 'float32', ['batch', 'seq', 8]);
  const gamma = b.constant(Tensor.float32([1.1, 0.9, 1.2, 0.8, 1.05, 0.95, 1.3, 0.7]), 'gamma');
  const beta = b.constant(Tensor.float32([0.1, -0.1, 0.2, -0.2, 0.05, -0.05, 0.3, -0.3]), 'beta');
  b.output(b.node('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: attr.float('epsilon', 1e-3) }), 'y');
  return b.build();
}

describe('lower-contrib-ops: LayerNormalization', () => {
  test.each([17, 18])('opset %i: for a target without LayerNormalization it becomes standard ops, same numbers', async (opset) => {
    const { after, changes } = await checkPass(layerNorm(opset), lowerContribOps, { target: tensorrt, inputDims: { batch: 2, seq: 5 } });
    expect(changes).toBe(1);
    expect(ops(after).LayerNormalization).toBeUndefined();
    expect(ops(after).ReduceMean).toBe(2);
    expect(ops(after).Sqrt).toBe(1);
  });

  test('float16: statistics in float32 between Casts (the op\'s definition), epsilon float32: the model loads and matches within float16', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float16', ['batch', 'seq', 8]);
    const half = (v: number[]) => Tensor.fromTypedArray(DataType.FLOAT16, [8], Uint16Array.from(v, toFloat16Bits));
    const gamma = b.constant(half([1.1, 0.9, 1.2, 0.8, 1.05, 0.95, 1.3, 0.7]), 'gamma');
    const beta = b.constant(half([0.1, -0.1, 0.2, -0.2, 0.05, -0.05, 0.3, -0.3]), 'beta');
    b.output(b.node('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: attr.float('epsilon', 1e-3) }), 'y');
    const { after, changes } = await checkPass(b.build(), lowerContribOps, { target: tensorrt, inputDims: { batch: 2, seq: 5 }, atol: 2e-3, rtol: 2e-3 });
    expect(changes).toBe(1);
    expect(ops(after).Cast).toBe(2);
    const eps = after.graph.initializers.find((v) => v.initializer!.elementCount === 1 && Math.abs(Number(v.initializer!.toTypedArray()[0]) - 1e-3) < 1e-9)!;
    expect(eps.initializer!.dataType).toBe(DataType.FLOAT);
  });

  test('portable at opset 14: ORT\'s own LayerNormalization (standard only from 17) becomes standard ops', async () => {
    const { after, changes } = await checkPass(layerNorm(14), lowerContribOps, { target: portable, inputDims: { batch: 2, seq: 5 } });
    expect(changes).toBe(1);
    expect(ops(after).LayerNormalization).toBeUndefined();
  });

  test('portable at opset 17 keeps it (standard there)', async () => {
    const { changes } = await checkPass(layerNorm(17), lowerContribOps, { target: portable, inputDims: { batch: 2, seq: 5 } });
    expect(changes).toBe(0);
  });

  test('a target that runs LayerNormalization keeps it', async () => {
    const { after, changes } = await checkPass(layerNorm(17), lowerContribOps, { target: x86Avx2, inputDims: { batch: 2, seq: 5 } });
    expect(changes).toBe(0);
    expect(ops(after).LayerNormalization).toBe(1);
  });
});
