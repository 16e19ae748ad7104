import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { eliminateIdentity } from '../../passes/cleanup/eliminate-identity.js';
import { checkPass, ops } from './harness.js';

describe('eliminate-identity', () => {
  test('removes Identity chains, keeps the output name', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', ['batch', 4]);
    const a = b.node('Identity', [b.node('Relu', [x])]);
    b.output(b.node('Identity', [b.node('Sigmoid', [b.node('Identity', [a])])]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateIdentity, { inputDims: { batch: 3 } });
    expect(ops(after)).toEqual({ Relu: 1, Sigmoid: 1 });
    expect(changes).toBe(3);
    expect(after.graph.outputs.map((v) => v.name)).toEqual(['y']);
    expect(after.graph.outputs[0]!.producer!.opType).toBe('Sigmoid');
  });

  test('keeps an Identity that joins a graph input to a graph output', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', 'float32', [2]);
    b.output(b.node('Identity', [x]), 'y');
    const { after, changes } = await checkPass(b.build(), eliminateIdentity);
    expect(changes).toBe(0);
    expect(ops(after)).toEqual({ Identity: 1 });
  });
});
