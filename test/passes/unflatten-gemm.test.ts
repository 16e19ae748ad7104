import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { attr } from '../../src/ir/attribute.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { compile } from '../../src/compile.js';
import { portable } from '../../targets/portable.js';
import { unflattenGemm } from '../../passes/fuse/unflatten-gemm.js';
import { eliminateDeadNodes } from '../../passes/cleanup/eliminate-dead-nodes.js';
import { checkPass, ops } from './harness.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');

/** GPT-2's Conv1D: x [b, s, 8] -> Reshape [-1, 8] -> Gemm (W [8, 6]) -> Reshape [b, s, 6] from Shape(x). */
function conv1d(opts: { transB?: boolean; alpha?: number; extraUse?: boolean } = {}) {
  const b = new ModelBuilder({ opset: 14 });
  const x = b.input('x', 'float32', ['batch', 'seq', 8]);
  const flat = b.node('Reshape', [x, b.constant(Tensor.int64([-1, 8]))]);
  const w = Array.from({ length: 48 }, (_, i) => Math.sin(i * 0.7));
  const weight = b.constant(Tensor.float32(w, opts.transB ? [6, 8] : [8, 6]), 'w');
  const bias = b.constant(Tensor.float32([0.1, -0.2, 0.3, -0.4, 0.5, -0.6], [6]), 'bias');
  const g = b.node('Gemm', [flat, weight, bias], { transB: opts.transB ? 1 : 0, ...(opts.alpha ? { alpha: attr.float('alpha', opts.alpha) } : {}) });
  const shape = b.node('Shape', [x]);
  const dim = (i: number) => b.node('Unsqueeze', [b.node('Gather', [shape, b.constant(Tensor.int64([i], []))], { axis: 0 }), b.constant(Tensor.int64([0]))]);
  const target = b.node('Concat', [dim(0), dim(1), b.constant(Tensor.int64([6]))], { axis: 0 });
  b.output(b.node('Reshape', [g, target]), 'y');
  if (opts.extraUse) b.output(b.node('Relu', [g]), 'z');
  return b.build();
}

describe('unflatten-gemm', () => {
  test('Reshape-Gemm-Reshape becomes MatMul + Add; the shape arithmetic goes', async () => {
    const { after, changes } = await checkPass(conv1d(), [unflattenGemm, eliminateDeadNodes], { inputDims: { batch: 2, seq: 5 } });
    expect(changes).toBeGreaterThanOrEqual(1);
    expect(ops(after)).toEqual({ MatMul: 1, Add: 1 });
  });

  test('transB and alpha fold into a new [K, N] weight', async () => {
    const { after } = await checkPass(conv1d({ transB: true, alpha: 0.5 }), [unflattenGemm, eliminateDeadNodes], { inputDims: { batch: 1, seq: 3 } });
    const mm = after.graph.nodes.find((n) => n.opType === 'MatMul')!;
    expect(mm.inputs[1]!.initializer!.dims).toEqual([8, 6]);
  });

  test('does not fire when the Gemm output has another use', async () => {
    const { after, changes } = await checkPass(conv1d({ extraUse: true }), unflattenGemm, { inputDims: { batch: 2, seq: 5 } });
    expect(changes).toBe(0);
    expect(ops(after).Gemm).toBe(1);
  });

  test('gpt2-tiny through portable: no Gemm or Shape left, outputs equal', async () => {
    const { model } = readModel(path.join(FIXTURES, 'gpt2-tiny-op14/model.onnx'));
    await compile(model, portable, {});
    const h = ops(model);
    expect(h.Gemm ?? 0).toBe(0);
    expect(h.Shape ?? 0).toBeLessThanOrEqual(4);
  });
});
