/**
 * silero-vad-legacy (fixtures/models/silero-vad-legacy; see fixtures/README.md): a real model from
 * an older torch exporter, with the 8 kHz and 16 kHz networks as the branches of an If on the int64
 * `sr` input, LSTMs, reflect Pad and hundreds of shape nodes. Its compile once failed at run time
 * inside the If branch: shape inference confused a fresh unknown dim with an `unk__N` dim written
 * back by an earlier run, bound the batch to 3, and fold-shape-ops then folded the LSTM state's
 * shape. For every CPU target: the compiled model validates on both test sets and at other sizes
 * (batch, samples, the 8 kHz branch), and folding does not grow the parameters.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { validate } from '../src/bench/validate.js';
import { compile } from '../src/compile.js';
import { DataType } from '../src/ir/dtype.js';
import { Tensor } from '../src/ir/tensor.js';
import { readModel } from '../src/node/files.js';
import { readInputSets } from '../src/node/inputs.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { arm64 } from '../targets/arm64.js';
import { portable } from '../targets/portable.js';
import { x86Avx2 } from '../targets/x86-avx2.js';
import { x86Avx512 } from '../targets/x86-avx512.js';
import { x86Vnni } from '../targets/x86-vnni.js';

const DIR = path.resolve(import.meta.dirname, '../fixtures/models/silero-vad-legacy');
const MODEL = path.join(DIR, 'model.onnx');

/** batch x samples of a tone with a little noise, at sample rate `sr`, with a non-zero LSTM state. */
function inputs(batch: number, samples: number, sr: number): { source: string; feeds: Record<string, Tensor> } {
  const x = Float32Array.from({ length: batch * samples }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 330 * (i % samples)) / sr + i / samples) + (((i * 7919) % 13) - 6) / 200);
  const state = () => Tensor.float32(Array.from({ length: 2 * batch * 64 }, (_, i) => 0.1 * Math.cos(i)), [2, batch, 64]);
  return {
    source: `batch ${batch} x ${samples} samples at ${sr} Hz`,
    feeds: { input: Tensor.float32(x, [batch, samples]), sr: Tensor.fromTypedArray(DataType.INT64, [], BigInt64Array.of(BigInt(sr))), h: state(), c: state() },
  };
}

describe.each([portable, x86Avx2, x86Avx512, x86Vnni, arm64].map((t) => [t.name, t] as const))('silero-vad-legacy for %s', (_name, target) => {
  test('validates on both test sets and at other sizes; parameters do not grow', async () => {
    const original = readModel(MODEL).model;
    const compiled = readModel(MODEL).model;
    const report = await compile(compiled, target, { runtime: onnxruntimeNode });
    expect(report.violations).toEqual([]);
    expect(report.after.parameterBytes).toBeLessThanOrEqual(report.before.parameterBytes);
    const sets = [...readInputSets(original, DIR), inputs(3, 1024, 16000), inputs(2, 768, 8000), inputs(1, 2048, 8000)];
    expect(sets).toHaveLength(5);
    const result = await validate(original, compiled, onnxruntimeNode, { inputs: sets, tolerance: 'fp32' });
    expect(result.ok, JSON.stringify(result.worst)).toBe(true);
    expect(result.cases.map((c) => c.source)).toEqual(sets.map((s) => s.source));
  });
});
